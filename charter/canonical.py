"""Canonical JSON: one byte string per value, so digests are reproducible."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                            allow_nan=False)
"""Built once: every ledger event encodes its header and payload with it."""


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text, no NaN or infinity.

    Values must already be JSON types (use pydantic's ``model_dump(mode="json")``).
    """
    return _ENCODER.encode(value)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def digest(value: Any) -> str:
    """sha256 of the value's canonical JSON."""
    return sha256_hex(canonical_json(value))


def json_safe(value: Any) -> Any:
    """`value` with anything canonical JSON cannot hold (NaN, infinity, sets, objects)
    replaced by its `repr`, and text no database stores (a lone surrogate, NUL) made
    storable, for recording what a caller sent as nearly as it was."""
    if isinstance(value, dict):
        return {storable_text(str(key)): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        return storable_text(value)
    if value is None or isinstance(value, int | float | bool):
        return value
    return storable_text(repr(value))


def storable_text(text: str) -> str:
    """`text` as every database stores it: lone surrogates (not UTF-8) and NUL (refused
    by PostgreSQL) replaced by U+FFFD."""
    if text.isascii() and "\x00" not in text:
        return text
    return "".join("\ufffd" if ch == "\x00" or "\ud800" <= ch <= "\udfff" else ch
                   for ch in text)
