"""Outcomes: what happened when a member did a task — self-reported or verified, and
possibly long after the task ended. They feed the allocator's learning and earned
autonomy, attributed to the engine version the member ran."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, bindparam, insert, select

from charter import autonomy, outcometallies, readmodel
from charter.canonical import digest
from charter.errors import InvalidInput, NotFound
from charter.ledger import Event, Ledger
from charter.org import Org
from charter.store.driverstatement import DriverStatement
from charter.store.schema import outcomes, tasks
from charter.types import AutonomyLevel

if TYPE_CHECKING:
    from charter.tasks import Task

RECORDED = "outcome.recorded"
_INSERT = DriverStatement(insert(outcomes), [column.key for column in outcomes.c])
_TASK_HOLDER = DriverStatement(select(tasks.c.type, tasks.c.assignee)
                               .where(tasks.c.id == bindparam("task_id")))


def engine_version(org: Org, member: str) -> str:
    """The version of the engine a member runs: a digest of its engine settings, so a
    changed engine starts a new version; `person` for people, `external` for agents
    that run outside Charter."""
    org.member(member)
    return _engine_version(org, member)


@lru_cache(maxsize=4096)
def _engine_version(org: Org, member: str) -> str:
    spec = org.members[member]
    if spec.kind == "human":
        return "person"
    if spec.engine is None:
        return "external"
    return f"{spec.engine.kind}-{digest(spec.engine.model_dump(mode='json'))[:12]}"


@dataclass(frozen=True)
class Outcome:
    id: str
    task_id: str
    member: str
    engine_version: str
    task_type: str
    success: bool
    quality: float | None
    cost: Decimal | None
    duration_s: float | None
    verified: bool
    reported_by: str
    at: str

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "cost": None if self.cost is None else str(self.cost)}

    @classmethod
    def from_row(cls, row: Row[Any]) -> Outcome:
        return cls(row.id, row.task_id, row.member, row.engine_version, row.task_type,
                   bool(row.success), row.quality,
                   None if row.cost is None else Decimal(row.cost), row.duration_s,
                   bool(row.verified), row.reported_by, row.at)


def record(conn: Connection, ledger: Ledger, org: Org, task_id: str, *, success: bool,
           reported_by: str, verified: bool = False, quality: float | None = None,
           cost: Decimal | float | str | None = None, duration_s: float | None = None,
           member: str | None = None, breaker: bool = False,
           task: Task | None = None) -> Outcome:
    """Record what happened on a task (by default, for the member that last held it).
    `breaker`: this is the holder's own report as its attempt ends (completed or failed)
    and counts toward the member's circuit breaker (`charter.breakers`). `task`: the
    task as this transaction has just written it, when the caller has it."""
    return record_and_review(conn, ledger, org, task_id, success=success,
                             reported_by=reported_by, verified=verified, quality=quality,
                             cost=cost, duration_s=duration_s, member=member,
                             breaker=breaker, task=task)[0]


def record_and_review(conn: Connection, ledger: Ledger, org: Org, task_id: str, *,
                      success: bool, reported_by: str, verified: bool = False,
                      quality: float | None = None,
                      cost: Decimal | float | str | None = None,
                      duration_s: float | None = None, member: str | None = None,
                      breaker: bool = False,
                      task: Task | None = None) -> tuple[Outcome, AutonomyLevel | None]:
    """`record`, and the member's new autonomy level when a verified outcome moved it
    (None when it did not)."""
    row = (task if task is not None and task.id == task_id
           else next(iter(_TASK_HOLDER.rows(conn, {"task_id": task_id})), None))
    if row is None:
        raise NotFound(f"no task {task_id}")
    who = member or row.assignee
    if who is None:
        raise InvalidInput(f"task {task_id} was never held: name the member")
    if not isinstance(success, bool):
        raise InvalidInput("success must be true or false")
    if quality is not None and not (isinstance(quality, int | float) and 0 <= quality <= 1):
        raise InvalidInput("quality is a score from 0 to 1")
    if duration_s is not None and not (isinstance(duration_s, int | float)
                                       and 0 <= duration_s < 1e9):
        raise InvalidInput("duration_s is a non-negative number of seconds")
    spent = None
    if cost is not None:
        try:
            spent = Decimal(str(cost))
        except ArithmeticError:
            raise InvalidInput(f"cost {cost!r} is not a number") from None
        if not spent.is_finite() or spent < 0:
            raise InvalidInput("cost must be a non-negative number")
    outcome_id, version, task_type = str(uuid.uuid4()), engine_version(org, who), str(row.type)
    payload = {"id": outcome_id, "task": task_id, "member": who, "engine_version": version,
               "task_type": task_type, "success": success, "quality": quality,
               "cost": None if spent is None else str(spent), "duration_s": duration_s,
               "verified": verified, **({"breaker": True} if breaker else {})}
    event = readmodel.record(conn, ledger, kind=RECORDED, actor=reported_by,
                             subject=f"task:{task_id}", payload=payload)
    moved = autonomy.review(conn, ledger, org, who, task_type, version) if verified else None
    return Outcome(outcome_id, task_id, who, version, task_type, success, quality, spent,
                   duration_s, verified, reported_by, event.at), moved


def listing(conn: Connection, *, member: str | None = None, task_type: str | None = None,
            task_id: str | None = None) -> list[Outcome]:
    query = select(outcomes).order_by(outcomes.c.at, outcomes.c.id)
    for column, value in (("member", member), ("task_type", task_type),
                          ("task_id", task_id)):
        if value is not None:
            query = query.where(outcomes.c[column] == value)
    return [Outcome.from_row(row) for row in conn.execute(query)]


def project_recorded(conn: Connection, event: Event) -> None:
    p = event.payload or {}
    outcome = Outcome(p["id"], p["task"], p["member"], p["engine_version"], p["task_type"],
                      p["success"], p["quality"],
                      None if p["cost"] is None else Decimal(p["cost"]), p["duration_s"],
                      p["verified"], event.actor, event.at)
    _INSERT.run(conn, outcome.__dict__)
    outcometallies.count(conn, outcome)
