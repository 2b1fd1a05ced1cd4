"""The task lifecycle on SQLite and PostgreSQL: claims, leases, fencing, fallback."""

from __future__ import annotations

from datetime import timedelta

import pytest

from charter import ManualClock
from charter.errors import Conflict, Forbidden, InvalidInput
from charter.system import Charter


def kinds(system: Charter, task_id: str) -> list[str]:
    return [e.kind for e in system.events(subject=f"task:{task_id}")]


def test_submit_assign_claim_complete_is_all_in_the_ledger(acme: Charter):
    task = acme.submit_task("purchase_order", "Vendor::globex", {"amount": 300},
                            requester="james.liu")
    assert task.state == "queued" and task.value == 200
    acme.assign_task(task.id, "buyer-bot-1", actor="james.liu")
    claim = acme.claim_next("buyer-bot-1")
    assert claim is not None and claim.fencing == 1 and claim.task.state == "running"
    done = acme.complete_task(task.id, member="buyer-bot-1", fencing=claim.fencing,
                              result={"po": "PO-1"}, cost=0.4, duration_s=30)
    assert done.state == "done" and done.result == {"po": "PO-1"}
    assert kinds(acme, task.id) == ["task.submitted", "task.assigned", "task.claimed",
                                    "task.completed", "outcome.recorded"]
    (outcome,) = acme.outcomes(member="buyer-bot-1")
    assert outcome.success and not outcome.verified and outcome.engine_version.startswith(
        "python-")
    assert acme.claim_next("buyer-bot-1") is None
    assert acme.verify_ledger().ok


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"task_type": "purchase_orders"}, "unknown task type"),
    ({"subject": " "}, "subject"),
    ({"priority": 10_000}, "priority"),
    ({"priority": True}, "priority"),
    ({"payload": ["not", "an", "object"]}, "JSON object"),
    ({"payload": {"x": float("nan")}}, "not JSON"),
    ({"value": -1}, "non-negative"),
    ({"value": "lots"}, "not a number"),
])
def test_bad_submissions_change_nothing(acme: Charter, kwargs, message):
    args = {"task_type": "purchase_order", "subject": "Vendor::globex", "payload": {},
            **kwargs}
    before = len(acme.events())
    with pytest.raises(InvalidInput, match=message):
        acme.submit_task(args.pop("task_type"), args.pop("subject"), args.pop("payload"),
                         requester="james.liu", **args)
    assert len(acme.events()) == before and acme.tasks() == []


def test_deadline_in_the_past_is_refused(acme: Charter, clock: ManualClock):
    with pytest.raises(InvalidInput, match="deadline"):
        acme.submit_task("purchase_order", "Vendor::globex", requester="james.liu",
                         deadline=clock.now() - timedelta(minutes=1))


def test_lease_expiry_requeues_and_the_stale_token_is_refused(acme: Charter,
                                                              clock: ManualClock):
    task = acme.submit_task("purchase_order", "Vendor::globex", requester="james.liu")
    acme.assign_task(task.id, "buyer-bot-1", actor="james.liu")
    first = acme.claim_next("buyer-bot-1")
    assert first is not None
    clock.advance(timedelta(minutes=16))  # purchase_order leases last 15m
    (expired,) = acme.expire_tasks()
    assert expired.state == "assigned" and expired.assignee == "buyer-bot-1"  # retry: 1
    assert "lease expired" in (expired.reason or "")
    second = acme.claim_next("buyer-bot-1")
    assert second is not None and second.fencing == first.fencing + 1
    with pytest.raises(Conflict, match="stale fencing token"):
        acme.complete_task(task.id, member="buyer-bot-1", fencing=first.fencing)
    with pytest.raises(Forbidden):
        acme.complete_task(task.id, member="buyer-bot-2", fencing=second.fencing)
    assert acme.complete_task(task.id, member="buyer-bot-1",
                              fencing=second.fencing).state == "done"
    assert "task.lease_expired" in kinds(acme, task.id)


def test_heartbeat_keeps_the_lease(acme: Charter, clock: ManualClock):
    task = acme.submit_task("purchase_order", "Vendor::globex", requester="james.liu")
    acme.assign_task(task.id, "buyer-bot-1", actor="james.liu")
    claim = acme.claim_next("buyer-bot-1")
    assert claim is not None
    for _ in range(3):
        clock.advance(timedelta(minutes=10))
        acme.heartbeat(task.id, member="buyer-bot-1", fencing=claim.fencing)
    assert acme.expire_tasks() == []
    assert acme.task(task.id).state == "running"


def test_fallback_chain_ends_in_a_persons_queue(acme: Charter):
    # purchase_order: retry 1, reassign 2, escalate to the supervisor
    task = acme.submit_task("purchase_order", "Vendor::globex", requester="sofia.alvarez")
    holders = []
    for member in ("buyer-bot-1", "buyer-bot-1", "buyer-bot-2", "vendor-bot"):
        current = acme.task(task.id)
        if current.state == "queued":
            assert member not in current.excluded
            acme.assign_task(task.id, member, actor="sofia.alvarez")
        claim = acme.claim_next(member)
        assert claim is not None, (member, acme.task(task.id))
        holders.append(member)
        acme.fail_task(task.id, member=member, fencing=claim.fencing, reason="supplier down")
    final = acme.task(task.id)
    assert final.state == "assigned" and final.assignee == "sofia.alvarez"  # vendor-bot's
    assert final.excluded == ("buyer-bot-1", "buyer-bot-2")
    assert [t.id for t in acme.person_queue("sofia.alvarez")] == [task.id]
    moves = [k for k in kinds(acme, task.id) if k.startswith("task.fallback")]
    assert moves == ["task.fallback.retry", "task.fallback.reassign",
                     "task.fallback.reassign", "task.fallback.person"]
    reasons = [e.payload["set"]["reason"] for e in acme.events(subject=f"task:{task.id}")
               if e.kind.startswith("task.fallback") and e.payload]
    assert all("supplier down" in reason for reason in reasons)
    # the person finishes it
    claim = acme.claim_next("sofia.alvarez")
    assert claim is not None
    assert acme.complete_task(task.id, member="sofia.alvarez",
                              fencing=claim.fencing).state == "done"


def test_cancel_and_deadlines(acme: Charter, clock: ManualClock):
    cancelled = acme.submit_task("purchase_order", "Vendor::globex", requester="james.liu")
    assert acme.cancel_task(cancelled.id, actor="james.liu",
                            reason="duplicate").state == "cancelled"
    with pytest.raises(Conflict, match="already cancelled"):
        acme.cancel_task(cancelled.id, actor="james.liu")
    late = acme.submit_task("purchase_order", "Vendor::globex", requester="james.liu",
                            deadline=clock.now() + timedelta(hours=1))
    clock.advance(timedelta(hours=2))
    (missed,) = acme.expire_tasks()
    assert missed.id == late.id and missed.state == "failed"
    assert "deadline" in (missed.reason or "")


def test_priority_then_deadline_order_claims(acme: Charter, clock: ManualClock):
    low = acme.submit_task("ticket_triage", "Customer::1", requester="ben.kowalski")
    urgent = acme.submit_task("ticket_triage", "Customer::2", requester="ben.kowalski",
                              priority=5)
    soon = acme.submit_task("ticket_triage", "Customer::3", requester="ben.kowalski",
                            deadline=clock.now() + timedelta(minutes=30))
    for task in (low, urgent, soon):
        acme.assign_task(task.id, "triage-bot", actor="ben.kowalski")
    order = []
    while (claim := acme.claim_next("triage-bot")) is not None:
        order.append(claim.task.id)
    assert order == [urgent.id, soon.id, low.id]


def test_capacity_is_respected(acme: Charter):
    # dana.whitfield has capacity 2
    made = [acme.submit_task("purchase_order", "Vendor::globex", requester="priya.raman")
            for _ in range(3)]
    acme.assign_task(made[0].id, "dana.whitfield", actor="priya.raman")
    acme.assign_task(made[1].id, "dana.whitfield", actor="priya.raman")
    with pytest.raises(Conflict, match="capacity"):
        acme.assign_task(made[2].id, "dana.whitfield", actor="priya.raman")


def test_verified_outcome_arrives_later(acme: Charter):
    task = acme.submit_task("refund", "Customer::9", requester="ben.kowalski")
    acme.assign_task(task.id, "refund-bot", actor="ben.kowalski")
    claim = acme.claim_next("refund-bot")
    assert claim is not None
    acme.complete_task(task.id, member="refund-bot", fencing=claim.fencing)
    review = acme.record_outcome(task.id, success=False, reported_by="ben.kowalski",
                                 verified=True, quality=0.2)
    assert review.member == "refund-bot" and review.verified and not review.success
    with pytest.raises(InvalidInput, match="quality"):
        acme.record_outcome(task.id, success=True, reported_by="ben.kowalski", quality=3)


def test_read_tables_rebuild_after_work(acme: Charter, clock: ManualClock):
    from sqlalchemy import select

    from charter.store.schema import outcomes, tasks

    task = acme.submit_task("purchase_order", "Vendor::globex", requester="james.liu")
    acme.assign_task(task.id, "buyer-bot-1", actor="james.liu")
    claim = acme.claim_next("buyer-bot-1")
    assert claim is not None
    clock.advance(timedelta(minutes=20))
    acme.expire_tasks()
    claim = acme.claim_next("buyer-bot-1")
    assert claim is not None
    acme.fail_task(task.id, member="buyer-bot-1", fencing=claim.fencing, reason="x")

    def snapshot():
        with acme.store.reading() as conn:
            return [sorted(map(tuple, conn.execute(select(t)).all()), key=repr)
                    for t in (tasks, outcomes)]

    before = snapshot()
    acme.rebuild_read_tables()
    assert snapshot() == before
