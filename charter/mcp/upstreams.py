"""Upstream MCP servers: the servers the gateway calls on its callers' behalf.

An upstream is named (`time`) and is either a command line, started as a subprocess and
spoken to over stdio, or the http(s) URL of a streamable-HTTP server. The gateway keeps
one session with each, opened at first use and opened again after it breaks (the
process died, the connection dropped); every request to it is bounded by a timeout.
A subprocess gets the default MCP environment (PATH, HOME...), never the gateway's
token.
"""

from __future__ import annotations

import logging
import re
import shlex
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from anyio.abc import TaskGroup, TaskStatus
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import (
    CONNECTION_CLOSED,
    CallToolResult,
    Implementation,
    ListToolsResult,
    PaginatedRequestParams,
    Tool,
)

from charter import __version__

log = logging.getLogger(__name__)

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,31}$")
"""An upstream's name: a letter, then letters, digits and hyphens (32 at most)."""

PAGES = 100
"""The most pages of an upstream's tool listing that are read."""

Answer = TypeVar("Answer")


class UpstreamError(Exception):
    """An upstream could not be reached or did not answer; the message says why."""


@dataclass(frozen=True)
class UpstreamSpec:
    """An upstream as configured: its name and how to reach it."""

    name: str
    target: str

    def __post_init__(self) -> None:
        if not NAME.match(self.name):
            raise ValueError(f"an upstream's name is a letter then letters, digits or "
                             f"hyphens (at most 32), not {self.name!r}")
        if not self.target.strip():
            raise ValueError(f"upstream {self.name} needs a command or a URL")
        if not self.is_url and not shlex.split(self.target):
            raise ValueError(f"upstream {self.name}'s command line is empty")

    @classmethod
    def parse(cls, text: str) -> UpstreamSpec:
        """`NAME=COMMAND` or `NAME=URL`, e.g. `time=python -m mcp_server_time`."""
        name, equals, target = text.partition("=")
        if not equals:
            raise ValueError(f"an upstream is NAME=COMMAND or NAME=URL, not {text!r}")
        return cls(name.strip(), target.strip())

    @property
    def is_url(self) -> bool:
        return self.target.startswith(("http://", "https://"))


@dataclass
class _Session:
    """An open session with an upstream; `closed` is set once it can no longer serve."""

    session: ClientSession
    closed: anyio.Event


class Upstream:
    """One upstream server and the session the gateway holds with it."""

    def __init__(self, spec: UpstreamSpec, timeout: float) -> None:
        self.spec = spec
        self.timeout = timeout
        self._group: TaskGroup | None = None
        self._lock: anyio.Lock | None = None
        self._open: _Session | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def attach(self, group: TaskGroup) -> None:
        """Hold sessions in `group` from now on (forgetting any session held before)."""
        self._group, self._lock, self._open = group, anyio.Lock(), None

    async def list_tools(self) -> list[Tool]:
        """Every tool the upstream offers."""
        tools: list[Tool] = []
        cursor: str | None = None
        for _ in range(PAGES):
            page = None if cursor is None else PaginatedRequestParams(cursor=cursor)

            async def listed(session: ClientSession,
                             page: PaginatedRequestParams | None = page) -> ListToolsResult:
                return await session.list_tools(params=page)

            listing = await self._request(listed, "list its tools")
            tools += listing.tools
            cursor = listing.next_cursor
            if cursor is None:
                break
        return tools

    async def call_tool(self, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        """The upstream's answer to a tool call (a tool error is an answer too)."""
        return await self._request(lambda session: session.call_tool(tool, arguments),
                                   f"call {tool}")

    async def _request(self, send: Callable[[ClientSession], Awaitable[Answer]],
                       doing: str) -> Answer:
        opened = await self._session()
        try:
            with anyio.fail_after(self.timeout):
                return await send(opened.session)
        except TimeoutError:
            raise UpstreamError(f"the MCP server {self.name} did not {doing} within "
                                f"{self.timeout:g}s") from None
        except MCPError as error:
            if error.code == CONNECTION_CLOSED:
                opened.closed.set()
                raise UpstreamError(f"the MCP server {self.name} closed the connection "
                                    f"when asked to {doing}") from None
            raise UpstreamError(f"the MCP server {self.name} refused to {doing}: "
                                f"{error.error.message}") from None
        except Exception as error:  # the session is broken: open a new one next time
            opened.closed.set()
            raise UpstreamError(f"the MCP server {self.name} failed to {doing}: "
                                f"{_describe(error)}") from None

    async def _session(self) -> _Session:
        if self._group is None or self._lock is None:
            raise UpstreamError(f"the MCP server {self.name} is not running: the gateway "
                                "has not started")
        async with self._lock:
            if self._open is None or self._open.closed.is_set():
                try:
                    self._open = await self._group.start(self._hold)
                except Exception as error:
                    raise UpstreamError(f"the MCP server {self.name} could not be started "
                                        f"({self.spec.target}): {_describe(error)}") from None
            return self._open

    async def _hold(self, *, task_status: TaskStatus[_Session]) -> None:
        """Open a session and keep it until it is marked closed or the gateway stops."""
        closed = anyio.Event()
        started = False
        try:
            async with self._connected() as session:
                with anyio.fail_after(self.timeout):
                    await session.initialize()
                task_status.started(_Session(session, closed))
                started = True
                await closed.wait()
        except Exception as error:
            if not started:
                raise
            log.warning("the session with MCP server %s ended: %s", self.name,
                        _describe(error))
        finally:
            closed.set()

    @asynccontextmanager
    async def _connected(self) -> AsyncIterator[ClientSession]:
        info = Implementation(name="charter-gateway", version=__version__)
        if self.spec.is_url:
            async with streamable_http_client(self.spec.target) as (read, write), \
                    ClientSession(read, write, client_info=info) as session:
                yield session
            return
        command = shlex.split(self.spec.target)
        parameters = StdioServerParameters(command=command[0], args=command[1:])
        async with stdio_client(parameters, errlog=sys.__stderr__ or sys.stderr) as (
                read, write), ClientSession(read, write, client_info=info) as session:
            yield session


class Upstreams:
    """The gateway's upstreams by name."""

    def __init__(self, specs: Iterable[UpstreamSpec], *, timeout: float = 60.0) -> None:
        self._by_name: dict[str, Upstream] = {}
        for spec in specs:
            if spec.name in self._by_name:
                raise ValueError(f"two upstreams are named {spec.name}")
            self._by_name[spec.name] = Upstream(spec, timeout)

    def get(self, name: str) -> Upstream | None:
        return self._by_name.get(name)

    def __iter__(self) -> Iterator[Upstream]:
        return iter(self._by_name.values())

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Upstreams]:
        """Keep sessions with the upstreams while the block runs; close them after."""
        async with anyio.create_task_group() as group:
            for upstream in self:
                upstream.attach(group)
            try:
                yield self
            finally:
                group.cancel_scope.cancel()


def _describe(error: BaseException) -> str:
    """What went wrong, from the innermost error of task-group wrappers."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return str(error) or type(error).__name__
