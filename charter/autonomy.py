"""Earned autonomy: an agent's autonomy on a task type follows its verified record.

Levels: supervised < notify < autonomous, never above the task type's ceiling. An agent
starts at the level the org declares for it (`autonomy:` on the member), else supervised;
people act on their own authority. After each verified outcome the level is reviewed on
the latest verified outcomes (`autonomy_window`) of the agent's current engine version:
it is promoted one step when the lower 95% Wilson bound of the success rate reaches the
type's threshold (with at least `autonomy_min_outcomes` outcomes), and demoted one step
when the upper bound falls below it (with at least a quarter as many, never fewer than
5). Every change is a ledger event citing n, successes, the bound and the threshold.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, case, delete, func, insert, select

from charter import readmodel
from charter.ledger import Event, Ledger
from charter.org import Org
from charter.store.driverstatement import DriverStatement
from charter.store.schema import autonomy_levels, outcomes
from charter.types import AUTONOMY_ORDER, AutonomyLevel

PROMOTED = "autonomy.promoted"
DEMOTED = "autonomy.demoted"
_WINDOW = (
    select(outcomes.c.success)
    .where(outcomes.c.member == bindparam("member"),
           outcomes.c.task_type == bindparam("task_type"),
           outcomes.c.engine_version == bindparam("version"), outcomes.c.verified.is_(True))
    .order_by(outcomes.c.at.desc(), outcomes.c.id.desc()).limit(bindparam("window"))
    .subquery())
_RECORD = DriverStatement(select(
    func.count().label("n"),
    func.coalesce(func.sum(case((_WINDOW.c.success, 1), else_=0)), 0).label("successes"),
    select(autonomy_levels.c.level).where(
        autonomy_levels.c.member == bindparam("member"),
        autonomy_levels.c.task_type == bindparam("task_type")).scalar_subquery()
    .label("level")).select_from(_WINDOW))
"""Built once, as every verified outcome reads it: the latest verified outcomes (n and
successes) of a member's engine version on a task type, and its earned level (NULL while
at its starting level)."""
Z95 = 1.959963984540054


def wilson_bounds(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a success rate (0, 1 when n is 0)."""
    if n == 0:
        return 0.0, 1.0
    rate = successes / n
    centre = rate + z * z / (2 * n)
    spread = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    return (centre - spread) / denominator, (centre + spread) / denominator


def starting_level(org: Org, member: str, task_type: str) -> AutonomyLevel:
    spec = org.members[member]
    ceiling = org.task_types[task_type].autonomy_ceiling
    if spec.kind == "human":
        return "autonomous"
    declared = spec.autonomy.get(task_type, "supervised")
    return min(declared, ceiling, key=AUTONOMY_ORDER.index)


def current_levels(conn: Connection) -> dict[tuple[str, str], AutonomyLevel]:
    """Levels changed by earned autonomy (others are at their starting level)."""
    return {(row.member, row.task_type): row.level
            for row in conn.execute(select(autonomy_levels))}


def level_of(org: Org, levels: dict[tuple[str, str], AutonomyLevel], member: str,
             task_type: str) -> AutonomyLevel:
    """The member's autonomy on the task type now: people act on their own authority;
    an agent's level is capped by the type's ceiling."""
    if org.members[member].kind == "human":
        return "autonomous"
    ceiling = org.task_types[task_type].autonomy_ceiling
    level = levels.get((member, task_type)) or starting_level(org, member, task_type)
    return min(level, ceiling, key=AUTONOMY_ORDER.index)


@dataclass(frozen=True)
class Evidence:
    n: int
    successes: int
    lower: float
    upper: float
    threshold: float
    engine_version: str

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "successes": self.successes, "lower": round(self.lower, 4),
                "upper": round(self.upper, 4), "threshold": self.threshold,
                "engine_version": self.engine_version}


def review(conn: Connection, ledger: Ledger, org: Org, member: str, task_type: str,
           engine_version: str) -> AutonomyLevel | None:
    """Promote or demote one step if the verified record says so; return the new level
    (None when unchanged)."""
    if org.members[member].kind == "human":
        return None
    spec = org.task_types[task_type]
    (record,) = _RECORD.rows(conn, {
        "member": member, "task_type": task_type, "version": engine_version,
        "window": spec.autonomy_window})
    n, successes = int(record.n), int(record.successes)
    lower, upper = wilson_bounds(successes, n)
    evidence = Evidence(n, successes, lower, upper, spec.autonomy_threshold, engine_version)
    earned = {} if record.level is None else {(member, task_type): record.level}
    level = level_of(org, earned, member, task_type)
    position = AUTONOMY_ORDER.index(level)
    ceiling = AUTONOMY_ORDER.index(spec.autonomy_ceiling)
    if n >= spec.autonomy_min_outcomes and lower >= spec.autonomy_threshold \
            and position < ceiling:
        return _change(conn, ledger, PROMOTED, member, task_type, level,
                       AUTONOMY_ORDER[position + 1], evidence,
                       f"lower Wilson bound {lower:.3f} ≥ {spec.autonomy_threshold} on "
                       f"{n} verified outcomes")
    if n >= _demotion_sample(spec.autonomy_min_outcomes) and \
            upper < spec.autonomy_threshold and position > 0:
        return _change(conn, ledger, DEMOTED, member, task_type, level,
                       AUTONOMY_ORDER[position - 1], evidence,
                       f"upper Wilson bound {upper:.3f} < {spec.autonomy_threshold} on "
                       f"{n} verified outcomes")
    return None


def _demotion_sample(min_outcomes: int) -> int:
    """Outcomes a demotion needs: fewer than a promotion (bad news acts sooner), but
    never one unlucky failure."""
    return max(5, min_outcomes // 4) if min_outcomes >= 5 else min_outcomes


def _change(conn: Connection, ledger: Ledger, kind: str, member: str, task_type: str,
            before: AutonomyLevel, after: AutonomyLevel, evidence: Evidence,
            because: str) -> AutonomyLevel:
    readmodel.record(conn, ledger, kind=kind, actor="charter", subject=f"member:{member}",
                     payload={"member": member, "task_type": task_type, "from": before,
                              "to": after, "because": because,
                              "evidence": evidence.to_json()})
    return after


def project_change(conn: Connection, event: Event) -> None:
    p = event.payload or {}
    conn.execute(delete(autonomy_levels).where(autonomy_levels.c.member == p["member"],
                                               autonomy_levels.c.task_type == p["task_type"]))
    conn.execute(insert(autonomy_levels).values(
        member=p["member"], task_type=p["task_type"], level=p["to"], changed_at=event.at,
        evidence=json.dumps(p["evidence"], sort_keys=True)))
