"""Stats: a Charter at a glance, in counts (tasks by state, approvals waiting, members by
kind, leases held, the ledger's length and the decisions it records).

Each figure is one COUNT over an indexed column, or the ledger head's seq; `take` reads
them all in one snapshot, so they agree with one another."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from charter.clock import Clock
from charter.governance import DECISION
from charter.ledger import format_time
from charter.store import Store
from charter.store.schema import approvals, events, leases, ledger_head, members, tasks

TASK_STATES = ("queued", "assigned", "running", "awaiting_approval", "done", "failed",
               "cancelled")
MEMBER_KINDS = ("ai", "human")


@dataclass(frozen=True)
class Stats:
    """Counts taken at one moment: `tasks` and `members` map each state or kind to how
    many there are (zero included); `ledger_events` is the ledger's last seq."""

    tasks: dict[str, int]
    approvals_pending: int
    members: dict[str, int]
    leases_held: int
    ledger_events: int
    decisions_recorded: int

    def to_json(self) -> dict[str, Any]:
        return {"tasks": self.tasks, "approvals_pending": self.approvals_pending,
                "members": self.members, "leases_held": self.leases_held,
                "ledger_events": self.ledger_events,
                "decisions_recorded": self.decisions_recorded}


def take(store: Store, clock: Clock) -> Stats:
    """The counts now, in one snapshot of `store`."""
    with store.reading() as conn:
        return summary(conn, clock.now())


def summary(conn: Connection, now: datetime) -> Stats:
    """The counts as `conn` sees them; leases count while unexpired at `now`."""
    by_state = dict.fromkeys(TASK_STATES, 0)
    for state, count in conn.execute(select(tasks.c.state, func.count())
                                     .group_by(tasks.c.state)):
        by_state[state] = int(count)
    by_kind = dict.fromkeys(MEMBER_KINDS, 0)
    for kind, count in conn.execute(select(members.c.kind, func.count())
                                    .group_by(members.c.kind)):
        by_kind[kind] = int(count)
    head = conn.execute(select(ledger_head.c.seq).where(ledger_head.c.id == 1)).scalar()
    return Stats(
        tasks=by_state,
        approvals_pending=_count(conn, select(func.count()).select_from(approvals)
                                 .where(approvals.c.status == "pending")),
        members=by_kind,
        leases_held=_count(conn, select(func.count()).select_from(leases)
                           .where(leases.c.expires_at > format_time(now))),
        ledger_events=int(head or 0),
        decisions_recorded=_count(conn, select(func.count()).select_from(events)
                                  .where(events.c.kind == DECISION)))


def _count(conn: Connection, query: Any) -> int:
    return int(conn.execute(query).scalar_one())
