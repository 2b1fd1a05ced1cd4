"""The members: everyone in the org, people and agents, with a compact success rate; and
each member's page — its place in the org, its track record per task type and per engine
version, its success rate and cost over time, the autonomy it has earned and why, and
(for admins) the kill switch. Figures are SQL aggregates (`charter.web.trackrecord`):
a few indexed queries however long a member's history, reused while it has no new
outcome."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Connection, select

from charter.api.auth import SystemDep
from charter.api.fields import NO_NUL
from charter.autonomy import DEMOTED, PROMOTED, level_of
from charter.errors import Forbidden, InvalidInput
from charter.ledger import Event
from charter.org import Org
from charter.outcomes import engine_version
from charter.store.schema import autonomy_levels, events, suspensions
from charter.suspensions import Stop
from charter.system import Charter
from charter.types import AutonomyLevel, Identifier, Member, MemberStatus
from charter.web.session import ActingViewerDep, Viewer, ViewerDep
from charter.web.templating import render
from charter.web.trackrecord import (
    Figures,
    MemberRecord,
    chart_spec,
    member_record,
    success_rates,
)

router = APIRouter()

PAGE_SIZE = 50
HISTORY_SIZE = 20
REASON_LIMIT = 2000


@dataclass(frozen=True)
class Standing:
    """Whether a member works now: the org file's status, overlaid by the kill switch."""

    declared: MemberStatus
    stop: Stop | None

    @property
    def status(self) -> str:
        return "suspended" if self.stop is not None else self.declared


def standings(conn: Connection, org: Org, wanted: list[str]) -> dict[str, Standing]:
    """The standing of each member in `wanted` (the suspensions table holds only the
    members stopped now: a few rows)."""
    stops = {row.member: Stop(row.member, row.reason, row.by, row.at)
             for row in conn.execute(select(suspensions))}
    return {member: Standing(org.members[member].status, stops.get(member))
            for member in wanted}


@dataclass(frozen=True)
class Listed:
    """A member as the list shows it."""

    member: Member
    standing: Standing
    engine_version: str
    record: Figures | None


KINDS = {"": "all", "human": "people", "ai": "agents"}
STATUSES = {"": "any", "active": "active", "suspended": "suspended"}


def _choice(name: str, value: str, allowed: dict[str, str]) -> str:
    if value not in allowed:
        raise InvalidInput(f"{name} {value!r} is not one of the choices: use "
                           f"{', '.join(repr(choice) for choice in allowed if choice)} "
                           "or leave it out")
    return value


def _href(query: dict[str, str]) -> str:
    return "/members" + (f"?{urlencode(query)}" if query else "")


@router.get("/members")
def member_list(request: Request, system: SystemDep, viewer: ViewerDep,
                kind: Annotated[str, Query(max_length=16)] = "",
                status: Annotated[str, Query(max_length=16)] = "",
                after: Annotated[Identifier | None, Query()] = None) -> Response:
    """Every member, by id, a page at a time; `kind` and `status` narrow the list."""
    kind = _choice("kind", kind, KINDS)
    status = _choice("status", status, STATUSES)
    org = system.org
    with system.store.reading() as conn:
        candidates = sorted(member.id for member in org.spec.members
                            if (not kind or member.kind == kind)
                            and (after is None or member.id > after))
        # The kill switch overlays the file's status: read it before filtering on it.
        stood = standings(conn, org, candidates)
        chosen = [member for member in candidates
                  if not status or stood[member].status == status]
        page = chosen[:PAGE_SIZE]
        records = success_rates(conn, page)
    rows = [Listed(org.members[member], stood[member], engine_version(org, member),
                   records.get(member)) for member in page]
    filters = {name: value for name, value in (("kind", kind), ("status", status)) if value}
    return render(request, "members.html", viewer, section="members", title="Members",
                  rows=rows, kind=kind, status_filter=status, kinds=KINDS, statuses=STATUSES,
                  first_href=_href(filters) if after else None,
                  next_href=_href({**filters, "after": page[-1]})
                  if len(chosen) > PAGE_SIZE else None,
                  people=sum(1 for m in org.spec.members if m.kind == "human"),
                  agents=sum(1 for m in org.spec.members if m.kind == "ai"))


@dataclass(frozen=True)
class TypeRecord:
    """A member's record on one task type, with the autonomy it works under."""

    task_type: str
    figures: Figures
    level: AutonomyLevel | None
    """None for a task type the org no longer declares."""
    earned_at: str | None
    """When earned autonomy last moved the level (None: the starting level)."""
    ceiling: AutonomyLevel | None


@dataclass(frozen=True)
class AutonomyChange:
    """A promotion or demotion, with the evidence it cites."""

    event: Event

    @property
    def promoted(self) -> bool:
        return self.event.kind == PROMOTED


def type_records(conn: Connection, org: Org, member: Member,
                 record: MemberRecord) -> list[TypeRecord]:
    """Task types the member has outcomes on, has earned or declared autonomy on, or has
    the skills for."""
    earned = {row.task_type: (row.level, row.changed_at) for row in conn.execute(
        select(autonomy_levels).where(autonomy_levels.c.member == member.id))}
    skilled = {spec.id for spec in org.spec.task_types
               if all(member.skills.get(skill, 0) > 0 for skill in spec.skills)}
    names = sorted(set(record.by_type) | set(earned) | set(member.autonomy) | skilled)
    levels = {(member.id, name): level for name, (level, _) in earned.items()}
    return [TypeRecord(name, record.by_type.get(name, Figures()),
                       level_of(org, levels, member.id, name) if name in org.task_types
                       else None,
                       earned[name][1] if name in earned else None,
                       org.task_types[name].autonomy_ceiling if name in org.task_types
                       else None)
            for name in names]


def autonomy_history(conn: Connection, member: str, before: int | None,
                     limit: int) -> list[AutonomyChange]:
    """The member's autonomy changes, newest first (index `ix_events_subject`)."""
    query = (select(events).where(events.c.subject == f"member:{member}",
                                  events.c.kind.in_((PROMOTED, DEMOTED)))
             .order_by(events.c.seq.desc()).limit(limit))
    if before is not None:
        query = query.where(events.c.seq < before)
    return [AutonomyChange(Event.from_row(row)) for row in conn.execute(query)]


@router.get("/members/{member_id}")
def member_page(member_id: Identifier, request: Request, system: SystemDep,
                viewer: ViewerDep,
                history_before: Annotated[int | None, Query(ge=1)] = None) -> Response:
    """One member: org fields, track record, engine versions, chart, autonomy history."""
    org = system.org
    member = org.member(member_id)
    with system.store.reading() as conn:
        standing = standings(conn, org, [member_id])[member_id]
        record = member_record(conn, member_id)
        types = type_records(conn, org, member, record)
        history = autonomy_history(conn, member_id, history_before, HISTORY_SIZE + 1)
    current = engine_version(org, member_id)
    versions = dict(record.by_version)
    versions.setdefault(current, {})
    return render(
        request, "member.html", viewer, section="members",
        title=f"{member.display_name} · Members", member=member, standing=standing,
        chain=org.chain_of_command(member_id), reports=org.direct_reports(member_id),
        record=record, types=types, versions=versions, current_version=current,
        version_types=sorted({name for figures in versions.values() for name in figures}),
        chart=chart_spec(record, org.spec.org.currency), currency=org.spec.org.currency,
        history=history[:HISTORY_SIZE],
        older=history[HISTORY_SIZE - 1].event.seq if len(history) > HISTORY_SIZE else None,
        history_before=history_before)


# -- the kill switch (admin) -----------------------------------------------------------

async def admin_viewer(found: ActingViewerDep) -> Viewer:
    """The viewer of a kill-switch POST: it must be an admin, as over the API."""
    if not found.admin:
        raise Forbidden(f"suspending and resuming members needs an admin; {found.member} "
                        "is not signed in as one")
    return found


AdminViewerDep = Annotated[Viewer, Depends(admin_viewer)]


@router.post("/members/{member_id}/suspend")
def suspend(member_id: Identifier, request: Request, system: SystemDep,
            viewer: AdminViewerDep,
            reason: Annotated[str, Form(max_length=REASON_LIMIT, pattern=NO_NUL)] = ""
            ) -> Response:
    if not reason.strip():
        raise InvalidInput("say why you suspend the member: the reason is recorded in the "
                           "ledger (nothing was changed)")
    done = system.suspend_member(member_id, reason=reason.strip(), by=viewer.member)
    return _after_switch(request, system, viewer, member_id,
                         f"Suspended {member_id}: {len(done.tasks)} task(s) moved on, "
                         f"{done.leases_released} lease(s) released, "
                         f"{len(done.approvals_withdrawn)} approval request(s) withdrawn.")


@router.post("/members/{member_id}/resume")
def resume(member_id: Identifier, request: Request, system: SystemDep,
           viewer: AdminViewerDep) -> Response:
    system.org.member(member_id)
    system.resume_member(member_id, by=viewer.member)
    return _after_switch(request, system, viewer, member_id,
                         f"Resumed {member_id}: it is given work and decided for again.")


def _after_switch(request: Request, system: Charter, viewer: Viewer, member_id: str,
                  flash: str) -> Response:
    if not request.headers.get("HX-Request"):
        return RedirectResponse(f"/members/{member_id}", status_code=303)
    org = system.org
    with system.store.reading() as conn:
        standing = standings(conn, org, [member_id])[member_id]
    return render(request, "member_standing.html", viewer, flash=flash,
                  member=org.member(member_id), standing=standing)
