"""Off-policy estimates checked against running the candidate on the same workload.

The workload is built from `tests/data/routing-table.csv`: LLMRouterBench's published
accuracy and cost per task of 13 models on 9 benchmark datasets (Li et al.,
arXiv:2601.07206, Tables 9 and 10). A task is a dataset; picking a model for it
succeeds with the model's accuracy there; its utility is success · 1 - cost (value 1,
λ_cost 1).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from charter.errors import InvalidInput
from charter.offpolicy import (
    choice_terms,
    doubly_robust,
    effective_records,
    importance_weights,
    recorded_utility,
    self_normalised_ips,
)

TABLE = Path(__file__).resolve().parent.parent / "data" / "routing-table.csv"
TASKS = 5000
EXPLORE = 0.3


def _table() -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and cost per task, one row per dataset, one column per model."""
    with TABLE.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    models = sorted({row["agent"] for row in rows})
    datasets = sorted({row["category"] for row in rows})
    accuracy = np.full((len(datasets), len(models)), np.nan)
    cost = np.full_like(accuracy, np.nan)
    for row in rows:
        at = datasets.index(row["category"]), models.index(row["agent"])
        accuracy[at] = float(row["accuracy"])
        cost[at] = float(row["cost_usd_per_task"])
    return accuracy, cost


ACCURACY, COST = _table()
UTILITY = ACCURACY - COST  # expected utility of each model on each dataset


def test_the_table_is_complete():
    assert ACCURACY.shape == (9, 13)
    assert not np.isnan(ACCURACY).any() and not np.isnan(COST).any()
    assert ((ACCURACY >= 0) & (ACCURACY <= 1)).all() and (COST > 0).all()


class Workload:
    """Seeded tasks, each with its dataset and its luck (the same for whoever does it:
    success when luck < the model's accuracy), recorded under an epsilon-greedy policy
    that mostly sends everything to one model."""

    def __init__(self, seed: int, tasks: int = TASKS) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        datasets, models = UTILITY.shape
        self.dataset = self.rng.integers(datasets, size=tasks)
        self.luck = self.rng.random(tasks)
        favourite = int(np.argmax(UTILITY.mean(axis=0)))
        self.behaviour = np.full((tasks, models), EXPLORE / models)
        self.behaviour[:, favourite] += 1 - EXPLORE
        self.chosen = np.array([self.rng.choice(models, p=p) for p in self.behaviour])
        self.rewards = self.utility_of(self.chosen)
        self.propensity = self.behaviour[np.arange(tasks), self.chosen]
        self.predicted = self._online_model()

    def utility_of(self, models: np.ndarray) -> np.ndarray:
        success = self.luck < ACCURACY[self.dataset, models]
        result: np.ndarray = success - COST[self.dataset, models]
        return result

    def _online_model(self) -> np.ndarray:
        """Each task's predicted utility per model: the mean of the utilities recorded
        before it on its dataset, starting from 0.5 (it uses nothing later)."""
        datasets, models = UTILITY.shape
        total, seen = np.zeros((datasets, models)), np.zeros((datasets, models))
        predicted = np.empty((len(self.dataset), models))
        for i, (dataset, model) in enumerate(zip(self.dataset, self.chosen, strict=True)):
            predicted[i] = (total[dataset] + 0.5) / (seen[dataset] + 1.0)
            total[dataset, model] += self.rewards[i]
            seen[dataset, model] += 1.0
        return predicted

    def estimate(self, candidate: np.ndarray):
        """Off-policy estimates for a candidate given as probabilities per dataset."""
        per_task = candidate[self.dataset]
        terms = np.array([choice_terms(p, r, a) for p, r, a in
                          zip(per_task, self.predicted, self.chosen, strict=True)])
        target, predicted, direct = terms.T
        return (doubly_robust(self.rewards, target, self.propensity, predicted, direct),
                self_normalised_ips(self.rewards, target, self.propensity))

    def run(self, candidate: np.ndarray) -> float:
        """Run the candidate on the same tasks (same luck): its mean utility."""
        per_task = candidate[self.dataset]
        rng = np.random.default_rng(self.seed + 1)
        picks = np.array([rng.choice(len(p), p=p) for p in per_task])
        return float(np.mean(self.utility_of(picks)))


def _one_hot(choices: np.ndarray) -> np.ndarray:
    return np.eye(UTILITY.shape[1])[choices]


CANDIDATES = {
    "best model per dataset": _one_hot(np.argmax(UTILITY, axis=1)),
    "best single model": _one_hot(np.full(UTILITY.shape[0], np.argmax(UTILITY.mean(axis=0)))),
    "uniformly random": np.full(UTILITY.shape, 1 / UTILITY.shape[1]),
}


@pytest.fixture(scope="module")
def workload() -> Workload:
    return Workload(seed=20261127)


@pytest.mark.parametrize("name", list(CANDIDATES))
def test_the_measured_utility_lies_in_the_estimated_interval(workload: Workload, name: str):
    candidate = CANDIDATES[name]
    measured = workload.run(candidate)
    expected = float(np.mean(np.sum(candidate[workload.dataset] * UTILITY[workload.dataset],
                                    axis=1)))
    span = float(UTILITY.max() - UTILITY.min())
    for estimate in workload.estimate(candidate):
        assert estimate.low <= measured <= estimate.high, (name, estimate, measured)
        assert estimate.low <= expected <= estimate.high, (name, estimate, expected)
        assert estimate.high - estimate.low < 0.2 * span, (name, estimate)
        assert estimate.records == TASKS


def test_the_estimates_tell_the_candidates_apart(workload: Workload):
    """The estimates are not the recorded utility in disguise: random choice does worse
    than the recorded choices (the intervals do not meet), the best model per dataset
    better."""
    recorded = recorded_utility(workload.rewards)
    best, _ = workload.estimate(CANDIDATES["best model per dataset"])
    random, _ = workload.estimate(CANDIDATES["uniformly random"])
    assert random.high < recorded.low
    assert recorded.value < best.value


def test_reweighting_the_recorded_strategy_gives_back_its_utility(workload: Workload):
    target = workload.propensity
    plain = recorded_utility(workload.rewards)
    weighted = self_normalised_ips(workload.rewards, target, workload.propensity)
    assert weighted.value == pytest.approx(plain.value)
    assert weighted.effective_records == pytest.approx(TASKS)
    assert plain.low < plain.value < plain.high


def test_a_reward_model_that_predicts_the_outcomes_needs_no_correction():
    rewards = np.array([1.0, 0.0, 1.0, 0.5])
    target = np.array([0.0, 1.0, 0.5, 0.25])
    propensity = np.array([0.5, 0.5, 1.0, 0.25])
    direct = np.array([0.2, 0.4, 0.6, 0.8])
    estimate = doubly_robust(rewards, target, propensity, rewards, direct)
    assert estimate.value == pytest.approx(0.5)
    assert estimate.high - estimate.low == pytest.approx(
        2 * 1.959964 * np.std(direct, ddof=1) / 2, rel=1e-5)
    wrong = doubly_robust(rewards, target, propensity, rewards + 0.1, direct)
    assert wrong.value == pytest.approx(0.5 - 0.1 * np.mean(target / propensity))


def test_weights_and_choice_terms():
    weights = importance_weights(np.array([1.0, 0.0, 0.5]), np.array([0.5, 0.2, 0.5]))
    assert weights.tolist() == [2.0, 0.0, 1.0]
    assert effective_records(weights) == pytest.approx(9 / 5)
    target, predicted, direct = choice_terms(np.array([0.25, 0.75]), np.array([1.0, 3.0]), 0)
    assert (target, predicted, direct) == (0.25, 1.0, 2.5)


def test_a_candidate_that_never_agrees_has_no_self_normalised_estimate():
    estimate = self_normalised_ips(np.array([1.0, 0.0]), np.zeros(2), np.array([0.5, 1.0]))
    assert np.isnan(estimate.value) and estimate.effective_records == 0


@pytest.mark.parametrize("propensity", [0.0, 1.5, -0.1])
def test_recorded_probabilities_must_be_probabilities(propensity: float):
    with pytest.raises(InvalidInput):
        importance_weights(np.array([1.0]), np.array([propensity]))


def test_one_record_is_not_enough():
    with pytest.raises(InvalidInput, match="at least 2"):
        recorded_utility(np.array([1.0]))
    with pytest.raises(InvalidInput, match="one entry per record"):
        self_normalised_ips(np.ones(3), np.ones(2), np.ones(3))
