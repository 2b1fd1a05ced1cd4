"""Fallback protocols: what happens to a task when its holder fails it.

A task type's protocol is an ordered list of steps, e.g. `[retry: 1, reassign: 2,
escalate: supervisor]`. On each failure (or lease expiry) the next unused step applies:
`retry` gives the same member another attempt, `reassign` re-queues the task excluding
every member that failed it, `escalate` puts it in a person's queue. When the protocol
is used up the task goes to the nearest person above the last holder, so a task never
disappears silently; only when nobody can take it does it end as failed.

`fail`, `expire` and `apply_fallback` apply the protocol to a task, each step an event of
the task in the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, select

from charter import tasks
from charter.clock import Clock
from charter.errors import InvalidInput
from charter.ledger import Ledger, format_time
from charter.org import Org
from charter.store.schema import tasks as task_rows
from charter.tasks import Task
from charter.types import FallbackStep

Move = Literal["retry", "reassign", "person", "give_up"]


@dataclass(frozen=True)
class FallbackMove:
    """The next step for a failed task, and the protocol position after it."""

    move: Move
    step: int
    used: int
    person: str | None = None
    reason: str = ""


def nearest_person(org: Org, member: str | None) -> str | None:
    """The member itself if a person, else the first person up its chain of command."""
    if member is None or member not in org.members:
        return None
    if org.members[member].kind == "human" and org.members[member].status == "active":
        return member
    for manager in org.chain_of_command(member):
        spec = org.members[manager]
        if spec.kind == "human" and spec.status == "active":
            return manager
    return None


def next_move(org: Org, protocol: tuple[FallbackStep, ...], step: int, used: int,
              failed_member: str | None) -> FallbackMove:
    """Apply the first step of `protocol` from position (`step`, `used`) that has uses
    left; past the end, the nearest person above `failed_member`."""
    while step < len(protocol):
        current = protocol[step]
        if current.action == "escalate":
            target = (nearest_person(org, _manager(org, failed_member))
                      if current.to == "supervisor" else current.to)
            if target is not None and target != failed_member:
                return FallbackMove("person", len(protocol), 0, target,
                                    f"escalated to {target} ({current.to})")
        elif used < current.count:
            return FallbackMove(current.action, step, used + 1, None,
                                f"{current.action} {used + 1} of {current.count}")
        step, used = step + 1, 0
    person = nearest_person(org, _manager(org, failed_member))
    if person is not None and person != failed_member:
        return FallbackMove("person", step, 0, person,
                            f"fallback protocol used up: queued for {person}")
    return FallbackMove("give_up", step, 0, None,
                        "fallback protocol used up and no person above the last holder")


def _manager(org: Org, member: str | None) -> str | None:
    if member is None or member not in org.members:
        return None
    return org.members[member].reports_to


# -- applying it ---------------------------------------------------------------------

def fail(conn: Connection, ledger: Ledger, org: Org, task_id: str, *, member: str,
         fencing: int, reason: str) -> Task:
    """Report a failed attempt; the task type's fallback protocol decides what next."""
    if not reason.strip():
        raise InvalidInput("a failure needs a reason")
    task = tasks.held(conn, task_id, member, fencing)
    tasks.record_event(conn, ledger, "task.attempt_failed", member, task_id,
                       {"fencing": fencing, "reason": reason})
    return apply_fallback(conn, ledger, org, task, member, reason)


def expire(conn: Connection, ledger: Ledger, clock: Clock, org: Org, *,
           on_lapsed: Callable[[Task, str], None] | None = None) -> list[Task]:
    """Re-route running tasks whose lease ran out, and fail queued or assigned tasks
    whose deadline passed before they started. Returns the tasks changed. `on_lapsed`
    hears of each lapsed attempt (the task as re-routed, and its holder) in the same
    transaction."""
    # Imported here: both modules use this one.
    from charter.breakers import rule_for
    from charter.outcomes import engine_version

    now = format_time(clock.now())
    changed = []
    lapsed = select(task_rows.c.id).where(task_rows.c.state == "running",
                                          task_rows.c.lease_until < now)
    for task_id in conn.execute(ledger.store.dialect.claim_rows(lapsed)).scalars().all():
        task = tasks.get(conn, task_id)
        holder = task.assignee
        version = ({"engine_version": engine_version(org, holder),
                    **({"breaker": True} if rule_for(org, holder) else {})}
                   if holder in org.members else {})
        tasks.record_event(conn, ledger, "task.lease_expired", "charter", task_id,
                           {"member": holder, "fencing": task.fencing, **version})
        moved = apply_fallback(conn, ledger, org, task, holder, "the lease expired",
                               interrupted=True)
        if on_lapsed is not None and holder is not None:
            on_lapsed(moved, holder)
        changed.append(tasks.get(conn, task_id))
    late = select(task_rows.c.id).where(task_rows.c.state.in_(("queued", "assigned")),
                                        task_rows.c.deadline < now)
    for task_id in conn.execute(ledger.store.dialect.claim_rows(late)).scalars().all():
        tasks.record_event(conn, ledger, "task.deadline_missed", "charter", task_id, {
            "set": {"state": "failed", "reason": "the deadline passed before it started"}})
        changed.append(tasks.get(conn, task_id))
    return changed


def apply_fallback(conn: Connection, ledger: Ledger, org: Org, task: Task,
                   failed_member: str | None, reason: str, *,
                   interrupted: bool = False) -> Task:
    """Take the next step of the task type's fallback protocol. A retry after an
    `interrupted` attempt (its lease ran out) keeps what the attempt saved when it paused
    for approval, so the next one goes on from there; a retry after a reported failure
    starts afresh (the failure may be the settled approval itself)."""
    row = conn.execute(select(task_rows.c.fallback_step, task_rows.c.fallback_used)
                       .where(task_rows.c.id == task.id)).one()
    protocol = org.task_types[task.type].fallback
    move = next_move(org, protocol, row.fallback_step, row.fallback_used, failed_member)
    position = {"fallback_step": move.step, "fallback_used": move.used, "lease_until": None}
    why = f"{reason}; {move.reason}"
    if move.move == "retry":
        changes = {"state": "assigned", "assignee": failed_member, **position,
                   **({} if interrupted else {"resume": None})}
    elif move.move == "reassign":
        excluded = sorted({*task.excluded, *([failed_member] if failed_member else [])})
        changes = {"state": "queued", "assignee": None, "excluded": json.dumps(excluded),
                   "resume": None, **position}
    elif move.move == "person":
        changes = {"state": "assigned", "assignee": move.person, "resume": None, **position}
    else:
        changes = {"state": "failed", "resume": None, **position}
    tasks.record_event(conn, ledger, f"task.fallback.{move.move}", "charter", task.id, {
        "failed_member": failed_member, "step": move.step, "to": move.person,
        "set": {**changes, "reason": why}})
    return tasks.get(conn, task.id)
