"""The allocator: each strategy's pick, pick probabilities, explanations, batches."""

from __future__ import annotations

import numpy as np
import pytest

from charter.allocator import Allocator, Candidate, NoEligibleMember, TaskSpec, best_matching
from charter.errors import InvalidInput
from charter.learning import Learner, LearnerConfig, MemberPrior, TypePrior
from charter.strategies import STRATEGIES, GreedyStrategy, Pick, Slate, register_strategy

TASK = TaskSpec("t", 10.0, "task-1")


def learner() -> Learner:
    """ann: declared best, but proven poor; bob: proven good; cal: cheapest, unproven."""
    members = {"ann": MemberPrior({"s": 0.9}, cost_per_task=1.0),
               "bob": MemberPrior({"s": 0.5}, cost_per_task=1.0),
               "cal": MemberPrior({"s": 0.5}, cost_per_task=0.1)}
    known = Learner(members, {"t": TypePrior(("s",))}, LearnerConfig(share_strength=False))
    for n in range(60):
        known.observe("ann", "", "t", n % 5 == 0, verified=True, cost=1.0)
        known.observe("bob", "", "t", n % 10 != 0, verified=True, cost=1.0)
    return known


EVERYONE = [Candidate("ann"), Candidate("bob"), Candidate("cal")]


def test_learned_picks_the_best_expected_utility_almost_always():
    allocator = Allocator(learner(), rng=1)
    choice = allocator.choose(TASK, EVERYONE)
    assert (choice.member, choice.strategy) == ("bob", "learned")
    assert choice.probability > 0.9
    assert choice.terms.utility == pytest.approx(choice.terms.p_success * 10.0 - 1.0)
    picks = {allocator.choose(TASK, EVERYONE).member for _ in range(50)}
    assert "ann" not in picks


def test_learned_explores_candidates_it_knows_little_about():
    known = Learner({m: MemberPrior({"s": 0.5}) for m in ("ann", "bob")},
                    {"t": TypePrior(("s",))}, LearnerConfig(share_strength=False))
    allocator = Allocator(known, rng=2)
    picks = [allocator.choose(TASK, [Candidate("ann"), Candidate("bob")]).member
             for _ in range(40)]
    assert 5 < picks.count("ann") < 35


@pytest.mark.parametrize(("strategy", "member"), [
    ("greedy", "bob"), ("cheapest", "cal"), ("best_prior", "ann")])
def test_deterministic_strategies(strategy: str, member: str):
    choice = Allocator(learner(), strategy=strategy, rng=0).choose(TASK, EVERYONE)
    assert (choice.member, choice.probability, choice.strategy) == (member, 1.0, strategy)
    assert sum(r.probability for r in choice.runners_up) == 0.0


def test_round_robin_takes_turns_per_task_type():
    allocator = Allocator(learner(), strategy="round_robin")
    picks = [allocator.choose(TASK, EVERYONE).member for _ in range(4)]
    assert picks == ["ann", "bob", "cal", "ann"]
    # a member missing from the eligible set is skipped, the rotation goes on
    assert allocator.choose(TASK, [Candidate("ann"), Candidate("cal")]).member == "cal"
    other = TaskSpec("u", 1.0)
    assert allocator.choose(other, EVERYONE).member == "ann"


def test_random_picks_uniformly():
    allocator = Allocator(learner(), strategy="random", rng=3)
    choices = [allocator.choose(TASK, EVERYONE) for _ in range(300)]
    assert all(c.probability == pytest.approx(1 / 3) for c in choices)
    counts = {m: sum(c.member == m for c in choices) for m in ("ann", "bob", "cal")}
    assert all(70 < n < 130 for n in counts.values())


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_pick_probabilities_sum_to_at_most_one(strategy: str):
    allocator = Allocator(learner(), strategy=strategy, rng=4)
    for _ in range(5):
        choice = allocator.choose(TASK, [*EVERYONE, Candidate.ineligible("dan", "busy")])
        total = choice.probability + sum(r.probability for r in choice.runners_up)
        assert choice.probability > 0.0 and total <= 1.0 + 1e-9
        assert all(r.probability == 0.0 for r in choice.runners_up if r.terms is None)


def test_explain_names_the_winner_and_why_runners_up_lost():
    candidates = [*EVERYONE, Candidate.ineligible("dan", "lacks skill s")]
    choice = Allocator(learner(), strategy="greedy").choose(TASK, candidates)
    text = choice.explain()
    lines = text.splitlines()
    assert "task-1" in lines[0] and "→ bob" in lines[0] and "greedy" in lines[0]
    assert f"utility {choice.terms.utility:.4g} = p(success)" in lines[1]
    assert "λ_cost" in lines[1] and "cost" in lines[1]
    runners = [line for line in lines if line.startswith("  - ")]
    assert len(runners) == 3
    assert any(line.startswith("  - ann:") and "lower expected utility" in line
               for line in runners)
    assert any(line.startswith("  - dan:") and "ineligible: lacks skill s" in line
               for line in runners)
    assert [r.member for r in choice.runners_up][-1] == "dan"


def test_explain_says_when_exploration_beat_a_better_candidate():
    allocator = Allocator(learner(), rng=5)
    slate = allocator.slate(TASK, EVERYONE)
    strategy = allocator.strategy()
    pick = Pick(2, np.array([0.1, 0.8, 0.1]))
    assert "exploration" in strategy.why_lost(slate, pick, 1)
    assert "lower expected utility" in strategy.why_lost(slate, pick, 0)


def test_nobody_eligible_is_an_error_with_the_reasons():
    with pytest.raises(NoEligibleMember) as raised:
        Allocator(learner()).choose(TASK, [Candidate.ineligible("ann", "at capacity (1)")])
    assert raised.value.status == 409 and "at capacity" in str(raised.value.details)


def test_strategies_are_pluggable_by_name():
    class Last(GreedyStrategy):
        name = "last"

        def pick(self, slate: Slate) -> Pick:
            index = len(slate.members) - 1
            return Pick(index, np.eye(len(slate.members))[index])

    register_strategy("last", Last)
    try:
        assert Allocator(learner(), strategy="last").choose(TASK, EVERYONE).member == "cal"
    finally:
        del STRATEGIES["last"]
    with pytest.raises(InvalidInput, match="no allocation strategy `nope`"):
        Allocator(learner(), strategy="nope")


def batch_learner() -> Learner:
    members = {m: MemberPrior({"s": level}) for m, level in
               (("ann", 0.9), ("bob", 0.6), ("cal", 0.3))}
    return Learner(members, {"t": TypePrior(("s",))}, LearnerConfig(share_strength=False))


def everyone(task: TaskSpec) -> list[Candidate]:
    return [Candidate(m) for m in ("ann", "bob", "cal")]


def test_batch_gives_scarce_slots_to_higher_priority_first():
    tasks = [TaskSpec("t", 1000.0, "rich-low", priority=0),
             TaskSpec("t", 1.0, "urgent-a", priority=5),
             TaskSpec("t", 1.0, "urgent-b", priority=5)]
    result = Allocator(batch_learner(), strategy="greedy").assign_batch(
        tasks, {"ann": 1, "bob": 1}, everyone)
    assert sorted(a.task.id for a in result.assignments) == ["urgent-a", "urgent-b"]
    assert [t.id for t in result.unassigned] == ["rich-low"]


def test_batch_prefers_earlier_deadlines_within_a_priority():
    tasks = [TaskSpec("t", 5.0, "late", deadline=200.0),
             TaskSpec("t", 5.0, "none"),
             TaskSpec("t", 5.0, "soon", deadline=100.0)]
    result = Allocator(batch_learner(), strategy="greedy").assign_batch(
        tasks, {"ann": 1, "bob": 1}, everyone)
    assert sorted(a.task.id for a in result.assignments) == ["late", "soon"]


def test_batch_maximises_utility_and_fits_eligibility():
    tasks = [TaskSpec("t", 1.0, "small"), TaskSpec("t", 100.0, "big")]
    result = Allocator(batch_learner(), strategy="greedy").assign_batch(
        tasks, {"ann": 1, "bob": 1, "cal": 0}, everyone)
    assert {a.task.id: a.member for a in result.assignments} == {"big": "ann", "small": "bob"}
    # the urgent task can go anywhere, the other only to ann: both get done
    only_ann = {"urgent": everyone(TASK), "picky": [Candidate("ann"),
                                                    Candidate.ineligible("bob", "no")]}
    tasks = [TaskSpec("t", 1.0, "urgent", priority=9), TaskSpec("t", 1.0, "picky")]
    result = Allocator(batch_learner(), strategy="greedy").assign_batch(
        tasks, {"ann": 1, "bob": 1}, lambda task: only_ann[task.id])
    assert {a.task.id: a.member for a in result.assignments} == {"urgent": "bob",
                                                                 "picky": "ann"}


def test_batch_fills_each_members_free_capacity():
    tasks = [TaskSpec("t", 1.0, f"t{n}") for n in range(5)]
    result = Allocator(batch_learner(), rng=6).assign_batch(tasks, {"ann": 2, "bob": 1},
                                                            everyone)
    members = sorted(a.member for a in result.assignments)
    assert members == ["ann", "ann", "bob"] and len(result.unassigned) == 2
    assert all(0.0 < a.probability <= 1.0 for a in result.assignments)
    empty = Allocator(batch_learner()).assign_batch(tasks, {}, everyone)
    assert empty.assignments == () and len(empty.unassigned) == 5


@pytest.mark.parametrize("seed", range(12))
def test_batch_matching_equals_one_column_per_slot_assignment(seed):
    """Members with capacities give the same best total as `linear_sum_assignment` over
    one column per free slot, with pairs not allowed and several urgency classes."""
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(seed)
    tasks, members = int(rng.integers(1, 40)), int(rng.integers(1, 12))
    score = rng.random((tasks, members))
    score[rng.random((tasks, members)) < 0.3] = np.nan
    capacity = rng.integers(0, 4, size=members).astype(float)
    bonus = (tasks + 1.0) * (1.0 + rng.integers(3, size=tasks))
    pairs = best_matching(score, bonus, capacity)

    low, high = np.nanmin(score), np.nanmax(score)
    weight = np.where(np.isnan(score), 0.0, (score - low) / (high - low) + bonus[:, None])
    slots = np.repeat(np.arange(members), capacity.astype(int))
    rows, cols = linear_sum_assignment(weight[:, slots], maximize=True)
    expected = sum(weight[r, slots[c]] for r, c in zip(rows, cols, strict=True)
                   if not np.isnan(score[r, slots[c]]))

    assert sum(weight[r, c] for r, c in pairs) == pytest.approx(expected, rel=1e-12)
    assert len({r for r, _ in pairs}) == len(pairs)  # a task goes to one member at most
    taken = np.bincount([c for _, c in pairs], minlength=members)
    assert (taken <= capacity).all()
    assert all(not np.isnan(score[r, c]) for r, c in pairs)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_assigns_a_batch_within_capacity_and_eligibility(strategy):
    tasks = [TaskSpec("t", float(1 + n % 3), f"t{n}", priority=n % 2) for n in range(12)]
    only_ann_bob = {f"t{n}": [Candidate("ann"), Candidate("bob"),
                              Candidate.ineligible("cal", "no")] for n in range(0, 12, 4)}
    result = Allocator(batch_learner(), strategy=strategy, rng=3).assign_batch(
        tasks, {"ann": 3, "bob": 2, "cal": 4}, lambda task: only_ann_bob.get(task.id,
                                                                           everyone(task)))
    taken = [a.member for a in result.assignments]
    assert len(taken) == 9 and len(result.unassigned) == 3
    assert taken.count("ann") <= 3 and taken.count("bob") <= 2 and taken.count("cal") <= 4
    assert all(a.member != "cal" for a in result.assignments if a.task.id in only_ann_bob)
    assert {t.priority for t in result.unassigned} == {0}  # the urgent tasks all got a slot
    assert all(0.0 < a.probability <= 1.0 for a in result.assignments)


def test_beta_draws_have_the_beta_mean_and_variance_and_never_nan():
    from charter.strategies import _beta_draws

    alpha, beta = np.array([2.0, 30.0, 0.5]), np.array([8.0, 3.0, 0.5])
    drawn = _beta_draws(np.random.default_rng(4), alpha, beta, 40_000)
    total = alpha + beta
    assert drawn.mean(axis=0) == pytest.approx(alpha / total, abs=0.005)
    assert drawn.var(axis=0) == pytest.approx(alpha * beta / (total**2 * (total + 1)),
                                              rel=0.05)
    assert ((drawn >= 0.0) & (drawn <= 1.0)).all()
    tiny = _beta_draws(np.random.default_rng(5), np.array([1e-3]), np.array([1e-3]), 1_000)
    assert not np.isnan(tiny).any()
