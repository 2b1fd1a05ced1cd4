"""Who is looking at the dashboard: a member signed in with their API token.

The token lives in an HttpOnly, SameSite=Strict cookie, so revoking the token (`charter
tokens revoke`) ends every session made with it. Every form carries a CSRF token (an
HMAC of the session's token, so only a page served to that session can know it), and
every POST must present it and come from this origin; a forged POST changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request

from charter.errors import CharterError, Forbidden
from charter.tokens import Token, Unauthenticated

if TYPE_CHECKING:
    from charter.api.auth import TokenCache

COOKIE = "charter_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"


class SignInNeeded(CharterError):
    """Sign in with your Charter token to see this page."""

    status = 401


@dataclass(frozen=True)
class Viewer:
    """The signed-in member, and the CSRF token their forms carry."""

    token: Token
    csrf: str

    @property
    def member(self) -> str:
        return self.token.member

    @property
    def admin(self) -> bool:
        return self.token.admin


def csrf_token(secret: str) -> str:
    """The CSRF token of the session holding `secret`: unguessable without it."""
    return hmac.new(secret.encode(), b"charter-dashboard-csrf", hashlib.sha256).hexdigest()


def authenticate(request: Request, secret: str) -> Viewer:
    """The viewer a token names; raises `Unauthenticated` for a bad, expired or revoked one."""
    tokens: TokenCache = request.app.state.tokens
    token = tokens.authenticate(secret.strip())
    request.app.state.buckets.take(token.id)
    return Viewer(token, csrf_token(secret.strip()))


async def viewer(request: Request) -> Viewer:
    """The signed-in viewer of a page, or `SignInNeeded` (the page redirects to sign-in)."""
    secret = request.cookies.get(COOKIE)
    if not secret:
        raise SignInNeeded()
    try:
        return authenticate(request, secret)
    except Unauthenticated as error:
        raise SignInNeeded(f"your session ended ({error.message}); sign in again") from error


async def acting_viewer(request: Request,
                        found: Annotated[Viewer, Depends(viewer)]) -> Viewer:
    """The viewer of a POST that changes something: it must come from this origin and
    carry the session's CSRF token (form field `csrf` or header `X-CSRF-Token`)."""
    check_same_origin(request)
    presented = request.headers.get(CSRF_HEADER)
    if presented is None:
        form = await request.form()
        field = form.get(CSRF_FIELD)
        presented = field if isinstance(field, str) else None
    if presented is None or not hmac.compare_digest(presented, found.csrf):
        raise Forbidden("this form is stale or did not come from the dashboard (its CSRF "
                        "token does not match your session); reload the page and try again")
    return found


def check_same_origin(request: Request) -> None:
    """Refuse a POST whose Origin (or, without one, Referer) is another site."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return  # not sent by every client; the CSRF token still has to match
    parts = urlsplit(source)
    if parts.netloc != request.headers.get("host", request.url.netloc):
        raise Forbidden(f"a request from {parts.scheme}://{parts.netloc} may not act on "
                        "this dashboard")


ViewerDep = Annotated[Viewer, Depends(viewer)]
ActingViewerDep = Annotated[Viewer, Depends(acting_viewer)]
