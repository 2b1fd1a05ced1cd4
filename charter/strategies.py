"""Allocation strategies: how one member is picked among the eligible, by name.

`learned` (the default) is Thompson sampling on expected utility; `greedy` takes the best
posterior mean; `round_robin`, `random`, `cheapest` and `best_prior` are the baselines it
is compared with on the same workload. Register another with `register_strategy`.

Every strategy reports the probability with which it picks each candidate, so that the
recorded choices can later be used to evaluate other strategies off-policy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

import numpy as np

from charter.errors import InvalidInput
from charter.estimates import Estimates
from charter.learning import Learner
from charter.pooling import Array, Index

if TYPE_CHECKING:
    from charter.allocator import TaskSpec


@dataclass(frozen=True)
class Slate:
    """The eligible candidates for one task, with what the learner expects of each."""

    task: TaskSpec
    members: tuple[str, ...]
    versions: tuple[str, ...]
    estimates: Estimates
    learner: Learner
    rng: np.random.Generator
    lambda_cost: float = 1.0
    lambda_time: float = 0.0

    def utility_of(self, p_success: Array) -> Array:
        """Utility `p · value - λ_cost · cost - λ_time · duration` for given success rates."""
        est = self.estimates
        return (p_success * self.task.value - self.lambda_cost * est.cost
                - self.lambda_time * est.duration)

    @cached_property
    def p_success(self) -> Array:
        """Posterior mean success rate of each candidate."""
        return self.estimates.mean

    @cached_property
    def utility(self) -> Array:
        """Expected utility of each candidate under the posterior means."""
        return self.utility_of(self.p_success)


@dataclass(frozen=True)
class Pick:
    """The index picked, every candidate's probability of being picked, and how it was got."""

    index: int
    probabilities: Array
    method: str = "deterministic"


class Strategy(Protocol):
    """How a member is picked. `scores` ranks candidates for batch assignment."""

    name: str
    deterministic: bool

    def pick(self, slate: Slate) -> Pick: ...

    def scores(self, slate: Slate) -> Array: ...

    def probabilities(self, slate: Slate) -> Array: ...

    def why_lost(self, slate: Slate, pick: Pick, loser: int) -> str: ...


def _one_hot(size: int, index: int) -> Array:
    probabilities = np.zeros(size)
    probabilities[index] = 1.0
    return probabilities


def _utility_gap(slate: Slate, pick: Pick, loser: int) -> str:
    u = slate.utility
    return f"lower expected utility: {u[loser]:.4g} < {u[pick.index]:.4g}"


def _beta_draws(rng: np.random.Generator, alpha: Array, beta: Array, rows: int) -> Array:
    """`rows` draws of each Beta(alpha, beta), as X / (X + Y) of Gamma(alpha) and
    Gamma(beta) draws: the same distribution as `Generator.beta`, at about four fifths of
    its cost for arrays of parameters."""
    x = rng.standard_gamma(alpha, size=(rows, len(alpha)))
    total = x + rng.standard_gamma(beta, size=(rows, len(beta)))
    # Both draws underflow to 0 only for shapes far below 1; such a draw is the mean.
    mean = np.broadcast_to(alpha / (alpha + beta), total.shape)
    return np.divide(x, total, out=mean.copy(), where=total > 0.0)


class ThompsonStrategy:
    """Thompson sampling on expected utility: draw each candidate's success rate from its
    posterior, pick the best utility. `spread` scales each draw's distance from the mean
    (1 is plain Thompson sampling): plain Thompson sampling over-explores when many
    candidates are nearly as good, and under expected-utility scoring the near misses
    cost little while every trial of a poor candidate costs much."""

    name = "learned"
    deterministic = False

    def __init__(self, draws: int = 200, spread: float = 0.5, budget: int = 8_000) -> None:
        if draws < 1 or spread < 0:
            raise InvalidInput("draws must be ≥ 1 and spread ≥ 0")
        self.draws = draws
        self.spread = spread
        self.budget = budget
        """Draws times candidates in contention, at most: with many candidates the
        probabilities are estimated from fewer draws (never fewer than 20)."""

    def rows_for(self, contenders: int) -> int:
        """How many times a choice among `contenders` candidates in contention repeats
        its draws: `draws`, fewer when the budget asks, never fewer than 20."""
        return max(min(self.draws, self.budget // contenders), min(self.draws, 20))

    def _plausible(self, slate: Slate) -> Index:
        """Candidates that can win a draw: the others would need a 6-sigma draw."""
        u = slate.utility
        reach = 6.0 * self.spread * abs(slate.task.value) * np.sqrt(slate.estimates.variance)
        return np.flatnonzero(u + reach >= np.max(u - reach))

    def _sampled_utility(self, slate: Slate, idx: Index, rows: int) -> Array:
        est = slate.estimates
        alpha, beta, mean = est.alpha[idx], est.beta[idx], slate.p_success[idx]
        # Past 20 pseudo-outcomes each way a Beta is close enough to a normal, whose draws
        # cost a fifth as much.
        exact = np.minimum(alpha, beta) < 20.0
        near = ~exact
        draws = np.empty((rows, len(idx)))
        if near.any():
            sd = np.sqrt(est.variance[idx[near]])
            draws[:, near] = mean[near] + sd * slate.rng.standard_normal((rows, len(sd)))
        if exact.any():
            draws[:, exact] = _beta_draws(slate.rng, alpha[exact], beta[exact], rows)
        p: Array = np.clip(mean + self.spread * (draws - mean), 0.0, 1.0)
        return (p * slate.task.value - slate.lambda_cost * est.cost[idx]
                - slate.lambda_time * est.duration[idx])

    def _draw(self, slate: Slate) -> tuple[int, Array, int]:
        size = len(slate.members)
        if size == 1:
            return 0, np.ones(1), 0
        idx = self._plausible(slate)
        if len(idx) == 1:
            return int(idx[0]), _one_hot(size, int(idx[0])), 0
        rows = self.rows_for(len(idx))
        winners = np.argmax(self._sampled_utility(slate, idx, rows), axis=1)
        probabilities = np.zeros(size)
        probabilities[idx] = np.bincount(winners, minlength=len(idx)) / rows
        # The pick is the first draw, so the member picked always has probability ≥ 1/rows.
        return int(idx[winners[0]]), probabilities, rows

    def pick(self, slate: Slate) -> Pick:
        index, probabilities, rows = self._draw(slate)
        method = (f"estimated from {rows} Thompson draws" if rows
                  else "the only candidate in contention")
        return Pick(index, probabilities, method)

    def scores(self, slate: Slate) -> Array:
        drawn: Array = self.score_rows(slate, 1)[0]
        return drawn

    def score_rows(self, slate: Slate, rows: int) -> Array:
        """`rows` independent draws of `scores` at once, for as many tasks alike in type,
        value and candidates (a batch draws for each group of such tasks in one go)."""
        return self._sampled_utility(slate, np.arange(len(slate.members)), rows)

    def probabilities(self, slate: Slate) -> Array:
        return self._draw(slate)[1]

    def why_lost(self, slate: Slate, pick: Pick, loser: int) -> str:
        u = slate.utility
        if u[loser] < u[pick.index]:
            return _utility_gap(slate, pick, loser)
        return (f"expected utility {u[loser]:.4g} ≥ the winner's {u[pick.index]:.4g}, but it "
                f"lost this Thompson draw (picked with probability "
                f"{pick.probabilities[loser]:.2f}): exploration")


class GreedyStrategy:
    """The best expected utility under the posterior means; no exploration."""

    name = "greedy"
    deterministic = True

    def pick(self, slate: Slate) -> Pick:
        index = int(np.argmax(slate.utility))
        return Pick(index, _one_hot(len(slate.members), index))

    def scores(self, slate: Slate) -> Array:
        return slate.utility

    def probabilities(self, slate: Slate) -> Array:
        return self.pick(slate).probabilities

    def why_lost(self, slate: Slate, pick: Pick, loser: int) -> str:
        if slate.utility[loser] < slate.utility[pick.index]:
            return _utility_gap(slate, pick, loser)
        return "equal expected utility; listed after the winner"


class BestPriorStrategy(GreedyStrategy):
    """The best utility under the declarations alone (skill levels and cost models)."""

    name = "best_prior"

    @staticmethod
    def _prior_utility(slate: Slate) -> Array:
        prior = slate.learner.prior_estimates(slate.task.task_type, slate.members)
        return (prior.mean * slate.task.value - slate.lambda_cost * prior.cost
                - slate.lambda_time * prior.duration)

    def pick(self, slate: Slate) -> Pick:
        index = int(np.argmax(self._prior_utility(slate)))
        return Pick(index, _one_hot(len(slate.members), index))

    def scores(self, slate: Slate) -> Array:
        return self._prior_utility(slate)

    def why_lost(self, slate: Slate, pick: Pick, loser: int) -> str:
        u = self._prior_utility(slate)
        return (f"lower utility under its declared skills and cost: "
                f"{u[loser]:.4g} ≤ {u[pick.index]:.4g}")


class CheapestStrategy(GreedyStrategy):
    """The lowest expected cost (learned where there are outcomes, else declared)."""

    name = "cheapest"

    def pick(self, slate: Slate) -> Pick:
        index = int(np.argmin(slate.estimates.cost))
        return Pick(index, _one_hot(len(slate.members), index))

    def scores(self, slate: Slate) -> Array:
        return -slate.estimates.cost

    def why_lost(self, slate: Slate, pick: Pick, loser: int) -> str:
        cost = slate.estimates.cost
        return f"costlier: {cost[loser]:.4g} ≥ {cost[pick.index]:.4g}"


class RandomStrategy:
    """Uniformly at random among the eligible."""

    name = "random"
    deterministic = False

    def pick(self, slate: Slate) -> Pick:
        size = len(slate.members)
        return Pick(int(slate.rng.integers(size)), np.full(size, 1.0 / size), "uniform")

    def scores(self, slate: Slate) -> Array:
        return slate.rng.random(len(slate.members))

    def probabilities(self, slate: Slate) -> Array:
        return np.full(len(slate.members), 1.0 / len(slate.members))

    def why_lost(self, slate: Slate, pick: Pick, loser: int) -> str:
        size = len(slate.members)
        return f"not drawn (each of the {size} had probability {1 / size:.2f})"


class RoundRobinStrategy:
    """Each task type's eligible members in turn, by member id."""

    name = "round_robin"
    deterministic = True

    def __init__(self) -> None:
        self._last: dict[str, str] = {}

    def _order(self, slate: Slate) -> list[int]:
        """Candidates in rotation order, starting after the member picked last."""
        order = sorted(range(len(slate.members)), key=lambda i: slate.members[i])
        last = self._last.get(slate.task.task_type)
        start = next((n for n, i in enumerate(order) if last is None or slate.members[i] > last),
                     0)
        return order[start:] + order[:start]

    def pick(self, slate: Slate) -> Pick:
        index = self._order(slate)[0]
        self._last[slate.task.task_type] = slate.members[index]
        return Pick(index, _one_hot(len(slate.members), index))

    def scores(self, slate: Slate) -> Array:
        order = self._order(slate)
        scores = np.empty(len(order))
        scores[order] = np.arange(len(order), 0, -1, dtype=float)
        self._last[slate.task.task_type] = slate.members[order[0]]
        return scores

    def probabilities(self, slate: Slate) -> Array:
        return _one_hot(len(slate.members), self._order(slate)[0])

    def why_lost(self, slate: Slate, pick: Pick, loser: int) -> str:
        return "not its turn in the rotation"


STRATEGIES: dict[str, Callable[[], Strategy]] = {
    "learned": ThompsonStrategy,
    "greedy": GreedyStrategy,
    "round_robin": RoundRobinStrategy,
    "random": RandomStrategy,
    "cheapest": CheapestStrategy,
    "best_prior": BestPriorStrategy,
}
"""Strategy factories by name."""


def register_strategy(name: str, factory: Callable[[], Strategy]) -> None:
    """Make a strategy available to allocators by name (replacing one of that name)."""
    STRATEGIES[name] = factory


def make_strategy(name: str) -> Strategy:
    """A new instance of the named strategy."""
    try:
        return STRATEGIES[name]()
    except KeyError:
        raise InvalidInput(f"no allocation strategy `{name}`; known: "
                           f"{', '.join(sorted(STRATEGIES))}") from None
