"""Circuit breakers: a member whose engine keeps failing is taken out of rotation for a
while, then tried again with one probe task.

A breaker is kept per (member, engine version), so swapping an engine starts a fresh
one. The org's `breaker` rule (for AI members) or the member's own says when it opens:
`failures` failed attempts, or an `error_rate` of failed attempts once there are
`min_calls`, within `window`. A failed attempt is a failure its holder reports or a
running attempt whose lease expired. While the breaker is open the allocator passes the
member over (an explanation names the breaker) and its assigned tasks that have not
started go back to the queue. After `cool_down` the next task given to the member is
the probe: the breaker is half-open and takes no other task until the probe ends; its
success closes the breaker, its failure opens it again for another cool-down. Each
transition is a ledger event with its evidence.

Finished attempts are counted per second in `breaker_counts` by the projectors of the
events that end them, so judging a failure reads at most a window's worth of rows and
never the ledger; `breakers` holds the state, changed only by this module's events.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from charter import readmodel, tasks
from charter.ledger import Event, Ledger, format_time
from charter.org import Org
from charter.outcomes import engine_version
from charter.store.schema import breaker_counts, breakers
from charter.store.schema import tasks as tasks_table
from charter.types import BREAKER_MAX_WINDOW, BreakerRule

OPENED = "breaker.opened"
HALF_OPEN = "breaker.half_open"
CLOSED = "breaker.closed"

State = Literal["closed", "open", "half_open"]
_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"
_KEPT_SECONDS = int(BREAKER_MAX_WINDOW.total_seconds())

# Built once: finished attempts run these, and building statements costs.
_UNIT = ((breaker_counts.c.member == bindparam("unit_member"))
         & (breaker_counts.c.engine_version == bindparam("unit_version")))
_BUMP = (update(breaker_counts).where(_UNIT, breaker_counts.c.second == bindparam("at_second"))
         .values(calls=breaker_counts.c.calls + 1,
                 failures=breaker_counts.c.failures + bindparam("failed")))
_ADD = insert(breaker_counts)
_PRUNE = delete(breaker_counts).where(_UNIT, breaker_counts.c.second < bindparam("before"))
_SUM = select(func.coalesce(func.sum(breaker_counts.c.calls), 0),
              func.coalesce(func.sum(breaker_counts.c.failures), 0)).where(
    _UNIT, breaker_counts.c.second >= bindparam("since"))
_GET = select(breakers).where(breakers.c.member == bindparam("unit_member"),
                              breakers.c.engine_version == bindparam("unit_version"))
_NOT_CLOSED = select(breakers).where(breakers.c.state != "closed")


# -- the state machine ----------------------------------------------------------------

@dataclass(frozen=True)
class Counts:
    """Finished attempts within a window, and how many of them failed."""

    calls: int = 0
    failures: int = 0

    @property
    def rate(self) -> float:
        return self.failures / self.calls if self.calls else 0.0


def tripped(rule: BreakerRule, counts: Counts) -> str | None:
    """Why `rule` opens a breaker on `counts`, or None when it does not."""
    window = _span(rule.window.total_seconds())
    if rule.failures is not None and counts.failures >= rule.failures:
        plural = "" if counts.failures == 1 else "s"
        return (f"{counts.failures} failed attempt{plural} within {window} "
                f"(the breaker opens at {rule.failures})")
    if (rule.error_rate is not None and counts.calls >= rule.min_calls
            and counts.rate >= rule.error_rate):
        return (f"{counts.failures} of {counts.calls} attempts within {window} failed "
                f"({counts.rate:.0%}; the breaker opens at {rule.error_rate:.0%} once there "
                f"are {rule.min_calls})")
    return None


@dataclass(frozen=True)
class BreakerState:
    """Where a breaker is: `until` is when an open breaker's cool-down ends; `probe_task`
    the task a half-open breaker let through."""

    state: State = "closed"
    changed_at: datetime | None = None
    until: datetime | None = None
    probe_task: str | None = None
    reason: str = ""
    """Why it last changed."""


@dataclass(frozen=True)
class Transition:
    """A change of a breaker's state, and why."""

    to: State
    reason: str
    until: datetime | None = None


def after_result(current: BreakerState, rule: BreakerRule, *, task_id: str, success: bool,
                 counts: Counts, now: datetime) -> Transition | None:
    """What a finished attempt does to a breaker. `counts`: the attempts within the
    rule's window since the breaker last closed, this one included (read only for a
    failure while closed)."""
    if current.state == "closed":
        if success:
            return None
        why = tripped(rule, counts)
        return None if why is None else Transition("open", why, now + rule.cool_down)
    if current.state == "half_open" and task_id == current.probe_task:
        if success:
            return Transition("closed", f"probe task {task_id} succeeded")
        return Transition("open", f"probe task {task_id} failed", now + rule.cool_down)
    return None  # an attempt that started before the breaker opened decides nothing


@dataclass(frozen=True)
class Admission:
    """Whether a breaker lets a new task through, and whether that task is its probe."""

    eligible: bool
    probe: bool = False
    reason: str = ""


ADMITTED = Admission(True)
"""A closed breaker's answer, the usual one."""


def admission(current: BreakerState, now: datetime, *, probe_live: bool) -> Admission:
    """May the member behind this breaker be given a task now?"""
    if current.state == "closed":
        return ADMITTED
    if current.state == "open" and current.until is not None and now < current.until:
        return Admission(False, reason=f"circuit breaker open until "
                                       f"{format_time(current.until)}: {current.reason}")
    if current.state == "half_open" and probe_live:
        return Admission(False, reason=f"circuit breaker half-open: probe task "
                                       f"{current.probe_task} has not finished")
    return Admission(True, probe=True, reason="circuit breaker cool-down over: the next "
                                              "task is its probe")


# -- rules and counts -----------------------------------------------------------------

@lru_cache(maxsize=64)
def has_breakers(org: Org) -> bool:
    """Whether any member of the org has a breaker (most work needs no look at them)."""
    return any(rule_for(org, member) is not None for member in org.members)


def rule_for(org: Org, member: str) -> BreakerRule | None:
    """The breaker rule of a member: its own, else the org's for an AI member."""
    spec = org.members.get(member)
    if spec is None:
        return None
    rule = spec.breaker
    if rule is None and spec.kind == "ai":
        rule = org.spec.breaker
    return rule if rule is not None and rule.enabled else None


def window_counts(conn: Connection, member: str, version: str, since: datetime) -> Counts:
    """Attempts of the member's engine version that ended since `since` (to the second)."""
    row = conn.execute(_SUM, {"unit_member": member, "unit_version": version,
                              "since": math.floor(since.timestamp())}).one()
    return Counts(int(row[0]), int(row[1]))


# -- what dispatch sees ---------------------------------------------------------------

@dataclass
class Overlay:
    """The breakers that are not closed, read once per dispatch round."""

    states: dict[tuple[str, str], BreakerState]
    live_probes: set[str] = field(default_factory=set)
    """Probe tasks still held by their member."""

    def admission(self, org: Org, member: str, version: str, now: datetime) -> Admission:
        current = self.states.get((member, version))
        if current is None or rule_for(org, member) is None:
            return ADMITTED
        return admission(current, now, probe_live=current.probe_task in self.live_probes)


def overlay(conn: Connection) -> Overlay:
    """The breakers that are not closed, and which of their probes are still held."""
    states = {(row.member, row.engine_version): _state_of(row)
              for row in conn.execute(_NOT_CLOSED)}
    probes = {s.probe_task: member for (member, _), s in states.items() if s.probe_task}
    live: set[str] = set()
    if probes:
        held = conn.execute(select(tasks_table.c.id, tasks_table.c.assignee).where(
            tasks_table.c.id.in_(list(probes)), tasks_table.c.state.in_(tasks.HELD_STATES)))
        live = {row.id for row in held if probes[row.id] == row.assignee}
    return Overlay(states, live)


def note_assigned(conn: Connection, ledger: Ledger, org: Org, seen: Overlay, member: str,
                  task_id: str, now: datetime) -> Event | None:
    """After a task went to `member`: if its breaker's cool-down is over, the task is its
    probe and the breaker is half-open (an event)."""
    version = engine_version(org, member)
    let = seen.admission(org, member, version, now)
    if not let.probe:
        return None
    before = seen.states[(member, version)]
    event = _record(conn, ledger, HALF_OPEN, member, version, {
        "probe_task": task_id,
        "reason": f"cool-down over at {_at(before.until)}: task {task_id} is the probe"})
    seen.states[(member, version)] = BreakerState("half_open", now, None, task_id,
                                                  "probe")
    seen.live_probes.add(task_id)
    return event


# -- what finished attempts do --------------------------------------------------------

def after_attempt(conn: Connection, ledger: Ledger, org: Org, now: datetime, *,
                  member: str, task_id: str, success: bool) -> Event | None:
    """Judge the member's breaker after one of its attempts ended (its count is already
    in `breaker_counts`); opening it sends the member's unstarted tasks back to the
    queue. Returns the transition's event, if any."""
    rule = rule_for(org, member)
    if rule is None and not has_breakers(org):
        return None
    version = engine_version(org, member)
    current = _current(conn, member, version)
    if rule is None:
        if current.state == "closed":
            return None
        return _record(conn, ledger, CLOSED, member, version,
                       {"reason": "the org sets no breaker for this member any more"})
    counts = Counts()
    since = now - rule.window
    if current.state == "closed" and not success:
        if current.changed_at is not None and current.changed_at > since:
            since = current.changed_at  # what opened it before does not count again
        counts = window_counts(conn, member, version, since)
    move = after_result(current, rule, task_id=task_id, success=success, counts=counts,
                        now=now)
    event = None
    if move is not None and move.to == "open":
        event = _record(conn, ledger, OPENED, member, version, {
            "reason": move.reason, "until": _at(move.until), "task": task_id,
            "failures": counts.failures, "calls": counts.calls,
            "rate": round(counts.rate, 4), "since": format_time(since),
            "window_s": rule.window.total_seconds(),
            "rule": rule.model_dump(mode="json", exclude={"enabled"})})
    elif move is not None:
        event = _record(conn, ledger, CLOSED, member, version,
                        {"reason": move.reason, "probe_task": task_id})
    state = current.state if move is None else move.to
    if state != "closed":
        probe = current.probe_task if state == "half_open" else None
        _requeue_unstarted(conn, ledger, member, probe)
    return event


def _requeue_unstarted(conn: Connection, ledger: Ledger, member: str,
                       probe: str | None) -> None:
    waiting = conn.execute(select(tasks_table.c.id).where(
        tasks_table.c.assignee == member, tasks_table.c.state == "assigned")).scalars().all()
    for task_id in waiting:
        if task_id != probe:
            tasks.requeue(conn, ledger, task_id,
                          reason=f"{member}'s circuit breaker is open: back in the queue")


# -- reads ----------------------------------------------------------------------------

@dataclass(frozen=True)
class BreakerView:
    """A breaker as people see it."""

    member: str
    engine_version: str
    state: State
    changed_at: str
    until: str | None
    probe_task: str | None
    evidence: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def listing(conn: Connection, *, member: str | None = None) -> list[BreakerView]:
    """Every breaker that has ever opened (of one member, if named)."""
    query = select(breakers).order_by(breakers.c.member, breakers.c.changed_at)
    if member is not None:
        query = query.where(breakers.c.member == member)
    return [BreakerView(row.member, row.engine_version, row.state, row.changed_at, row.until,
                        row.probe_task, json.loads(row.evidence))
            for row in conn.execute(query)]


# -- events and projections -----------------------------------------------------------

def _record(conn: Connection, ledger: Ledger, kind: str, member: str, version: str,
            payload: dict[str, Any]) -> Event:
    return readmodel.record(conn, ledger, kind=kind, actor="charter",
                            subject=f"member:{member}",
                            payload={"member": member, "engine_version": version, **payload})


def _current(conn: Connection, member: str, version: str) -> BreakerState:
    row = conn.execute(_GET, {"unit_member": member, "unit_version": version}).first()
    return BreakerState() if row is None else _state_of(row)


def _state_of(row: Any) -> BreakerState:
    return BreakerState(row.state, _moment(row.changed_at), _moment(row.until),
                        row.probe_task, str(json.loads(row.evidence).get("reason", "")))


def _moment(at: str | None) -> datetime | None:
    return None if at is None else datetime.strptime(at, _TIME).replace(tzinfo=UTC)


def _at(moment: datetime | None) -> str | None:
    return None if moment is None else format_time(moment)


def _span(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def _count(conn: Connection, member: str, version: str, at: str, failed: bool) -> None:
    moment = _moment(at)
    assert moment is not None
    second = math.floor(moment.timestamp())
    unit = {"unit_member": member, "unit_version": version}
    # Projections run while the transaction holds the ledger head, so no other writer
    # can insert this row between the update and the insert.
    if conn.execute(_BUMP, {**unit, "at_second": second, "failed": int(failed)}).rowcount == 0:
        conn.execute(_ADD, {"member": member, "engine_version": version, "second": second,
                            "calls": 1, "failures": int(failed)})
        conn.execute(_PRUNE, {**unit, "before": second - _KEPT_SECONDS})


def _project_attempt(conn: Connection, event: Event) -> None:
    """An attempt's end that counts toward its member's breaker (`breaker: true`)."""
    p = event.payload or {}
    if p.get("breaker"):
        _count(conn, p["member"], p["engine_version"], event.at, not p.get("success", False))


def _evidence(payload: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in payload.items()
                       if k not in ("member", "engine_version")}, sort_keys=True)


def _project_opened(conn: Connection, event: Event) -> None:
    p = event.payload or {}
    conn.execute(delete(breakers).where(breakers.c.member == p["member"],
                                        breakers.c.engine_version == p["engine_version"]))
    conn.execute(insert(breakers).values(
        member=p["member"], engine_version=p["engine_version"], state="open",
        changed_at=event.at, until=p["until"], probe_task=None, evidence=_evidence(p)))


def _project_moved(state: State) -> Any:
    def project(conn: Connection, event: Event) -> None:
        p = event.payload or {}
        conn.execute(update(breakers).where(
            breakers.c.member == p["member"], breakers.c.engine_version == p["engine_version"])
            .values(state=state, changed_at=event.at, until=None,
                    probe_task=p.get("probe_task") if state == "half_open" else None,
                    evidence=_evidence(p)))
    return project


PROJECTORS = {OPENED: _project_opened, HALF_OPEN: _project_moved("half_open"),
              CLOSED: _project_moved("closed")}
ATTEMPT_PROJECTORS = {"outcome.recorded": _project_attempt,
                      "task.lease_expired": _project_attempt}
"""Projections of events other modules own (they count the attempts those events end)."""
