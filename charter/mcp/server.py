"""Charter's own verbs as MCP tools, so an agent can work inside Charter from any MCP
client: ask before acting, claim and finish its tasks, report outcomes, keep and recall
memory, hold leases and put decisions forward.

Every tool acts as the calling member, named by its bearer token (see
`charter.mcp.transports`); no tool takes a member argument. Results are JSON objects;
a refusal (not permitted, a stale fencing token, an unknown task...) is a tool error
carrying Charter's message and its error shape.

Serve it over streamable HTTP with `mcp_app(system)` (mounted at `/mcp` in the API), or
over stdio with `charter mcp` (the token from `CHARTER_TOKEN`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from charter import __version__
from charter.errors import CharterError, Forbidden
from charter.mcp.results import json_result, refusal_result
from charter.mcp.transports import Identify, Limiter, McpApp, TokenCaller, http_caller
from charter.system import Charter
from charter.tokens import Token

INSTRUCTIONS = """\
Charter coordinates an organisation's AI agents and people. These tools act as you (the
member your token names). Ask `authorize` before any governed action and respect its
answer: `allow` go ahead, `deny` do not, `escalate` wait for the approvers it names.
Work loop: `claim_task`, do the work (`heartbeat` to keep a long claim), then
`complete_task` or `fail_task` with the claim's fencing token."""

TaskId = Annotated[str, Field(min_length=1, max_length=64, description="The task's id.")]
Fencing = Annotated[int, Field(ge=0, le=2**62,
                               description="The fencing token your claim of the task gave.")]
Amount = Annotated[Decimal | None, Field(ge=0, le=Decimal("1e15"), allow_inf_nan=False,
                                         description="What it cost, in the org's currency.")]
Subject = Annotated[str, Field(min_length=1, max_length=256,
                               description="What it is about, `Type::id` (e.g. Customer::42).")]
Text = Annotated[str, Field(min_length=1, max_length=2000)]
Ctx = Context[Any, Any]
"""The request a tool runs for (MCPServer passes it; it is not an argument)."""

_READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)


class CharterTools:
    """The tools, each acting as the member `identify` names for the request."""

    def __init__(self, system: Charter, identify: Identify) -> None:
        self.system = system
        self.identify = identify

    def _as_caller(self, ctx: Ctx, act: Callable[[str], dict[str, Any]]) -> CallToolResult:
        """Run `act` with the caller's member id; a Charter refusal is a tool error."""
        try:
            member = self.identify(ctx.request_context).member
            return json_result(act(member))
        except CharterError as error:
            return refusal_result(error)

    def authorize(
        self, ctx: Ctx,
        action: Annotated[str, Field(min_length=1, max_length=128,
                                     description="The org's action, e.g. purchase.create.")],
        resource: Annotated[str, Field(min_length=1, max_length=256,
                                       description="`Type::id`, e.g. Vendor::globex.")],
        context: Annotated[dict[str, Any] | None, Field(
            description="The request context the action declares, e.g. {\"amount\": 800}."
        )] = None,
        task_type: Annotated[str | None, Field(max_length=64)] = None,
        task_id: Annotated[str | None, Field(max_length=36, description=(
            "The task you act for: an approval it needs is bound to it."))] = None,
    ) -> CallToolResult:
        """May you do `action` on `resource`? Charter answers `allow`, `deny` or
        `escalate` (an approval is opened: `approvers` decide, `approval_id` names it),
        always with reasons. The question and answer are recorded in the ledger."""
        return self._as_caller(ctx, lambda member: self.system.authorize(
            member, action, resource, context, task_type=task_type,
            task_id=task_id).to_json())

    def claim_task(self, ctx: Ctx) -> CallToolResult:
        """Start your most urgent assigned task. Returns the task, the `fencing` token to
        give when you complete or fail it, when the claim's lease ends, and for a task
        tried before its hand-off packet (earlier attempts, approvals, memories).
        `task` is null when you have nothing to claim."""
        def claim(member: str) -> dict[str, Any]:
            claim = self.system.claim_next(member)
            if claim is None:
                return {"task": None, "message": f"{member} has no assigned task to claim"}
            return {"task": claim.task.to_json(), "fencing": claim.fencing,
                    "lease_until": claim.lease_until,
                    "handoff": None if claim.handoff is None else claim.handoff.to_json(),
                    "resume": claim.resume}
        return self._as_caller(ctx, claim)

    def heartbeat(self, ctx: Ctx, task_id: TaskId, fencing: Fencing) -> CallToolResult:
        """Extend the lease of your claim on a task you are still working on."""
        return self._as_caller(ctx, lambda member: {
            "task_id": task_id,
            "lease_until": self.system.heartbeat(task_id, member=member, fencing=fencing)})

    def complete_task(
        self, ctx: Ctx, task_id: TaskId, fencing: Fencing,
        result: Annotated[Any, Field(description="What the work produced (JSON).")] = None,
        cost: Amount = None,
        duration_s: Annotated[float | None, Field(ge=0, le=1e9)] = None,
        quality: Annotated[float | None, Field(ge=0, le=1, description=(
            "Your own estimate of the quality, 0 to 1."))] = None,
    ) -> CallToolResult:
        """Finish your claimed attempt successfully (recorded as your self-report)."""
        return self._as_caller(ctx, lambda member: {"task": self.system.complete_task(
            task_id, member=member, fencing=fencing, result=result, cost=cost,
            duration_s=duration_s, quality=quality).to_json()})

    def fail_task(self, ctx: Ctx, task_id: TaskId, fencing: Fencing,
                  reason: Annotated[Text, Field(description="What went wrong.")],
                  cost: Amount = None) -> CallToolResult:
        """Report that your claimed attempt failed; the task type's fallback protocol
        decides what happens next (a retry, someone else, a person's queue)."""
        return self._as_caller(ctx, lambda member: {"task": self.system.fail_task(
            task_id, member=member, fencing=fencing, reason=reason, cost=cost).to_json()})

    def report_outcome(
        self, ctx: Ctx, task_id: TaskId, success: bool,
        verified: Annotated[bool, Field(description=(
            "You checked the work yourself (a reviewer's verdict); never for your own "
            "work."))] = False,
        quality: Annotated[float | None, Field(ge=0, le=1)] = None,
        cost: Amount = None,
        duration_s: Annotated[float | None, Field(ge=0, le=1e9)] = None,
    ) -> CallToolResult:
        """Record how a task went, possibly long after it ended, for its latest holder.
        Outcomes teach Charter whom to give such work; verified ones weigh more."""
        def report(member: str) -> dict[str, Any]:
            if verified and self.system.task(task_id).assignee == member:
                raise Forbidden(f"{member} may not verify its own work on task {task_id}: "
                                "report it unverified, or ask a reviewer")
            return {"outcome": self.system.record_outcome(
                task_id, success=success, reported_by=member, verified=verified,
                quality=quality, cost=cost, duration_s=duration_s).to_json()}
        return self._as_caller(ctx, report)

    def remember(
        self, ctx: Ctx, subject: Subject,
        text: Annotated[str, Field(min_length=1, max_length=20_000)],
        kind: Literal["note", "fact", "summary"] = "note",
        tags: Annotated[list[Annotated[str, Field(max_length=64)]], Field(
            max_length=32)] = [],  # noqa: B006 - read only; MCP needs a JSON default
        private: Annotated[bool, Field(description="Only you will read it back.")] = False,
    ) -> CallToolResult:
        """Keep a note, fact or summary about a subject, for whoever works on it next
        (policy decides who may write and read memory about what)."""
        return self._as_caller(ctx, lambda member: {"memory": self.system.remember(
            subject, text, by=member, kind=kind, tags=tags, private=private).to_json()})

    def recall(self, ctx: Ctx, subject: Subject,
               query: Annotated[str, Field(max_length=1000, description=(
                   "Words to look for; empty for the latest memories."))] = "",
               limit: Annotated[int, Field(ge=1, le=100)] = 10) -> CallToolResult:
        """The subject's memories most relevant to `query`, best first (shared ones, and
        your own private ones)."""
        return self._as_caller(ctx, lambda member: {"memories": [
            found.to_json() for found in self.system.recall(subject, query, by=member,
                                                            limit=limit)]})

    def acquire_lease(
        self, ctx: Ctx,
        resource: Annotated[str, Field(min_length=1, max_length=256, description=(
            "What to hold, `Type::id` (e.g. Customer::42)."))],
        mode: Literal["exclusive", "shared"] = "exclusive",
        ttl_s: Annotated[float, Field(gt=0, le=86_400, description=(
            "How long the lease lasts unless renewed or released."))] = 60,
        wait_s: Annotated[float, Field(ge=0, le=30, description=(
            "How long to wait for current holders to let go."))] = 0,
        task_id: Annotated[str | None, Field(max_length=64, description=(
            "The task it is for: released when that task fails or its claim "
            "expires."))] = None,
    ) -> CallToolResult:
        """Hold a resource for a while, with a fencing token higher than any before; a
        resource someone else holds is refused, naming them and when they let go."""
        return self._as_caller(ctx, lambda member: {"lease": self.system.acquire_lease(
            resource, member, mode=mode, ttl=timedelta(seconds=ttl_s), wait=wait_s,
            task_id=task_id).to_json()})

    def release_lease(self, ctx: Ctx, lease_id: Annotated[str, Field(
            min_length=1, max_length=64)]) -> CallToolResult:
        """Let go of a lease you hold."""
        return self._as_caller(ctx, lambda member: {
            "lease": self.system.release_lease(lease_id, member).to_json()})

    def propose(
        self, ctx: Ctx, subject: Subject,
        key: Annotated[str, Field(min_length=1, max_length=256, description=(
            "What about the subject is decided, e.g. price."))],
        value: Annotated[Any, Field(description="The value you propose (JSON).")],
        task_type: Annotated[str, Field(min_length=1, max_length=64, description=(
            "The kind of decision, e.g. price_change."))],
        confidence: Annotated[float | None, Field(ge=0, le=1)] = None,
        rationale: Annotated[str, Field(max_length=4000)] = "",
        context: Annotated[dict[str, Any] | None, Field(description=(
            "The request context the task type's action takes."))] = None,
    ) -> CallToolResult:
        """Put a decision forward (e.g. a new price for Sku::sku-9). Proposals that
        disagree are arbitrated by the task type's rule; the answer says where yours
        stands."""
        return self._as_caller(ctx, lambda member: {"proposal": self.system.propose(
            member, subject, key, value, task_type=task_type, confidence=confidence,
            rationale=rationale, context=context).to_json()})


TOOLS: dict[str, ToolAnnotations | None] = {
    "authorize": None, "claim_task": None, "heartbeat": None, "complete_task": None,
    "fail_task": None, "report_outcome": None, "remember": None, "recall": _READ_ONLY,
    "acquire_lease": None, "release_lease": None, "propose": None}
"""The tools, by name (each a method of `CharterTools`), with their hints."""


def charter_server(system: Charter, identify: Identify) -> MCPServer[Any]:
    """The MCP server of Charter's verbs; `identify` names the caller of each request."""
    server: MCPServer[Any] = MCPServer("charter", version=__version__,
                                       instructions=INSTRUCTIONS, log_level="WARNING")
    tools = CharterTools(system, identify)
    for name, hints in TOOLS.items():
        server.add_tool(getattr(tools, name), name=name, annotations=hints)
    return server


def mcp_app(system: Charter, *, limiter: Limiter | None = None,
            authenticate: Callable[[str], Token] | None = None) -> McpApp:
    """Charter's verbs over streamable HTTP, for bearer-token holders: an ASGI app to
    serve at `/mcp` in the API (see `McpApp` for `limiter` and `authenticate`)."""
    return McpApp(system, charter_server(system, http_caller), limiter=limiter,
                  authenticate=authenticate)


async def serve_stdio(system: Charter, secret: str) -> None:
    """Charter's verbs over this process's stdin and stdout, as the member of the
    token `secret` (checked at every call)."""
    await charter_server(system, TokenCaller(system, secret)).run_stdio_async()
