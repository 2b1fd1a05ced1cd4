"""Proposals and the arbitration of contradictory decisions, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from charter import ManualClock
from charter.errors import Conflict, Forbidden, InvalidInput, NotFound
from charter.proposals import Proposal
from charter.store.schema import approvals, proposals, resolutions
from charter.system import Charter
from tests.integration.reviews import review_work

VENDOR = "Vendor::globex"
SKU = "Sku::sku-9"
CUSTOMER = "Customer::42"


def order(system: Charter, member: str, value: Any, **extra: Any) -> Proposal:
    """A purchase_order proposal (rule: authority, window 1h)."""
    return system.propose(member, VENDOR, "supplier_terms", value,
                          task_type="purchase_order", context={"amount": 300}, **extra)


def price(system: Charter, member: str, value: Any) -> Proposal:
    """A price_change proposal (rule: escalate, window 4h)."""
    return system.propose(member, SKU, "price", value, task_type="price_change",
                          context={"change_percent": 5})


def triage(system: Charter, member: str, value: Any,
           confidence: float | None = None) -> Proposal:
    """A ticket_triage proposal (rule: track_record, window 15m)."""
    return system.propose(member, CUSTOMER, "queue", value, task_type="ticket_triage",
                          confidence=confidence)


def reviewed(system: Charter, member: str, verdicts: list[bool]) -> None:
    """Triage tasks done by `member`, each self-reported a success, then verified."""
    review_work(system, member, verdicts, task_type="ticket_triage",
                subject="Customer::7", reviewer="ben.kowalski")


def status(system: Charter, proposal: Proposal) -> str:
    return system.proposal(proposal.id).status


def rows(system: Charter) -> dict[str, list[tuple[object, ...]]]:
    with system.store.reading() as conn:
        return {t.name: sorted(map(tuple, conn.execute(select(t)).all()), key=repr)
                for t in (proposals, resolutions, approvals)}


# -- authority -------------------------------------------------------------------------

def test_authority_a_manager_beats_its_report(acme: Charter, clock: ManualClock):
    bot = order(acme, "buyer-bot-1", {"days": 30}, confidence=0.99, rationale="usual")
    assert bot.status == "open" and bot.resolution is None
    clock.advance(timedelta(minutes=10))
    lead = order(acme, "james.liu", {"days": 60})
    assert lead.status == "won"
    resolution = lead.resolution
    assert resolution is not None and resolution.rule == "authority"
    assert resolution.status == "decided" and resolution.winner == lead.id
    assert resolution.losers == (bot.id,) and resolution.approval_id is None
    ranks = {p["member"]: p["rank"] for p in resolution.evidence["parties"]}
    assert ranks == {"buyer-bot-1": 4, "james.liu": 3}
    # the report learns it lost, and to whom
    learned = acme.proposal(bot.id)
    assert learned.status == "lost" and learned.resolution == resolution
    assert acme.resolution(resolution.id) == resolution


def test_authority_the_manager_wins_whoever_proposes_first(acme: Charter):
    lead = order(acme, "james.liu", "net-60")
    bot = order(acme, "buyer-bot-1", "net-30")
    assert bot.status == "lost" and status(acme, lead) == "won"
    assert bot.resolution is not None and bot.resolution.winner == lead.id


def test_authority_equal_rank_escalates_to_their_manager(acme: Charter):
    first = order(acme, "buyer-bot-1", "net-30")
    second = order(acme, "buyer-bot-2", "net-45")
    assert second.status == "escalated" and status(acme, first) == "escalated"
    resolution = second.resolution
    assert resolution is not None and resolution.status == "escalated"
    assert resolution.evidence["tie"] is True and resolution.winner is None
    assert resolution.evidence["manager"] == "james.liu"
    approval = acme.approval(resolution.approval_id or "")
    assert approval.approvers == ("james.liu",) and approval.status == "pending"
    assert approval.request["action"] == "proposal.settle"
    assert [p["id"] for p in approval.request["context"]["proposals"]] == [first.id,
                                                                            second.id]
    settled = acme.settle_proposals(resolution.id, second.id, by="james.liu")
    assert settled.status == "decided" and settled.winner == second.id
    assert settled.losers == (first.id,)
    assert settled.evidence["settled"]["by"] == "james.liu"
    assert (status(acme, first), status(acme, second)) == ("lost", "won")
    assert acme.approval(approval.id).status == "executed"


# -- track record ----------------------------------------------------------------------

def test_track_record_a_good_record_beats_a_more_confident_poor_one(acme: Charter):
    reviewed(acme, "triage-bot", [True] * 6)
    reviewed(acme, "support-bot", [False] * 6)  # self-reported successes, verified failures
    good = triage(acme, "triage-bot", "billing", confidence=0.6)
    poor = triage(acme, "support-bot", "technical", confidence=0.95)
    assert (poor.status, status(acme, good)) == ("lost", "won")
    assert poor.resolution is not None and poor.resolution.rule == "track_record"
    terms = {p["member"]: p for p in poor.resolution.evidence["parties"]}
    assert terms["triage-bot"]["verified"] == 6 and terms["triage-bot"]["successes"] == 6
    assert terms["triage-bot"]["score"] == pytest.approx(0.6 * 7 / 8)
    assert terms["support-bot"]["verified"] == 6 and terms["support-bot"]["successes"] == 0
    assert terms["support-bot"]["score"] == pytest.approx(0.95 * 1 / 8)


def test_track_record_without_a_record_confidence_decides(acme: Charter):
    unsure = triage(acme, "triage-bot", "billing")  # no claim counts as 0.5
    sure = triage(acme, "support-bot", "technical", confidence=0.8)
    assert (sure.status, status(acme, unsure)) == ("won", "lost")


def test_track_record_a_tie_escalates(acme: Charter):
    first = triage(acme, "triage-bot", "billing")
    second = triage(acme, "support-bot", "technical", confidence=0.5)
    assert second.status == "escalated" and status(acme, first) == "escalated"
    assert second.resolution is not None and second.resolution.evidence["tie"] is True
    assert second.resolution.evidence["manager"] == "ben.kowalski"


# -- escalate --------------------------------------------------------------------------

def test_escalate_goes_to_the_lowest_common_manager_who_settles(acme: Charter):
    analyst = price(acme, "pricing-bot", {"amount": "10.50"})
    manager = price(acme, "nina.kapoor", {"amount": "11.00"})
    resolution = manager.resolution
    assert manager.status == "escalated" and resolution is not None
    # nina.kapoor manages pricing-bot but is a party: the dispute goes above her
    assert resolution.evidence["manager"] == "priya.raman"
    assert acme.approval(resolution.approval_id or "").approvers == ("priya.raman",)
    for proposer in ("pricing-bot", "nina.kapoor"):
        with pytest.raises(Forbidden, match="separation of duties"):
            acme.settle_proposals(resolution.id, manager.id, by=proposer)
    with pytest.raises(Forbidden, match=r"waits on priya\.raman"):
        acme.settle_proposals(resolution.id, manager.id, by="dana.whitfield")
    with pytest.raises(InvalidInput, match="not a party"):
        acme.settle_proposals(resolution.id, "no-such-proposal", by="priya.raman")
    with pytest.raises(NotFound):
        acme.settle_proposals("no-such-resolution", manager.id, by="priya.raman")
    assert acme.resolution(resolution.id).status == "escalated"
    settled = acme.settle_proposals(resolution.id, analyst.id, by="priya.raman")
    assert settled.winner == analyst.id and settled.losers == (manager.id,)
    assert (status(acme, analyst), status(acme, manager)) == ("won", "lost")
    with pytest.raises(Conflict, match="already decided"):
        acme.settle_proposals(resolution.id, manager.id, by="priya.raman")


def test_escalate_across_departments_meets_higher_up(acme: Charter):
    price(acme, "nina.kapoor", 11)  # operations
    cfo = price(acme, "marcus.okafor", 12)  # finance
    assert cfo.resolution is not None
    assert cfo.resolution.evidence["manager"] == "dana.whitfield"
    assert cfo.resolution.evidence["common_managers"] == ["dana.whitfield"]
    settled = acme.settle_proposals(cfo.resolution.id, cfo.id, by="dana.whitfield")
    assert settled.winner == cfo.id


def test_no_common_manager_refuses_and_records_nothing(acme: Charter):
    price(acme, "nina.kapoor", 11)
    before = len(acme.events())
    with pytest.raises(Conflict, match="no active manager in common"):
        price(acme, "dana.whitfield", 9)  # the top of the chain: nobody above both
    assert len(acme.events()) == before
    assert [p.member for p in acme.proposals(subject=SKU)] == ["nina.kapoor"]
    assert price(acme, "dana.whitfield", 11).status == "agreed"  # agreeing is fine


def test_a_rejected_or_expired_escalation_reopens_with_the_next_proposal(acme: Charter):
    analyst = price(acme, "pricing-bot", 10)
    manager = price(acme, "nina.kapoor", 11)
    assert manager.resolution is not None and manager.resolution.approval_id is not None
    acme.reject(manager.resolution.approval_id, approver="priya.raman",
                comment="neither: look at the competitors first")
    with pytest.raises(Conflict, match="rejected"):
        acme.settle_proposals(manager.resolution.id, manager.id, by="priya.raman")
    again = price(acme, "pricing-bot", 10)
    reopened = again.resolution
    assert again.status == "escalated" and reopened is not None
    assert reopened.id != manager.resolution.id
    assert reopened.evidence["manager"] == "priya.raman"
    assert acme.approval(reopened.approval_id or "").status == "pending"
    assert {p["resolution"] for p in reopened.evidence["standing"]} == {
        manager.resolution.id}
    settled = acme.settle_proposals(reopened.id, manager.id, by="priya.raman")
    assert [status(acme, p) for p in (analyst, manager, again)] == ["lost", "won", "lost"]
    assert set(settled.losers) == {analyst.id, again.id}


def test_an_unanswered_escalation_expires_at_its_sla(acme: Charter, clock: ManualClock):
    analyst = price(acme, "pricing-bot", 10)
    manager = price(acme, "nina.kapoor", 11)
    assert manager.resolution is not None and manager.resolution.approval_id is not None
    clock.advance(timedelta(hours=4, minutes=1))  # price_change: 4h SLA, 4h window
    (expired,) = acme.apply_approval_timeouts()
    assert expired.id == manager.resolution.approval_id and expired.status == "expired"
    assert expired.approvers == ("priya.raman",)  # nobody above the manager is asked
    with pytest.raises(Conflict, match="expired"):
        acme.settle_proposals(manager.resolution.id, analyst.id, by="priya.raman")
    fresh = price(acme, "pricing-bot", 12)  # outside the window: starts afresh
    assert fresh.status == "open"
    assert [status(acme, p) for p in (analyst, manager)] == ["escalated", "escalated"]


# -- agreement, late proposals, windows --------------------------------------------------

def test_agreeing_proposals_are_agreed_without_a_resolution(acme: Charter):
    first = order(acme, "buyer-bot-1", {"days": 30, "discount": 0.02})
    second = order(acme, "buyer-bot-2", {"discount": 0.02, "days": 30})  # same value
    assert (status(acme, first), second.status) == ("agreed", "agreed")
    assert second.resolution is None and acme.events(kind="proposal.resolved") == []


def test_a_late_third_proposal_meets_the_standing_winner(acme: Charter,
                                                         clock: ManualClock):
    bot = order(acme, "buyer-bot-1", "net-30")
    lead = order(acme, "james.liu", "net-60")
    first = lead.resolution
    assert first is not None and first.winner == lead.id
    clock.advance(timedelta(minutes=20))
    head = order(acme, "sofia.alvarez", "net-90")  # higher than the standing winner
    second = head.resolution
    assert head.status == "won" and second is not None and second.id != first.id
    assert second.winner == head.id and second.losers == (lead.id,)
    assert [p["proposal"] for p in second.evidence["parties"]] == [lead.id, head.id]
    assert second.evidence["standing"] == [
        {"resolution": first.id, "proposal": lead.id, "status": "won"}]
    # the earlier resolution stands as decided; its loser stays lost under it
    assert acme.resolution(first.id) == first
    assert acme.proposal(bot.id).resolution == first
    assert acme.proposal(lead.id).status == "lost"
    # agreeing with the standing value joins it; a lower-ranked dissent loses to it
    clock.advance(timedelta(minutes=5))
    assert order(acme, "james.liu", "net-90").status == "agreed"
    late = order(acme, "buyer-bot-2", "net-15")
    assert late.status == "lost" and late.resolution is not None
    assert late.resolution.winner == head.id
    assert acme.proposal(head.id).resolution_id == late.resolution.id


def test_a_late_proposal_joins_a_waiting_escalation_or_reopens_it(acme: Charter):
    analyst = price(acme, "pricing-bot", 10)
    manager = price(acme, "nina.kapoor", 11)
    waiting = manager.resolution
    assert waiting is not None
    joined = price(acme, "pricing-bot", 10)  # backs a value already at stake
    assert joined.status == "escalated" and joined.resolution_id == waiting.id
    cfo = price(acme, "marcus.okafor", 12)  # a new value, from another department
    reopened = cfo.resolution
    assert reopened is not None and reopened.id != waiting.id
    assert reopened.evidence["manager"] == "dana.whitfield"
    assert set(reopened.parties) == {analyst.id, manager.id, joined.id, cfo.id}
    assert acme.approval(waiting.approval_id or "").status == "expired"
    with pytest.raises(Conflict, match=f"superseded by resolution {reopened.id}"):
        acme.settle_proposals(waiting.id, manager.id, by="priya.raman")
    settled = acme.settle_proposals(reopened.id, joined.id, by="dana.whitfield")
    assert set(settled.losers) == {manager.id, cfo.id}
    assert [status(acme, p) for p in (analyst, manager, joined, cfo)] == [
        "won", "lost", "won", "lost"]


def test_a_proposal_outside_the_window_starts_afresh(acme: Charter, clock: ManualClock):
    order(acme, "buyer-bot-1", "net-30")
    clock.advance(timedelta(hours=1))  # purchase_order's window: exactly one hour old
    fresh = order(acme, "buyer-bot-2", "net-45")
    assert fresh.status == "open" and fresh.resolution is None
    lead = order(acme, "james.liu", "net-60")
    assert lead.status == "won" and lead.resolution is not None
    assert lead.resolution.parties == (fresh.id, lead.id)
    clock.advance(timedelta(hours=2))
    assert order(acme, "buyer-bot-1", "net-30").status == "open"
    assert len(acme.events(kind="proposal.resolved")) == 1


def test_other_subjects_and_keys_do_not_conflict(acme: Charter):
    order(acme, "buyer-bot-1", "net-30")
    other = acme.propose("buyer-bot-2", "Vendor::umbrella-supplies", "supplier_terms",
                         "net-45", task_type="purchase_order", context={"amount": 300})
    key = acme.propose("buyer-bot-2", VENDOR, "delivery", "express",
                       task_type="purchase_order", context={"amount": 300})
    assert (other.status, key.status) == ("open", "open")


def test_the_subject_is_recorded_as_type_and_id(acme: Charter):
    first = acme.propose("buyer-bot-1", "vendor:globex", "supplier_terms", "net-30",
                         task_type="purchase_order", context={"amount": 300})
    assert first.subject == VENDOR
    assert order(acme, "buyer-bot-2", "net-30").status == "agreed"


def test_concurrent_disagreeing_proposals_are_arbitrated_one_after_the_other(
        acme: Charter):
    keys = [f"terms-{n}" for n in range(6)]
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def propose_all(member: str, value: str) -> None:
        try:
            for key in keys:
                barrier.wait(timeout=30)
                acme.propose(member, VENDOR, key, value, task_type="purchase_order",
                             context={"amount": 300})
        except BaseException as error:  # reported by the main thread
            failures.append(error)
            barrier.abort()

    threads = [threading.Thread(target=propose_all, args=args)
               for args in (("buyer-bot-1", "net-30"), ("buyer-bot-2", "net-45"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    for key in keys:
        made = acme.proposals(key=key)
        assert [p.status for p in made] == ["escalated", "escalated"]
        assert len({p.resolution_id for p in made}) == 1
    assert len(acme.events(kind="proposal.resolved")) == len(keys)


# -- refusals --------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "error", "message"), [
    ({"member": "nobody"}, InvalidInput, "no member"),
    ({"task_type": "purchase_orders"}, InvalidInput, "unknown task type"),
    ({"confidence": 1.5}, InvalidInput, "confidence"),
    ({"confidence": -0.1}, InvalidInput, "confidence"),
    ({"confidence": True}, InvalidInput, "confidence"),
    ({"confidence": float("nan")}, InvalidInput, "confidence"),
    ({"confidence": "high"}, InvalidInput, "confidence"),
    ({"value": {1, 2}}, InvalidInput, "not JSON"),
    ({"value": float("inf")}, InvalidInput, "not JSON"),
    ({"value": "x" * 70_000}, InvalidInput, "at most"),
    ({"key": " "}, InvalidInput, "key"),
    ({"key": "k" * 257}, InvalidInput, "key"),
    ({"subject": ""}, InvalidInput, "subject"),
    ({"subject": "Customer::42"}, InvalidInput, "applies to Vendor"),
    ({"context": {}}, InvalidInput, "needs context.amount"),
    ({"context": {"amount": "300"}}, InvalidInput, "context.amount"),
    ({"rationale": 7}, InvalidInput, "rationale"),
    ({"subject": "Vendor::initech"}, Forbidden, "frozen-vendors-blocked"),
    ({"member": "refund-bot"}, Forbidden, "ask them to propose it"),
])
def test_invalid_or_unpermitted_proposals_change_nothing(acme: Charter, change, error,
                                                         message):
    order(acme, "buyer-bot-1", "net-30")
    args: dict[str, Any] = {"member": "buyer-bot-2", "subject": VENDOR,
                            "key": "supplier_terms", "value": "net-45",
                            "task_type": "purchase_order", "context": {"amount": 300},
                            **change}
    before = rows(acme), len(acme.events())
    with pytest.raises(error, match=message):
        acme.propose(args.pop("member"), args.pop("subject"), args.pop("key"),
                     args.pop("value"), **args)
    assert (rows(acme), len(acme.events())) == before


def test_an_unpermitted_proposal_names_who_could_approve(acme: Charter):
    with pytest.raises(Forbidden) as refused:
        order(acme, "refund-bot", "net-30")
    assert "priya.raman" in refused.value.message
    assert refused.value.details["approvers"] == ["priya.raman"]


def test_one_subject_and_key_is_decided_under_one_task_type(acme: Charter):
    order(acme, "buyer-bot-1", "net-30")
    before = len(acme.events())
    with pytest.raises(Conflict, match="under task type purchase_order"):
        acme.propose("ap-bot-1", VENDOR, "supplier_terms", "net-45",
                     task_type="invoice_approval", context={"amount": 300})
    assert len(acme.events()) == before


# -- the ledger --------------------------------------------------------------------------

def test_every_step_is_in_the_ledger_and_replay_rebuilds_the_same_rows(
        acme: Charter, clock: ManualClock):
    reviewed(acme, "triage-bot", [True, True, False])
    order(acme, "buyer-bot-1", "net-30")
    order(acme, "buyer-bot-2", "net-30")
    lead = order(acme, "james.liu", "net-60")
    triage(acme, "triage-bot", "billing", confidence=0.7)
    triage(acme, "support-bot", "technical", confidence=0.9)
    price(acme, "pricing-bot", 10)
    escalated = price(acme, "nina.kapoor", 11)
    price(acme, "pricing-bot", 10)
    assert escalated.resolution is not None
    acme.settle_proposals(escalated.resolution.id, escalated.id, by="priya.raman")
    clock.advance(timedelta(minutes=30))
    order(acme, "sofia.alvarez", "net-90")
    kinds = [e.kind for e in acme.events() if e.kind.startswith(("proposal.",
                                                                    "approval."))]
    assert kinds.count("proposal.made") == 9
    assert kinds.count("proposal.resolved") == 4
    assert kinds.count("proposal.settled") == 1
    assert {"approval.requested", "approval.voted", "approval.granted",
            "approval.executed"} <= set(kinds)
    made = acme.events(subject=f"proposal:{lead.id}")
    assert [e.kind for e in made] == ["proposal.made"] and made[0].actor == "james.liu"
    assert made[0].payload is not None
    assert "approvers-purchase-within-limit" in made[0].payload["permitted_by"][0][
        "policies"]
    assert made[0].payload["context"] == {"amount": 300}
    before = rows(acme)
    acme.rebuild_read_tables()
    assert rows(acme) == before
    report = acme.verify_ledger()
    assert report.ok, report.problem
