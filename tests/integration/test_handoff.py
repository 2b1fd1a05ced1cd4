"""Hand-off packets: what the next holder of a task gets, on SQLite and PostgreSQL."""

from __future__ import annotations

from charter.system import Charter


def _fail(acme: Charter, task_id: str, member: str, reason: str) -> None:
    claim = acme.claim_next(member)
    assert claim is not None and claim.task.id == task_id
    acme.fail_task(task_id, member=member, fencing=claim.fencing, reason=reason)


def test_agent_b_gets_agent_a_attempts_errors_and_the_subject_memories(acme: Charter):
    acme.remember("Vendor::globex", "Globex invoices must quote PO numbers in the header",
                  by="james.liu", kind="fact")
    acme.remember("Vendor::globex", "Their ERP portal times out after 17:00 CET",
                  by="buyer-bot-2", kind="note")
    acme.remember("Vendor::initech", "Initech is frozen pending an audit", by="james.liu")
    task = acme.submit_task("purchase_order", "Vendor::globex", {"amount": 300},
                            requester="james.liu")
    acme.assign_task(task.id, "buyer-bot-1", actor="james.liu")
    first = acme.claim_next("buyer-bot-1")
    assert first is not None and first.handoff is None  # a first attempt has no history
    acme.fail_task(task.id, member="buyer-bot-1", fencing=first.fencing,
                   reason="ERP portal timed out")
    # retry: the same agent, now with its own earlier attempt in hand
    retry = acme.claim_next("buyer-bot-1")
    assert retry is not None and retry.handoff is not None
    assert [a.error for a in retry.handoff.attempts] == ["ERP portal timed out", None]
    acme.fail_task(task.id, member="buyer-bot-1", fencing=retry.fencing,
                   reason="ERP portal timed out again")
    moved = acme.task(task.id)
    assert moved.state == "queued" and "buyer-bot-1" in moved.excluded

    acme.assign_task(task.id, "buyer-bot-2", actor="james.liu")
    claim = acme.claim_next("buyer-bot-2")
    assert claim is not None and claim.handoff is not None
    packet = claim.handoff
    assert packet.holder == "buyer-bot-2" and packet.task.id == task.id
    earlier = [(a.member, a.ended, a.error) for a in packet.attempts[:2]]
    assert earlier == [("buyer-bot-1", "failed", "ERP portal timed out"),
                       ("buyer-bot-1", "failed", "ERP portal timed out again")]
    assert packet.attempts[2].member == "buyer-bot-2" and packet.attempts[2].ended == "running"
    assert all(not o.success for a in packet.attempts[:2] for o in a.outcomes)
    assert any("reassign" in move for move in packet.moves)
    texts = [m.text for m in packet.memories]
    assert "Globex invoices must quote PO numbers in the header" in texts
    assert "Their ERP portal times out after 17:00 CET" in texts
    assert not any("Initech" in text for text in texts)  # another subject's memory
    assert packet.memories_withheld is None
    assert acme.handoff(task.id).to_json() == packet.to_json()


def test_approvals_asked_for_the_task_travel_with_it(acme: Charter):
    task = acme.submit_task("purchase_order", "Vendor::globex", {"amount": 30000},
                            requester="james.liu")
    acme.assign_task(task.id, "buyer-bot-1", actor="james.liu")
    claim = acme.claim_next("buyer-bot-1")
    assert claim is not None
    decision = acme.authorize("buyer-bot-1", "purchase.create", "Vendor::globex",
                              {"amount": 30000}, task_id=task.id)
    assert decision.outcome == "escalate" and decision.approval_id
    unrelated = acme.authorize("buyer-bot-1", "purchase.create", "Vendor::globex",
                               {"amount": 30001})
    acme.fail_task(task.id, member="buyer-bot-1", fencing=claim.fencing,
                   reason="waited too long for approval")
    packet = acme.handoff(task.id)
    assert [a.id for a in packet.approvals] == [decision.approval_id]
    assert unrelated.approval_id not in [a.id for a in packet.approvals]
    assert packet.approvals[0].request["task"] == task.id


def test_a_holder_who_may_not_read_the_subject_gets_no_memories_and_is_told_why(
        acme: Charter):
    acme.remember("Payroll::2026-11", "November payroll runs on the 25th",
                  by="marcus.okafor")
    task = acme.submit_task("ticket_triage", "Payroll::2026-11", requester="ben.kowalski")
    acme.assign_task(task.id, "triage-bot", actor="ben.kowalski")
    packet = acme.handoff(task.id)
    assert packet.memories == ()
    assert packet.memories_withheld and "triage-bot may not read" in \
        packet.memories_withheld


def test_resource_leases_taken_for_a_task_go_when_it_fails_or_its_lease_expires(
        acme: Charter, clock):
    from datetime import timedelta

    task = acme.submit_task("ticket_resolution", "Customer::42", requester="ben.kowalski")
    acme.assign_task(task.id, "support-bot", actor="ben.kowalski")
    claim = acme.claim_next("support-bot")
    assert claim is not None
    held = acme.acquire_lease("Customer::42", "support-bot", ttl=3600, task_id=task.id)
    other = acme.acquire_lease("Sku::sku-9", "support-bot", ttl=3600)  # not for the task
    acme.fail_task(task.id, member="support-bot", fencing=claim.fencing, reason="CRM down")
    assert acme.lease_holders("Customer::42") == []
    assert [lease.id for lease in acme.lease_holders("Sku::sku-9")] == [other.id]

    retry = acme.claim_next("support-bot")  # the protocol retries once
    assert retry is not None
    again = acme.acquire_lease("Customer::42", "support-bot", ttl=3600, task_id=task.id)
    assert again.token > held.token
    clock.advance(timedelta(minutes=31))  # past the task's 30-minute lease, not the 1h one
    acme.expire_tasks()
    assert acme.lease_holders("Customer::42") == []
    assert acme.verify_ledger().ok
