"""`charter mcp` and `charter gateway`: Charter's verbs as an MCP server over stdio, and
the MCP gateway that governs every call to other MCP servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import anyio
import typer

from charter.cli import DbOption, app, err, fail, open_system, out
from charter.system import Charter
from charter.tokens import Unauthenticated

TokenOption = Annotated[str | None, typer.Option(
    "--token", envvar="CHARTER_TOKEN", show_default=False,
    help="The bearer token whose member the tools act as (CHARTER_TOKEN).")]


def _token(system: Charter, token: str | None) -> str:
    """The token's secret, once Charter accepts it; else exit 1 saying why."""
    if not token:
        fail("a token is needed: set CHARTER_TOKEN or pass --token "
             "(make one with `charter tokens create --member ID`)")
    try:
        system.authenticate(token)
    except Unauthenticated as error:
        fail(f"the token is refused: {error.message}")
    return token


@app.command("mcp")
def mcp(db: DbOption = None, token: TokenOption = None) -> None:
    """Serve Charter's verbs as MCP tools over stdio, for an agent's MCP client: they act
    as the member of the token (CHARTER_TOKEN). Over HTTP they are at `/mcp` of the API
    (`charter serve`)."""
    from charter.mcp.server import serve_stdio

    with open_system(db) as system:
        secret = _token(system, token)
        anyio.run(serve_stdio, system, secret)


@app.command("gateway")
def gateway(
    upstream: Annotated[list[str], typer.Option(
        "--upstream", show_default=False,
        help="An MCP server to put behind Charter, NAME=COMMAND or NAME=URL (e.g. "
             "time='python -m mcp_server_time'); repeat for each. Its tools are listed "
             "as NAME__TOOL and each call is the action mcp.NAME.TOOL on McpServer::NAME.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8090,
    stdio: Annotated[bool, typer.Option(
        "--stdio", help="Serve over stdin/stdout as the token's member instead of HTTP.")]
    = False,
    timeout: Annotated[float, typer.Option(
        min=0.1, help="Seconds an upstream has to start and to answer each request.")]
    = 60.0,
    token: TokenOption = None,
    db: DbOption = None,
) -> None:
    """Serve the MCP gateway: upstream MCP servers' tools, each call decided by Charter
    (allowed, denied with reasons, or waiting for approval) and recorded in the ledger.
    Over HTTP (at /mcp) each caller sends `Authorization: Bearer <token>`; over stdio the
    token is CHARTER_TOKEN."""
    from charter.mcp.gateway import gateway_app, serve_stdio
    from charter.mcp.upstreams import Upstreams, UpstreamSpec

    try:
        upstreams = Upstreams([UpstreamSpec.parse(spec) for spec in upstream],
                              timeout=timeout)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--upstream") from None
    with open_system(db) as system:
        if stdio:
            secret = _token(system, token)
            anyio.run(serve_stdio, system, upstreams, secret)
            return
        import uvicorn
        from starlette.applications import Starlette
        from starlette.routing import Route

        served = gateway_app(system, upstreams)

        @asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            async with served.running():
                yield

        names = ", ".join(u.name for u in upstreams)
        out.print(f"Charter MCP gateway at http://{host}:{port}/mcp (upstreams: {names})",
                  highlight=False, soft_wrap=True)
        err.print("Callers authenticate with `Authorization: Bearer <token>`.")
        uvicorn.run(Starlette(routes=[Route("/mcp", served)], lifespan=lifespan),
                    host=host, port=port, log_level="warning")
