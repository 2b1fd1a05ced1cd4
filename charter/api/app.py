"""The FastAPI application: routes under `/v1`, health, readiness and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from charter import __version__
from charter.api.auth import TokenBuckets, TokenCache
from charter.api.bodylimit import BodyLimit
from charter.api.errors import ErrorBody, error_response, install_error_handlers
from charter.api.metrics import ApiMetrics
from charter.housekeeping import keep
from charter.mcp.server import mcp_app
from charter.system import Charter
from charter.web import install_dashboard

ROUTES = ("tokens", "tasks", "org", "governance", "conflicts", "ledger", "killswitch")
"""Modules of `charter.api.routes`, each with a `router`."""

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": meaning, "model": ErrorBody}
    for status, meaning in ((400, "The body is not readable (e.g. not JSON)"),
                            (401, "No valid bearer token"), (403, "Not permitted"),
                            (404, "Not found"), (409, "Conflicts with the current state"),
                            (422, "Not valid"), (429, "Too many requests"))}


Lifespan = Callable[[], AbstractAsyncContextManager[object]]
"""Something that runs while the app serves (e.g. a mounted app's session manager)."""


def create_app(system: Charter, *, owns_system: bool = False,
               lifespans: Sequence[Lifespan] = (), housekeeping: float = 0.0) -> FastAPI:
    """The API over one `Charter`; with `owns_system` it closes the Charter when the
    server stops (else the caller does). `lifespans` run while the app serves; with
    `housekeeping` > 0, so does a sweep every that many seconds (`charter.housekeeping`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as running:
            await running.enter_async_context(app.state.mcp.running())
            for enter in lifespans:
                await running.enter_async_context(enter())
            if housekeeping > 0:
                await running.enter_async_context(_sweeping(system, housekeeping))
            yield
        if owns_system:
            system.close()

    app = FastAPI(title="Charter", version=__version__, lifespan=lifespan,
                  description="Coordinate an organisation's AI agents and people: "
                              "allocation, authority, approvals, budgets, conflicts, "
                              "memory. Authenticate with `Authorization: Bearer <token>` "
                              "(`charter tokens create`). Errors have one shape: "
                              '`{"error": {"type", "message", "details"}}`.',
                  responses=ERROR_RESPONSES)
    app.state.system = system
    app.state.buckets = TokenBuckets(system.settings.rate_limit)
    app.state.tokens = TokenCache(system, system.settings.governance_refresh)
    app.state.mcp = mcp_app(system, limiter=app.state.buckets,
                            authenticate=app.state.tokens.authenticate)
    # A route, not a mount: a mount answers only `/mcp/` and redirects `/mcp` first.
    app.add_route("/mcp", app.state.mcp, include_in_schema=False)
    app.state.metrics = ApiMetrics(system)
    app.add_middleware(BodyLimit)
    install_error_handlers(app)
    for name in ROUTES:
        module = importlib.import_module(f"charter.api.routes.{name}")
        app.include_router(module.router, prefix="/v1")
    install_dashboard(app)

    @app.get("/healthz", tags=["health"], summary="The process is up")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="The database answers and an org is loaded",
             responses={503: {"description": "Not ready"}})
    def readyz(request: Request) -> Any:
        try:
            with system.store.reading() as conn:
                conn.execute(text("SELECT 1"))
            org = system.current_org()
        except Exception as error:  # any failure means not ready, and says why
            return error_response(503, "NotReady", f"the database does not answer: {error}")
        if org is None:
            return error_response(503, "NotReady", "no org is loaded: run `charter org load`")
        return JSONResponse({"status": "ready", "org_version": org.version})

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics",
             response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(app.state.metrics.registry),
                                 media_type=CONTENT_TYPE_LATEST)

    return app


@asynccontextmanager
async def _sweeping(system: Charter, interval: float) -> AsyncIterator[None]:
    """Housekeeping in the background while the block runs."""
    sweeper = asyncio.create_task(keep(system, interval), name="charter-housekeeping")
    try:
        yield
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
