"""The action gate: the one way an engine acts in the world.

Each call is authorized by Charter first. Allowed → the action's performer runs (the
`perform:` callable the org names for the action; without one, the recorded action is
itself the effect), and an `action.performed` event records it under its key, so it is
never done twice. Denied → nothing runs and the reasons come back. Escalated → an
approval bound to the task is opened and nothing runs until it is granted; the worker
then performs exactly the approved call (`perform_approved`).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from charter import actions, tasks
from charter.engines.base import ActionCall, ActionResult
from charter.errors import CharterError
from charter.requests import RequestInvalid, resource_name
from charter.targets import load_callable

if TYPE_CHECKING:
    from charter.decisions import Decision
    from charter.system import Charter
    from charter.tasks import Task

Performer = Callable[[ActionCall, "Task"], Any]
"""Carries out an allowed action and returns what it produced (may be async). It gets
the call (with its `key`, to pass on as an idempotency key) and the task."""


class ActionGate:
    """Authorize, perform once, record: for one member's attempt at one task."""

    def __init__(self, system: Charter, member: str, task: Task, fencing: int) -> None:
        self.system = system
        self.member = member
        self.task = task
        self.fencing = fencing

    async def act(self, call: ActionCall, *, perform: Performer | None = None) -> ActionResult:
        """Ask Charter; perform the call only if it is allowed."""
        with contextlib.suppress(RequestInvalid):  # Charter refuses it below, saying why
            call = self._spelt(call)
        done = self._already_performed(call)
        if done is not None:
            return done
        try:
            decision = self.system.authorize(
                self.member, call.action, call.resource, dict(call.context),
                task_type=self._task_type(call), task_id=self.task.id)
        except CharterError as error:
            return ActionResult(call, "denied", f"{_what(call)} was refused: {error}",
                                (str(error),))
        if decision.outcome == "deny":
            return ActionResult(call, "denied",
                                f"Charter denied {_what(call)}: {_because(decision)}",
                                _reasons(decision))
        if decision.outcome == "escalate":
            approvers = ", ".join(decision.approvers)
            return ActionResult(
                call, "escalated",
                f"{_what(call)} needs approval from {approvers} (approval "
                f"{decision.approval_id}): it has NOT been done, and will be done once "
                f"approved. Why: {_because(decision)}",
                _reasons(decision), approval_id=decision.approval_id,
                approvers=decision.approvers)
        return await self._perform(call, perform, None)

    async def perform_approved(self, call: ActionCall, approval_id: str, *,
                               perform: Performer | None = None) -> ActionResult:
        """Carry out a call whose approval was settled: performed once if it was granted,
        `rejected` (with the approvers' words) if it was refused or expired."""
        with contextlib.suppress(RequestInvalid):
            call = self._spelt(call)
        done = self._already_performed(call)
        if done is not None:
            return done
        approval = self.system.approval(approval_id)
        if approval.status in ("rejected", "expired"):
            said = "; ".join(f"{v.approver}: {v.comment}" for v in approval.votes
                             if v.vote == "reject" and v.comment)
            return ActionResult(call, "rejected",
                                f"approval {approval_id} for {_what(call)} was "
                                f"{approval.status}{': ' + said if said else ''}; it was not "
                                "done", approval_id=approval_id)
        if approval.status == "pending":
            return ActionResult(call, "escalated",
                                f"{_what(call)} still waits for approval {approval_id}",
                                approval_id=approval_id, approvers=approval.approvers)
        try:
            decision = self.system.execute_approved(
                approval_id, self.member, call.action, call.resource, dict(call.context),
                task_type=self._task_type(call), task_id=self.task.id)
        except CharterError as error:
            return ActionResult(call, "denied", f"{_what(call)} was refused: {error}",
                                (str(error),), approval_id=approval_id)
        if decision.outcome != "allow":
            return ActionResult(call, "denied",
                                f"Charter denied {_what(call)}: {_because(decision)}",
                                _reasons(decision), approval_id=approval_id)
        return await self._perform(call, perform, approval_id)

    async def _perform(self, call: ActionCall, perform: Performer | None,
                       approval_id: str | None) -> ActionResult:
        self._check_still_held()
        performer = perform or self._performer(call.action)
        try:
            output = None if performer is None else performer(call, self.task)
            if inspect.isawaitable(output):
                output = await output
        except Exception as error:  # the performer's failure is the engine's to handle
            return ActionResult(call, "failed",
                                f"{_what(call)} was allowed but failed: {error}",
                                (f"{type(error).__name__}: {error}",),
                                approval_id=approval_id)
        with self.system.store.transaction() as conn:
            tasks.held(conn, self.task.id, self.member, self.fencing)
            actions.record(conn, self.system.ledger, key=self._key(call),
                           task_id=self.task.id, member=self.member, action=call.action,
                           resource=call.resource, context=dict(call.context),
                           approval_id=approval_id, output=output)
        return ActionResult(call, "performed", f"{_what(call)} was done", output=output,
                            approval_id=approval_id)

    def _already_performed(self, call: ActionCall) -> ActionResult | None:
        with self.system.store.reading() as conn:
            done = actions.find(conn, self._key(call))
        if done is None:
            return None
        return ActionResult(call, "performed", f"{_what(call)} was already done "
                            f"(at {done.at}); it was not repeated", output=done.output,
                            approval_id=done.approval_id)

    def _check_still_held(self) -> None:
        """Refuse to act for an attempt that has lost its task (its lease ran out)."""
        with self.system.store.reading() as conn:
            tasks.held(conn, self.task.id, self.member, self.fencing, lock=False)

    def _performer(self, action: str) -> Performer | None:
        spec = self.system.org.spec.actions.get(action)
        if spec is None or spec.perform is None:
            return None
        return load_callable(spec.perform)

    def _spelt(self, call: ActionCall) -> ActionCall:
        """The call with its resource as Charter records it (`Type::id`), so one
        resource spelt two ways is one act; `RequestInvalid` for an unknown one."""
        if call.action not in self.system.org.spec.actions:
            raise RequestInvalid(f"unknown action {call.action!r}")
        named = resource_name(self.system.org, call.action, call.resource)
        return call if named == call.resource else call.naming(named)

    def _task_type(self, call: ActionCall) -> str | None:
        own = self.system.org.task_types[self.task.type].action
        return self.task.type if call.action == own else None

    def _key(self, call: ActionCall) -> str:
        return f"{self.task.id}:{call.key}"


def _what(call: ActionCall) -> str:
    return f"{call.action} on {call.resource}"


def _reasons(decision: Decision) -> tuple[str, ...]:
    return tuple(reason.message for reason in decision.reasons)


def _because(decision: Decision) -> str:
    return "; ".join(_reasons(decision)) or "no reason given"
