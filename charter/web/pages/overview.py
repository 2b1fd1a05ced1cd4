"""The overview: the fleet's load against capacity, tasks by state, approvals waiting,
spend against each budget envelope. Its body refreshes itself every few seconds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection, func, select

from charter import stats
from charter.api.auth import SystemDep
from charter.store.schema import members, tasks
from charter.system import Charter
from charter.web.session import ViewerDep
from charter.web.templating import render

router = APIRouter()

ACTIVE_STATES = ("assigned", "running", "awaiting_approval")
"""States in which a task takes one of its holder's capacity."""

REFRESH_SECONDS = 5


@dataclass(frozen=True)
class MemberLoad:
    id: str
    name: str
    kind: str
    title: str
    status: str
    capacity: int
    load: int

    @property
    def share(self) -> float:
        return 1.0 if self.capacity == 0 and self.load else (
            0.0 if self.capacity == 0 else self.load / self.capacity)


def member_loads(conn: Connection) -> list[MemberLoad]:
    """Every member with how many tasks it holds now, people first then by id."""
    held: dict[str, int] = {
        assignee: int(count) for assignee, count in conn.execute(
            select(tasks.c.assignee, func.count()).where(tasks.c.state.in_(ACTIVE_STATES))
            .group_by(tasks.c.assignee))}
    rows = conn.execute(select(members.c.id, members.c.name, members.c.kind, members.c.title,
                               members.c.status, members.c.capacity)
                        .order_by(members.c.kind.desc(), members.c.id)).all()
    return [MemberLoad(r.id, r.name, r.kind, r.title, r.status, r.capacity,
                       held.get(r.id, 0)) for r in rows]


def overview_figures(system: Charter) -> dict[str, Any]:
    with system.store.reading() as conn:
        counts = stats.summary(conn, system.clock.now())
        loads = member_loads(conn)
    waiting = system.approval_page(limit=5, status="pending")
    return {"counts": counts, "loads": loads, "waiting": waiting,
            "budgets": system.budget_usage(), "refresh": REFRESH_SECONDS}


@router.get("/")
def overview(request: Request, system: SystemDep, viewer: ViewerDep) -> Response:
    return render(request, "overview.html", viewer, section="overview", title="Overview",
                  **overview_figures(system))


@router.get("/overview/live")
def overview_live(request: Request, system: SystemDep, viewer: ViewerDep) -> Response:
    """The overview's body alone, for its live refresh."""
    return render(request, "overview_live.html", viewer, section="overview",
                  **overview_figures(system))
