"""How Charter's MCP servers are reached, and who is calling them.

Over streamable HTTP (`McpApp`) every request carries `Authorization: Bearer <token>`:
a missing, unknown, expired or revoked token is refused with 401 before any MCP message
is read, and the token's member is the one the tools act as. Over stdio the process
holds one token (`CHARTER_TOKEN`), checked again at every call, so revoking it stops the
server at once. Tools never take a member argument: the token decides.

The HTTP transport is stateless (no MCP session is kept between requests) and answers
in plain JSON, so any server process behind a load balancer can take any request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio.to_thread
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from charter.errors import CharterError
from charter.system import Charter
from charter.tokens import Token, Unauthenticated

SCOPE_KEY = "charter.token"
"""Where `McpApp` leaves the caller's token in the ASGI scope for the tool handlers."""

Identify = Callable[[ServerRequestContext[Any, Any]], Token]
"""Who is calling, for one MCP request; raises `Unauthenticated` when nobody valid is."""

# Every request needs a bearer token, which a page rebinding a host name cannot supply,
# so Host and Origin are not restricted: the server may sit behind any name.
_ANY_HOST = TransportSecuritySettings(enable_dns_rebinding_protection=False)


def http_caller(context: ServerRequestContext[Any, Any]) -> Token:
    """The token `McpApp` authenticated for the HTTP request carrying this message."""
    request = context.request
    token = None if request is None else getattr(request, "scope", {}).get(SCOPE_KEY)
    if not isinstance(token, Token):
        raise Unauthenticated()
    return token


class TokenCaller:
    """The caller of a stdio server: one token's member, authenticated at every call."""

    def __init__(self, system: Charter, secret: str) -> None:
        self.system = system
        self.secret = secret

    def __call__(self, context: ServerRequestContext[Any, Any]) -> Token:
        return self.system.authenticate(self.secret)


class Limiter(Protocol):
    """A per-token request limit (e.g. the API's `TokenBuckets`): `take` raises a
    `CharterError` (429) when the token must slow down."""

    def take(self, key: str) -> None: ...


@dataclass
class _Running:
    """A session manager serving requests on one event loop."""

    loop: asyncio.AbstractEventLoop
    manager: StreamableHTTPSessionManager
    ready: asyncio.Event
    stop: asyncio.Event
    task: asyncio.Task[None]


class McpApp:
    """An ASGI app serving one MCP server over streamable HTTP to holders of Charter
    bearer tokens, at whatever path it is mounted on.

    The MCP session manager starts with the host app's lifespan (`running()`), or at
    lifespan startup when the app is served on its own, or else with the first request;
    it stops when that lifespan ends or with its event loop. `authenticate` turns a
    bearer secret into a token (default: `Charter.authenticate`; the API passes its
    token cache); `limiter` holds each token to a request rate.
    """

    def __init__(self, system: Charter, server: MCPServer[Any] | Server[Any], *,
                 limiter: Limiter | None = None,
                 authenticate: Callable[[str], Token] | None = None) -> None:
        self.system = system
        self.server = server
        self.limiter = limiter
        self.authenticate = authenticate or system.authenticate
        self._running: _Running | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # a websocket: MCP does not speak it
            await send({"type": "websocket.close", "code": 1003})
            return
        try:
            token = await anyio.to_thread.run_sync(self._authenticate, Headers(scope=scope))
        except CharterError as error:
            await _refusal(error)(scope, receive, send)
            return
        manager = await self._manager()
        await manager.handle_request({**scope, SCOPE_KEY: token}, receive, send)

    def _authenticate(self, headers: Headers) -> Token:
        scheme, _, secret = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthenticated()
        token = self.authenticate(secret.strip())
        if self.limiter is not None:
            self.limiter.take(token.id)
        return token

    async def _manager(self) -> StreamableHTTPSessionManager:
        loop = asyncio.get_running_loop()
        running = self._running
        if running is None or running.loop is not loop or running.task.done():
            running = self._running = self._start(loop)
        await running.ready.wait()
        if running.task.done():
            raise RuntimeError("the MCP session manager stopped as it started")
        return running.manager

    def _start(self, loop: asyncio.AbstractEventLoop) -> _Running:
        # A session manager runs once: each start (a new event loop) makes a new one.
        self.server.streamable_http_app(stateless_http=True, json_response=True,
                                        transport_security=_ANY_HOST)
        manager = self.server.session_manager
        ready, stop = asyncio.Event(), asyncio.Event()

        async def serve() -> None:
            try:
                async with manager.run():
                    ready.set()
                    await stop.wait()
            finally:
                ready.set()  # wake the requests waiting, whether it started or failed

        return _Running(loop, manager, ready, stop, loop.create_task(serve()))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[McpApp]:
        """Serve with the session manager started now and stopped when the block ends
        (for a host app's lifespan)."""
        await self._manager()
        try:
            yield self
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Stop the session manager (requests still running are cancelled)."""
        running, self._running = self._running, None
        if running is None or running.loop is not asyncio.get_running_loop():
            return
        running.stop.set()
        await asyncio.wait([running.task])  # its own failure is not the caller's

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._manager()
                except Exception as error:
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _refusal(error: CharterError) -> JSONResponse:
    headers = dict(getattr(error, "headers", None) or {})
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="charter"'
    return JSONResponse(error.to_dict(), status_code=error.status, headers=headers)


async def run_stdio(server: Server[Any]) -> None:
    """Serve a low-level MCP server over this process's stdin and stdout."""
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())
