"""Tallies of the outcomes that count, per member, engine version, task type and hour, so
a member's record over a long history is read from a few thousand rows instead of
deciding, outcome by outcome, which ones count.

One outcome counts per task and member: the latest verified one where the task has one,
else the latest self-report — the first when ordered by (verified, at, id) descending,
as `ix_outcomes_task` holds them. When an outcome is recorded its projection asks that
index which outcome now counts; if it is the new one, the one it replaces (if any) leaves
its hour's tally and the new one joins its own. Recording is serialised by the ledger's
head, so two outcomes of one task never race here, and a replay rebuilds the tallies
event by event.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, case, func, insert, select, update

from charter.store.driverstatement import DriverStatement
from charter.store.schema import outcome_tallies, outcomes

if TYPE_CHECKING:
    from charter.outcomes import Outcome

HOUR = 13
"""The width of an hour's prefix of a ledger time (`2026-01-01T09`)."""

_KEY = ((outcome_tallies.c.member == bindparam("t_member"))
        & (outcome_tallies.c.engine_version == bindparam("t_version"))
        & (outcome_tallies.c.task_type == bindparam("t_type"))
        & (outcome_tallies.c.hour == bindparam("t_hour")))
FIGURES = ("n", "successes", "verified", "cost_total", "costed", "duration_total", "timed")
"""The columns an outcome adds to (or takes from) its hour's tally."""
_SHIFT = DriverStatement(update(outcome_tallies).where(_KEY).values(
    first_at=case((bindparam("t_at") < outcome_tallies.c.first_at, bindparam("t_at")),
                  else_=outcome_tallies.c.first_at),
    **{name: outcome_tallies.c[name] + bindparam(f"d_{name}", type_=outcome_tallies.c[name].type)
       for name in FIGURES}))
_ADD = DriverStatement(insert(outcome_tallies), [column.key for column in outcome_tallies.c])
_COUNTED = DriverStatement(
    select(outcomes.c.id, outcomes.c.member, outcomes.c.engine_version,
           outcomes.c.task_type, outcomes.c.success, outcomes.c.verified,
           outcomes.c.cost, outcomes.c.duration_s, outcomes.c.at)
    .where(outcomes.c.task_id == bindparam("o_task"),
           outcomes.c.member == bindparam("o_member"))
    .order_by(outcomes.c.verified.desc(), outcomes.c.at.desc(), outcomes.c.id.desc())
    .limit(2))


def count(conn: Connection, new: Outcome) -> None:
    """Bring the tallies up to date with a just-inserted outcome."""
    latest = _COUNTED.rows(conn, {"o_task": new.task_id, "o_member": new.member})
    if latest[0].id != new.id:
        _shift(conn, new, 0)  # recorded, not counted: only its hour's first moment
        return
    _shift(conn, new, 1)
    if len(latest) == 2:
        _shift(conn, latest[1], -1)


def _shift(conn: Connection, row: Any, sign: int) -> None:
    """Add (`sign` 1), take away (-1) or only note (0) one outcome (an `Outcome` or a
    row of the outcomes table) in its hour's tally."""
    at = str(row.at)
    key = {"member": row.member, "engine_version": row.engine_version,
           "task_type": row.task_type, "hour": at[:HOUR]}
    figures = {
        "n": sign, "successes": sign if row.success else 0,
        "verified": sign if row.verified else 0,
        "cost_total": Decimal(0) if row.cost is None else sign * Decimal(row.cost),
        "costed": 0 if row.cost is None else sign,
        "duration_total": 0.0 if row.duration_s is None else sign * float(row.duration_s),
        "timed": 0 if row.duration_s is None else sign}
    shifted = _SHIFT.run(conn, {
        "t_member": key["member"], "t_version": key["engine_version"],
        "t_type": key["task_type"], "t_hour": key["hour"], "t_at": at,
        **{f"d_{name}": value for name, value in figures.items()}})
    if not shifted:
        _ADD.run(conn, {**key, "first_at": at, **figures})


def summed(conn: Connection, member: str, width: int) -> list[Any]:
    """The member's counted outcomes summed per engine version, task type and bucket (the
    first `width` <= `HOUR` characters of their time), with each group's earliest
    recorded outcome: rows of (engine_version, task_type, bucket, first_at, n, successes,
    verified, cost_total, costed, duration_total, timed)."""
    if width > HOUR:
        raise ValueError(f"tallies are kept per hour: a bucket of {width} characters "
                         f"is finer")
    t = outcome_tallies.c
    bucket = func.substr(t.hour, 1, width)
    return list(conn.execute(
        select(t.engine_version, t.task_type, bucket.label("bucket"), func.min(t.first_at),
               func.sum(t.n), func.sum(t.successes), func.sum(t.verified),
               func.sum(t.cost_total), func.sum(t.costed), func.sum(t.duration_total),
               func.sum(t.timed))
        .where(t.member == member)
        .group_by(t.engine_version, t.task_type, bucket)).all())

