"""The demo's simulated people: they answer approvals in their hours, mostly approving
and catching most wrong results, do the tasks in their queues and review their agents."""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from charter import ManualClock, Settings, open_charter
from charter.demo.people import ON_CALL, People, in_office, office_time
from charter.demo.workspace import copy_org
from charter.demo.world import World, use_world
from charter.system import Charter

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "acme"
START = datetime(2026, 10, 1, 9, tzinfo=UTC)


class Office:
    """A Charter with the demo org, a world and people, and a queue of what they do."""

    def __init__(self, system: Charter, clock: ManualClock) -> None:
        self.system, self.clock = system, clock
        self.world = World(1, START)
        use_world(self.world)
        self.events: list[tuple[datetime, int, Callable[[], None]]] = []
        self.order = itertools.count()
        self.people = People(system, self.world, self.schedule, seed=1)
        self.ran: list[datetime] = []

    def schedule(self, at: datetime, action: Callable[[], None]) -> None:
        heapq.heappush(self.events, (at, next(self.order), action))

    def run(self) -> None:
        while self.events:
            at, _, action = heapq.heappop(self.events)
            self.clock.set(max(at, self.clock.now()))
            self.ran.append(at)
            action()


@pytest.fixture
def office(tmp_path: Path) -> Iterator[Office]:
    org = copy_org(EXAMPLE, tmp_path / "org")
    clock = ManualClock(START)
    with open_charter(f"sqlite:///{tmp_path / 'charter.db'}", org, clock=clock,
                      settings=Settings(secret="test-secret")) as system:
        yield Office(system, clock)


def escalated_purchase(office: Office, number: int, right: bool) -> str:
    """buyer-bot-2 (supervised) asks to buy; the attempt is right or not."""
    system = office.system
    task = system.submit_task("purchase_order", "vendor:globex",
                              {"ref": f"PO-{number:04d}", "amount": 300 + number},
                              requester="james.liu")
    decision = system.authorize("buyer-bot-2", "purchase.create", "Vendor::globex",
                                {"amount": 300 + number}, task_type="purchase_order",
                                task_id=task.id)
    assert decision.approval_id is not None
    office.world.paused(task.id, right)
    return decision.approval_id


def test_office_hours():
    day = datetime(2026, 10, 1, tzinfo=UTC)
    draw = random.Random(1)
    assert office_time(day.replace(hour=10), draw) == day.replace(hour=10)
    evening = office_time(day.replace(hour=19), draw)
    assert evening.date() == (day + timedelta(days=1)).date() and in_office(evening)
    early = office_time(day.replace(hour=3), draw, ON_CALL)
    assert early.date() == day.date() and in_office(early, ON_CALL)


def test_approvers_answer_in_their_hours_approving_most_and_catching_most_wrong_results(
        office: Office):
    right = [escalated_purchase(office, n, right=True) for n in range(30)]
    wrong = [escalated_purchase(office, n, right=False) for n in range(30, 60)]
    office.people.plan(office.clock.now(), set())
    office.run()
    assert all(in_office(at, ON_CALL) for at in office.ran)
    status = {a.id: a.status for a in office.system.approvals()}
    assert "pending" not in status.values()
    approved_right = sum(status[a] == "approved" for a in right)
    rejected_wrong = sum(status[a] == "rejected" for a in wrong)
    assert approved_right >= 25 and rejected_wrong >= 15
    for approval in office.system.approvals(status="rejected"):
        assert approval.votes[0].comment  # a rejection says why


def test_an_approved_budget_override_raises_the_envelope(office: Office):
    system = office.system
    system.reserve_spend("refund-bot", 15000, "the month's refunds")
    asked = [system.request_spend("refund-bot", 20 + n, f"refund {n}") for n in range(12)]
    assert all(a.decision.outcome == "escalate" for a in asked)
    office.people.plan(office.clock.now(), set())
    office.run()
    granted = office.people.counts.overrides_granted
    assert 0 < granted < 12
    envelope = next(e for e in system.budget_usage() if e.id == "refund-bot-refunds")
    assert envelope.amount > 15000 and envelope.available > 0


def test_a_person_works_through_their_queue_at_their_rate(office: Office):
    system = office.system
    task = system.submit_task("refund", "customer:c-0007", {"ref": "RFD-0007", "amount": 40},
                              requester="aisha.mensah")
    system.assign_task(task.id, "ben.kowalski", actor="aisha.mensah")
    office.people.plan(office.clock.now(), {"ben.kowalski"})
    office.run()
    assert system.task(task.id).state == "done"
    [outcome] = system.outcomes(member="ben.kowalski")
    minutes = (outcome.duration_s or 0) / 60
    assert float(outcome.cost or 0) == pytest.approx(60 * minutes / 60, rel=1e-3)
    assert office.world.result(task.id) is not None


def test_managers_review_a_sample_of_their_agents_work(office: Office):
    system = office.system
    done = []
    for n in range(20):
        task = system.submit_task("refund", f"customer:c-{n:04d}",
                                  {"ref": f"RFD-{n:04d}", "amount": 40},
                                  requester="aisha.mensah")
        system.assign_task(task.id, "refund-bot", actor="aisha.mensah")
        claim = system.claim_next("refund-bot")
        assert claim is not None
        system.complete_task(task.id, member="refund-bot", fencing=claim.fencing)
        office.world.finished(claim.task, "refund-bot", n % 4 != 0, START, agent=True)
        done.append(task.id)
    office.people.plan(office.clock.now(), set())
    office.run()
    verified = [o for o in system.outcomes(member="refund-bot") if o.verified]
    assert 0 < len(verified) < 20
    assert {o.reported_by for o in verified} == {"ben.kowalski"}
    truth = {task_id: office.world.result(task_id) for task_id in done}
    agreeing = sum(o.success == truth[o.task_id][1] for o in verified)  # type: ignore[index]
    assert agreeing >= len(verified) - 1  # reviewers err now and then
    assert office.world.take_completions() == []  # every completion was looked at
