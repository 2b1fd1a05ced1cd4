"""The dashboard on the API's app: its pages, its static files, and errors as pages."""

from __future__ import annotations

import importlib
from pathlib import Path
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from charter.web.session import SignInNeeded
from charter.web.templating import render

PAGES = ("signin", "overview", "approvals", "tasks", "ledger", "org", "members")
"""Modules of `charter.web.pages`, each with a `router`."""

STATIC = Path(__file__).parent / "static"


async def _mark_as_page(request: Request) -> None:
    """Errors raised while serving a page are answered as a page, not as JSON."""
    request.state.error_page = error_page


def error_page(request: Request, status: int, kind: str, message: str) -> Response:
    """The page for an error: sign-in for a missing session, else the message."""
    if status == SignInNeeded.status:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.headers.get("HX-Request"):
            # An htmx fragment cannot redirect its page itself: ask htmx to.
            return Response(status_code=200, headers={"HX-Redirect": "/signin"})
        why = "" if message == SignInNeeded().message else f"&why={quote(message)}"
        return RedirectResponse(f"/signin?next={quote(target)}{why}", status_code=303)
    if request.headers.get("HX-Request"):
        # Shown above the page the request came from, whatever it meant to replace.
        return render(request, "error_flash.html", None, status=status, kind=kind,
                      message=message, headers={"HX-Retarget": "#flash",
                                                "HX-Reswap": "innerHTML"})
    return render(request, "error.html", None, status=status, kind=kind, message=message)


def install_dashboard(app: FastAPI) -> None:
    """Serve the dashboard's pages from `app` (at `/`, beside `/v1` and `/mcp`)."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for name in PAGES:
        module = importlib.import_module(f"charter.web.pages.{name}")
        app.include_router(module.router, dependencies=[Depends(_mark_as_page)],
                           include_in_schema=False)
