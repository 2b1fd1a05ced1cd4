"""What Charter has learned about who succeeds at what, at what cost and how fast.

Outcomes are kept per (member, engine version, task type) — a *cell*. Each cell has a
Beta posterior on its success rate and running means of cost and duration. Three things
let a cell start from more than nothing:

- **Declared priors.** A member's declared skill levels, aggregated over the task type's
  required skills (`mean` or `min`), give the cell's prior mean; before any evidence it
  counts as `prior_strength` outcomes. The member's cost model gives the cost prior.
- **Shared strength.** Every `refit_every` outcomes an empirical-Bayes model
  (`charter.pooling`) fits an effect per member version, pooled over its task types, and
  an effect per task type, pooled over members. A cell's prior mean is then the declared
  level moved by both effects, and its strength is fitted to how far cells stray from
  that. So a member that does well on one type is expected to do well on related ones,
  and a type everyone finds hard is expected to be hard for a newcomer too.
- **Engine versions.** A member's new engine version starts from a copy of its previous
  version's cells with every count multiplied by `version_discount`.

Verified outcomes count `verified_weight`, self-reports `self_reported_weight`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
from scipy.special import betaincinv, expit, logit  # type: ignore[import-untyped, unused-ignore]

from charter.pooling import Array, CellData, fit_effects, fit_strength

if TYPE_CHECKING:
    from charter.org import Org
    from charter.types import Member, TaskType

_LEVEL_FLOOR = 0.02  # a declared 0 or 1 must not make the logit infinite


@dataclass(frozen=True)
class LearnerConfig:
    """How outcomes are weighed and pooled."""

    verified_weight: float = 1.0
    self_reported_weight: float = 0.3
    prior_strength: float = 4.0
    """Outcomes a declared skill level counts for; also sets how far a member's pooled
    effect moves per outcome (its prior spread is that of `prior_strength` outcomes)."""
    skill_aggregate: Literal["mean", "min"] = "mean"
    default_level: float = 0.5
    """The prior success rate on a type that requires no skill, for a member declaring none."""
    share_strength: bool = True
    type_spread: float = 1.0
    """Prior standard deviation of a task type's effect on the logit scale."""
    strength_bounds: tuple[float, float] = (2.0, 300.0)
    refit_every: int = 20
    version_discount: float = 0.5
    estimate_weight: float = 1.0
    """Observations the cost and duration priors count for."""


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


@dataclass(frozen=True)
class PooledEffects:
    """The shared model: logit effects per member version and per type, and the strength."""

    strength: float
    members: dict[tuple[str, str], float]
    types: dict[str, float]


@dataclass
class _Tally:
    successes: float = 0.0
    failures: float = 0.0
    outcomes: int = 0
    verified: int = 0
    inherited: float = 0.0
    cost_sum: float = 0.0
    cost_n: float = 0.0
    duration_sum: float = 0.0
    duration_n: float = 0.0

    def scaled(self, factor: float) -> _Tally:
        return _Tally(self.successes * factor, self.failures * factor, 0, 0,
                      (self.successes + self.failures) * factor, self.cost_sum * factor,
                      self.cost_n * factor, self.duration_sum * factor,
                      self.duration_n * factor)


_EMPTY = _Tally()


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
        self._cells: dict[tuple[int, int], _Tally] = {}
        self._unit_types: dict[int, list[int]] = {}
        self._offsets: dict[tuple[str, str], float] = {}
        self._a = np.zeros(0)
        self._b = np.zeros(0)
        self._strength = self.config.prior_strength
        self._pending = 0
        self.outcomes = 0

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
        weight = cfg.verified_weight if verified else cfg.self_reported_weight
        key = (self._unit(member, engine_version), self._type(task_type))
        tally = self._cells.get(key)
        if tally is None:
            tally = self._cells[key] = _Tally()
            self._unit_types.setdefault(key[0], []).append(key[1])
        if success:
            tally.successes += weight
        else:
            tally.failures += weight
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

    def refit(self) -> None:
        """Refit the shared model now (it is refitted every `refit_every` outcomes anyway)."""
        self._pending = 0
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
            np.array([self._offset(self._unit_keys[u][0], self._type_keys[y])
                      for u, y in keys]),
            len(self._unit_keys), len(self._type_keys))
        start = (self._grown(self._a, cells.units), self._grown(self._b, cells.types))
        effects = fit_effects(cells, 2.0 / np.sqrt(cfg.prior_strength + 1.0), cfg.type_spread,
                              start=start)
        self._a, self._b = effects.unit, effects.type
        if len(keys) >= 3:
            self._strength = fit_strength(cells, effects.loo_mean, *cfg.strength_bounds)

    # --- estimates -------------------------------------------------------------------

    def estimates(self, task_type: str, units: Sequence[tuple[str, str]]) -> Estimates:
        """Posterior success (alpha, beta), cost and duration for each (member, version)."""
        if self._pending >= self.config.refit_every:
            self.refit()
        t = self._type(task_type)
        n = len(units)
        alpha, beta, cost, duration = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
        for i, (member, version) in enumerate(units):
            u = self._unit(member, version)
            tally = self._cells.get((u, t), _EMPTY)
            prior = self._prior_mean(u, t)
            alpha[i] = self._strength * prior + tally.successes
            beta[i] = self._strength * (1.0 - prior) + tally.failures
            cost[i], duration[i] = self._cost_and_duration(member, task_type, tally)
        return Estimates(alpha, beta, cost, duration)

    def prior_estimates(self, task_type: str, members: Sequence[str]) -> Estimates:
        """What the declarations alone say, before any outcome."""
        k = self.config.prior_strength
        level = np.array([self._level(m, task_type) for m in members])
        pairs = [self._cost_and_duration(m, task_type, _EMPTY) for m in members]
        return Estimates(k * level, k * (1.0 - level), np.array([p[0] for p in pairs]),
                         np.array([p[1] for p in pairs]))

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
        if self._pending >= self.config.refit_every:
            self.refit()
        rows: list[CellStats] = []
        for (u, t), tally in sorted(self._cells.items(),
                                    key=lambda kv: (self._unit_keys[kv[0][0]],
                                                    self._type_keys[kv[0][1]])):
            mem, version = self._unit_keys[u]
            if member is not None and mem != member:
                continue
            prior = self._prior_mean(u, t)
            alpha = self._strength * prior + tally.successes
            beta = self._strength * (1.0 - prior) + tally.failures
            low, high = betaincinv(alpha, beta, [0.025, 0.975])
            cost, duration = self._cost_and_duration(mem, self._type_keys[t], tally)
            rows.append(CellStats(mem, version, self._type_keys[t], tally.outcomes,
                                  tally.verified, tally.successes, tally.failures,
                                  tally.inherited, prior, alpha / (alpha + beta), float(low),
                                  float(high), cost, duration))
        return rows

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

    def _type(self, task_type: str) -> int:
        index = self._types.get(task_type)
        if index is None:
            index = self._types[task_type] = len(self._type_keys)
            self._type_keys.append(task_type)
        return index

    @staticmethod
    def _grown(values: Array, size: int) -> Array:
        if len(values) >= size:
            return values
        return np.concatenate([values, np.zeros(size - len(values))])

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

    def _offset(self, member: str, task_type: str) -> float:
        key = (member, task_type)
        value = self._offsets.get(key)
        if value is None:
            value = self._offsets[key] = float(logit(self._level(member, task_type)))
        return value

    def _prior_mean(self, unit: int, t: int) -> float:
        member = self._unit_keys[unit][0]
        eta = self._offset(member, self._type_keys[t])
        if self.config.share_strength:
            eta += (self._a[unit] if unit < len(self._a) else 0.0)
            eta += (self._b[t] if t < len(self._b) else 0.0)
        return float(expit(eta))

    def _cost_and_duration(self, member: str, task_type: str,
                           tally: _Tally) -> tuple[float, float]:
        w0 = self.config.estimate_weight
        prior = self.members.get(member, MemberPrior())
        declared = self.task_types.get(task_type, TypePrior()).duration_s
        if declared is None:
            duration = tally.duration_sum / tally.duration_n if tally.duration_n else 0.0
        else:
            duration = (w0 * declared + tally.duration_sum) / (w0 + tally.duration_n)
        cost0 = prior.cost_per_task + prior.cost_per_hour * (declared or 0.0) / 3600.0
        cost = (w0 * cost0 + tally.cost_sum) / (w0 + tally.cost_n)
        return cost, duration
