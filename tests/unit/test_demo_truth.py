"""The demo's hidden truth: seeded, and designed so that learning from outcomes matters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from charter.demo.truth import AGENTS_MODULE, DRIFT, ENGINE_CHANGE, HiddenTable
from charter.demo.world import World
from charter.org import read_org
from charter.tasks import Task

ROOT = Path(__file__).resolve().parents[2]
ACME = read_org(ROOT / "examples" / "acme" / "charter.yaml")


def declared(member: str, task_type: str) -> float:
    skills = ACME.members[member].skills
    required = ACME.task_types[task_type].skills
    return sum(skills.get(s, 0.0) for s in required) / len(required)


def test_the_same_seed_gives_the_same_table_and_another_seed_another():
    assert HiddenTable(7).agents() == HiddenTable(7).agents()
    assert HiddenTable(7).agents() != HiddenTable(8).agents()


def test_the_org_declares_the_worse_agent_better_where_it_matters():
    table = HiddenTable(1)
    for worse, better, task_type, target in (
            ("buyer-bot-1", "buyer-bot-2", "purchase_order", "buyer"),
            ("ap-bot-1", "ap-bot-2", "invoice_approval", "invoice_clerk")):
        truth = {m: table.agent(m, f"{AGENTS_MODULE}:{target}", task_type, 0).quality
                 for m in (worse, better)}
        assert truth[better] > truth[worse]
        assert declared(better, task_type) < declared(worse, task_type)


def test_one_agent_degrades_mid_month_and_another_gets_a_better_engine():
    table = HiddenTable(1)
    target = f"{AGENTS_MODULE}:refunds"
    before = table.agent(DRIFT.member, target, DRIFT.task_type, DRIFT.day - 0.1)
    after = table.agent(DRIFT.member, target, DRIFT.task_type, DRIFT.day)
    assert before.quality > 0.9 > after.quality == DRIFT.quality
    task_type = next(iter(ENGINE_CHANGE.talents))
    old = table.agent(ENGINE_CHANGE.member, f"{AGENTS_MODULE}:support", task_type, 20)
    new = table.agent(ENGINE_CHANGE.member, ENGINE_CHANGE.target, task_type, 20)
    assert new.quality > old.quality


def test_a_persons_cost_is_their_time_at_their_rate():
    talent = HiddenTable(1).person("refund", per_hour=60)
    assert talent.cost == talent.minutes  # an hour costs 60, so a minute costs 1


def test_attempts_draw_common_random_numbers():
    world = World(3, datetime(2026, 10, 1, tzinfo=UTC))
    first, again = world_task("RFD-0001", attempts=1), world_task("RFD-0001", attempts=1)
    target = f"{AGENTS_MODULE}:refunds"
    now = world.start + timedelta(days=20)  # after its quality fell to one in two
    assert world.agent_attempt("refund-bot", target, first, now) == \
        world.agent_attempt("refund-bot", target, again, now)
    draws = {world.agent_attempt("refund-bot", target, world_task(f"RFD-{n:04d}", 1), now).good
             for n in range(40)}
    assert draws == {True, False}


def world_task(ref: str, attempts: int) -> Task:
    return Task(id=f"id-{ref}", type="refund", subject="customer:c-0001",
                payload={"ref": ref, "amount": 40}, value=80, priority=0, deadline=None,
                requester="aisha.mensah", state="running", assignee="refund-bot", fencing=1,
                attempts=attempts, lease_until=None, excluded=(), reason=None, result=None,
                created_at="", updated_at="")
