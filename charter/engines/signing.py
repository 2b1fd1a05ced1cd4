"""Webhook signatures: how a receiver knows a request came from Charter, unaltered.

Charter signs each webhook request with HMAC-SHA256 over `f"{timestamp}.{body}"` (the
exact body bytes), keyed with a secret both sides share, and sends

    X-Charter-Timestamp: 1767225600
    X-Charter-Signature: sha256=5d41402a...

A receiver recomputes the signature with `verify_signature` before it trusts the body;
the timestamp is part of what is signed, so an old request replayed later is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Charter-Signature"
TIMESTAMP_HEADER = "X-Charter-Timestamp"
PREFIX = "sha256="


def sign(secret: str | bytes, timestamp: int | str, body: bytes) -> str:
    """The `X-Charter-Signature` header value for `body` sent at `timestamp`."""
    key = secret.encode() if isinstance(secret, str) else secret
    message = str(timestamp).encode() + b"." + body
    return PREFIX + hmac.new(key, message, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes, timestamp: int | str | None, body: bytes,
                     header: str | None, max_age: float = 300, *,
                     now: float | None = None) -> bool:
    """Whether `header` is Charter's signature of `body` at `timestamp`, made no more than
    `max_age` seconds from `now` (the current time by default) either way.

    Compares in constant time. A missing or malformed timestamp or header is simply not
    a valid signature."""
    if timestamp is None or header is None:
        return False
    try:
        sent = int(str(timestamp).strip())
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent) > max_age:
        return False
    expected = sign(secret, sent, body)
    return hmac.compare_digest(expected.encode(), header.strip().encode())
