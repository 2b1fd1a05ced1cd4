"""API bearer tokens: each acts as one member; admin tokens may also run admin verbs.

A token is shown once, when it is created (`ch_<id>_<secret>`); the database keeps only
its sha256, and the ledger records that it was created or revoked (id, member, admin,
expiry), never the token nor its hash.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, select, update

from charter.clock import Clock
from charter.errors import CharterError, Conflict, InvalidInput, NotFound
from charter.ledger import Ledger, format_time
from charter.org import Org
from charter.store.schema import api_tokens

CREATED = "token.created"
REVOKED = "token.revoked"
PREFIX = "ch_"

_BY_HASH = select(api_tokens).where(api_tokens.c.hash == bindparam("hash"))


class Unauthenticated(CharterError):
    """A valid bearer token is needed: `Authorization: Bearer <token>`."""

    status = 401


@dataclass(frozen=True)
class Token:
    id: str
    member: str
    admin: bool
    created_at: str
    expires_at: str | None
    revoked_at: str | None

    @classmethod
    def from_row(cls, row: Row[Any]) -> Token:
        return cls(row.id, row.member, bool(row.admin), row.created_at, row.expires_at,
                   row.revoked_at)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class NewToken:
    """A token just made: `secret` is the only time the token is seen in clear."""

    token: Token
    secret: str


def create(conn: Connection, ledger: Ledger, clock: Clock, org: Org, *, member: str,
           admin: bool, expires: datetime | None, actor: str) -> NewToken:
    org.member(member)  # NotFound for an unknown member
    now = clock.now()
    if expires is not None and expires <= now:
        raise InvalidInput("a token's expiry must be in the future")
    token_id = uuid.uuid4().hex
    secret = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    row = {"id": token_id, "member": member, "admin": admin, "hash": _digest(secret),
           "created_at": format_time(now),
           "expires_at": None if expires is None else format_time(expires),
           "revoked_at": None}
    conn.execute(insert(api_tokens), row)
    ledger.append(conn, CREATED, actor, f"token:{token_id}", {
        "id": token_id, "member": member, "admin": admin, "expires_at": row["expires_at"]})
    return NewToken(get(conn, token_id), secret)


def revoke(conn: Connection, ledger: Ledger, clock: Clock, token_id: str, *,
           actor: str) -> Token:
    token = get(conn, token_id)
    if token.revoked_at is not None:
        raise Conflict(f"token {token_id} was already revoked at {token.revoked_at}")
    conn.execute(update(api_tokens).where(api_tokens.c.id == token_id)
                 .values(revoked_at=format_time(clock.now())))
    ledger.append(conn, REVOKED, actor, f"token:{token_id}", {"id": token_id})
    return get(conn, token_id)


def authenticate(conn: Connection, clock: Clock, secret: str) -> Token:
    """The token a bearer secret names, if it is current; `Unauthenticated` otherwise."""
    if not secret.startswith(PREFIX):
        raise Unauthenticated("that is not a Charter token (they start with `ch_`)")
    row = conn.execute(_BY_HASH, {"hash": _digest(secret)}).first()
    if row is None:
        raise Unauthenticated("unknown token")
    token = Token.from_row(row)
    if token.revoked_at is not None:
        raise Unauthenticated(f"token {token.id} was revoked at {token.revoked_at}")
    if token.expires_at is not None and token.expires_at <= format_time(clock.now()):
        raise Unauthenticated(f"token {token.id} expired at {token.expires_at}")
    return token


def get(conn: Connection, token_id: str) -> Token:
    row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).first()
    if row is None:
        raise NotFound(f"no token {token_id}")
    return Token.from_row(row)


def listing(conn: Connection, *, member: str | None = None) -> list[Token]:
    query = select(api_tokens).order_by(api_tokens.c.created_at, api_tokens.c.id)
    if member is not None:
        query = query.where(api_tokens.c.member == member)
    return [Token.from_row(row) for row in conn.execute(query)]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
