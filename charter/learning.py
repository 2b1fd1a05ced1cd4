"""What Charter has learned about who succeeds at what, at what cost and how fast.

Outcomes are kept per (member, engine version, task type) — a *cell*. Each cell has a
Beta posterior on its success rate and running means of cost and duration. Three things
let a cell start from more than nothing:

- **Declared priors.** A member's declared skill levels, aggregated over the task type's
  required skills (`mean` or `min`), give the cell's prior mean; before any evidence it
  counts as about `prior_strength` outcomes. The member's cost model gives the cost prior.
- **Shared strength.** Every `refit_every` outcomes an empirical-Bayes model
  (`charter.pooling`) fits an effect per member version, pooled over its task types, and
  an effect per task type, pooled over members. A cell's prior mean is the declared level
  moved by both effects; its strength grows as the member's effect becomes known and is
  capped by how far cells are found to stray from the additive model. So a member that
  does well on one type is expected to do well on related ones, and a type everyone finds
  hard is expected to be hard for a newcomer too.
- **Engine versions.** A member's new engine version starts from a copy of its previous
  version's cells with every count multiplied by `version_discount`.

Verified outcomes count `verified_weight`, self-reports `self_reported_weight` times
how far the member's self-reports on the task type are believed: reviews of sampled
tasks (`charter.reviews`) agree or disagree with them, and the belief is the mean of a
Beta posterior on agreement that starts from `review_prior` agreements (1 before any
review). Every self-report of the member on the type is weighed by the belief in force,
the earlier ones too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

# scipy.special is imported by the functions that use it: loading it takes a quarter of a
# second, which every command would pay.
from charter.celltally import CellTally
from charter.estimates import CellStats, Estimates, PooledEffects
from charter.learnerpriors import LearnerConfig, MemberPrior, TypePrior, self_report_trust
from charter.pooling import (
    Array,
    CellData,
    Index,
    cell_strength,
    fit_effects,
    fit_strength,
)

if TYPE_CHECKING:
    from charter.org import Org

_LEVEL_FLOOR = 0.02  # a declared 0 or 1 must not make the logit infinite


Unit = tuple[str, str]
"""A member and the engine version it runs."""
_EMPTY = CellTally()


class Learner:
    """Outcomes per (member, engine version, task type), and estimates drawn from them."""

    def __init__(self, members: Mapping[str, MemberPrior] | None = None,
                 task_types: Mapping[str, TypePrior] | None = None,
                 config: LearnerConfig | None = None) -> None:
        self.config = config or LearnerConfig()
        self.members = dict(members or {})
        self.task_types = dict(task_types or {})
        self._units: dict[tuple[str, str], int] = {}
        self._unit_keys: list[tuple[str, str]] = []
        self._types: dict[str, int] = {}
        self._type_keys: list[str] = []
        self._latest: dict[str, str] = {}
        self._cells: dict[tuple[int, int], CellTally] = {}
        self._unit_types: dict[int, list[int]] = {}
        self._priors: dict[tuple[str, str], tuple[float, float, float]] = {}
        self._a = np.zeros(0)
        self._a_var = np.zeros(0)
        self._b = np.zeros(0)
        # Before any fit the declared level's uncertainty is all in the member's effect.
        self._strength = (self.config.strength_bounds[1] if self.config.share_strength
                          else self.config.prior_strength)
        self._pending = 0
        self.outcomes = 0
        self._agreement: dict[tuple[str, str], tuple[int, int]] = {}
        """Reviews of each (member, task type)'s self-reports, and how many agreed."""
        # Estimates by task type and candidates, kept until the next outcome.
        self._remembered: dict[tuple[str, tuple[str, ...], tuple[str, ...]],
                               tuple[int, Estimates]] = {}

    @classmethod
    def for_org(cls, org: Org, config: LearnerConfig | None = None) -> Learner:
        """A learner whose priors come from the org's members and task types."""
        return cls({m.id: MemberPrior.from_member(m) for m in org.spec.members},
                   {t.id: TypePrior.from_task_type(t) for t in org.spec.task_types}, config)

    # --- recording -------------------------------------------------------------------

    def start_version(self, member: str, version: str) -> None:
        """Register a member's engine version; a new one inherits the previous one's
        evidence, discounted. Observing or asking about an unseen version does this too."""
        self._unit(member, version)

    def observe(self, member: str, engine_version: str, task_type: str, success: bool, *,
                verified: bool, cost: float | None = None,
                duration_s: float | None = None) -> None:
        """Record one outcome. Verified outcomes weigh more than self-reports."""
        cfg = self.config
        key = (self._unit(member, engine_version), self._type(task_type))
        tally = self._cells.get(key)
        if tally is None:
            tally = self._cells[key] = CellTally(weight=self.self_report_weight(member,
                                                                             task_type))
            self._unit_types.setdefault(key[0], []).append(key[1])
        if verified and success:
            tally.firm_successes += cfg.verified_weight
        elif verified:
            tally.firm_failures += cfg.verified_weight
        elif success:
            tally.reported_successes += 1.0
        else:
            tally.reported_failures += 1.0
        tally.outcomes += 1
        tally.verified += int(verified)
        if cost is not None:
            tally.cost_sum += cost
            tally.cost_n += 1.0
        if duration_s is not None:
            tally.duration_sum += duration_s
            tally.duration_n += 1.0
        self._pending += 1
        self.outcomes += 1

    def observe_review(self, member: str, task_type: str, agreed: bool) -> None:
        """Record that a review of one of the member's self-reports on the task type
        agreed with it or not; its self-reports on the type are reweighed, earlier ones
        too."""
        reviewed, agreeing = self._agreement.get((member, task_type), (0, 0))
        self.set_agreement(member, task_type, reviewed + 1, agreeing + int(agreed))

    def set_agreement(self, member: str, task_type: str, reviewed: int,
                      agreed: int) -> None:
        """Set how many of the member's self-reports on the task type were reviewed,
        and how many of those reviews agreed."""
        self._agreement[(member, task_type)] = (reviewed, agreed)
        weight = self.self_report_weight(member, task_type)
        t = self._types.get(task_type)
        if t is not None:
            for (owner, _), u in self._units.items():
                tally = self._cells.get((u, t)) if owner == member else None
                if tally is not None:
                    tally.weight = weight
        self._remembered.clear()

    def agreement(self, member: str, task_type: str) -> tuple[int, int]:
        """Reviews of the member's self-reports on the task type, and how many agreed."""
        return self._agreement.get((member, task_type), (0, 0))

    def self_report_weight(self, member: str, task_type: str) -> float:
        """What one self-report of the member on the task type counts for now:
        `self_reported_weight` times the belief in its self-reports."""
        reviewed, agreed = self.agreement(member, task_type)
        return self.config.self_reported_weight * self_report_trust(
            reviewed, agreed, self.config.review_prior)

    def refit(self) -> None:
        """Refit the shared model now (it is refitted every `refit_every` outcomes anyway)."""
        self._pending = 0
        self._remembered.clear()
        cfg = self.config
        keys = [k for k, t in self._cells.items() if t.successes + t.failures > 0]
        if not cfg.share_strength or not keys:
            return
        units = np.fromiter((k[0] for k in keys), np.intp, len(keys))
        types = np.fromiter((k[1] for k in keys), np.intp, len(keys))
        tallies = [self._cells[k] for k in keys]
        cells = CellData(
            units, types,
            np.array([t.successes for t in tallies]), np.array([t.failures for t in tallies]),
            np.array([self._declared(self._unit_keys[u][0], self._type_keys[y])[0]
                      for u, y in keys]),
            len(self._unit_keys), len(self._type_keys))
        start = (self._grown(self._a, cells.units), self._grown(self._b, cells.types))
        effects = fit_effects(cells, self._unit_spread, cfg.type_spread, start=start)
        self._a, self._b, self._a_var = effects.unit, effects.type, effects.unit_var
        if len(keys) >= 3:
            self._strength = fit_strength(cells, effects, *cfg.strength_bounds)

    # --- estimates -------------------------------------------------------------------

    def estimates(self, task_type: str, units: Sequence[tuple[str, str]]) -> Estimates:
        """Posterior success (alpha, beta), cost and duration for each (member, version)."""
        return self.estimates_of(task_type, tuple(u[0] for u in units),
                                 tuple(u[1] for u in units))

    def estimates_of(self, task_type: str, members: tuple[str, ...],
                     versions: tuple[str, ...]) -> Estimates:
        """`estimates` for members and their versions given apart (a long slate is looked
        up in the cache faster so)."""
        if self._pending >= self.config.refit_every:
            self.refit()
        key = (task_type, members, versions)
        remembered = self._remembered.get(key)
        if remembered is not None and remembered[0] == self.outcomes:
            return remembered[1]  # nothing observed since: the same estimates
        t = self._type(task_type)
        index = [self._unit(member, version)
                 for member, version in zip(members, versions, strict=True)]
        found = self._posterior(np.array(index, dtype=np.intp), np.full(len(index), t),
                                [self._cells.get((u, t), _EMPTY) for u in index],
                                [self._declared(member, task_type) for member in members])
        if len(self._remembered) >= 256:
            self._remembered.clear()
        self._remembered[key] = self.outcomes, found
        return found

    def prior_estimates(self, task_type: str, members: Sequence[str]) -> Estimates:
        """What the declarations alone say, before any outcome."""
        from scipy.special import expit  # type: ignore[import-untyped, unused-ignore]
        k = self.config.prior_strength
        declared = np.array([self._declared(m, task_type) for m in members]).reshape(-1, 3)
        level = expit(declared[:, 0])
        duration = np.nan_to_num(declared[:, 2], nan=0.0)
        return Estimates(k * level, k * (1.0 - level), declared[:, 1], duration)

    def mean(self, member: str, version: str, task_type: str) -> float:
        """Posterior mean success rate."""
        return float(self.estimates(task_type, [(member, version)]).mean[0])

    def sample(self, rng: np.random.Generator, member: str, version: str,
               task_type: str) -> float:
        """One draw of the success rate from its posterior (Thompson sampling)."""
        est = self.estimates(task_type, [(member, version)])
        return float(rng.beta(est.alpha[0], est.beta[0]))

    def interval(self, member: str, version: str, task_type: str,
                 level: float = 0.95) -> tuple[float, float]:
        """Central credible interval of the success rate."""
        from scipy.special import betaincinv  # type: ignore[import-untyped, unused-ignore]
        est = self.estimates(task_type, [(member, version)])
        tail = (1.0 - level) / 2.0
        low, high = betaincinv(est.alpha[0], est.beta[0], [tail, 1.0 - tail])
        return float(low), float(high)

    def cost(self, member: str, version: str, task_type: str) -> float:
        """Expected cost of one task."""
        return float(self.estimates(task_type, [(member, version)]).cost[0])

    def duration(self, member: str, version: str, task_type: str) -> float:
        """Expected duration of one task, in seconds."""
        return float(self.estimates(task_type, [(member, version)]).duration[0])

    def stats(self, member: str | None = None) -> list[CellStats]:
        """Every cell with evidence (of one member, if named), by member, version, type."""
        from scipy.special import betaincinv  # type: ignore[import-untyped, unused-ignore]
        if self._pending >= self.config.refit_every:
            self.refit()
        keys = sorted((k for k in self._cells
                       if member is None or self._unit_keys[k[0]][0] == member),
                      key=lambda k: (self._unit_keys[k[0]], self._type_keys[k[1]]))
        if not keys:
            return []
        tallies = [self._cells[k] for k in keys]
        est = self._posterior(
            np.array([k[0] for k in keys], dtype=np.intp),
            np.array([k[1] for k in keys], dtype=np.intp), tallies,
            [self._declared(self._unit_keys[u][0], self._type_keys[t]) for u, t in keys])
        low, high = betaincinv(est.alpha, est.beta, 0.025), betaincinv(est.alpha, est.beta, 0.975)
        successes = np.array([x.successes for x in tallies])
        failures = np.array([x.failures for x in tallies])
        prior = (est.alpha - successes) / (est.alpha + est.beta - successes - failures)
        return [CellStats(*self._unit_keys[u], self._type_keys[t], x.outcomes, x.verified,
                          x.successes, x.failures, x.inherited, float(prior[i]),
                          float(est.mean[i]), float(low[i]), float(high[i]),
                          float(est.cost[i]), float(est.duration[i]), x.weight)
                for i, ((u, t), x) in enumerate(zip(keys, tallies, strict=True))]

    def pooled(self) -> PooledEffects:
        """The shared model as last fitted."""
        return PooledEffects(
            self._strength,
            {key: float(self._a[u]) for key, u in self._units.items() if u < len(self._a)},
            {key: float(self._b[t]) for key, t in self._types.items() if t < len(self._b)})

    # --- internals -------------------------------------------------------------------

    def _unit(self, member: str, version: str) -> int:
        key = (member, version)
        index = self._units.get(key)
        if index is not None:
            return index
        index = self._units[key] = len(self._unit_keys)
        self._unit_keys.append(key)
        previous = self._latest.get(member)
        self._latest[member] = version
        if previous is not None:
            self._inherit(self._units[(member, previous)], index)
        return index

    def _inherit(self, old: int, new: int) -> None:
        factor = self.config.version_discount
        for t in self._unit_types.get(old, []):
            self._cells[(new, t)] = self._cells[(old, t)].scaled(factor)
            self._unit_types.setdefault(new, []).append(t)
        if old < len(self._a):
            self._a = self._grown(self._a, new + 1)
            self._a[new] = self._a[old]
            self._a_var = self._grown(self._a_var, new + 1, self._unit_spread**2)
            self._a_var[new] = min(self._a_var[old] / max(factor, 1e-9), self._unit_spread**2)

    def _type(self, task_type: str) -> int:
        index = self._types.get(task_type)
        if index is None:
            index = self._types[task_type] = len(self._type_keys)
            self._type_keys.append(task_type)
        return index

    @staticmethod
    def _grown(values: Array, size: int, fill: float = 0.0) -> Array:
        if len(values) >= size:
            return values
        return np.concatenate([values, np.full(size - len(values), fill)])

    def _level(self, member: str, task_type: str) -> float:
        """The declared prior success rate of a member on a task type."""
        cfg = self.config
        declared = self.members.get(member, MemberPrior()).skills
        required = self.task_types.get(task_type, TypePrior()).skills
        # A skill the member does not declare counts as level 0, as in the org file.
        levels = ([declared.get(skill, 0.0) for skill in required] if required
                  else list(declared.values()) or [cfg.default_level])
        level = min(levels) if cfg.skill_aggregate == "min" else sum(levels) / len(levels)
        return min(max(level, _LEVEL_FLOOR), 1.0 - _LEVEL_FLOOR)

    def _declared(self, member: str, task_type: str) -> tuple[float, float, float]:
        """The logit of the declared level, the cost-model cost and the expected duration
        (NaN if the type declares none) of a member on a task type."""
        key = (member, task_type)
        found = self._priors.get(key)
        if found is None:
            from scipy.special import logit  # type: ignore[import-untyped, unused-ignore]

            prior = self.members.get(member, MemberPrior())
            duration = self.task_types.get(task_type, TypePrior()).duration_s
            cost = prior.cost_per_task + prior.cost_per_hour * (duration or 0.0) / 3600.0
            found = self._priors[key] = (float(logit(self._level(member, task_type))), cost,
                                         math.nan if duration is None else duration)
        return found

    def _posterior(self, units: Index, types: Index, tallies: Sequence[CellTally],
                   declared: Sequence[tuple[float, float, float]]) -> Estimates:
        """Estimates for cells given by their unit and type indexes, tallies and priors."""
        from scipy.special import expit  # type: ignore[import-untyped, unused-ignore]
        n = len(tallies)

        def column(values: Iterable[float]) -> Array:
            return np.fromiter(values, np.float64, n)

        prior = np.array(declared, dtype=np.float64).reshape(n, 3)
        eta = prior[:, 0]
        if self.config.share_strength:
            eta = eta + self._effect(self._a, units) + self._effect(self._b, types)
        mean = expit(eta)
        strength: float | Array = self._strength
        if self.config.share_strength:
            unit_var = np.full(n, self._unit_spread**2)
            known = units < len(self._a_var)
            unit_var[known] = self._a_var[units[known]]
            strength = cell_strength(mean, self._strength, unit_var)
        alpha = strength * mean + column(x.successes for x in tallies)
        beta = strength * (1.0 - mean) + column(x.failures for x in tallies)
        w0 = self.config.estimate_weight
        cost = ((w0 * prior[:, 1] + column(x.cost_sum for x in tallies))
                / (w0 + column(x.cost_n for x in tallies)))
        total = column(x.duration_sum for x in tallies)
        count = column(x.duration_n for x in tallies)
        observed = np.divide(total, count, out=np.zeros(n), where=count > 0)
        with_prior = (w0 * np.nan_to_num(prior[:, 2]) + total) / (w0 + count)
        duration = np.where(np.isnan(prior[:, 2]), observed, with_prior)
        return Estimates(alpha, beta, cost, duration)

    @property
    def _unit_spread(self) -> float:
        """Prior standard deviation of a unit's logit effect: that of a Beta prior worth
        `prior_strength` outcomes, at a rate of one half."""
        return 2.0 / math.sqrt(self.config.prior_strength + 1.0)

    @staticmethod
    def _effect(effects: Array, index: Index) -> Array:
        """Fitted effects at the indexes; 0 for those added since the last fit."""
        found = np.zeros(len(index))
        known = index < len(effects)
        found[known] = effects[index[known]]
        return found
