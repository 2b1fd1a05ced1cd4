"""The MCP gateway: one MCP server in front of others, every tool call governed by
Charter and recorded in its ledger.

`tools/list` shows each upstream's tools named `SERVER__TOOL` (two underscores: a name
MCP clients and model APIs accept), only those the caller may call. A call to
`SERVER__TOOL` is the caller's request to do the action `mcp.SERVER.TOOL` on the
resource `McpServer::SERVER`, with the tool's arguments as the request context, so the
org declares, for each tool it lets through:

    resources:
      McpServer: {description: An MCP server behind the gateway}
    actions:
      mcp.time.get_current_time:
        resources: [McpServer]
        context: {timezone: "String?"}

Only the arguments the action declares reach Charter (others are forwarded to the tool
but never decided on). Charter's answer decides the call: denied → a tool error giving
its reasons (the policies that forbid it); escalated → an approval is opened and the
tool error says so, naming it and its approvers; once approved, the same call (same
tool, same declared arguments) goes through once; allowed → forwarded, and the
upstream's result returned as it is. Every call, whatever became of it, is an
`mcp.called` event in the ledger with its latency and the size of its result.

A tool is listed when a call to it without arguments would not be denied: grant a tool
with `permit` and restrict its arguments with `forbid ... when { context has ... }`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_REQUEST,
    CallToolRequestParams,
    CallToolResult,
    ListToolsResult,
    PaginatedRequestParams,
    Tool,
)

from charter import __version__, readmodel
from charter.canonical import digest, json_safe
from charter.decisions import Decision
from charter.errors import CharterError
from charter.mcp.results import error_result, refusal_result, result_size
from charter.mcp.transports import (
    Identify,
    Limiter,
    McpApp,
    TokenCaller,
    http_caller,
    run_stdio,
)
from charter.mcp.upstreams import Upstream, UpstreamError, Upstreams
from charter.system import Charter
from charter.tokens import Token

log = logging.getLogger(__name__)

SEPARATOR = "__"
RESOURCE_TYPE = "McpServer"
CALLED = "mcp.called"
"""The ledger event recording one call through the gateway."""

_ACTION = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*(\.[A-Za-z][A-Za-z0-9_\-]*)*$")


def action_name(server: str, tool: str) -> str:
    """The action a call to `tool` on `server` asks for: `mcp.SERVER.TOOL`."""
    return f"mcp.{server}.{tool}"


def resource_name(server: str) -> str:
    return f"{RESOURCE_TYPE}::{server}"


@dataclass
class _Call:
    """One call through the gateway, as the ledger records it."""

    member: str
    server: str
    tool: str
    arguments: dict[str, Any]
    started: float
    decision: Decision | None = None
    upstream_ms: float | None = None

    @property
    def action(self) -> str:
        return action_name(self.server, self.tool)

    def payload(self, result: CallToolResult) -> dict[str, Any]:
        decision = self.decision
        return {
            "server": self.server, "tool": self.tool, "action": self.action,
            "resource": resource_name(self.server),
            "decision": None if decision is None else decision.outcome,
            "reasons": [] if decision is None else [r.to_json() for r in decision.reasons],
            "approval_id": None if decision is None else decision.approval_id,
            "forwarded": self.upstream_ms is not None, "is_error": bool(result.is_error),
            "latency_ms": round((time.perf_counter() - self.started) * 1000, 3),
            "upstream_ms": self.upstream_ms, "result_bytes": result_size(result),
            "arguments_digest": digest(json_safe(self.arguments))}


class Gateway:
    """Lists and calls upstream tools for Charter's members, as Charter decides."""

    def __init__(self, system: Charter, upstreams: Upstreams, identify: Identify) -> None:
        self.system = system
        self.upstreams = upstreams
        self.identify = identify

    def server(self) -> Server[Any]:
        """The MCP server callers speak to."""
        return Server("charter-gateway", version=__version__, lifespan=self._lifespan,
                      on_list_tools=self.list_tools, on_call_tool=self.call_tool)

    @asynccontextmanager
    async def _lifespan(self, server: Server[Any]) -> AsyncIterator[dict[str, Any]]:
        async with self.upstreams.running():
            yield {}

    # -- tools/list --------------------------------------------------------------------

    async def list_tools(self, ctx: ServerRequestContext[Any, Any],
                         params: PaginatedRequestParams | None) -> ListToolsResult:
        """The upstreams' tools the caller may call (an upstream that cannot be reached
        lists nothing, and the listing says nothing of it)."""
        try:
            member = (await anyio.to_thread.run_sync(self.identify, ctx)).member
        except CharterError as error:
            raise MCPError(INVALID_REQUEST, error.message) from None
        found: dict[str, list[Tool]] = {}

        async def list_one(upstream: Upstream) -> None:
            try:
                found[upstream.name] = await upstream.list_tools()
            except UpstreamError as error:
                log.warning("%s", error)

        async with anyio.create_task_group() as group:  # a slow upstream delays no other
            for upstream in self.upstreams:
                group.start_soon(list_one, upstream)
        offered = [(upstream, tool) for upstream in self.upstreams
                   for tool in found.get(upstream.name, [])]
        callable_ = await anyio.to_thread.run_sync(self._callable, member, offered)
        return ListToolsResult(tools=[
            tool.model_copy(update={"name": f"{upstream.name}{SEPARATOR}{tool.name}"})
            for (upstream, tool), allowed in zip(offered, callable_, strict=True)
            if allowed])

    def _callable(self, member: str, offered: list[tuple[Upstream, Tool]]) -> list[bool]:
        """For each tool, whether a call to it without arguments would not be denied."""
        authority = self.system.authority()
        now = self.system.clock.now()
        return [_ACTION.match(action := action_name(upstream.name, tool.name)) is not None
                and authority.decide(member, action, resource_name(upstream.name), {},
                                     now=now).outcome != "deny"
                for upstream, tool in offered]

    # -- tools/call --------------------------------------------------------------------

    async def call_tool(self, ctx: ServerRequestContext[Any, Any],
                        params: CallToolRequestParams) -> CallToolResult:
        """Decide the call with Charter; forward it only when allowed; record it."""
        started = time.perf_counter()
        try:
            member = (await anyio.to_thread.run_sync(self.identify, ctx)).member
        except CharterError as error:
            return refusal_result(error)
        server, _, tool = params.name.partition(SEPARATOR)
        call = _Call(member, server, tool, dict(params.arguments or {}), started)
        result = await self._answer(call)
        await anyio.to_thread.run_sync(self._record, call, result)
        return result

    async def _answer(self, call: _Call) -> CallToolResult:
        upstream = self.upstreams.get(call.server)
        if upstream is None or not call.tool:
            servers = ", ".join(u.name for u in self.upstreams) or "none"
            return error_result("NotFound", f"no tool {call.server}{SEPARATOR}{call.tool} "
                                f"here: tools are named SERVER{SEPARATOR}TOOL, and the "
                                f"servers are: {servers}")
        try:
            decision = call.decision = await anyio.to_thread.run_sync(self._decide, call)
        except CharterError as error:
            return refusal_result(error)
        if decision.outcome == "deny":
            return error_result(
                "Forbidden", f"Charter denied {call.member} {call.action} on "
                f"{resource_name(call.server)}: {_because(decision)}", decision.to_json())
        if decision.outcome == "escalate":
            return error_result(
                "ApprovalPending", f"{call.server}{SEPARATOR}{call.tool} needs approval "
                f"from {', '.join(decision.approvers)} (approval {decision.approval_id}); it "
                "has NOT been called. Once approved, call it again with the same "
                f"arguments. Why: {_because(decision)}",
                {"approval_id": decision.approval_id, "approvers": list(decision.approvers),
                 "quorum": decision.quorum, "decision": decision.to_json()})
        forwarded = time.perf_counter()
        try:
            return await upstream.call_tool(call.tool, call.arguments)
        except UpstreamError as error:
            return error_result("UpstreamError", str(error))
        finally:
            call.upstream_ms = round((time.perf_counter() - forwarded) * 1000, 3)

    def _decide(self, call: _Call) -> Decision:
        """Charter's decision on the call; an approved request waiting to be used is
        used (once) rather than asked for again."""
        spec = self.system.org.spec.actions.get(call.action)
        context = {} if spec is None else {
            name: call.arguments[name] for name in spec.context if name in call.arguments}
        resource = resource_name(call.server)
        probe = self.system.authority().decide(call.member, call.action, resource, context,
                                               now=self.system.clock.now())
        if probe.outcome == "escalate" and probe.request is not None:
            approved = [a for a in self.system.approvals(status="approved")
                        if a.request_hash == probe.request.hash and a.requester == call.member]
            if approved:
                return self.system.execute_approved(approved[0].id, call.member, call.action,
                                                    resource, context)
        return self.system.authorize(call.member, call.action, resource, context)

    def _record(self, call: _Call, result: CallToolResult) -> None:
        payload = call.payload(result)
        with self.system.store.transaction() as conn:
            readmodel.record(conn, self.system.ledger, kind=CALLED, actor=call.member,
                             subject=resource_name(call.server)[:256], payload=payload)


def _because(decision: Decision) -> str:
    return "; ".join(reason.message for reason in decision.reasons)


def gateway_app(system: Charter, upstreams: Upstreams, *,
                limiter: Limiter | None = None,
                authenticate: Callable[[str], Token] | None = None) -> McpApp:
    """The gateway over streamable HTTP, for bearer-token holders: an ASGI app (see
    `McpApp` for `limiter` and `authenticate`)."""
    return McpApp(system, Gateway(system, upstreams, http_caller).server(),
                  limiter=limiter, authenticate=authenticate)


async def serve_stdio(system: Charter, upstreams: Upstreams, secret: str) -> None:
    """The gateway over this process's stdin and stdout, as the member of the token
    `secret` (checked at every call)."""
    await run_stdio(Gateway(system, upstreams, TokenCaller(system, secret)).server())
