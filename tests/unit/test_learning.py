"""The learner: posteriors, weights, declared priors, shared strength, engine versions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from charter.learning import Learner, LearnerConfig, MemberPrior, TypePrior
from charter.org import read_org
from charter.pooling import CellData, fit_effects, fit_strength

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "acme" / "charter.yaml"
ISOLATED = LearnerConfig(share_strength=False, prior_strength=4.0)


def plain(config: LearnerConfig = ISOLATED, level: float = 0.5) -> Learner:
    return Learner({"ann": MemberPrior({"s": level}), "bob": MemberPrior({"s": level})},
                   {"t": TypePrior(("s",))}, config)


def test_a_new_cell_starts_at_the_declared_level():
    learner = plain(level=0.8)
    assert learner.mean("ann", "v1", "t") == pytest.approx(0.8)
    low, high = learner.interval("ann", "v1", "t")
    assert low < 0.8 < high


def test_outcomes_update_the_beta_posterior():
    learner = plain()
    for success in (True, True, True, False):
        learner.observe("ann", "v1", "t", success, verified=True)
    # Beta(4 * 0.5 + 3, 4 * 0.5 + 1)
    assert learner.mean("ann", "v1", "t") == pytest.approx(5 / 8)
    assert learner.mean("bob", "v1", "t") == pytest.approx(0.5)


def test_the_interval_narrows_with_evidence():
    learner = plain()
    before = learner.interval("ann", "v1", "t")
    for n in range(200):
        learner.observe("ann", "v1", "t", n % 4 != 0, verified=True)
    low, high = learner.interval("ann", "v1", "t")
    assert high - low < (before[1] - before[0]) / 3
    assert low < learner.mean("ann", "v1", "t") < high


def test_self_reports_weigh_less_than_verified_outcomes():
    learner = plain()
    learner.observe("ann", "v1", "t", True, verified=False)
    learner.observe("bob", "v1", "t", True, verified=True)
    assert learner.mean("ann", "v1", "t") == pytest.approx(2.3 / 4.3)
    assert learner.mean("bob", "v1", "t") == pytest.approx(3 / 5)
    custom = plain(LearnerConfig(share_strength=False, prior_strength=4.0,
                                 self_reported_weight=1.0))
    custom.observe("ann", "v1", "t", True, verified=False)
    assert custom.mean("ann", "v1", "t") == pytest.approx(3 / 5)
    (cell,) = learner.stats("ann")
    assert (cell.outcomes, cell.verified, cell.successes) == (1, 0, pytest.approx(0.3))


def test_self_reports_that_reviews_contradicted_count_less_earlier_ones_too():
    learner = plain()
    for member in ("ann", "bob"):  # the same evidence for both
        for success in (True, True, True, False):
            learner.observe(member, "v1", "t", success, verified=False)
        learner.observe(member, "v1", "t", False, verified=True)
    for _ in range(4):
        learner.observe_review("ann", "t", agreed=True)
        learner.observe_review("bob", "t", agreed=False)
    assert learner.self_report_weight("ann", "t") == pytest.approx(0.3)
    assert learner.self_report_weight("bob", "t") == pytest.approx(0.3 * 2 / 6)
    # bob's four earlier self-reports now count a third as much as ann's
    assert learner.mean("bob", "v1", "t") == pytest.approx((2 + 0.3) / (4 + 1 + 0.4))
    (cell,) = learner.stats("bob")
    assert cell.self_report_weight == pytest.approx(0.1)

    def moved(member: str) -> float:
        before = learner.mean(member, "v1", "t")
        learner.observe(member, "v1", "t", True, verified=False)
        return learner.mean(member, "v1", "t") - before

    honest, liar = moved("ann"), moved("bob")
    assert 0 < liar < honest
    assert learner.agreement("bob", "t") == (4, 0)


def test_priors_aggregate_the_declared_skill_levels():
    members = {"ann": MemberPrior({"a": 0.8, "b": 0.4}), "cat": MemberPrior({})}
    types = {"both": TypePrior(("a", "b")), "one": TypePrior(("a", "z")),
             "free": TypePrior(())}
    mean = Learner(members, types, ISOLATED)
    assert mean.mean("ann", "", "both") == pytest.approx(0.6)
    assert mean.mean("ann", "", "one") == pytest.approx(0.4)  # an undeclared skill is 0
    assert mean.mean("ann", "", "free") == pytest.approx(0.6)
    assert mean.mean("cat", "", "free") == pytest.approx(0.5)  # default_level
    least = Learner(members, types, LearnerConfig(share_strength=False, skill_aggregate="min"))
    assert least.mean("ann", "", "both") == pytest.approx(0.4)
    assert least.mean("ann", "", "one") == pytest.approx(0.02)  # floored, not 0


def test_strength_is_shared_across_task_types():
    types = {t: TypePrior(("s",)) for t in ("a", "b", "c")}
    members = {m: MemberPrior({"s": 0.5}) for m in ("strong", "weak", "new")}
    learner = Learner(members, types, LearnerConfig(refit_every=1))
    for n in range(30):
        learner.observe("strong", "v1", "a", n % 10 != 0, verified=True)
        learner.observe("weak", "v1", "a", n % 10 == 0, verified=True)
        learner.observe("strong", "v1", "b", n % 10 != 0, verified=True)
        learner.observe("weak", "v1", "b", n % 10 == 0, verified=True)
    learner.refit()
    # Nobody has done type c, yet the strong member is expected to do better there.
    assert learner.mean("strong", "v1", "c") > 0.6
    assert learner.mean("weak", "v1", "c") < 0.4
    assert learner.mean("new", "v1", "c") == pytest.approx(0.5, abs=0.1)
    effects = learner.pooled()
    assert effects.members[("strong", "v1")] > 0 > effects.members[("weak", "v1")]


def test_a_hard_type_is_expected_to_be_hard_for_a_newcomer():
    types = {t: TypePrior(("s",)) for t in ("easy", "hard")}
    members = {m: MemberPrior({"s": 0.6}) for m in ("ann", "bob", "new")}
    learner = Learner(members, types, LearnerConfig(refit_every=1))
    for member in ("ann", "bob"):
        for n in range(40):
            learner.observe(member, "v1", "hard", n % 10 == 0, verified=True)
            learner.observe(member, "v1", "easy", n % 10 != 0, verified=True)
    learner.refit()
    assert learner.mean("new", "v1", "hard") < 0.35
    assert learner.mean("new", "v1", "easy") > 0.7
    isolated = Learner(members, types, ISOLATED)
    assert isolated.mean("new", "v1", "hard") == pytest.approx(0.6)


def test_a_new_engine_version_starts_from_a_discounted_copy():
    learner = plain(LearnerConfig(share_strength=False, prior_strength=4.0,
                                  version_discount=0.5))
    for _ in range(10):
        learner.observe("ann", "v1", "t", True, verified=True, cost=2.0)
    learner.start_version("ann", "v2")
    assert learner.mean("ann", "v1", "t") == pytest.approx(12 / 14)
    assert learner.mean("ann", "v2", "t") == pytest.approx(7 / 9)  # 5 of the 10 carried
    cells = {c.version: c for c in learner.stats("ann")}
    assert cells["v2"].outcomes == 0 and cells["v2"].inherited == pytest.approx(5.0)
    assert learner.cost("ann", "v2", "t") == pytest.approx(learner.cost("ann", "v1", "t"),
                                                           rel=0.05)
    learner.observe("ann", "v2", "t", False, verified=True)
    assert learner.mean("ann", "v2", "t") == pytest.approx(7 / 10)
    assert learner.mean("ann", "v1", "t") == pytest.approx(12 / 14)


def test_cost_and_duration_start_from_the_cost_model():
    learner = Learner({"ann": MemberPrior({}, cost_per_task=2.0, cost_per_hour=60.0)},
                      {"t": TypePrior((), duration_s=1800.0)},
                      LearnerConfig(estimate_weight=1.0))
    assert learner.cost("ann", "", "t") == pytest.approx(32.0)
    assert learner.duration("ann", "", "t") == pytest.approx(1800.0)
    learner.observe("ann", "", "t", True, verified=True, cost=10.0, duration_s=600.0)
    assert learner.cost("ann", "", "t") == pytest.approx(21.0)
    assert learner.duration("ann", "", "t") == pytest.approx(1200.0)
    unknown = Learner()
    assert unknown.cost("x", "", "y") == 0.0 and unknown.duration("x", "", "y") == 0.0


def test_sampling_is_seeded_and_follows_the_posterior():
    learner = plain()
    for n in range(50):
        learner.observe("ann", "v1", "t", n % 5 != 0, verified=True)
    draws = [learner.sample(np.random.default_rng(n), "ann", "v1", "t") for n in range(300)]
    assert all(0.0 <= d <= 1.0 for d in draws)
    assert np.mean(draws) == pytest.approx(learner.mean("ann", "v1", "t"), abs=0.02)
    assert (learner.sample(np.random.default_rng(7), "ann", "v1", "t")
            == learner.sample(np.random.default_rng(7), "ann", "v1", "t"))


def test_for_org_takes_priors_from_the_org():
    org = read_org(EXAMPLE)
    learner = Learner.for_org(org)
    task_type = org.task_types["purchase_order"]
    member = next(m for m in org.spec.members if "purchasing" in m.skills)
    assert learner.mean(member.id, "", task_type.id) == pytest.approx(
        member.skills["purchasing"])
    assert learner.duration(member.id, "", task_type.id) == pytest.approx(
        task_type.timeout.total_seconds() / 2)


def test_stats_report_each_cell():
    learner = plain()
    learner.observe("ann", "v1", "t", True, verified=True, cost=1.0, duration_s=5.0)
    learner.observe("bob", "v1", "t", False, verified=False)
    rows = learner.stats()
    assert [(r.member, r.version, r.task_type) for r in rows] == [("ann", "v1", "t"),
                                                                   ("bob", "v1", "t")]
    ann = rows[0]
    assert ann.low < ann.mean < ann.high and ann.duration_s == 5.0
    assert [r.member for r in learner.stats("bob")] == ["bob"]


def test_pooling_recovers_additive_effects():
    rng = np.random.default_rng(0)
    unit_effect, type_effect = np.array([1.0, 0.0, -1.0]), np.array([0.5, -0.5])
    units, types = np.repeat(np.arange(3), 2), np.tile(np.arange(2), 3)
    p = 1 / (1 + np.exp(-(unit_effect[units] + type_effect[types])))
    trials = 2000
    successes = rng.binomial(trials, p).astype(float)
    cells = CellData(units, types, successes, trials - successes, np.zeros(6), 3, 2)
    effects = fit_effects(cells, 3.0, 3.0, iterations=200)
    fitted = effects.unit[units] + effects.type[types]
    assert fitted == pytest.approx(unit_effect[units] + type_effect[types], abs=0.1)
    # Perfectly additive cells: the fitted prior strength runs to its upper bound.
    assert fit_strength(cells, effects, 2.0, 300.0) > 100
