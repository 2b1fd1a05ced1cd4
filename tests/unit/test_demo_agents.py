"""The demo's simulated agents: real engines run by a real worker, acting through the
action gate and paying from their budgets."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from charter import ManualClock, Settings, open_charter
from charter.demo.truth import HiddenTable, Talent
from charter.demo.workspace import copy_org
from charter.demo.world import World, use_world
from charter.system import Charter
from charter.worker import Worker

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "acme"
START = datetime(2026, 10, 1, 9, tzinfo=UTC)


class Fixed(HiddenTable):
    """Every agent does as told, whatever the seed says."""

    def __init__(self, talent: Talent) -> None:
        super().__init__(1)
        self.talent = talent

    def agent(self, member: str, target: str, task_type: str, day: float) -> Talent:
        return self.talent


@pytest.fixture
def system(tmp_path: Path) -> Iterator[Charter]:
    org = copy_org(EXAMPLE, tmp_path / "org")
    with open_charter(f"sqlite:///{tmp_path / 'charter.db'}", org, clock=ManualClock(START),
                      settings=Settings(secret="test-secret")) as system:
        yield system


FLAWLESS = Talent(1.0, 0.03, 3, 1.0)


def world(talent: Talent = FLAWLESS) -> World:
    made = World(1, START, Fixed(talent))
    use_world(made)
    return made


def refund(system: Charter, amount: int, ref: str = "RFD-0001") -> str:
    task = system.submit_task("refund", "customer:c-0001", {"ref": ref, "amount": amount},
                              requester="aisha.mensah")
    system.assign_task(task.id, "refund-bot", actor="aisha.mensah")
    return task.id


def work(system: Charter, member: str = "refund-bot") -> None:
    asyncio.run(Worker(system, member, poll_seconds=0).run(until_idle=True))


def committed(system: Charter, envelope: str) -> float:
    return next(float(e.committed) for e in system.budget_usage() if e.id == envelope)


def test_an_allowed_refund_is_done_once_and_paid_from_the_agents_envelope(system: Charter):
    truth = world()
    task_id = refund(system, 50)
    work(system)
    assert system.task(task_id).state == "done"
    [done] = system.performed_actions(task_id=task_id)
    assert (done.action, done.resource) == ("refund.issue", "Customer::c-0001")
    assert committed(system, "refund-bot-refunds") == 50
    assert truth.result(task_id) == ("refund-bot", True)


def test_a_refund_above_the_agents_limit_waits_for_its_manager(system: Charter):
    world()
    task_id = refund(system, 500)  # refund-bot may refund up to 200
    work(system)
    assert system.task(task_id).state == "awaiting_approval"
    [approval] = system.approvals(status="pending")
    assert approval.approvers == ("ben.kowalski",)
    system.approve(approval.id, approver="ben.kowalski")
    work(system)
    assert system.task(task_id).state == "done"
    assert committed(system, "refund-bot-refunds") == 500


def test_over_budget_the_owner_is_asked_and_the_attempt_fails(system: Charter):
    truth = world()
    system.reserve_spend("refund-bot", 14990, "earlier refunds")
    task_id = refund(system, 50)
    work(system)
    failures = [e.payload or {} for e in system.events(subject=f"task:{task_id}",
                                                       kind="task.attempt_failed")]
    assert failures and "over budget" in failures[0]["reason"]
    assert truth.tally.over_budget
    override = system.approval(truth.tally.over_budget[0])
    assert (override.request["action"], override.approvers) == ("budget.spend",
                                                                ("ben.kowalski",))
    assert not system.performed_actions(task_id=task_id)


def test_a_wrong_result_the_agent_notices_is_reported_as_a_failure(system: Charter):
    world(Talent(0.0, 0.03, 3, candour=1.0))
    task_id = refund(system, 50)
    work(system)
    assert not system.performed_actions(task_id=task_id)
    [outcome] = system.outcomes(member="refund-bot")[:1]
    assert outcome.success is False


def test_the_pricing_agent_proposes_its_price_and_waits_for_approval(system: Charter):
    world()
    task = system.submit_task("price_change", "sku:sku-3", {"ref": "PRC-0001",
                                                            "change_percent": 4},
                              requester="nina.kapoor")
    system.assign_task(task.id, "pricing-bot", actor="nina.kapoor")
    work(system, "pricing-bot")
    [proposal] = system.proposals(subject="Sku::sku-3")
    assert proposal.member == "pricing-bot" and "change_percent" in proposal.value
    assert system.task(task.id).state == "awaiting_approval"  # supervised on price_change
