"""Evaluators: a fair sample of completed tasks is reviewed, only the evaluator (or whom
the policies allow) reviews, once; and a member whose self-reports reviews contradict is
believed less."""

from __future__ import annotations

from copy import deepcopy
from pathlib import Path
from typing import Any

import pytest
import yaml
from scipy.stats import binomtest  # type: ignore[import-untyped, unused-ignore]

from charter import tasks
from charter.errors import Conflict, Forbidden, InvalidInput, NotFound
from charter.learning import Learner
from charter.outcomes import engine_version
from charter.system import Charter

PURCHASE = {"vendor": "Vendor::globex", "amount": 300}
REVIEW_POLICY = """@id("vendor-managers-review-purchases")
permit (principal in Role::"vendor_manager", action == Action::"purchase.review",
        resource);
"""


def evaluation_org(workspace: Path, evaluation: dict[str, Any]) -> Path:
    """The example org with purchase orders reviewed as `evaluation` says, and an action
    that lets vendor managers review them too."""
    path = workspace / "charter.yaml"
    org = yaml.safe_load(path.read_text())
    org["actions"]["purchase.review"] = {"description": "Review a purchase order",
                                         "resources": ["Vendor"]}
    for task_type in org["task_types"]:
        if task_type["id"] == "purchase_order":
            task_type["evaluation"] = evaluation
    path.write_text(yaml.safe_dump(org, sort_keys=False))
    (workspace / "policies" / "reviews.cedar").write_text(REVIEW_POLICY)
    return path


def done_task(system: Charter, member: str) -> str:
    """A purchase order `member` completed (reporting success)."""
    task = system.submit_task("purchase_order", "vendor:globex", PURCHASE,
                              requester="james.liu")
    system.assign_task(task.id, member, actor="james.liu")
    claim = system.claim_next(member)
    assert claim is not None
    system.complete_task(task.id, member=member, fencing=claim.fencing)
    return task.id


def done_tasks(system: Charter, member: str, count: int) -> list[str]:
    """`count` purchase orders `member` completed: queued, assigned and claimed in one
    transaction (faster), each completed by the verb that samples it."""
    with system.store.transaction() as conn:
        for _ in range(count):
            task = tasks.submit(conn, system.ledger, system.clock, system.org,
                                task_type="purchase_order", subject="vendor:globex",
                                payload=PURCHASE, requester="james.liu")
            tasks.assign(conn, system.ledger, system.org, task.id, member, actor="james.liu")
        claims = [tasks.claim_next(conn, system.ledger, system.clock, system.org, member)
                  for _ in range(count)]
    for claim in claims:
        assert claim is not None
        system.complete_task(claim.task.id, member=member, fencing=claim.fencing)
    return [claim.task.id for claim in claims if claim is not None]


def test_a_fifth_of_autonomous_work_is_sampled(acme: Charter, workspace: Path):
    acme.load_org(evaluation_org(workspace, {
        "evaluator": "james.liu",
        "sample": {"autonomous": 0.2, "notify": 0.5, "supervised": 1.0}}))
    done = [task for _ in range(20) for task in done_tasks(acme, "buyer-bot-1", 25)]
    sampled = acme.reviews(evaluator="james.liu", status="pending")
    assert {r.task_id for r in sampled} <= set(done)
    assert {(r.member, r.level, r.rate) for r in sampled} == {
        ("buyer-bot-1", "autonomous", 0.2)}
    assert binomtest(len(sampled), len(done), 0.2).pvalue > 0.001
    supervised = [done_task(acme, "buyer-bot-2") for _ in range(5)]  # rate 1.0
    assert {r.task_id for r in acme.reviews(member="buyer-bot-2")} == set(supervised)


def test_only_the_evaluator_or_whom_the_policies_allow_reviews_once(acme: Charter,
                                                                     workspace: Path):
    acme.load_org(evaluation_org(workspace, {"evaluator": "james.liu", "sample": 1.0,
                                             "action": "purchase.review"}))
    first, second = done_task(acme, "buyer-bot-1"), done_task(acme, "buyer-bot-1")
    waiting = acme.reviews(evaluator="james.liu", status="pending")
    assert {review.task_id for review in waiting} == {first, second}
    with pytest.raises(Forbidden, match="own work"):
        acme.review_task(first, by="buyer-bot-1", success=True)
    with pytest.raises(Forbidden, match=r"only james\.liu"):
        acme.review_task(first, by="tom.brennan", success=True)
    with pytest.raises(InvalidInput):
        acme.review_task(first, by="james.liu", success=True, quality=1.5)
    assert acme.reviews(status="pending") == waiting  # nothing changed

    done = acme.review_task(first, by="james.liu", success=False, quality=0.2,
                            comment="wrong SKU ordered")
    assert (done.status, done.success, done.agreed, done.reviewed_by) == (
        "done", False, False, "james.liu")
    with pytest.raises(Conflict, match="already reviewed"):
        acme.review_task(first, by="sofia.alvarez", success=True)
    by_policy = acme.review_task(second, by="sofia.alvarez", success=True)
    assert by_policy.agreed is True

    verified = [o for o in acme.outcomes(member="buyer-bot-1") if o.verified]
    assert {(o.task_id, o.success, o.reported_by) for o in verified} == {
        (first, False, "james.liu"), (second, True, "sofia.alvarez")}
    [recorded, _] = acme.events(kind="review.recorded")
    assert recorded.payload is not None
    assert (recorded.payload["comment"], recorded.payload["self_reported"]) == (
        "wrong SKU ordered", True)
    unsampled = acme.submit_task("purchase_order", "vendor:globex", PURCHASE,
                                 requester="james.liu")
    with pytest.raises(NotFound, match="not sampled"):
        acme.review_task(unsampled.id, by="james.liu", success=True)

    before = acme.reviews()
    acme.rebuild_read_tables()
    assert acme.reviews() == before


def test_self_reports_that_reviews_contradict_count_less(acme: Charter, workspace: Path):
    acme.load_org(evaluation_org(workspace, {"evaluator": "james.liu", "sample": 1.0}))
    liar, honest, kind = "buyer-bot-1", "buyer-bot-2", "purchase_order"
    for member, verdict in ((liar, False), (honest, True)):
        for _ in range(10):
            acme.review_task(done_task(acme, member), by="james.liu", success=verdict)

    records = {m: next(r for r in acme.track_record(m) if r.task_type == kind)
               for m in (liar, honest)}
    assert (records[liar].reviewed, records[liar].agreed) == (10, 0)
    assert (records[honest].reviewed, records[honest].agreed) == (10, 10)
    assert records[honest].self_report_weight == pytest.approx(0.3)
    assert records[liar].self_report_weight == pytest.approx(0.3 * 2 / 12)
    learner = acme.dispatcher().learner
    assert learner.self_report_weight(liar, kind) == pytest.approx(0.3 * 2 / 12)
    assert learner.self_report_weight(honest, kind) == pytest.approx(0.3)

    def move(member: str, *, verified: bool = False, believed: bool = False) -> float:
        """How far one more reported success moves the member's posterior mean (with
        `believed`, as if every review had agreed with its self-reports)."""
        copy: Learner = deepcopy(learner)
        if believed:
            copy.set_agreement(member, kind, 10, 10)
        copy.refit()
        version = engine_version(acme.org, member)
        before = copy.mean(member, version, kind)
        copy.observe(member, version, kind, True, verified=verified)
        return copy.mean(member, version, kind) - before

    # The liar's posterior sits low, where any evidence moves it more; so each is
    # compared on its own posterior: with the honest member's record of agreement, and
    # against what a verified success would do.
    assert 0 < move(liar) < move(liar, believed=True) / 4
    assert move(honest) == pytest.approx(move(honest, believed=True))
    ratio = {m: move(m) / move(m, verified=True) for m in (liar, honest)}
    assert ratio[liar] < ratio[honest] / 4

    # a dispatch's explanation says what the chosen member's self-reports count for
    task = acme.submit_task(kind, "vendor:globex", PURCHASE, requester="james.liu",
                            dispatch=True)
    assert f"self-reports of {task.assignee} on {kind} count" in acme.explain_task(task.id)
    # the weight survives a new process: it is rebuilt from the reviews
    acme._dispatcher = None
    assert acme.dispatcher().learner.self_report_weight(liar, kind) == pytest.approx(0.05)
