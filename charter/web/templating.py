"""Rendering dashboard pages: one Jinja2 environment (autoescaped), the filters pages use,
and the security headers every page carries."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from charter.web.session import CSRF_FIELD, Viewer

HTMX = "htmx-2.0.11.min.js"
UPLOT_JS = "uPlot-1.6.32.iife.min.js"
UPLOT_CSS = "uPlot-1.6.32.min.css"

SECURITY_HEADERS = {
    # Scripts and styles only from this server's /static: no inline script can run.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
                               "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

NAVIGATION = (("overview", "/", "Overview"), ("approvals", "/approvals", "Approvals"),
              ("tasks", "/tasks", "Tasks"), ("members", "/members", "Members"),
              ("ledger", "/ledger", "Ledger"), ("org", "/org", "Org & policies"))
"""The dashboard's sections: (name, path, label)."""


def when(value: str | datetime | None) -> str:
    """A ledger time as people read it: `2026-11-27 17:42:05 UTC`."""
    if value is None or value == "":
        return "—"
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(
        value.replace("Z", "+00:00"))
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def money(value: Decimal | float | int | str | None) -> str:
    if value is None or value == "":
        return "—"
    return f"{Decimal(str(value)):,.2f}"


def percent(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f}%"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def short(identifier: str | None, length: int = 8) -> str:
    return "" if identifier is None else identifier[:length]


def data_json(value: Any) -> Markup:
    """Data for a page script, safe inside `<script type="application/json">`."""
    text = json.dumps(value, default=str, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e")
                  .replace("&", "\\u0026"))


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("charter.web", "templates"),
                      autoescape=select_autoescape(default=True), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters.update(when=when, money=money, percent=percent, pretty_json=pretty_json,
                       short=short, data_json=data_json)
    env.globals.update(navigation=NAVIGATION, htmx=HTMX, uplot_js=UPLOT_JS,
                       uplot_css=UPLOT_CSS, csrf_field=CSRF_FIELD)
    return env


ENVIRONMENT = _environment()


def render(request: Request, template: str, viewer: Viewer | None, *, section: str = "",
           status: int = 200, headers: dict[str, str] | None = None,
           **context: Any) -> HTMLResponse:
    """Render `template` for `viewer` (None on the sign-in page) with the page's context."""
    html = ENVIRONMENT.get_template(template).render(
        request=request, viewer=viewer, section=section, **context)
    return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})
