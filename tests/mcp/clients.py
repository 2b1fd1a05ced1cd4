"""MCP clients for the tests: the official Python client over streamable HTTP (with a
bearer token) or over stdio (a subprocess), and a way to call tools from sync tests."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx2
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent

Answer = TypeVar("Answer")

CHARTER_CLI = [sys.executable, "-m", "charter"]
"""The `charter` command, with `charter mcp` and `charter gateway` registered."""


def cli_env(db_url: str, secret: str | None) -> dict[str, str]:
    """The environment of a `charter` subprocess on the test database, as `secret`."""
    env = {"CHARTER_DB": db_url, "CHARTER_SECRET": "test-secret",
           "PATH": os.environ.get("PATH", "")}
    if secret is not None:
        env["CHARTER_TOKEN"] = secret
    return env


@asynccontextmanager
async def http_session(url: str, token: str | None, *,
                       statuses: list[int] | None = None) -> AsyncIterator[ClientSession]:
    """An initialized session with the MCP server at `url`, sending the bearer token
    (and noting the HTTP status of each response in `statuses`)."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}

    async def note(response: httpx2.Response) -> None:
        if statuses is not None:
            statuses.append(response.status_code)

    async with httpx2.AsyncClient(headers=headers, timeout=60,
                                  event_hooks={"response": [note]}) as http, \
            streamable_http_client(url, http_client=http) as (read, write), \
            ClientSession(read, write) as session:
        await session.initialize()
        yield session


@asynccontextmanager
async def stdio_session(command: list[str], env: dict[str, str]) -> AsyncIterator[
        ClientSession]:
    """An initialized session with an MCP server run as a subprocess."""
    parameters = StdioServerParameters(command=command[0], args=command[1:], env=env)
    async with stdio_client(parameters) as (read, write), \
            ClientSession(read, write) as session:
        await session.initialize()
        yield session


def over_http(url: str, token: str | None,
              use: Callable[[ClientSession], Awaitable[Answer]]) -> Answer:
    """Open a session as `token`'s member, run `use` with it, return what it returned."""
    async def run() -> Answer:
        async with http_session(url, token) as session:
            return await use(session)
    return asyncio.run(run())


def call(url: str, token: str, tool: str, **arguments: Any) -> CallToolResult:
    """One tool call, in a session of its own."""
    return over_http(url, token, lambda session: session.call_tool(tool, arguments))


def listed(url: str, token: str) -> list[str]:
    """The names of the tools the server lists for `token`'s member."""
    async def names(session: ClientSession) -> list[str]:
        return [tool.name for tool in (await session.list_tools()).tools]
    return over_http(url, token, names)


def text(result: CallToolResult) -> str:
    return "\n".join(b.text for b in result.content if isinstance(b, TextContent))


def body(result: CallToolResult) -> dict[str, Any]:
    """A Charter result's JSON, checking that its text says the same."""
    assert result.structured_content is not None, text(result)
    if not result.is_error:
        assert json.loads(text(result)) == result.structured_content
    return result.structured_content
