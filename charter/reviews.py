"""Evaluators: a sample of a task type's completed tasks is reviewed, and the reviews
decide how far a member's self-reports are believed.

A task type may name an `evaluation`: the evaluator (a person or an AI member) and the
share of completed tasks to review, by the autonomy level of the member that did them.
When a task of that type completes, a draw decides whether it is reviewed: an HMAC of
the org and task ids under the server secret, read as a number in [0, 1). The same task
always draws the same number, nobody without the secret can tell in advance which tasks
will be reviewed, and over many tasks the share reviewed is the rate. A sampled task
gets a review request in the evaluator's queue (`review.requested`).

The evaluator, or a member the policies allow the evaluation's `action` on the task's
subject, records the verdict with `review`: a verified outcome (success, quality 0..1)
and a comment (`review.recorded`). Nobody reviews their own work, and a task is reviewed
once. Each verdict agrees or disagrees with the member's self-report, and per (member,
task type) the learner believes self-reports as far as reviews agreed with them
(`charter.learnerpriors.self_report_trust`).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, func, insert, select, update

from charter import outcomes, readmodel
from charter.authority import Authority
from charter.autonomy import level_of
from charter.errors import Conflict, Forbidden, InvalidInput, NotFound
from charter.ledger import Event, Ledger
from charter.org import Org
from charter.outcomes import Outcome
from charter.store.schema import autonomy_levels, reviews
from charter.store.schema import outcomes as outcomes_table
from charter.tasks import Task
from charter.types import Evaluation

REQUESTED = "review.requested"
RECORDED = "review.recorded"
MAX_COMMENT = 4000


@dataclass(frozen=True)
class Review:
    """A completed task sampled for review, and the verdict once it is in."""

    task_id: str
    member: str
    engine_version: str
    task_type: str
    evaluator: str
    level: str
    rate: float
    status: str
    requested_at: str
    reviewed_by: str | None = None
    reviewed_at: str | None = None
    success: bool | None = None
    quality: float | None = None
    comment: str | None = None
    agreed: bool | None = None
    """Whether the verdict matched the member's own report of the task."""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_row(cls, row: Any) -> Review:
        return cls(row.task_id, row.member, row.engine_version, row.task_type, row.evaluator,
                   row.level, row.rate, row.status, row.requested_at, row.reviewed_by,
                   row.reviewed_at, None if row.success is None else bool(row.success),
                   row.quality, row.comment, None if row.agreed is None else bool(row.agreed))


def draw(secret: bytes, org_id: str, task_id: str) -> float:
    """The task's number in [0, 1): uniform over tasks, fixed per task, and unknowable
    without the server secret."""
    mac = hmac.new(secret, f"review-sample\0{org_id}\0{task_id}".encode(),
                   hashlib.sha256).digest()
    return int.from_bytes(mac[:8], "big") / 2.0**64


def rate_for(evaluation: Evaluation, level: str) -> float:
    """The share of tasks reviewed when done by a member at autonomy `level`."""
    return float(getattr(evaluation.sample, level))


def sample(conn: Connection, ledger: Ledger, org: Org, task: Task, member: str,
           version: str, secret: bytes) -> Review | None:
    """After `member` completed `task`: request a review if the task type has an
    evaluator and the task's draw falls within the rate for the member's autonomy."""
    evaluation = org.task_types[task.type].evaluation
    if evaluation is None or member == evaluation.evaluator:
        return None
    stored = conn.execute(select(autonomy_levels.c.level).where(
        autonomy_levels.c.member == member,
        autonomy_levels.c.task_type == task.type)).scalar()
    levels = {} if stored is None else {(member, task.type): stored}
    level = level_of(org, levels, member, task.type)
    rate = rate_for(evaluation, level)
    number = draw(secret, org.id, task.id)
    if number >= rate:
        return None
    readmodel.record(conn, ledger, kind=REQUESTED, actor="charter", subject=f"task:{task.id}",
                     payload={"task": task.id, "member": member, "engine_version": version,
                              "task_type": task.type, "evaluator": evaluation.evaluator,
                              "level": level, "rate": rate, "draw": round(number, 6)})
    return get(conn, task.id)


def review(conn: Connection, ledger: Ledger, org: Org, authority: Authority, task: Task, *,
           by: str, success: bool, now: datetime, quality: float | None = None,
           comment: str = "") -> tuple[Review, Outcome]:
    """Record the verdict on a task sampled for review: a verified outcome for the
    member that did it, and the review with its comment and whether it agreed with the
    member's self-report."""
    row = conn.execute(ledger.store.dialect.lock_for_update(
        select(reviews).where(reviews.c.task_id == task.id))).first()
    if row is None:
        raise NotFound(f"task {task.id} was not sampled for review: only sampled tasks are "
                       "reviewed")
    found = Review.from_row(row)
    if found.status == "done":
        raise Conflict(f"task {task.id} was already reviewed by {found.reviewed_by} at "
                       f"{found.reviewed_at}")
    org.member(by)
    if by == found.member:
        raise Forbidden(f"{by} did task {task.id}: nobody reviews their own work")
    permitted_by = _permission(org, authority, task, found, by, now)
    if not isinstance(success, bool):
        raise InvalidInput("success must be true or false")
    if quality is not None and (isinstance(quality, bool) or not isinstance(quality, int | float)
                                or not 0 <= quality <= 1):
        raise InvalidInput("quality is a score from 0 to 1")
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise InvalidInput(f"a review's comment is text of at most {MAX_COMMENT} characters")
    claimed = _self_report(conn, task.id, found.member)
    agreed = None if claimed is None else claimed == success
    readmodel.record(conn, ledger, kind=RECORDED, actor=by, subject=f"task:{task.id}",
                     payload={"task": task.id, "member": found.member,
                              "task_type": found.task_type, "success": success,
                              "quality": quality, "comment": comment, "agreed": agreed,
                              "self_reported": claimed, "permitted_by": permitted_by})
    verdict = outcomes.record(conn, ledger, org, task.id, success=success, reported_by=by,
                              verified=True, quality=quality, member=found.member)
    return get(conn, task.id), verdict


def _permission(org: Org, authority: Authority, task: Task, found: Review, by: str,
                now: datetime) -> str:
    """Why `by` may review the task: as its evaluator, or by a policy; else Forbidden."""
    if by == found.evaluator:
        return "evaluator"
    spec = org.task_types.get(found.task_type)
    action = None if spec is None or spec.evaluation is None else spec.evaluation.action
    if action is not None:
        declared = org.spec.actions[action].context
        context = {name: task.payload[name] for name in declared if name in task.payload}
        # Asked as a reviewer, not as a worker on the type: the reviewer's autonomy on
        # the task type does not apply.
        decision = authority.decide(by, action, task.subject, context, now=now,
                                    autonomy="autonomous")
        if decision.outcome == "allow":
            return decision.reasons[0].message
    also = f", or a member the policies allow `{action}`," if action else ""
    raise Forbidden(f"only {found.evaluator} (the evaluator of {found.task_type}){also} may "
                    f"review task {task.id}")


def _self_report(conn: Connection, task_id: str, member: str) -> bool | None:
    """What the member itself last reported of the task (None if it reported nothing)."""
    row = conn.execute(select(outcomes_table.c.success).where(
        outcomes_table.c.task_id == task_id, outcomes_table.c.member == member,
        outcomes_table.c.reported_by == member, outcomes_table.c.verified.is_(False))
        .order_by(outcomes_table.c.at.desc()).limit(1)).first()
    return None if row is None else bool(row.success)


def get(conn: Connection, task_id: str) -> Review:
    row = conn.execute(select(reviews).where(reviews.c.task_id == task_id)).first()
    if row is None:
        raise NotFound(f"task {task_id} was not sampled for review")
    return Review.from_row(row)


def listing(conn: Connection, *, evaluator: str | None = None, status: str | None = None,
            member: str | None = None, limit: int = 1000) -> list[Review]:
    """Reviews, oldest request first."""
    query = select(reviews).order_by(reviews.c.requested_at, reviews.c.task_id)
    for column, value in (("evaluator", evaluator), ("status", status), ("member", member)):
        if value is not None:
            query = query.where(reviews.c[column] == value)
    return [Review.from_row(row) for row in conn.execute(query.limit(limit))]


def agreement(conn: Connection, *,
              member: str | None = None) -> dict[tuple[str, str], tuple[int, int]]:
    """Per (member, task type): reviews done, and how many agreed with the self-report."""
    query = (select(reviews.c.member, reviews.c.task_type, func.count(),
                    func.sum(case((reviews.c.agreed.is_(True), 1), else_=0)))
             .where(reviews.c.status == "done", reviews.c.agreed.is_not(None))
             .group_by(reviews.c.member, reviews.c.task_type))
    if member is not None:
        query = query.where(reviews.c.member == member)
    return {(row[0], row[1]): (int(row[2]), int(row[3] or 0)) for row in conn.execute(query)}


def _project_requested(conn: Connection, event: Event) -> None:
    p = event.payload or {}
    conn.execute(insert(reviews).values(
        task_id=p["task"], member=p["member"], engine_version=p["engine_version"],
        task_type=p["task_type"], evaluator=p["evaluator"], level=p["level"],
        rate=p["rate"], status="pending", requested_at=event.at))


def _project_recorded(conn: Connection, event: Event) -> None:
    p = event.payload or {}
    conn.execute(update(reviews).where(reviews.c.task_id == p["task"]).values(
        status="done", reviewed_by=event.actor, reviewed_at=event.at, success=p["success"],
        quality=p["quality"], comment=p["comment"], agreed=p["agreed"]))


PROJECTORS = {REQUESTED: _project_requested, RECORDED: _project_recorded}
