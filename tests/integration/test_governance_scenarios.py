"""Approvals, quorum, delegation, budgets: the governance scenario, end to end."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from charter import ManualClock
from charter.errors import Conflict, Forbidden, InvalidInput
from charter.system import Charter

V = "Vendor::globex"


def test_separation_of_duties(acme: Charter):
    decision = acme.authorize("james.liu", "purchase.create", V, {"amount": 30000})
    assert decision.outcome == "escalate" and decision.approval_id
    with pytest.raises(Forbidden, match="separation of duties"):
        acme.approve(decision.approval_id, approver="james.liu")
    with pytest.raises(Forbidden, match="not an approver"):
        acme.approve(decision.approval_id, approver="buyer-bot-1")
    assert acme.approval(decision.approval_id).status == "pending"


def test_quorum_needs_two_distinct_approvers(acme: Charter):
    request = ("treasury-bot", "payment.release", V, {"amount": 80000})
    decision = acme.authorize(*request)
    assert decision.quorum == 2 and decision.approval_id
    approval_id = decision.approval_id
    once = acme.approve(approval_id, approver="elena.petrova", comment="invoice checked")
    assert once.status == "pending" and once.approvals_count == 1
    with pytest.raises(Conflict, match="1 of 2"):
        acme.execute_approved(approval_id, *request)
    with pytest.raises(Conflict, match="already voted"):
        acme.approve(approval_id, approver="elena.petrova")
    twice = acme.approve(approval_id, approver="marcus.okafor")
    assert twice.status == "approved"
    assert acme.execute_approved(approval_id, *request).outcome == "allow"


def test_same_request_reuses_the_pending_approval(acme: Charter):
    first = acme.authorize("buyer-bot-1", "purchase.create", V, {"amount": 30000})
    again = acme.authorize("buyer-bot-1", "purchase.create", V, {"amount": 30000})
    other = acme.authorize("buyer-bot-1", "purchase.create", V, {"amount": 30001})
    assert first.approval_id == again.approval_id != other.approval_id


def test_approval_is_bound_to_its_arguments_and_executes_once(acme: Charter):
    decision = acme.authorize("buyer-bot-1", "purchase.create", V, {"amount": 30000})
    assert decision.approval_id
    acme.approve(decision.approval_id, approver="sofia.alvarez", comment="ok")
    with pytest.raises(Forbidden, match="different request"):
        acme.execute_approved(decision.approval_id, "buyer-bot-1", "purchase.create", V,
                              {"amount": 35000})
    with pytest.raises(Forbidden, match="different request"):
        acme.execute_approved(decision.approval_id, "buyer-bot-1", "purchase.create",
                              "Vendor::umbrella-supplies", {"amount": 30000})
    allowed = acme.execute_approved(decision.approval_id, "buyer-bot-1", "purchase.create",
                                    V, {"amount": 30000})
    assert allowed.outcome == "allow" and "sofia.alvarez" in allowed.reasons[0].message
    with pytest.raises(Conflict, match="already executed"):
        acme.execute_approved(decision.approval_id, "buyer-bot-1", "purchase.create", V,
                              {"amount": 30000})
    bigger = acme.authorize("buyer-bot-1", "purchase.create", V, {"amount": 35000})
    assert bigger.outcome == "escalate" and bigger.approval_id != decision.approval_id


def test_rejection_needs_a_comment_and_ends_the_approval(acme: Charter):
    decision = acme.authorize("buyer-bot-1", "purchase.create", V, {"amount": 30000})
    assert decision.approval_id
    with pytest.raises(InvalidInput, match="comment"):
        acme.reject(decision.approval_id, approver="sofia.alvarez", comment="")
    rejected = acme.reject(decision.approval_id, approver="sofia.alvarez",
                           comment="use the framework contract")
    assert rejected.status == "rejected"
    assert rejected.votes[0].comment == "use the framework contract"
    with pytest.raises(Conflict, match="rejected"):
        acme.execute_approved(decision.approval_id, "buyer-bot-1", "purchase.create", V,
                              {"amount": 30000})


def test_a_delegation_lends_authority_not_autonomy(acme: Charter, clock: ManualClock):
    big_change = ("pricing-bot", "price.propose", "Sku::sku-9", {"change_percent": 15})
    assert acme.authorize(*big_change, task_type="price_change").outcome == "escalate"
    acme.delegate("nina.kapoor", "pricing-bot", ["price.propose"],
                  clock.now() + timedelta(hours=8))
    # pricing-bot is supervised on price changes: acting for nina.kapoor, its
    # proposal is within authority now, but a manager still approves it
    decided = acme.authorize(*big_change, task_type="price_change")
    assert decided.outcome == "escalate"
    kinds = [reason.kind for reason in decided.reasons]
    assert kinds[:2] == ["delegation", "policy"] and "autonomy" in kinds


def test_delegation_before_after_expiry_and_after_revocation(acme: Charter,
                                                             clock: ManualClock):
    request = ("james.liu", "purchase.create", V, {"amount": 30000})
    assert acme.authorize(*request).outcome == "escalate"
    granted = acme.delegate("sofia.alvarez", "james.liu", ["purchase.create"],
                            clock.now() + timedelta(hours=8))
    delegated = acme.authorize(*request)
    assert delegated.outcome == "allow"
    assert delegated.reasons[0].kind == "delegation"
    assert "sofia.alvarez" in delegated.reasons[0].message
    clock.advance(timedelta(hours=9))
    assert acme.authorize(*request).outcome == "escalate"  # expired: no restart needed
    second = acme.delegate("sofia.alvarez", "james.liu", ["purchase.create"],
                           clock.now() + timedelta(hours=8))
    assert acme.authorize(*request).outcome == "allow"
    acme.revoke_delegation(second.id, actor="sofia.alvarez")
    assert acme.authorize(*request).outcome == "escalate"
    with pytest.raises(Conflict):
        acme.revoke_delegation(second.id, actor="sofia.alvarez")
    assert granted.id != second.id


def test_delegation_does_not_lift_a_forbid(acme: Charter, clock: ManualClock):
    acme.delegate("james.liu", "buyer-bot-2", ["purchase.create"],
                  clock.now() + timedelta(hours=1))
    decision = acme.authorize("buyer-bot-2", "purchase.create", V, {"amount": 3000})
    assert decision.outcome == "escalate"
    assert decision.reasons[0].kind == "forbid"


def test_bad_delegations_are_refused(acme: Charter, clock: ManualClock):
    with pytest.raises(InvalidInput, match="future"):
        acme.delegate("sofia.alvarez", "james.liu", ["purchase.create"], clock.now())
    with pytest.raises(InvalidInput, match="unknown"):
        acme.delegate("sofia.alvarez", "james.liu", ["purchase.steal"],
                      clock.now() + timedelta(hours=1))
    with pytest.raises(InvalidInput, match="itself"):
        acme.delegate("james.liu", "james.liu", ["purchase.create"],
                      clock.now() + timedelta(hours=1))


def test_sla_timeout_escalates_one_level_further_then_expires(acme: Charter,
                                                              clock: ManualClock):
    decision = acme.authorize("buyer-bot-1", "purchase.create", V, {"amount": 30000})
    assert decision.approvers == ("sofia.alvarez",)
    clock.advance(timedelta(hours=5))  # purchase_order's SLA is the default 4h
    (changed,) = acme.apply_approval_timeouts()
    assert changed.approvers == ("sofia.alvarez", "priya.raman")
    assert acme.approve(changed.id, approver="priya.raman").status == "approved"
    late = acme.authorize("buyer-bot-1", "purchase.create", V, {"amount": 31000})
    clock.advance(timedelta(days=8))
    acme.apply_approval_timeouts()
    assert acme.approval(late.approval_id or "").status == "expired"


def test_over_budget_escalates_to_the_envelope_owner(acme: Charter):
    first = acme.request_spend("buyer-bot-1", 50000, "PO 100: laptops")
    assert first.reservation is not None and first.decision.outcome == "allow"
    short = acme.request_spend("buyer-bot-1", 20000, "PO 101: monitors")
    assert short.reservation is None
    assert short.decision.outcome == "escalate"
    assert short.decision.approvers == ("james.liu",)
    assert short.decision.approval_id
    acme.approve(short.decision.approval_id, approver="james.liu", comment="quarter end")
    done = acme.reserve_spend("buyer-bot-1", 20000, "PO 101: monitors",
                              approval_id=short.decision.approval_id)
    assert done.reservation is not None
    with pytest.raises(Conflict, match="already executed"):
        acme.reserve_spend("buyer-bot-1", 20000, "PO 101: monitors",
                           approval_id=short.decision.approval_id)
    envelope = {e.id: e for e in acme.budget_usage()}["buyer-bot-1-spend"]
    assert envelope.available >= 0
    assert envelope.reserved + envelope.committed + envelope.available == envelope.amount


def test_nested_envelope_exhaustion_names_the_parent(acme: Charter):
    # buyer-bot-2's own envelope (10,000) has room, but its parents are drained first.
    acme.reserve_spend("sofia.alvarez", 595000, "annual hardware refresh",
                       budget="procurement-spend")
    refused = acme.request_spend("buyer-bot-2", 9000, "PO 7: desks")
    assert refused.decision.outcome == "escalate"
    assert "procurement-spend" in refused.decision.reasons[0].message
    assert refused.decision.approvers == ("sofia.alvarez",)


def test_spend_owned_by_the_requester_is_denied_over_budget(acme: Charter):
    acme.reserve_spend("sofia.alvarez", 600000, "everything", budget="procurement-spend")
    refused = acme.request_spend("sofia.alvarez", 10, "one more", budget="procurement-spend")
    assert refused.decision.outcome == "deny"


def test_every_decision_is_in_the_verified_ledger(acme: Charter, clock: ManualClock):
    made = [
        acme.authorize("buyer-bot-1", "purchase.create", V, {"amount": 3000}),
        acme.authorize("buyer-bot-1", "purchase.create", V, {"amount": 30000}),
        acme.authorize("support-bot", "memory.read", "Payroll::2026-11", {}),
        acme.authorize("buyer-bot-1", "purchase.create", V, {"amount": "500"}),
    ]
    acme.approve(made[1].approval_id or "", approver="sofia.alvarez")
    acme.execute_approved(made[1].approval_id or "", "buyer-bot-1", "purchase.create", V,
                          {"amount": 30000})
    acme.flush_decisions()
    report = acme.verify_ledger()
    assert report.ok, report.problem
    logged = [e.payload for e in acme.events(kind="decision.made") if e.payload]
    assert [p["outcome"] for p in logged].count("allow") == 2
    assert {p["outcome"] for p in logged} == {"allow", "deny", "escalate"}
    assert all(p["reasons"] for p in logged)
    kinds = {e.kind for e in acme.events()}
    assert {"approval.requested", "approval.voted", "approval.granted",
            "approval.executed", "policy.loaded", "org.loaded"} <= kinds


def test_read_tables_rebuild_exactly_after_the_scenario(acme: Charter, clock: ManualClock):
    from sqlalchemy import select

    from charter.store.schema import READ_TABLES

    escalated = acme.authorize("buyer-bot-1", "purchase.create", V, {"amount": 30000})
    acme.approve(escalated.approval_id or "", approver="sofia.alvarez")
    acme.delegate("sofia.alvarez", "james.liu", ["purchase.create"],
                  clock.now() + timedelta(hours=2))
    spent = acme.reserve_spend("buyer-bot-1", 1200, "PO 9")
    assert spent.reservation is not None
    acme.commit_spend(spent.reservation.id, 1100, actor="buyer-bot-1")
    clock.advance(timedelta(hours=5))
    acme.apply_approval_timeouts()

    def snapshot() -> dict[str, list[tuple[object, ...]]]:
        with acme.store.reading() as conn:
            return {t.name: sorted(map(tuple, conn.execute(select(t)).all()), key=repr)
                    for t in READ_TABLES}

    before = snapshot()
    acme.rebuild_read_tables()
    assert snapshot() == before


def test_org_load_refuses_to_strand_open_reservations(acme: Charter, workspace: Path):
    from charter.errors import Conflict as ConflictError

    acme.reserve_spend("buyer-bot-1", 100, "PO 1")
    path = workspace / "charter.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.index("              - id: buyer-bot-1-spend")
    end = text.index("              - id: buyer-bot-2-spend")
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    with pytest.raises(ConflictError, match="buyer-bot-1-spend"):
        acme.load_org(path)
    assert acme.current_org().version == 1  # type: ignore[union-attr]


def test_moving_an_envelope_moves_its_usage(acme: Charter, workspace: Path):
    spent = acme.reserve_spend("treasury-bot", 4000, "supplier run")
    assert spent.reservation is not None and spent.reservation.budget_id == (
        "treasury-bot-payments")
    acme.commit_spend(spent.reservation.id, 3000, actor="treasury-bot")
    acme.reserve_spend("treasury-bot", 500, "fees")
    path = workspace / "charter.yaml"
    text = path.read_text(encoding="utf-8")
    block_start = text.index("          - id: treasury-bot-payments")
    block_end = text.index("      - id: support-spend")
    block = text[block_start:block_end]
    text = text[:block_start] + text[block_end:]
    anchor = text.index("      - id: ai-workforce")
    text = text[:anchor] + block.replace("\n          ", "\n      ").replace(
        "          - id:", "      - id:", 1) + text[anchor:]
    path.write_text(text, encoding="utf-8")
    acme.load_org(path)
    assert acme.org.budget_parent["treasury-bot-payments"] == "acme-opex"
    usage = {e.id: e for e in acme.budget_usage()}
    assert (usage["finance-payables"].reserved, usage["finance-payables"].committed) == (0, 0)
    assert usage["treasury-bot-payments"].reserved == 500
    assert usage["treasury-bot-payments"].committed == 3000
    assert usage["acme-opex"].reserved == 500 and usage["acme-opex"].committed == 3000
