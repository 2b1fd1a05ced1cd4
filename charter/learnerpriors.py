"""What the learner starts from: how it weighs and pools outcomes (`LearnerConfig`), and
what members and task types declare (skill levels, cost models, expected durations)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from charter.types import Member, TaskType


@dataclass(frozen=True)
class LearnerConfig:
    """How outcomes are weighed and pooled."""

    verified_weight: float = 1.0
    self_reported_weight: float = 0.3
    prior_strength: float = 8.0
    """Outcomes a declared skill level counts for; also sets how far a member's pooled
    effect moves per outcome (its prior spread is that of `prior_strength` outcomes). With
    fewer, a member's first few unlucky outcomes, shared across all its task types, can
    bench it for good; with many more, a wrong declaration takes long to correct."""
    skill_aggregate: Literal["mean", "min"] = "mean"
    default_level: float = 0.5
    """The prior success rate on a type that requires no skill, for a member declaring none."""
    share_strength: bool = True
    type_spread: float = 1.0
    """Prior standard deviation of a task type's effect on the logit scale."""
    strength_bounds: tuple[float, float] = (2.0, 300.0)
    refit_every: int = 20
    version_discount: float = 0.5
    estimate_weight: float = 0.2
    """Observations the cost and duration priors count for: a cost model is one figure for
    every task type, while real costs differ by type many times over, so it counts for
    less than one observation of the type itself."""
    review_prior: float = 2.0
    """Agreements a member's self-reports are credited with before any review: with 2, a
    first review that disagrees leaves them two thirds of their weight, ten disagreeing
    reviews in ten leave a sixth."""


def self_report_trust(reviewed: int, agreed: int, prior: float) -> float:
    """How far a member's self-reports are believed, from 0 to 1: the mean of a Beta
    posterior on how often reviews agree with them, with `prior` agreements and no
    disagreement before any review (so 1 until a review disagrees)."""
    if reviewed <= 0:
        return 1.0
    return (agreed + prior) / (reviewed + prior)


@dataclass(frozen=True)
class MemberPrior:
    """What a member declares: skill levels (0..1) and its cost model."""

    skills: Mapping[str, float] = field(default_factory=dict)
    cost_per_task: float = 0.0
    cost_per_hour: float = 0.0

    @classmethod
    def from_member(cls, member: Member) -> MemberPrior:
        return cls(dict(member.skills), float(member.cost.per_task), float(member.cost.per_hour))


@dataclass(frozen=True)
class TypePrior:
    """What a task type declares: its required skills and an expected duration."""

    skills: tuple[str, ...] = ()
    duration_s: float | None = None

    @classmethod
    def from_task_type(cls, task_type: TaskType) -> TypePrior:
        """The expected duration is taken as half the type's timeout."""
        return cls(tuple(task_type.skills), task_type.timeout.total_seconds() / 2)
