"""Work verbs of the `Charter` facade: tasks, claims, outcomes. Each is one transaction."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from charter import (
    actions,
    approvalwaits,
    autonomy,
    breakers,
    fallback,
    leases,
    outcomes,
    reviews,
    tasks,
    tracing,
)
from charter.actions import PerformedAction
from charter.allocator import NoEligibleMember
from charter.authority import Authority
from charter.breakers import BreakerView
from charter.clock import Clock
from charter.dispatch import Dispatcher
from charter.errors import Conflict
from charter.governance import Snapshot
from charter.handoff import HandoffPacket, build_packet
from charter.ledger import Ledger
from charter.memberstats import TrackRecord, track_records
from charter.org import Org
from charter.outcomes import Outcome
from charter.settings import Settings
from charter.store import Store
from charter.tasks import Claim, Task


class WorkVerbs:
    """Mixed into `Charter`; expects its store, ledger and clock."""

    store: Store
    ledger: Ledger
    clock: Clock
    settings: Settings
    _require_org: Callable[[], Org]
    """The org in force (GovernanceVerbs provides it)."""
    _keep_org_handles: Callable[[], None]
    """Make the next decision re-read autonomy levels (GovernanceVerbs provides it)."""
    authority: Callable[[], Authority]
    _snapshot: Snapshot | None
    _dispatcher: tuple[Snapshot, Dispatcher] | None = None

    def dispatcher(self) -> Dispatcher:
        """The allocator for the org and policies in force, with what it learned from
        every recorded outcome (rebuilt when the org or the policies change)."""
        authority = self.authority()
        snapshot = self._snapshot
        assert snapshot is not None
        cached = self._dispatcher
        if cached is not None and (cached[0].org_version, cached[0].policy_version) == (
                snapshot.org_version, snapshot.policy_version):
            cached[1].authority = authority  # fresher delegations and autonomy levels
            return cached[1]
        with self.store.reading() as conn:
            recorded = outcomes.listing(conn)
            agreement = reviews.agreement(conn)
        built = Dispatcher(authority, recorded, agreement=agreement)
        self._dispatcher = (snapshot, built)
        return built

    def dispatch_queued(self, *, strategy: str | None = None, limit: int = 1000) -> list[Task]:
        """Assign queued tasks, most urgent first; returns the tasks assigned."""
        dispatcher = self.dispatcher()
        assigned = []
        # One round is one command: one transaction, so later picks see earlier loads.
        with self.store.transaction() as conn:
            waiting = tasks.waiting(conn, self.store.dialect, limit)
            if len(waiting) >= self.settings.batch_dispatch_at:
                return dispatcher.dispatch_batch(conn, self.ledger, waiting, self.clock.now(),
                                                 strategy=strategy)
            for task in waiting:
                moved = dispatcher.dispatch(conn, self.ledger, task, self.clock.now(),
                                            strategy=strategy, held_here=True)
                if moved.state == "assigned":
                    assigned.append(moved)
        return assigned

    def explain_task(self, task_id: str) -> str:
        """Why the task went to its member (the winner's utility terms, the runners-up
        and why they lost); for a queued task, who would get it now."""
        with self.store.reading() as conn:
            task = tasks.get(conn, task_id)
            if task.state == "queued":
                dispatcher = self.dispatcher()
                try:
                    choice = dispatcher.choose(conn, task, self.clock.now())
                except NoEligibleMember as refused:
                    return f"if dispatched now: {refused.message} ({refused.details})"
                # Every runner-up, as the explanation recorded at assignment has them.
                text = "if dispatched now: " + choice.explain(limit=len(choice.runners_up))
                if dispatcher.org.task_types[task.type].evaluation is not None:
                    text += "\n" + dispatcher.self_reports(choice.member, task.type)
                return text
            # By subject alone, the kind filtered here: a task has few events, and given
            # both, SQLite may walk every assignment in the ledger instead.
            assigned = [event for event in self.ledger.read(conn, subject=f"task:{task_id}")
                        if event.kind == "task.assigned"]
        if not assigned or assigned[-1].payload is None:
            return f"task {task_id} was never assigned ({task.state})"
        explained = assigned[-1].payload.get("explanation") or {}
        return str(explained.get("text") or f"assigned by hand to {task.assignee}")

    def _learn(self, outcome: Outcome) -> None:
        if self._dispatcher is not None:
            self._dispatcher[1].observe(outcome)

    def submit_task(self, task_type: str, subject: str, payload: dict[str, Any] | None = None,
                    *, requester: str, priority: int = 0, deadline: datetime | None = None,
                    value: Decimal | int | str | None = None, dispatch: bool = False) -> Task:
        """Queue a task of a declared type (validated against it); with `dispatch`, assign
        it in the same transaction (the allocator's pick, or a person's queue)."""
        org = self._require_org()
        dispatcher = self.dispatcher() if dispatch else None
        # The submit span starts the task's trace; the ledger keeps its ids.
        with (tracing.start("charter.task.submit", new_trace=True, task_type=task_type,
                            member=requester) as span,
              self.store.transaction() as conn):
            task = tasks.submit(conn, self.ledger, self.clock, org, task_type=task_type,
                                subject=subject, payload=payload, priority=priority,
                                deadline=deadline, value=value, requester=requester,
                                trace=tracing.ids(span))
            span.set_attribute("charter.task.id", task.id)
            if dispatcher is None:
                return task
            return dispatcher.dispatch(conn, self.ledger, task, self.clock.now(),
                                       held_here=True)

    def assign_task(self, task_id: str, member: str, *, actor: str,
                    strategy: str = "manual") -> Task:
        """Give a queued task to a member by hand."""
        org = self._require_org()
        started = time.time_ns()
        now = self.clock.now()
        with self.store.transaction() as conn:
            seen = breakers.overlay(conn)
            let = seen.admission(org, member, outcomes.engine_version(org, member), now)
            if not let.eligible:
                raise Conflict(f"{member} takes no task now: {let.reason}")
            assigned = tasks.assign(conn, self.ledger, org, task_id, member, actor=actor,
                                    strategy=strategy)
            breakers.note_assigned(conn, self.ledger, org, seen, member, task_id, now)
            tracing.task_step(conn, "charter.task.assign", assigned, member=member,
                              start_ns=started, actor=actor, strategy=strategy)
            return assigned

    def claim_next(self, member: str) -> Claim | None:
        """Start the member's most urgent assigned task (None when it has none). A task
        that was tried before comes with its hand-off packet."""
        org = self._require_org()
        authority = self.authority()
        if member in authority.suspended:  # the kill switch: nothing more to claim
            return None
        started = time.time_ns()
        with self.store.transaction() as conn:
            claim = tasks.claim_next(conn, self.ledger, self.clock, org, member)
            if claim is None:
                return None
            span = tracing.task_step(conn, "charter.task.claim", claim.task, member=member,
                                     start_ns=started, attempt=claim.task.attempts,
                                     fencing=claim.fencing)
            if span is not None:
                claim = replace(claim, trace=span)
            if claim.task.attempts <= 1:
                return claim
            packet = build_packet(conn, self.ledger, authority, claim.task, member,
                                  now=self.clock.now())
            return replace(claim, handoff=packet)

    def handoff(self, task_id: str, *, holder: str | None = None) -> HandoffPacket:
        """What the next holder of the task gets: earlier attempts with their outcomes
        and reasons, the approvals asked for it, and the subject's memories that
        `holder` (default: the assignee) may read."""
        authority = self.authority()
        with self.store.reading() as conn:
            return build_packet(conn, self.ledger, authority, tasks.get(conn, task_id),
                                holder, now=self.clock.now())

    def heartbeat(self, task_id: str, *, member: str, fencing: int) -> str:
        org = self._require_org()
        with self.store.transaction() as conn:
            return tasks.heartbeat(conn, self.ledger, self.clock, org, task_id,
                                   member=member, fencing=fencing)

    def complete_task(self, task_id: str, *, member: str, fencing: int, result: Any = None,
                      cost: Decimal | float | str | None = None,
                      duration_s: float | None = None, quality: float | None = None) -> Task:
        """Finish an attempt; records the holder's self-reported success, judges its
        circuit breaker and, for a task type with an evaluator, draws whether the task
        is reviewed."""
        org = self._require_org()
        started = time.time_ns()
        with self.store.transaction() as conn:
            done = tasks.complete(conn, self.ledger, task_id, member=member, fencing=fencing,
                                  result=result)
            tracing.task_step(conn, "charter.task.complete", done, member=member,
                              start_ns=started, state=done.state)
            outcome = outcomes.record(conn, self.ledger, org, task_id, success=True,
                                      reported_by=member, cost=cost, duration_s=duration_s,
                                      quality=quality, member=member,
                                      breaker=breakers.rule_for(org, member) is not None,
                                      task=done)
            breakers.after_attempt(conn, self.ledger, org, self.clock.now(), member=member,
                                   task_id=task_id, success=True)
            reviews.sample(conn, self.ledger, org, done, member, outcome.engine_version,
                           self.ledger.secret.get(create=False))
        self._learn(outcome)
        return done

    def fail_task(self, task_id: str, *, member: str, fencing: int, reason: str,
                  cost: Decimal | float | str | None = None) -> Task:
        """Report a failed attempt; the fallback protocol decides what happens next."""
        org = self._require_org()
        started = time.time_ns()
        with self.store.transaction() as conn:
            moved = fallback.fail(conn, self.ledger, org, task_id, member=member, fencing=fencing,
                               reason=reason)
            tracing.task_step(conn, "charter.task.fail", moved, member=member,
                              start_ns=started, reason=reason, state=moved.state)
            leases.release_task_leases(conn, self.ledger, self.clock, task_id,
                                       f"attempt by {member} failed: {reason}")
            outcome = outcomes.record(conn, self.ledger, org, task_id, success=False,
                                      reported_by=member, cost=cost, member=member,
                                      breaker=breakers.rule_for(org, member) is not None)
            if breakers.after_attempt(conn, self.ledger, org, self.clock.now(),
                                      member=member, task_id=task_id, success=False):
                moved = tasks.get(conn, task_id)  # its retry went back to the queue
        self._learn(outcome)
        return moved

    def await_approval(self, task_id: str, *, member: str, fencing: int,
                       approval_ids: list[str], resume: dict[str, Any]) -> Task:
        """Pause a running attempt until its approvals are settled; `resume` is what its
        engine needs to go on. The task returns to the assignee once none is pending."""
        started = time.time_ns()
        with self.store.transaction() as conn:
            paused = approvalwaits.await_approval(conn, self.ledger, task_id, member=member,
                                          fencing=fencing, approval_ids=approval_ids,
                                          resume=resume)
            tracing.task_step(conn, "charter.task.await_approval", paused, member=member,
                              start_ns=started, approvals=", ".join(approval_ids),
                              state=paused.state)
            return paused

    def release_task(self, task_id: str, *, member: str, fencing: int, reason: str) -> Task:
        """Give a running attempt back unfinished (it is not a failure): the task waits
        for its assignee's next claim."""
        started = time.time_ns()
        with self.store.transaction() as conn:
            released = tasks.release(conn, self.ledger, task_id, member=member,
                                     fencing=fencing, reason=reason)
            tracing.task_step(conn, "charter.task.release", released, member=member,
                              start_ns=started, reason=reason)
            return released

    def performed_actions(self, *, task_id: str | None = None,
                          member: str | None = None) -> list[PerformedAction]:
        """Actions members carried out after Charter allowed them, oldest first."""
        with self.store.reading() as conn:
            return actions.listing(conn, task_id=task_id, member=member)

    def cancel_task(self, task_id: str, *, actor: str, reason: str = "cancelled") -> Task:
        """Cancel an open task; the resource leases taken for it are released."""
        with self.store.transaction() as conn:
            cancelled = tasks.cancel(conn, self.ledger, task_id, actor=actor, reason=reason)
            leases.release_task_leases(conn, self.ledger, self.clock, task_id,
                                       f"task cancelled by {actor}: {reason}")
            return cancelled

    def expire_tasks(self) -> list[Task]:
        """Re-route tasks whose lease ran out (releasing the resource leases taken for
        them); fail those that missed their deadline."""
        org = self._require_org()
        now = self.clock.now()
        with self.store.transaction() as conn:
            def lapsed(task: Task, holder: str) -> None:
                breakers.after_attempt(conn, self.ledger, org, now, member=holder,
                                       task_id=task.id, success=False)

            changed = fallback.expire(conn, self.ledger, self.clock, org, on_lapsed=lapsed)
            for task in changed:
                leases.release_task_leases(conn, self.ledger, self.clock, task.id,
                                           "the task's lease expired")
            return changed

    def record_outcome(self, task_id: str, *, success: bool, reported_by: str,
                       verified: bool = False, quality: float | None = None,
                       cost: Decimal | float | str | None = None,
                       duration_s: float | None = None, member: str | None = None) -> Outcome:
        """Record an outcome, possibly long after the task (e.g. a reviewer's verdict)."""
        org = self._require_org()
        with self.store.transaction() as conn:
            recorded, moved = outcomes.record_and_review(
                conn, self.ledger, org, task_id, success=success, reported_by=reported_by,
                verified=verified, quality=quality, cost=cost, duration_s=duration_s,
                member=member)
        if moved is not None:
            self._keep_org_handles()
        self._learn(recorded)
        return recorded

    def task(self, task_id: str) -> Task:
        with self.store.reading() as conn:
            return tasks.get(conn, task_id)

    def tasks(self, *, state: str | None = None, assignee: str | None = None,
              task_type: str | None = None, limit: int = 100) -> list[Task]:
        with self.store.reading() as conn:
            return tasks.listing(conn, state=state, assignee=assignee, task_type=task_type,
                                 limit=limit)

    def task_page(self, *, after: tuple[str, str] | None = None, limit: int = 100,
                  state: str | None = None, assignee: str | None = None,
                  task_type: str | None = None, requester: str | None = None,
                  subject: str | None = None, newest_first: bool = False) -> list[Task]:
        """Tasks oldest first (newest first with `newest_first`), after the
        (created_at, id) of the last one seen; `subject` matches exactly."""
        with self.store.reading() as conn:
            return tasks.page(conn, after=after, limit=limit, state=state,
                              assignee=assignee, task_type=task_type, requester=requester,
                              subject=subject, newest_first=newest_first)

    def person_queue(self, member: str) -> list[Task]:
        """The tasks waiting in a person's queue, most urgent first."""
        with self.store.reading() as conn:
            return [t for t in tasks.listing(conn, assignee=member, limit=1000)
                    if t.state in tasks.HELD_STATES]

    def track_record(self, member: str) -> list[TrackRecord]:
        """The member's record per task type and engine version (`charter members
        stats`)."""
        org = self._require_org()
        org.member(member)
        with self.store.reading() as conn:
            recorded = outcomes.listing(conn, member=member)
            levels = autonomy.current_levels(conn)
            agreement = reviews.agreement(conn, member=member)
        return track_records(org, member, recorded, levels, agreement)

    def circuit_breakers(self, *, member: str | None = None) -> list[BreakerView]:
        """Every circuit breaker that has opened (of one member, if named), with its state
        and the evidence of its last change."""
        with self.store.reading() as conn:
            return breakers.listing(conn, member=member)

    def outcomes(self, *, member: str | None = None,
                 task_type: str | None = None) -> list[Outcome]:
        with self.store.reading() as conn:
            return outcomes.listing(conn, member=member, task_type=task_type)
