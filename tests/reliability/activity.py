"""A few hundred ledger events of the example org's real work: tasks submitted,
dispatched, claimed, completed and failed; purchases authorized, escalated and
approved; spend reserved and committed; leases, memories and a forgotten memory (so
the chain holds a redaction)."""

from __future__ import annotations

from datetime import timedelta

from charter.clock import ManualClock
from charter.system import Charter

VENDORS = ("Vendor::globex", "Vendor::umbrella-supplies")


def populate(system: Charter, clock: ManualClock, rounds: int = 12) -> None:
    """Work through `rounds` rounds of activity, the clock moving on between steps."""
    for n in range(rounds):
        vendor = VENDORS[n % 2]
        for member, amount in (("buyer-bot-1", 300 + n), ("buyer-bot-2", 200 + n)):
            task = system.submit_task("purchase_order", vendor, {"amount": amount},
                                      requester="james.liu")
            system.assign_task(task.id, member, actor="james.liu")
            claim = system.claim_next(member)  # this one, or an earlier one to retry
            assert claim is not None
            task = claim.task
            clock.advance(timedelta(seconds=5))
            system.heartbeat(task.id, member=member, fencing=claim.fencing)
            decision = system.authorize(member, "purchase.create", vendor,
                                        {"amount": amount}, task_type="purchase_order",
                                        task_id=task.id)
            if decision.outcome == "escalate":
                assert decision.approval_id is not None
                system.approve(decision.approval_id, approver="james.liu")
            spend = system.reserve_spend(member, amount, f"order {n} from {vendor}")
            assert spend.reservation is not None
            system.commit_spend(spend.reservation.id, amount, actor=member)
            if n % 4 == 3:
                system.fail_task(task.id, member=member, fencing=claim.fencing,
                                 reason="the supplier's portal timed out")
            else:
                system.complete_task(task.id, member=member, fencing=claim.fencing,
                                     result={"order": f"PO-{n}"}, cost="0.03")
        triage = system.submit_task("ticket_triage", f"Customer::{n}", {}, dispatch=True,
                                    requester="ben.kowalski")
        if triage.assignee == "triage-bot":
            claim = system.claim_next("triage-bot")
            assert claim is not None
            system.complete_task(triage.id, member="triage-bot", fencing=claim.fencing)
        lease = system.acquire_lease(f"Customer::{n}", "support-bot", ttl=60)
        system.remember(f"Customer::{n}", f"prefers email; ticket {n}", by="support-bot")
        system.release_lease(lease.id, "support-bot")
        clock.advance(timedelta(minutes=1))
    note = system.remember("Vendor::globex", "a note to erase", by="james.liu")
    system.forget(note.id, by="james.liu", reason="erasure request")
    system.flush_decisions()
