"""The worker: runs an AI member's tasks. Claim → engine → complete, fail or pause.

A worker claims the member's assigned tasks (up to `concurrency` at once), heartbeats
each claim while its engine runs, and finishes the attempt with its fencing token: done
(with cost and token usage), failed (the fallback protocol takes over), or awaiting
approval when an action escalated. A task back from approval is resumed: the approved
calls are performed exactly as approved, and the engine goes on from what it saved.

Between claims the worker does the system's housekeeping: leases that ran out are
re-queued (so a crashed worker's tasks come back) and approvals past their SLA move on.
On `stop()` (SIGTERM) it claims nothing more, lets running attempts finish within the
grace period, and releases the rest unfinished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from charter import engines, housekeeping, tracing
from charter.engines.base import ActionResult, Engine, EngineResult, RunContext
from charter.errors import CharterError, InvalidInput
from charter.gate import ActionGate
from charter.system import Charter
from charter.tasks import Claim

log = logging.getLogger("charter.worker")


@dataclass
class WorkerCounts:
    """What a worker did since it started."""

    claimed: int = 0
    completed: int = 0
    failed: int = 0
    paused: int = 0
    released: int = 0
    lost: int = 0
    """Attempts whose lease was gone when they finished (their result was refused)."""


class Worker:
    def __init__(self, system: Charter, member: str, *, concurrency: int = 1,
                 poll_seconds: float = 0.5, grace_seconds: float = 30.0,
                 housekeeping_seconds: float = 1.0) -> None:
        spec = system.org.member(member)
        if spec.kind != "ai" or spec.engine is None:
            raise InvalidInput(f"{member} has no engine to run: a worker runs an AI member "
                               "whose org entry has `engine:`")
        if concurrency < 1:
            raise InvalidInput("a worker's concurrency is at least 1")
        self.system = system
        self.member = member
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.grace_seconds = grace_seconds
        self.housekeeping_seconds = housekeeping_seconds
        self.counts = WorkerCounts()
        self._stopping = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._last_housekeeping = 0.0

    def stop(self) -> None:
        """Claim nothing more; finish or release what is running."""
        self._stopping.set()

    async def run(self, *, max_tasks: int | None = None,
                  until_idle: bool = False) -> WorkerCounts:
        """Work until stopped; or until `max_tasks` attempts have been claimed, or (with
        `until_idle`) until nothing is running and nothing is left to claim; then finish
        what is running."""
        while not self._stopping.is_set():
            if max_tasks is not None and self.counts.claimed >= max_tasks:
                break
            claim = None
            if len(self._running) < self.concurrency:
                claim = self.system.claim_next(self.member)
            if claim is None:
                if until_idle and not self._running:
                    break
                self._housekeeping()
                await self._idle()
                continue
            self.counts.claimed += 1
            attempt = asyncio.create_task(self._attempt(claim))
            self._running.add(attempt)
            attempt.add_done_callback(self._running.discard)
        await self._wind_down()
        return self.counts

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), self.poll_seconds)

    async def _wind_down(self) -> None:
        if not self._running:
            return
        _, unfinished = await asyncio.wait(set(self._running), timeout=self.grace_seconds)
        for attempt in unfinished:
            attempt.cancel()
        if unfinished:
            await asyncio.wait(unfinished)

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._last_housekeeping < self.housekeeping_seconds:
            return
        self._last_housekeeping = now
        housekeeping.sweep(self.system)

    async def _attempt(self, claim: Claim) -> None:
        """Run one claimed attempt to its end: done, failed, paused or released; in an
        engine-run span under the claim's span in the task's trace."""
        with tracing.start("charter.engine.run", parent=claim.trace, task_id=claim.task.id,
                           task_type=claim.task.type, member=self.member,
                           attempt=claim.task.attempts):
            await self._run_attempt(claim)

    async def _run_attempt(self, claim: Claim) -> None:
        task = claim.task
        started = time.monotonic()
        heartbeat = asyncio.create_task(self._heartbeat(claim))
        try:
            carried, result = await self._run_engine(claim)
        except asyncio.CancelledError:
            heartbeat.cancel()
            self._release(claim, "the worker stopped before the attempt finished")
            raise
        except Exception as error:  # an engine's failure fails the attempt, never the worker
            heartbeat.cancel()
            log.warning("task %s: the engine failed: %s", task.id, error)
            why = f"the engine failed: {error}"
            self._finish(claim, lambda: self.system.fail_task(
                task.id, member=self.member, fencing=claim.fencing, reason=why), "failed")
            return
        heartbeat.cancel()
        cost = carried.cost + result.cost
        usage = _add_usage(carried.usage, result.usage)
        done = [*carried.actions, *result.actions]
        if result.waiting:
            pause = {"engine": result.resume, "pending": [a.to_json() for a in result.waiting],
                     "cost": str(cost), "usage": usage,
                     "actions": [a.to_json() for a in done if not a.waiting]}
            self._finish(claim, lambda: self.system.await_approval(
                task.id, member=self.member, fencing=claim.fencing,
                approval_ids=[a.approval_id for a in result.waiting if a.approval_id],
                resume=pause), "paused")
            return
        if result.success:
            report = {"outputs": result.outputs, "usage": usage,
                      "actions": [a.to_json() for a in done]}
            self._finish(claim, lambda: self.system.complete_task(
                task.id, member=self.member, fencing=claim.fencing, result=report, cost=cost,
                duration_s=time.monotonic() - started), "completed")
            return
        self._finish(claim, lambda: self.system.fail_task(
            task.id, member=self.member, fencing=claim.fencing,
            reason=result.reason or "the engine reported a failure", cost=cost), "failed")

    async def _run_engine(self, claim: Claim) -> tuple[EngineResult, EngineResult]:
        """Settle what the task was waiting for, then run the engine. Returns what
        earlier runs of this attempt carried (cost, usage, actions) and the new result."""
        org = self.system.org
        spec = org.member(self.member)
        assert spec.engine is not None
        tracing.note(engine_kind=spec.engine.kind)
        gate = ActionGate(self.system, self.member, claim.task, claim.fencing)
        engine = engines.build(spec.engine)
        saved: dict[str, Any] = claim.resume or {}
        settled = tuple([await _settle(gate, engine, ActionResult.from_json(pending))
                         for pending in saved.get("pending", [])])
        carried = EngineResult(
            cost=Decimal(saved.get("cost", "0")), usage=saved.get("usage", {}),
            actions=tuple(ActionResult.from_json(a) for a in saved.get("actions", []))
            + settled)
        context = RunContext(spec, org, gate, resume=saved.get("engine"), settled=settled)
        limit = org.task_types[claim.task.type].timeout
        try:
            async with asyncio.timeout(limit.total_seconds()) as deadline:
                result = await engine.run(claim.task, claim.handoff, context)
        except TimeoutError:
            if not deadline.expired():
                raise  # the engine's own timeout, not the task type's
            raise TimeoutError(f"it ran past the {claim.task.type} task type's timeout "
                               f"({limit.total_seconds():g}s)") from None
        return carried, result

    async def _heartbeat(self, claim: Claim) -> None:
        """Keep the claim's lease alive at a third of its length."""
        lease = self.system.org.task_types[claim.task.type].lease
        while True:
            await asyncio.sleep(lease.total_seconds() / 3)
            try:
                self.system.heartbeat(claim.task.id, member=self.member, fencing=claim.fencing)
            except CharterError as error:
                log.warning("task %s: heartbeat refused: %s", claim.task.id, error)
                return

    def _finish(self, claim: Claim, finish: Any, outcome: str) -> None:
        try:
            finish()
        except CharterError as error:  # the lease ran out and the task moved on
            self.counts.lost += 1
            tracing.note(outcome="lost")
            log.warning("task %s: the result was refused: %s", claim.task.id, error)
            return
        setattr(self.counts, outcome, getattr(self.counts, outcome) + 1)
        tracing.note(outcome=outcome)

    def _release(self, claim: Claim, reason: str) -> None:
        self._finish(claim, lambda: self.system.release_task(
            claim.task.id, member=self.member, fencing=claim.fencing, reason=reason),
            "released")


async def _settle(gate: ActionGate, engine: Engine, pending: ActionResult) -> ActionResult:
    """Perform an escalated call whose approval was granted (or say it was refused),
    the way the engine carries out its calls when it has its own way."""
    if pending.approval_id is None:
        return pending
    own = getattr(engine, "performer", None)
    perform = own(pending.call) if callable(own) else None
    return await gate.perform_approved(pending.call, pending.approval_id, perform=perform)


def _add_usage(first: Any, second: Any) -> dict[str, int]:
    total = {str(k): int(v) for k, v in dict(first or {}).items()}
    for name, count in dict(second or {}).items():
        total[str(name)] = total.get(str(name), 0) + int(count)
    return total
