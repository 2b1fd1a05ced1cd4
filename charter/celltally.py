"""A learner's cell: the evidence on one member version's outcomes on one task type."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CellTally:
    """The evidence of one cell (member, engine version, task type): weighted successes
    and failures, outcome counts, and cost and duration sums."""

    firm_successes: float = 0.0
    """Verified outcomes (weighted) and what a new engine version inherited."""
    firm_failures: float = 0.0
    outcomes: int = 0
    verified: int = 0
    inherited: float = 0.0
    cost_sum: float = 0.0
    cost_n: float = 0.0
    duration_sum: float = 0.0
    duration_n: float = 0.0
    reported_successes: float = 0.0
    """Self-reports, each counted once: they weigh `weight` apiece."""
    reported_failures: float = 0.0
    weight: float = 0.0

    @property
    def successes(self) -> float:
        return self.firm_successes + self.weight * self.reported_successes

    @property
    def failures(self) -> float:
        return self.firm_failures + self.weight * self.reported_failures

    def scaled(self, factor: float) -> CellTally:
        return CellTally(self.firm_successes * factor, self.firm_failures * factor, 0, 0,
                      (self.successes + self.failures) * factor, self.cost_sum * factor,
                      self.cost_n * factor, self.duration_sum * factor,
                      self.duration_n * factor, self.reported_successes * factor,
                      self.reported_failures * factor, self.weight)
