"""Token verbs of the `Charter` facade: API bearer tokens, made, checked and revoked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from charter import tokens
from charter.clock import Clock
from charter.ledger import Ledger
from charter.org import Org
from charter.store import Store
from charter.tokens import NewToken, Token


class TokenVerbs:
    """Mixed into `Charter`; expects its store, ledger and clock."""

    store: Store
    ledger: Ledger
    clock: Clock
    _require_org: Callable[[], Org]

    def create_token(self, member: str, *, admin: bool = False,
                     expires: datetime | None = None, actor: str = "system") -> NewToken:
        """A new bearer token acting as `member` (and, with `admin`, allowed admin
        verbs). Its secret is returned once and never stored."""
        org = self._require_org()
        with self.store.transaction() as conn:
            return tokens.create(conn, self.ledger, self.clock, org, member=member,
                                 admin=admin, expires=expires, actor=actor)

    def revoke_token(self, token_id: str, *, actor: str = "system") -> Token:
        with self.store.transaction() as conn:
            return tokens.revoke(conn, self.ledger, self.clock, token_id, actor=actor)

    def tokens(self, *, member: str | None = None) -> list[Token]:
        """Every token (never their secrets), oldest first."""
        with self.store.reading() as conn:
            return tokens.listing(conn, member=member)

    def authenticate(self, secret: str) -> Token:
        """The current token a bearer secret names; `Unauthenticated` otherwise."""
        with self.store.reading() as conn:
            return tokens.authenticate(conn, self.clock, secret)
