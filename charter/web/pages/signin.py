"""Signing in with a member token, and out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from charter.tokens import Unauthenticated
from charter.web.session import COOKIE, ActingViewerDep, authenticate
from charter.web.templating import render

router = APIRouter()


def _local(target: str) -> str:
    """Only a path on this site may be a redirect target (no open redirects)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/signin")
def signin_page(request: Request, next: str = "/", why: str = "") -> Response:
    return render(request, "signin.html", None, title="Sign in", next=_local(next),
                  problem=why)


@router.post("/signin")
def signin(request: Request, token: Annotated[str, Form(max_length=512)],
           next: Annotated[str, Form(max_length=2048)] = "/") -> Response:
    try:
        authenticate(request, token)
    except Unauthenticated as error:
        return render(request, "signin.html", None, status=401, next=_local(next),
                      problem=f"That token was not accepted: {error.message}")
    response = RedirectResponse(_local(next), status_code=303)
    response.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    return response


@router.post("/signout")
def signout(viewer: ActingViewerDep) -> Response:
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
