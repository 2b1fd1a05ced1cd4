"""Dispatch: eligibility, the allocator's choice, explanations, on both databases."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from charter import Settings
from charter.system import Charter, open_charter
from charter.web.timeline import entry_for
from tests.integration.reviews import review_work

V = "Vendor::globex"


def test_queued_task_goes_to_an_eligible_member_with_an_explanation(acme: Charter):
    task = acme.submit_task("purchase_order", V, {"context": {"amount": 300}},
                            requester="james.liu")
    (assigned,) = acme.dispatch_queued()
    assert assigned.id == task.id and assigned.state == "assigned"
    org = acme.org
    winner = org.members[assigned.assignee or ""]
    assert "purchasing" in winner.skills
    (event,) = [e for e in acme.events(subject=f"task:{task.id}")
                if e.kind == "task.assigned"]
    assert event.payload and event.payload["strategy"] == "learned"
    assert 0 < event.payload["probability"] <= 1
    text = acme.explain_task(task.id)
    assert winner.id in text.splitlines()[0] and "p(success)" in text
    runners = event.payload["explanation"]["runners_up"]
    assert len(runners) >= 2
    assert any("lacks skill purchasing" in r["reason"] for r in runners)
    assert any(r["terms"] is not None for r in runners)  # eligible but lower utility


def test_explain_a_queued_task_without_assigning_it(acme: Charter):
    task = acme.submit_task("ticket_triage", "Customer::5", requester="ben.kowalski")
    text = acme.explain_task(task.id)
    assert text.startswith("if dispatched now:")
    assert acme.task(task.id).state == "queued"


def test_members_that_failed_a_task_are_not_chosen_again(acme: Charter):
    task = acme.submit_task("ticket_triage", "Customer::5", requester="ben.kowalski")
    acme.assign_task(task.id, "triage-bot", actor="ben.kowalski")
    for _ in range(3):  # ticket_triage: retry 2, then reassign
        claim = acme.claim_next("triage-bot")
        assert claim is not None
        acme.fail_task(task.id, member="triage-bot", fencing=claim.fencing, reason="timeout")
    assert acme.task(task.id).state == "queued"
    (assigned,) = acme.dispatch_queued()
    assert assigned.assignee != "triage-bot"
    assert "failed this task before" in acme.explain_task(task.id)


def test_a_task_nobody_can_take_goes_to_a_persons_queue(acme: Charter):
    # the policy forbids everyone from buying from a frozen vendor
    task = acme.submit_task("purchase_order", "Vendor::initech",
                            {"context": {"amount": 300}}, requester="james.liu")
    (assigned,) = acme.dispatch_queued()
    assert assigned.id == task.id and assigned.assignee == "james.liu"
    assert "no eligible member" in acme.explain_task(task.id)


def test_a_denial_about_one_subject_keeps_nobody_from_other_tasks_of_the_type(
        acme: Charter):
    frozen = acme.submit_task("purchase_order", "Vendor::initech",
                              {"context": {"amount": 300}}, requester="james.liu",
                              dispatch=True)
    assert frozen.assignee == "james.liu"  # nobody may buy from a frozen vendor
    usual = acme.submit_task("purchase_order", V, {"context": {"amount": 300}},
                             requester="james.liu", dispatch=True)
    assert usual.assignee in ("buyer-bot-1", "buyer-bot-2")


def test_cheapest_strategy_is_deterministic(acme: Charter):
    acme.submit_task("ticket_resolution", "Customer::8", requester="ben.kowalski")
    (assigned,) = acme.dispatch_queued(strategy="cheapest")
    (event,) = acme.events(kind="task.assigned")
    assert event.payload and event.payload["strategy"] == "cheapest"
    assert event.payload["probability"] == 1.0
    assert assigned.assignee == "support-bot"


def test_outcomes_teach_the_allocator(acme: Charter):
    dispatcher = acme.dispatcher()
    before = dispatcher.learner.mean("triage-bot", "python-x", "ticket_triage")
    review_work(acme, "triage-bot", [False] * 15, task_type="ticket_triage",
                subject="Customer::1", reviewer="ben.kowalski")
    from charter.outcomes import engine_version

    version = engine_version(acme.org, "triage-bot")
    after = acme.dispatcher().learner.mean("triage-bot", version, "ticket_triage")
    assert after < before


def test_many_waiting_tasks_are_assigned_together_most_urgent_first(acme: Charter):
    org = acme.org
    able = [m for m in org.spec.members
            if {"vendor_due_diligence", "contract_review"} <= set(m.skills)]
    slots = sum(m.capacity for m in able)
    urgent = [acme.submit_task("vendor_onboarding", "Vendor::globex", requester="priya.raman",
                               priority=5) for _ in range(slots)]
    later = [acme.submit_task("vendor_onboarding", "Vendor::globex", requester="priya.raman")
             for _ in range(max(5, acme.settings.batch_dispatch_at - slots))]
    assigned = acme.dispatch_queued()
    assert {t.id for t in assigned} == {t.id for t in urgent}
    assert all(acme.task(t.id).state == "queued" for t in later)
    for member in able:
        held = [t for t in acme.tasks(assignee=member.id, limit=1000)]
        assert len(held) <= member.capacity
    event = acme.events(kind="task.assigned")[0]
    assert event.payload and "batch" in event.payload["explanation"]["text"]
    assert 0 < event.payload["probability"] <= 1
    # The other eligible members, and the rest grouped by why they were ruled out.
    explained = event.payload["explanation"]
    runners = {r["member"] for r in explained["runners_up"]}
    assert runners and all(r["reason"] == "" for r in explained["runners_up"])
    assert runners <= {m.id for m in able}
    ruled_out = explained["ruled_out"]
    assert any(reason.startswith("lacks skill") for reason in ruled_out)
    assert runners | {m for who in ruled_out.values() for m in who} | {
        event.payload["member"]} == set(org.members)
    text = acme.explain_task(event.payload["task"])
    assert "runners-up, eligible: " in text and all(m in text for m in runners)
    assert all(f"ruled out, {why}: " in text for why in ruled_out)
    shown = entry_for(event)
    assert {c.member for c in shown.candidates} == runners | {event.payload["member"]}
    assert dict(shown.ineligible) == {why: tuple(who) for why, who in ruled_out.items()}


def test_a_task_waits_while_the_able_are_busy(acme: Charter):
    made = [acme.submit_task("vendor_onboarding", "Vendor::globex", requester="priya.raman")
            for _ in range(13)]  # sofia.alvarez 4 + vendor-bot 8 slots
    assigned = acme.dispatch_queued()
    assert len(assigned) == 12
    (waiting,) = [t for t in made if acme.task(t.id).state == "queued"]
    assert "at capacity" in acme.explain_task(waiting.id)


POOL = """\
org: {id: pool, name: Dispatch pool}
departments: {ops: Operations}
skills: {work: Work}
resources: {Item: {description: A thing to work on}}
actions: {work.do: {description: Do work, resources: [Item]}}
members:
  - {id: boss, kind: human, department: ops}
  - {id: worker, kind: ai, department: ops, reports_to: boss, skills: {work: 0.9},
     capacity: 1000}
  - {id: helper, kind: ai, department: ops, reports_to: boss, skills: {work: 0.8},
     capacity: 1000}
task_types:
  - {id: job, action: work.do, skills: [work], value: 1, timeout: 1h, lease: 10m}
"""


@pytest.mark.parametrize("waiting", [5, 60])  # one by one, and as a batch
def test_two_dispatches_at_once_assign_each_task_once(db_url: str, tmp_path: Path,
                                                      waiting: int):
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "work.cedar").write_text(
        'permit (principal, action, resource);\n', encoding="utf-8")
    (tmp_path / "charter.yaml").write_text(POOL, encoding="utf-8")
    settings = Settings(secret="dispatch", batch_dispatch_at=20)
    with open_charter(db_url, tmp_path / "charter.yaml", settings=settings) as system:
        made = {system.submit_task("job", "Item::1", requester="boss").id
                for _ in range(waiting)}
    start = threading.Barrier(2)

    def dispatch() -> list[str]:
        with open_charter(db_url, settings=settings) as node:
            node.dispatcher()  # built before the race, so both dispatch at once
            start.wait()
            return [task.id for task in node.dispatch_queued()]

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: dispatch(), range(2))
    assert not set(first) & set(second)
    assert set(first) | set(second) == made
    with open_charter(db_url, settings=settings) as system:
        assigned = Counter(e.payload["task"] for e in system.events(kind="task.assigned")
                           if e.payload)
        assert set(assigned) == made and set(assigned.values()) == {1}
        assert system.verify_ledger().ok
