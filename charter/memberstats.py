"""A member's track record per task type and engine version, from recorded outcomes."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from charter.autonomy import level_of, wilson_bounds
from charter.learnerpriors import LearnerConfig, self_report_trust
from charter.org import Org
from charter.outcomes import Outcome
from charter.types import AutonomyLevel


@dataclass(frozen=True)
class TrackRecord:
    """Outcomes of one member on one task type with one engine version."""

    member: str
    engine_version: str
    task_type: str
    n: int
    verified: int
    successes: int
    low: float
    high: float
    mean_cost: Decimal | None
    mean_duration_s: float | None
    autonomy: AutonomyLevel
    reviewed: int = 0
    """Reviews of the member's self-reports on the task type (any engine version)."""
    agreed: int = 0
    self_report_weight: float = LearnerConfig().self_reported_weight
    """What one of its self-reports on the type counts for in the allocator's estimate:
    the configured weight, lowered as far as reviews disagreed with its self-reports."""

    @property
    def rate(self) -> float:
        return self.successes / self.n if self.n else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "rate": self.rate,
                "mean_cost": None if self.mean_cost is None else str(self.mean_cost)}


def track_records(org: Org, member: str, recorded: list[Outcome],
                  levels: dict[tuple[str, str], AutonomyLevel],
                  agreement: dict[tuple[str, str], tuple[int, int]] | None = None,
                  config: LearnerConfig | None = None) -> list[TrackRecord]:
    """Per (engine version, task type): n, success rate with its 95% interval, mean cost
    and duration, the autonomy level now, and what its self-reports count for given the
    reviews of them (`agreement`: per (member, task type), reviews and agreements).
    Where a task has a verified outcome, it counts instead of the self-report."""
    config = config or LearnerConfig()
    latest: dict[str, Outcome] = {}
    for outcome in recorded:
        if outcome.member != member:
            continue
        kept = latest.get(outcome.task_id)
        if kept is None or outcome.verified or not kept.verified:
            latest[outcome.task_id] = outcome
    groups: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
    for outcome in latest.values():
        groups[(outcome.engine_version, outcome.task_type)].append(outcome)
    records = []
    for (version, task_type), group in sorted(groups.items()):
        successes = sum(1 for o in group if o.success)
        low, high = wilson_bounds(successes, len(group))
        costs = [o.cost for o in group if o.cost is not None]
        durations = [o.duration_s for o in group if o.duration_s is not None]
        reviewed, agreed = (agreement or {}).get((member, task_type), (0, 0))
        records.append(TrackRecord(
            member, version, task_type, len(group), sum(1 for o in group if o.verified),
            successes, low, high,
            sum(costs, Decimal(0)) / len(costs) if costs else None,
            sum(durations) / len(durations) if durations else None,
            level_of(org, levels, member, task_type) if task_type in org.task_types
            else "supervised", reviewed, agreed,
            config.self_reported_weight * self_report_trust(reviewed, agreed,
                                                            config.review_prior)))
    return records
