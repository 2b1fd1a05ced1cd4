"""Who is calling: a bearer token names a member (and whether it is an admin).

A member acts only as itself: verbs that act (claim, complete, approve, propose,
remember...) take the member from the token, never from the request. Admin verbs (load
the org or policies, make tokens, dispatch) need an admin token. Each token is held to
`rate_limit` requests per second per server process.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from charter.errors import CharterError, Forbidden
from charter.ledger import format_time
from charter.system import Charter
from charter.tokens import Token, Unauthenticated

_bearer = HTTPBearer(auto_error=False, description="A Charter token: `ch_…`")


class RateLimited(CharterError):
    """Too many requests with this token: slow down and retry."""

    status = 429

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many requests with this token; retry in {retry_after:.2f}s",
                         details={"retry_after": round(retry_after, 3)})
        self.headers = {"Retry-After": str(max(1, round(retry_after)))}


class TokenCache:
    """Tokens this process checked in the last `ttl` seconds, so a busy client is not
    looked up on every request. Expiry is checked on every request; a token revoked
    through this process is dropped at once, one revoked on another node within `ttl`
    (the same bound as the org and policies: `governance_refresh`)."""

    def __init__(self, system: Charter, ttl: float) -> None:
        self.system = system
        self.ttl = ttl
        self._known: dict[str, tuple[Token, float]] = {}
        self._lock = threading.Lock()

    def authenticate(self, secret: str) -> Token:
        now = time.monotonic()
        with self._lock:
            cached = self._known.get(secret)
        if cached is None or now - cached[1] > self.ttl:
            token = self.system.authenticate(secret)
            with self._lock:
                if len(self._known) > 10_000:
                    self._known.clear()
                self._known[secret] = (token, now)
            return token
        token = cached[0]
        if token.expires_at is not None and token.expires_at <= format_time(
                self.system.clock.now()):
            raise Unauthenticated(f"token {token.id} expired at {token.expires_at}")
        return token

    def forget(self, token_id: str) -> None:
        with self._lock:
            for secret in [s for s, (t, _) in self._known.items() if t.id == token_id]:
                del self._known[secret]


class TokenBuckets:
    """A token bucket per API token: `rate` per second, bursts of twice that."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        capacity = 2 * self.rate
        with self._lock:
            level, then = self._buckets.get(key, (capacity, now))
            level = min(capacity, level + (now - then) * self.rate)
            if level < 1:
                self._buckets[key] = (level, now)
                raise RateLimited((1 - level) / self.rate)
            self._buckets[key] = (level - 1, now)


@dataclass(frozen=True)
class Caller:
    """The member a request acts as."""

    token: Token

    @property
    def member(self) -> str:
        return self.token.member

    @property
    def admin(self) -> bool:
        return self.token.admin

    def about(self, member: str | None) -> str:
        """The member a question is about: the caller's own, or (for an admin) anyone."""
        if member is None or member == self.member:
            return self.member
        if not self.admin:
            raise Forbidden(f"this token acts as {self.member}; asking about {member} "
                            "needs an admin token")
        return member


async def system(request: Request) -> Charter:
    found: Charter = request.app.state.system
    return found


async def caller(request: Request, system: Annotated[Charter, Depends(system)],
           credentials: Annotated[HTTPAuthorizationCredentials | None,
                                  Depends(_bearer)]) -> Caller:
    """The caller a bearer token names. Async, so resolving it does not cost a thread
    hop per request; tokens are cached (`TokenCache`), so it rarely reads the database."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated()
    token = request.app.state.tokens.authenticate(credentials.credentials)
    request.app.state.buckets.take(token.id)
    return Caller(token)


async def admin(found: Annotated[Caller, Depends(caller)]) -> Caller:
    if not found.admin:
        raise Forbidden(f"this needs an admin token; the token of {found.member} is not one")
    return found


SystemDep = Annotated[Charter, Depends(system)]
CallerDep = Annotated[Caller, Depends(caller)]
AdminDep = Annotated[Caller, Depends(admin)]
