"""What an engine is: whatever runs a task for an AI member, and what it reports back.

An engine never acts in the world by itself: every action goes through `RunContext.act`,
which asks Charter first (allow, deny or escalate) and performs the action only when it
is allowed, once per key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Protocol

from charter.canonical import digest, json_safe

if TYPE_CHECKING:
    from charter.gate import ActionGate
    from charter.handoff import HandoffPacket
    from charter.org import Org
    from charter.tasks import Task
    from charter.types import Member

ActionStatus = Literal["performed", "denied", "escalated", "rejected", "failed"]
"""performed: allowed and carried out; denied: Charter refused it; escalated: it waits
for an approval; rejected: its approval was refused or expired; failed: allowed, but
carrying it out raised an error."""


@dataclass(frozen=True)
class ActionCall:
    """An action an engine wants to take: a Cedar action on a resource, with context.

    `key` names the call within its task: one key is performed at most once, so an engine
    that runs again after a crash or a pause does not repeat what it already did. By
    default it is a digest of the call itself (the same action with the same arguments
    in one task is the same act)."""

    action: str
    resource: str
    context: Mapping[str, Any] = field(default_factory=dict)
    key: str = ""

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", self._own_key())

    def _own_key(self) -> str:
        return digest({"action": self.action, "resource": self.resource,
                       "context": json_safe(dict(self.context))})[:24]

    def naming(self, resource: str) -> ActionCall:
        """The same call with the resource spelt another way (a key of its own making
        follows the new spelling; a key the engine gave is kept)."""
        key = "" if self.key == self._own_key() else self.key
        return ActionCall(self.action, resource, self.context, key)

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "resource": self.resource,
                "context": json_safe(dict(self.context)), "key": self.key}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ActionCall:
        return cls(data["action"], data["resource"], dict(data.get("context") or {}),
                   data.get("key", ""))


@dataclass(frozen=True)
class ActionResult:
    """What became of an action call, in words a model or a person can read."""

    call: ActionCall
    status: ActionStatus
    message: str
    reasons: tuple[str, ...] = ()
    output: Any = None
    approval_id: str | None = None
    approvers: tuple[str, ...] = ()

    @property
    def waiting(self) -> bool:
        return self.status == "escalated"

    def to_json(self) -> dict[str, Any]:
        return {"call": self.call.to_json(), "status": self.status, "message": self.message,
                "reasons": list(self.reasons), "output": json_safe(self.output),
                "approval_id": self.approval_id, "approvers": list(self.approvers)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ActionResult:
        return cls(ActionCall.from_json(data["call"]), data["status"], data["message"],
                   tuple(data.get("reasons", ())), data.get("output"),
                   data.get("approval_id"), tuple(data.get("approvers", ())))


@dataclass(frozen=True)
class EngineResult:
    """How a run went, as the engine reports it.

    `success` is the engine's own verdict (recorded as a self-reported outcome). When an
    action is waiting for approval the task pauses, whatever `success` says, and
    `resume` is handed back to the engine when it goes on."""

    success: bool = True
    outputs: Any = None
    reason: str = ""
    cost: Decimal = Decimal(0)
    usage: Mapping[str, int] = field(default_factory=dict)
    actions: tuple[ActionResult, ...] = ()
    resume: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        cost = Decimal(str(self.cost))
        if not cost.is_finite() or cost < 0:
            raise ValueError(f"an engine's cost is a non-negative amount, not {self.cost!r}")
        object.__setattr__(self, "cost", cost)

    @property
    def waiting(self) -> tuple[ActionResult, ...]:
        """The actions that wait for an approval."""
        return tuple(result for result in self.actions if result.waiting)


@dataclass
class RunContext:
    """What an engine gets besides the task: who it acts for, the way to act, and, when
    the task comes back from awaiting approval, what it saved and how its escalated
    actions were settled (performed after approval, or rejected)."""

    member: Member
    org: Org
    gate: ActionGate
    resume: dict[str, Any] | None = None
    settled: tuple[ActionResult, ...] = ()
    loop: asyncio.AbstractEventLoop | None = None

    async def act(self, action: str, resource: str,
                  context: Mapping[str, Any] | None = None, *, key: str = "") -> ActionResult:
        """Ask Charter, and perform the action only if it is allowed."""
        return await self.gate.act(ActionCall(action, resource, dict(context or {}), key))

    def act_blocking(self, action: str, resource: str,
                     context: Mapping[str, Any] | None = None, *,
                     key: str = "") -> ActionResult:
        """`act` for engine code running in a worker thread (a plain function)."""
        if self.loop is None:
            raise RuntimeError("act_blocking needs the event loop the run started on")
        future = asyncio.run_coroutine_threadsafe(
            self.act(action, resource, context, key=key), self.loop)
        return future.result()


class Engine(Protocol):
    """Runs one task for an AI member.

    An engine whose calls are carried out its own way (the `mcp` engine: the call is the
    tool call) also has `performer(call) -> Performer`, which the worker uses to perform
    an approved call when the task resumes."""

    async def run(self, task: Task, handoff: HandoffPacket | None,
                  context: RunContext) -> EngineResult: ...


class EngineError(Exception):
    """The engine could not run the task (unreachable, a bad reply, a timeout); the
    attempt fails with this message and the task type's fallback takes over."""
