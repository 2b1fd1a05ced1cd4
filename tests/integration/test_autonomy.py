"""Earned autonomy: promotion and demotion on verified outcomes, each citing evidence."""

from __future__ import annotations

import random

from charter import ManualClock
from charter.autonomy import wilson_bounds
from charter.system import Charter
from tests.integration.reviews import review_work

V = "Vendor::globex"


def work(system: Charter, clock: ManualClock, member: str, outcomes: list[bool]) -> None:
    """Purchase orders done by `member`, each reviewed (verified) with the verdict."""
    review_work(system, member, outcomes, task_type="purchase_order", subject=V,
                reviewer="james.liu", clock=clock)


def level(system: Charter, member: str) -> str:
    decision = system.authorize(member, "purchase.create", V, {"amount": 500})
    if decision.outcome == "escalate":
        return "supervised"
    return "notify" if decision.notify else "autonomous"


def changes(system: Charter, member: str) -> list[tuple[str, str, str]]:
    return [(e.kind, e.payload["from"], e.payload["to"])
            for e in system.events(subject=f"member:{member}")
            if e.kind.startswith("autonomy.") and e.payload]


def test_wilson_bounds():
    assert wilson_bounds(0, 0) == (0.0, 1.0)
    lower, upper = wilson_bounds(97, 100)
    assert 0.91 < lower < 0.92 and 0.98 < upper < 0.99
    lower, upper = wilson_bounds(60, 100)
    assert upper < 0.7


def test_a_reliable_agent_is_promoted_then_demoted_when_it_slips(acme: Charter,
                                                                   clock: ManualClock):
    rng = random.Random(7)
    assert level(acme, "buyer-bot-2") == "supervised"  # declared start; ceiling autonomous
    work(acme, clock, "buyer-bot-2", [rng.random() < 0.97 for _ in range(120)])
    assert changes(acme, "buyer-bot-2") == [
        ("autonomy.promoted", "supervised", "notify"),
        ("autonomy.promoted", "notify", "autonomous")]
    assert level(acme, "buyer-bot-2") == "autonomous"
    promoted = [e.payload for e in acme.events(kind="autonomy.promoted") if e.payload]
    for evidence in (p["evidence"] for p in promoted):
        assert evidence["n"] >= 20 and evidence["lower"] >= evidence["threshold"]
    assert all("lower Wilson bound" in p["because"] for p in promoted)
    work(acme, clock, "buyer-bot-2", [rng.random() < 0.6 for _ in range(80)])
    demoted = [e.payload for e in acme.events(kind="autonomy.demoted") if e.payload]
    assert demoted and demoted[0]["from"] == "autonomous"
    assert demoted[0]["evidence"]["upper"] < demoted[0]["evidence"]["threshold"]
    assert "upper Wilson bound" in demoted[0]["because"]
    assert level(acme, "buyer-bot-2") != "autonomous"


def test_an_unreliable_agent_is_never_promoted(acme: Charter, clock: ManualClock):
    rng = random.Random(11)
    work(acme, clock, "buyer-bot-2", [rng.random() < 0.6 for _ in range(120)])
    assert changes(acme, "buyer-bot-2") == []
    assert level(acme, "buyer-bot-2") == "supervised"


def test_self_reports_do_not_earn_autonomy(acme: Charter, clock: ManualClock):
    for _ in range(40):
        task = acme.submit_task("purchase_order", V, requester="james.liu")
        acme.assign_task(task.id, "buyer-bot-2", actor="james.liu")
        claim = acme.claim_next("buyer-bot-2")
        assert claim is not None
        acme.complete_task(task.id, member="buyer-bot-2", fencing=claim.fencing)
    assert changes(acme, "buyer-bot-2") == []
