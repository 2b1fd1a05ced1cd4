"""The kill switch: suspend a member (and resume it), freeze an action org-wide.

A suspension is an overlay on the org file's `status`: from the moment it is recorded
the member gets no new task, `authorize` denies its requests, its claims find nothing
and its heartbeats and results are refused. The suspension's own transaction moves the
tasks it holds on by their fallback protocol (a `retry` would wait for the suspended
member, so it is passed over), releases its leases and withdraws the approvals it asked
for. A freeze makes `authorize` deny one action to everyone until it is lifted. Each
step is a ledger event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from charter import fallback, readmodel, tasks
from charter.clock import Clock
from charter.errors import Conflict, InvalidInput
from charter.ledger import Event, Ledger
from charter.org import Org
from charter.store.schema import approvals, freezes, suspensions
from charter.tasks import HELD_STATES, Task

SUSPENDED = "member.suspended"
RESUMED = "member.resumed"
FROZEN = "action.frozen"
UNFROZEN = "action.unfrozen"
WITHDRAWN = "approval.withdrawn"


@dataclass(frozen=True)
class Stop:
    """A suspension (of a member) or a freeze (of an action)."""

    target: str
    reason: str
    by: str
    at: str

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Suspension:
    """What suspending a member did."""

    stop: Stop
    tasks: tuple[Task, ...]
    leases_released: int
    approvals_withdrawn: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {**self.stop.to_json(), "member": self.stop.target,
                "tasks": [task.to_json() for task in self.tasks],
                "leases_released": self.leases_released,
                "approvals_withdrawn": list(self.approvals_withdrawn)}


def suspend(conn: Connection, ledger: Ledger, clock: Clock, org: Org, member: str, *,
            reason: str, by: str) -> Suspension:
    from charter import leases  # leases reads tasks; imported here to keep the order loose

    org.member(member)
    reason = _reason(reason)
    if conn.execute(select(suspensions.c.member)
                    .where(suspensions.c.member == member)).first() is not None:
        raise Conflict(f"{member} is already suspended")
    event = readmodel.record(conn, ledger, kind=SUSPENDED, actor=by,
                             subject=f"member:{member}",
                             payload={"member": member, "reason": reason})
    why = f"{member} was suspended: {reason}"
    moved = [_move_on(conn, ledger, org, task, member, why)
             for task in tasks.listing(conn, assignee=member, limit=100_000)
             if task.state in HELD_STATES]
    released = leases.release_member_leases(conn, ledger, clock, member, why)
    withdrawn = withdraw_approvals(conn, ledger, member, why, by)
    return Suspension(Stop(member, reason, by, event.at), tuple(moved), released,
                      tuple(withdrawn))


def resume(conn: Connection, ledger: Ledger, member: str, *, by: str) -> Stop:
    found = _stop(conn, suspensions, suspensions.c.member, member)
    if found is None:
        raise Conflict(f"{member} is not suspended")
    readmodel.record(conn, ledger, kind=RESUMED, actor=by, subject=f"member:{member}",
                     payload={"member": member})
    return found


def freeze(conn: Connection, ledger: Ledger, org: Org, action: str, *, reason: str,
           by: str) -> Stop:
    if action not in org.spec.actions:
        raise InvalidInput(f"unknown action {action!r}: the org declares "
                           f"{', '.join(org.spec.actions)}")
    if _stop(conn, freezes, freezes.c.action, action) is not None:
        raise Conflict(f"{action} is already frozen")
    event = readmodel.record(conn, ledger, kind=FROZEN, actor=by, subject=f"action:{action}",
                             payload={"action": action, "reason": _reason(reason)})
    return Stop(action, _reason(reason), by, event.at)


def unfreeze(conn: Connection, ledger: Ledger, action: str, *, by: str) -> Stop:
    found = _stop(conn, freezes, freezes.c.action, action)
    if found is None:
        raise Conflict(f"{action} is not frozen")
    readmodel.record(conn, ledger, kind=UNFROZEN, actor=by, subject=f"action:{action}",
                     payload={"action": action})
    return found


def withdraw_approvals(conn: Connection, ledger: Ledger, requester: str, why: str,
                       by: str) -> list[str]:
    """Withdraw the pending approvals `requester` asked for."""
    pending = conn.execute(select(approvals.c.id).where(
        approvals.c.requester == requester, approvals.c.status == "pending")).scalars().all()
    for approval_id in pending:
        readmodel.record(conn, ledger, kind=WITHDRAWN, actor=by,
                         subject=f"approval:{approval_id}",
                         payload={"id": approval_id, "reason": why})
    return list(pending)


def suspended(conn: Connection) -> dict[str, str]:
    return {row.member: row.reason for row in conn.execute(select(suspensions))}


def frozen(conn: Connection) -> dict[str, str]:
    return {row.action: row.reason for row in conn.execute(select(freezes))}


def stops(conn: Connection) -> tuple[list[Stop], list[Stop]]:
    """The suspensions and the freezes in force."""
    return ([Stop(r.member, r.reason, r.by, r.at) for r in conn.execute(select(suspensions))],
            [Stop(r.action, r.reason, r.by, r.at) for r in conn.execute(select(freezes))])


def _move_on(conn: Connection, ledger: Ledger, org: Org, task: Task, member: str,
             why: str) -> Task:
    """The task's next fallback step that does not wait for `member`."""
    current = tasks.get(conn, task.id, lock=True)
    for _ in range(len(org.task_types[task.type].fallback) + 20):
        current = fallback.apply_fallback(conn, ledger, org, current, member, why)
        if current.assignee != member or current.state not in HELD_STATES:
            return current
    return current


def _stop(conn: Connection, table: Any, key: Any, value: str) -> Stop | None:
    row = conn.execute(select(table).where(key == value)).first()
    return None if row is None else Stop(value, row.reason, row.by, row.at)


def _reason(reason: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("the kill switch needs a reason (it is recorded in the ledger)")
    return reason.strip()[:2000]


def _project_suspended(conn: Connection, event: Event) -> None:
    p = event.payload or {}
    conn.execute(insert(suspensions), {"member": p["member"], "reason": p["reason"],
                                       "by": event.actor, "at": event.at})


def _project_resumed(conn: Connection, event: Event) -> None:
    conn.execute(delete(suspensions).where(suspensions.c.member == (event.payload or {})
                                           ["member"]))


def _project_frozen(conn: Connection, event: Event) -> None:
    p = event.payload or {}
    conn.execute(insert(freezes), {"action": p["action"], "reason": p["reason"],
                                   "by": event.actor, "at": event.at})


def _project_unfrozen(conn: Connection, event: Event) -> None:
    conn.execute(delete(freezes).where(freezes.c.action == (event.payload or {})["action"]))


PROJECTORS = {SUSPENDED: _project_suspended, RESUMED: _project_resumed,
              FROZEN: _project_frozen, UNFROZEN: _project_unfrozen}
