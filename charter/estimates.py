"""Estimates the learner reports: arrays for the allocator, rows for people."""

from __future__ import annotations

from dataclasses import dataclass

from charter.pooling import Array


@dataclass(frozen=True)
class Estimates:
    """Posterior estimates for several members on one task type, as arrays."""

    alpha: Array
    beta: Array
    cost: Array
    duration: Array

    @property
    def mean(self) -> Array:
        return self.alpha / (self.alpha + self.beta)

    @property
    def variance(self) -> Array:
        total = self.alpha + self.beta
        return self.alpha * self.beta / (total * total * (total + 1.0))


@dataclass(frozen=True)
class CellStats:
    """One cell's evidence and estimates, for reports."""

    member: str
    version: str
    task_type: str
    outcomes: int
    verified: int
    successes: float
    failures: float
    inherited: float
    prior_mean: float
    mean: float
    low: float
    high: float
    cost: float
    duration_s: float
    self_report_weight: float
    """What one self-report counts for in this cell now (see `Learner.self_report_weight`)."""


@dataclass(frozen=True)
class PooledEffects:
    """The shared model: logit effects per member version and per type, and the strength."""

    strength: float
    members: dict[tuple[str, str], float]
    types: dict[str, float]
