"""The `mcp` engine: one tool on an MCP server does the task.

`server` is a command line, started as a subprocess and spoken to over stdio, or an
http(s) URL of a streamable-HTTP MCP server. The engine opens a session with the
official MCP client, checks that the server offers `tool`, and calls it with the task
payload's `arguments` (or the whole payload when it has none).

Calling the tool is the member's act in the world, so it goes through the action gate
as the task type's action on the payload's `resource` (else the task's subject), with
the task's action context: denied, it is never called; escalated, the task pauses and
the tool is called once the approval is granted (the worker performs the approved call
with this engine's `performer`). A tool that reports an error fails the
attempt with the tool's words, and its call is not recorded as performed, so a retry
calls it again. `timeout` bounds everything, from starting the server to the tool's
answer.
"""

from __future__ import annotations

import contextlib
import shlex
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, TextIO

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, Implementation, PaginatedRequestParams, TextContent

from charter import __version__
from charter.dispatch import action_context
from charter.engines.base import ActionCall, EngineError, EngineResult, RunContext
from charter.errors import CharterError
from charter.gate import Performer
from charter.handoff import HandoffPacket
from charter.org import Org
from charter.requests import RequestInvalid, resource_name
from charter.tasks import Task
from charter.types import McpEngine

PAGES = 100
"""The most pages of a server's tool listing read when looking for the tool."""


class ToolFailed(Exception):
    """The tool answered with an error (`isError`); the message is its text."""


class McpTool:
    """Runs a task by calling one tool on an MCP server, through Charter's gate."""

    def __init__(self, spec: McpEngine) -> None:
        self.spec = spec

    async def run(self, task: Task, handoff: HandoffPacket | None,
                  context: RunContext) -> EngineResult:
        call = tool_call(context.org, task)
        _arguments(task, self.spec.tool)
        settled = next((r for r in context.settled if r.call.key == call.key), None)
        if settled is not None:  # back from approval: the worker has settled the call
            if settled.status == "performed":
                return EngineResult(outputs=settled.output)
            return EngineResult(success=False, reason=settled.message,
                                actions=(settled,) if settled.waiting else ())
        result = await context.gate.act(call, perform=self.perform)
        if result.status == "performed":
            return EngineResult(outputs=result.output, actions=(result,))
        return EngineResult(success=False, reason=result.message, actions=(result,))

    def performer(self, call: ActionCall) -> Performer:
        """How an approved call is carried out when its task resumes: the tool call."""
        return self.perform

    async def perform(self, call: ActionCall, task: Task) -> Any:
        """Call the tool with the task's arguments; its output, or an error that says
        what went wrong (the tool's own words when it reported an error)."""
        arguments = _arguments(task, self.spec.tool)
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as errlog:
            try:
                with anyio.fail_after(self.spec.timeout.total_seconds()):
                    async with self._session(errlog) as session:
                        await self._check_tool(session)
                        result = await session.call_tool(self.spec.tool, arguments)
            except Exception as error:
                raise self._explain(_innermost(error), errlog) from None
        if result.is_error:
            raise ToolFailed(_text(result) or f"the tool {self.spec.tool} failed")
        return _outputs(result)

    @asynccontextmanager
    async def _session(self, errlog: TextIO) -> AsyncIterator[ClientSession]:
        """An initialized session with the server, over stdio or streamable HTTP."""
        info = Implementation(name="charter", version=__version__)
        server = self.spec.server.strip()
        if server.startswith(("http://", "https://")):
            async with streamable_http_client(server) as (read, write), \
                    ClientSession(read, write, client_info=info) as session:
                await session.initialize()
                yield session
            return
        command = shlex.split(server)
        if not command:
            raise EngineError("the MCP server's command line is empty")
        parameters = StdioServerParameters(command=command[0], args=command[1:])
        async with stdio_client(parameters, errlog=errlog) as (read, write), \
                ClientSession(read, write, client_info=info) as session:
            await session.initialize()
            yield session

    async def _check_tool(self, session: ClientSession) -> None:
        offered: list[str] = []
        cursor: str | None = None
        for _ in range(PAGES):
            listing = await session.list_tools(
                params=None if cursor is None else PaginatedRequestParams(cursor=cursor))
            offered += [tool.name for tool in listing.tools]
            cursor = listing.next_cursor
            if self.spec.tool in offered:
                return
            if cursor is None:
                break
        raise EngineError(f"the MCP server `{self.spec.server}` has no tool "
                          f"{self.spec.tool!r} (it offers: {', '.join(offered) or 'none'})")

    def _explain(self, error: BaseException, errlog: TextIO) -> Exception:
        """The engine's error for what went wrong talking to the server."""
        if isinstance(error, EngineError | CharterError):
            return error
        if isinstance(error, TimeoutError):
            return EngineError(f"the MCP tool {self.spec.tool} on `{self.spec.server}` did not "
                               f"answer within {self.spec.timeout.total_seconds():g}s")
        if isinstance(error, OSError):
            return EngineError(f"the MCP server `{self.spec.server}` could not be started: "
                               f"{error}")
        said = _last_line(errlog)
        return EngineError(f"the MCP server `{self.spec.server}` failed: "
                           f"{type(error).__name__}: {error}"
                           + (f" (it said: {said})" if said else ""))


def _arguments(task: Task, tool: str) -> dict[str, Any]:
    """The tool's arguments: the payload's `arguments`, else the whole payload."""
    arguments = task.payload.get("arguments", task.payload)
    if not isinstance(arguments, Mapping):
        raise EngineError(f"the task's `arguments` for the MCP tool {tool} must be an "
                          f"object, not {type(arguments).__name__}")
    return dict(arguments)


def tool_call(org: Org, task: Task) -> ActionCall:
    """The act of calling the tool, as the gate sees it: the task type's action on the
    payload's `resource` (else the task's subject), with the task's action context."""
    action = org.task_types[task.type].action
    resource = str(task.payload.get("resource") or task.subject)
    with contextlib.suppress(RequestInvalid):  # the gate refuses it, saying why
        resource = resource_name(org, action, resource)
    return ActionCall(action, resource, action_context(org, task))


def _innermost(error: BaseException) -> BaseException:
    """The error inside task-group wrappers, preferring one the engine raised."""
    if not isinstance(error, BaseExceptionGroup):
        return error
    leaves = [_innermost(inner) for inner in error.exceptions]
    ours = [leaf for leaf in leaves if isinstance(leaf, EngineError | CharterError)]
    return (ours or leaves)[0]


def _text(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def _outputs(result: CallToolResult) -> Any:
    """The tool's structured content if it gave some, else its text (or, for other kinds
    of content, the content blocks as JSON)."""
    if result.structured_content is not None:
        return result.structured_content
    if all(isinstance(block, TextContent) for block in result.content):
        return _text(result)
    return [block.model_dump(mode="json", by_alias=True, exclude_none=True)
            for block in result.content]


def _last_line(errlog: TextIO) -> str:
    """The last thing the server wrote to stderr (for a traceback, the error itself)."""
    try:
        errlog.seek(0)
        lines = [line.strip() for line in errlog.read().splitlines() if line.strip()]
    except (OSError, ValueError):
        return ""
    return lines[-1][:300] if lines else ""
