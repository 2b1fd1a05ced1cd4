"""Cursor pagination: a page of items and an opaque cursor for the next one.

A cursor is the sort key of the last item returned (base64 of its JSON), so pages stay
right while items are added; a cursor that was not made by Charter is refused (422)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any

from fastapi import Query

from charter.api.fields import MAX_WHOLE
from charter.errors import InvalidInput

Limit = Annotated[int, Query(ge=1, le=500, description="Items per page (1-500).")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page.",
                                     max_length=512)]


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, kinds: tuple[type, ...]) -> tuple[Any, ...] | None:
    """The sort key a cursor carries, each part of the type `kinds` names and storable
    (text without NUL, whole numbers within BIGINT), or None for the first page."""
    if cursor is None or cursor == "":
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        key = None
    if not isinstance(key, list) or len(key) != len(kinds) or not all(
            _fits(part, kind) for part, kind in zip(key, kinds, strict=True)):
        raise InvalidInput("that cursor was not made by Charter: pass `next_cursor` from "
                           "the previous page, or none for the first")
    return tuple(key)


def _fits(part: Any, kind: type) -> bool:
    if kind is str:
        return isinstance(part, str) and "\x00" not in part and len(part) <= 256
    return (isinstance(part, int) and not isinstance(part, bool)
            and 0 <= part <= MAX_WHOLE)


def page(items: list[dict[str, Any]], limit: int, key: list[str]) -> dict[str, Any]:
    """`{"items", "next_cursor"}` from up to `limit + 1` rows (the extra one says that
    there is a next page); `key` names the fields the cursor keeps."""
    more = len(items) > limit
    shown = items[:limit]
    cursor = encode_cursor([shown[-1][name] for name in key]) if more and shown else None
    return {"items": shown, "next_cursor": cursor}
