"""Tasks: submit, assign, claim with a lease and a fencing token, complete or fail.

States: queued → assigned → running → (awaiting_approval →) done | failed | cancelled.
A claim starts an attempt with a new fencing token; heartbeats extend its lease; a
completion or failure must carry the current token, so a holder whose lease expired
(and whose task moved on) cannot finish it. Failures and expired leases follow the task
type's fallback protocol. Every transition is a ledger event applied to the `tasks`
read table, in the transaction that makes it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, bindparam, func, select

from charter import readmodel
from charter.canonical import canonical_json, json_safe
from charter.clock import Clock
from charter.errors import Conflict, Forbidden, InvalidInput, NotFound, TooLarge
from charter.ledger import Event, EventDraft, Ledger, format_time
from charter.org import Org
from charter.store.driverstatement import DriverStatement
from charter.store.schema import tasks
from charter.taskprojection import submitted_row

if TYPE_CHECKING:
    from opentelemetry.trace import SpanContext

    from charter.handoff import HandoffPacket
    from charter.store.dialect import Dialect

OPEN_STATES = ("queued", "assigned", "running", "awaiting_approval")
HELD_STATES = ("assigned", "running", "awaiting_approval")
"""States in which a task counts against its assignee's capacity."""
MAX_PAYLOAD_BYTES = 1_000_000
"""The largest task payload, as canonical JSON in UTF-8."""

# Built once: every task command runs these, and building statements costs.
_GET = DriverStatement(select(tasks).where(tasks.c.id == bindparam("task_id")))
_GET_FOR_UPDATE = DriverStatement(select(tasks).where(tasks.c.id == bindparam("task_id"))
                                  .with_for_update())
_LOAD = select(func.count()).select_from(tasks).where(
    tasks.c.assignee == bindparam("member"), tasks.c.state.in_(HELD_STATES))
_LOADS = (select(tasks.c.assignee, func.count()).where(tasks.c.state.in_(HELD_STATES))
          .group_by(tasks.c.assignee))
_NEXT_ASSIGNED = (select(tasks).where(tasks.c.assignee == bindparam("member"),
                                      tasks.c.state == "assigned")
                  .order_by(tasks.c.priority.desc(), tasks.c.deadline.is_(None),
                            tasks.c.deadline, tasks.c.created_at, tasks.c.id).limit(1))
"""A member's most urgent assigned task: priority, then deadline, then age."""
_CLAIMABLE: dict[str, DriverStatement] = {}
"""`_NEXT_ASSIGNED` as each dialect claims rows (`Dialect.claim_rows`)."""
_QUEUED = (select(tasks).where(tasks.c.state == "queued")
           .order_by(tasks.c.priority.desc(), tasks.c.created_at, tasks.c.id)
           .limit(bindparam("limit")))
"""The queue, the most urgent first by priority and age (`ix_tasks_state_priority`)."""


@dataclass(frozen=True)
class Task:
    id: str
    type: str
    subject: str
    payload: dict[str, Any]
    value: Decimal
    priority: int
    deadline: str | None
    requester: str
    state: str
    assignee: str | None
    fencing: int
    attempts: int
    lease_until: str | None
    excluded: tuple[str, ...]
    reason: str | None
    result: Any
    created_at: str
    updated_at: str
    trace_id: str | None = None
    """The OpenTelemetry trace of the task's spans (hex), when it was submitted with
    tracing on."""

    @classmethod
    def from_row(cls, row: Row[Any] | SimpleNamespace) -> Task:
        return cls(row.id, row.type, row.subject, json.loads(row.payload),
                   Decimal(row.value), row.priority, row.deadline, row.requester, row.state,
                   row.assignee, row.fencing, row.attempts, row.lease_until,
                   tuple(json.loads(row.excluded)), row.reason,
                   None if row.result is None else json.loads(row.result), row.created_at,
                   row.updated_at, row.trace_id)

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "value": str(self.value), "excluded": list(self.excluded)}


_TASK_FIELDS = frozenset(field.name for field in fields(Task))


@dataclass(frozen=True)
class Claim:
    """A claimed attempt: the task and the fencing token its holder must present."""

    task: Task
    fencing: int
    lease_until: str
    handoff: HandoffPacket | None = None
    """For a task that was tried before: the earlier attempts, approvals and the subject's
    memories (see `charter.handoff`)."""
    resume: dict[str, Any] | None = None
    """For a task back from awaiting approval: what its engine saved when it paused."""
    trace: SpanContext | None = None
    """The claim's span in the task's trace, for the attempt's spans to go under (None
    with tracing off)."""


def submit(conn: Connection, ledger: Ledger, clock: Clock, org: Org, *, task_type: str,
           subject: str, payload: dict[str, Any] | None = None, priority: int = 0,
           deadline: datetime | None = None, value: Decimal | int | str | None = None,
           requester: str, trace: dict[str, str] | None = None) -> Task:
    """Queue a task of a declared type; `trace`: the trace and span ids of its submit
    span (`charter.tracing.ids`), kept in the ledger."""
    spec = org.task_types.get(task_type)
    if spec is None:
        raise InvalidInput(f"unknown task type {task_type!r}: the org declares "
                           f"{', '.join(org.task_types)}")
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 256:
        raise InvalidInput("a task needs a subject of 1 to 256 characters (e.g. customer:42)")
    if payload is not None and not isinstance(payload, dict):
        raise InvalidInput("a task payload must be a JSON object")
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > 1000:
        raise InvalidInput("priority must be a whole number from -1000 to 1000")
    if deadline is not None and (deadline.tzinfo is None or deadline <= clock.now()):
        raise InvalidInput("a deadline must be a timezone-aware time in the future")
    try:
        worth = spec.value if value is None else Decimal(str(value))
    except ArithmeticError:
        raise InvalidInput(f"task value {value!r} is not a number") from None
    if not worth.is_finite() or worth < 0:
        raise InvalidInput("a task's value must be a non-negative number")
    try:
        size = len(canonical_json(payload or {}).encode("utf-8"))
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"the task payload is not JSON: {error}") from None
    if size > MAX_PAYLOAD_BYTES:
        raise TooLarge(f"the task payload is too large: {size:,} bytes as JSON, and a task "
                       f"keeps at most {MAX_PAYLOAD_BYTES:,} (the ledger keeps it for good): "
                       f"store large data elsewhere and put a reference in the payload")
    task_id = str(uuid.uuid4())
    event = record_event(conn, ledger, "task.submitted", requester, task_id, {
        "type": task_type, "subject": subject, "payload": payload or {},
        "value": str(worth), "priority": priority,
        "deadline": None if deadline is None else format_time(deadline),
        **({"trace": trace} if trace else {})})
    return Task.from_row(SimpleNamespace(**submitted_row(event)))  # as projected


def assign(conn: Connection, ledger: Ledger, org: Org, task_id: str, member: str, *,
           actor: str, strategy: str = "manual", probability: float = 1.0,
           explanation: dict[str, Any] | None = None, holds: int | None = None,
           current: Task | None = None) -> Task:
    """Give a queued task to a member (the allocator's choice, or by hand). `holds`: the
    tasks the member holds, when this transaction has already counted them; `current`:
    the task, when this transaction submitted it or holds its row (else it is read here,
    its row held until the transaction ends)."""
    task = current if current is not None else get(conn, task_id, lock=True)
    wanted = Assignment(task, member, strategy, probability, explanation or {},
                        load(conn, member) if holds is None else holds)
    return assign_all(conn, ledger, org, [wanted], actor=actor)[0]


@dataclass(frozen=True)
class Assignment:
    """A queued task this transaction holds, to go to `member`."""

    task: Task
    member: str
    strategy: str
    probability: float
    explanation: dict[str, Any]
    holds: int
    """The tasks the member holds before this one."""

    def draft(self, org: Org, actor: str) -> EventDraft:
        """The assignment's event; refused when the task or the member cannot take it."""
        task, member = self.task, self.member
        if task.state != "queued":
            raise Conflict(f"task {task.id} is {task.state}; only a queued task is assigned")
        spec = org.member(member)
        if spec.status != "active":
            raise Conflict(f"{member} is {spec.status}")
        if self.holds >= spec.capacity:
            raise Conflict(f"{member} is at capacity ({spec.capacity})")
        return _draft("task.assigned", actor, task.id, {
            "member": member, "strategy": self.strategy,
            "probability": self.probability, "explanation": self.explanation,
            "set": {"state": "assigned", "assignee": member,
                    "reason": f"assigned to {member} ({self.strategy})"}})


def assign_all(conn: Connection, ledger: Ledger, org: Org,
               assignments: Sequence[Assignment], *, actor: str) -> list[Task]:
    """Make many assignments at once: one append to the ledger; all or none."""
    drafts = [wanted.draft(org, actor) for wanted in assignments]
    events = readmodel.record_drafts(conn, ledger, drafts)
    return [_applied(wanted.task, event)
            for wanted, event in zip(assignments, events, strict=True)]


def claim_next(conn: Connection, ledger: Ledger, clock: Clock, org: Org,
               member: str) -> Claim | None:
    """Start the member's most urgent assigned task (priority, then deadline, then age);
    None when it has none. Concurrent claimers never take the same task."""
    dialect = ledger.store.dialect
    claimable = _CLAIMABLE.get(dialect.name)
    if claimable is None:
        claimable = _CLAIMABLE[dialect.name] = DriverStatement(
            dialect.claim_rows(_NEXT_ASSIGNED))
    found = claimable.rows(conn, {"member": member})
    if not found:
        return None
    row = found[0]
    task = Task.from_row(row)
    lease = org.task_types[task.type].lease
    token = task.fencing + 1
    until = format_time(clock.now() + lease)
    event = record_event(conn, ledger, "task.claimed", member, task.id, {
        "member": member, "fencing": token,
        "set": {"state": "running", "fencing": token, "attempts": task.attempts + 1,
                "lease_until": until, "reason": f"attempt {task.attempts + 1} by {member}"}})
    return Claim(_applied(task, event), token, until,
                 resume=None if row.resume is None else json.loads(row.resume))


def heartbeat(conn: Connection, ledger: Ledger, clock: Clock, org: Org, task_id: str, *,
              member: str, fencing: int) -> str:
    """Extend the lease of a running attempt; returns the new expiry."""
    task = held(conn, task_id, member, fencing)
    until = format_time(clock.now() + org.task_types[task.type].lease)
    record_event(conn, ledger, "task.heartbeat", member, task_id,
            {"fencing": fencing, "set": {"lease_until": until}})
    return until


def complete(conn: Connection, ledger: Ledger, task_id: str, *, member: str, fencing: int,
             result: Any = None) -> Task:
    """Finish a running attempt successfully."""
    task = held(conn, task_id, member, fencing)
    safe = json_safe(result)
    event = record_event(conn, ledger, "task.completed", member, task_id, {
        "fencing": fencing, "result": safe,
        "set": {"state": "done", "lease_until": None, "result": canonical_json(safe),
                "resume": None, "reason": f"completed by {member}"}})
    return _applied(task, event)


def release(conn: Connection, ledger: Ledger, task_id: str, *, member: str, fencing: int,
            reason: str) -> Task:
    """Give a running attempt back unfinished (a worker shutting down): the task returns
    to its assignee's queue without counting as a failure."""
    held(conn, task_id, member, fencing)
    record_event(conn, ledger, "task.released", member, task_id, {
        "fencing": fencing, "set": {"state": "assigned", "lease_until": None,
                                    "reason": f"released by {member}: {reason}"}})
    return get(conn, task_id)


def requeue(conn: Connection, ledger: Ledger, task_id: str, *, reason: str) -> Task:
    """Put an assigned task that has not started back in the queue for dispatch (its
    assignee cannot take it now); its fallback position and exclusions stay."""
    task = get(conn, task_id, lock=True)
    if task.state != "assigned":
        raise Conflict(f"task {task_id} is {task.state}; only an assigned task is requeued")
    record_event(conn, ledger, "task.requeued", "charter", task_id, {
        "member": task.assignee,
        "set": {"state": "queued", "assignee": None, "resume": None, "reason": reason}})
    return get(conn, task_id)


def cancel(conn: Connection, ledger: Ledger, task_id: str, *, actor: str,
           reason: str) -> Task:
    task = get(conn, task_id, lock=True)
    if task.state not in OPEN_STATES:
        raise Conflict(f"task {task_id} is already {task.state}")
    record_event(conn, ledger, "task.cancelled", actor, task_id, {
        "reason": reason, "set": {"state": "cancelled", "lease_until": None,
                                  "reason": f"cancelled by {actor}: {reason}"}})
    return get(conn, task_id)


def get(conn: Connection, task_id: str, *, lock: bool = False) -> Task:
    found = (_GET_FOR_UPDATE if lock else _GET).rows(conn, {"task_id": task_id})
    if not found:
        raise NotFound(f"no task {task_id}")
    return Task.from_row(found[0])


def waiting(conn: Connection, dialect: Dialect, limit: int) -> list[Task]:
    """Up to `limit` queued tasks, most urgent first (priority, then deadline, then age),
    their rows held until the transaction ends. With concurrent writers, tasks another
    transaction holds (another dispatch's) are skipped."""
    found = [Task.from_row(row)
             for row in conn.execute(dialect.claim_rows(_QUEUED), {"limit": limit})]
    found.sort(key=lambda t: (-t.priority, t.deadline is None, t.deadline or "",
                              t.created_at))
    return found


def listing(conn: Connection, *, state: str | None = None, assignee: str | None = None,
            task_type: str | None = None, limit: int = 100) -> list[Task]:
    query = select(tasks).order_by(tasks.c.priority.desc(), tasks.c.created_at, tasks.c.id)
    for column, value in (("state", state), ("assignee", assignee), ("type", task_type)):
        if value is not None:
            query = query.where(tasks.c[column] == value)
    return [Task.from_row(row) for row in conn.execute(query.limit(limit))]


def page(conn: Connection, *, after: tuple[str, str] | None, limit: int,
         state: str | None = None, assignee: str | None = None,
         task_type: str | None = None, requester: str | None = None,
         subject: str | None = None, newest_first: bool = False) -> list[Task]:
    """Tasks oldest first (newest first with `newest_first`), from just after `after`
    (created_at, id) in that order: keyset pages. `subject` matches exactly."""
    created, ident = tasks.c.created_at, tasks.c.id
    if newest_first:
        query = select(tasks).order_by(created.desc(), ident.desc())
        if after is not None:
            query = query.where((created < after[0])
                                | ((created == after[0]) & (ident < after[1])))
    else:
        query = select(tasks).order_by(created, ident)
        if after is not None:
            query = query.where((created > after[0])
                                | ((created == after[0]) & (ident > after[1])))
    for column, value in (("state", state), ("assignee", assignee), ("type", task_type),
                          ("requester", requester), ("subject", subject)):
        if value is not None:
            query = query.where(tasks.c[column] == value)
    return [Task.from_row(row) for row in conn.execute(query.limit(limit))]


def load(conn: Connection, member: str) -> int:
    """Tasks the member holds now (assigned, running or awaiting approval)."""
    return int(conn.execute(_LOAD, {"member": member}).scalar_one())


def loads(conn: Connection) -> dict[str, int]:
    """Tasks each member holds now, in one query."""
    return {member: int(count) for member, count in conn.execute(_LOADS) if member}


def held(conn: Connection, task_id: str, member: str, fencing: int, *,
         lock: bool = True) -> Task:
    """The running task, if `member` holds it with the current fencing token."""
    task = get(conn, task_id, lock=lock)
    if task.assignee != member:
        raise Forbidden(f"task {task_id} is held by {task.assignee or 'nobody'}, not {member}")
    if fencing != task.fencing or task.state != "running":
        raise Conflict(f"stale fencing token {fencing} for task {task_id}: the current "
                       f"attempt has token {task.fencing} and the task is {task.state}; "
                       "this attempt's result is refused")
    return task


def _applied(task: Task, event: Event) -> Task:
    """`task` as `project_change` leaves its row after `event`, without reading it back."""
    changes = {name: value for name, value in (event.payload or {})["set"].items()
               if name in _TASK_FIELDS}
    if changes.get("result") is not None:
        changes["result"] = json.loads(changes["result"])
    if "excluded" in changes:
        changes["excluded"] = tuple(json.loads(changes["excluded"]))
    return replace(task, **changes, updated_at=event.at)


def record_event(conn: Connection, ledger: Ledger, kind: str, actor: str, task_id: str,
                 payload: dict[str, Any]) -> Event:
    """Append a task's event (subject `task:ID`, the payload naming the task) and project
    it, in `conn`'s transaction."""
    return readmodel.record_draft(conn, ledger, _draft(kind, actor, task_id, payload))


def _draft(kind: str, actor: str, task_id: str, payload: dict[str, Any]) -> EventDraft:
    """A task's event: subject `task:ID`, the payload naming the task."""
    return EventDraft(kind, actor, f"task:{task_id}", {"task": task_id, **payload})
