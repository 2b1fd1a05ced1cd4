"""Authority over the Acme org, table-driven, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from charter.system import Charter

V = "Vendor::globex"
C = "Customer::42"
PAYROLL = "Payroll::2026-11"

# member, action, resource, context, outcome, approvers (escalate) or a reason fragment
CASES = [
    # allowed
    ("buyer-bot-1", "purchase.create", V, {"amount": 3000}, "allow",
     "buyers-purchase-within-limit"),
    ("james.liu", "purchase.create", V, {"amount": 20000}, "allow", "within-limit"),
    ("sofia.alvarez", "purchase.create", V, {"amount": 90000}, "allow", "within-limit"),
    ("dana.whitfield", "purchase.create", V, {"amount": 900000}, "allow", "within-limit"),
    ("buyer-bot-1", "purchase.create", V, {"amount": 4999.5}, "allow", "within-limit"),
    ("refund-bot", "refund.issue", C, {"amount": 150}, "allow", "notifies ben.kowalski"),
    ("ben.kowalski", "refund.issue", C, {"amount": 900}, "allow", "refunds-within-limit"),
    ("support-bot", "ticket.resolve", "Customer::7", {}, "allow", "support-agents"),
    ("triage-bot", "ticket.triage", "customer:7", {}, "allow", "support-agents"),
    ("elena.petrova", "payment.release", V, {"amount": 20000}, "allow", "within-limit"),
    ("nina.kapoor", "price.propose", "Sku::sku-9", {"change_percent": 25}, "allow",
     "managers-propose-any-change"),
    ("ap-bot-1", "memory.read", PAYROLL, {}, "allow", "payroll-finance-only"),
    ("marcus.okafor", "memory.write", PAYROLL, {}, "allow", "payroll-finance-only"),
    ("support-bot", "memory.write", C, {}, "allow", "memory-about-work"),
    # denied: forbids that nobody in the chain escapes, or nobody permitted at all
    ("support-bot", "memory.read", PAYROLL, {}, "deny", "payroll-never-outside-finance"),
    ("buyer-bot-1", "purchase.create", "Vendor::initech", {"amount": 300}, "deny",
     "frozen-vendors-blocked"),
    ("dana.whitfield", "purchase.create", "Vendor::initech", {"amount": 300}, "deny",
     "frozen-vendors-blocked"),
    ("refund-bot", "refund.issue", C, {"amount": 15000}, "deny", "refunds-capped-at-10000"),
    ("buyer-bot-1", "purchase.create", V, {"amount": 2_000_000}, "deny",
     "nobody in buyer-bot-1's chain"),
    ("dana.whitfield", "purchase.create", V, {"amount": 2_000_000}, "deny", "no-permit"),
    # denied: malformed requests never reach a policy
    ("buyer-bot-1", "purchase.create", V, {"amount": "500"}, "deny", "invalid"),
    ("buyer-bot-1", "purchase.create", V, {"amount": True}, "deny", "invalid"),
    ("buyer-bot-1", "purchase.create", V, {"amount": -5}, "deny", "invalid"),
    ("buyer-bot-1", "purchase.create", V, {}, "deny", "needs context.amount"),
    ("buyer-bot-1", "purchase.create", V, {"amount": float("nan")}, "deny", "invalid"),
    ("buyer-bot-1", "purchase.create", V, {"amount": 5, "discount": 1}, "deny",
     "takes no context attribute"),
    ("buyer-bot-1", "purchase.create", V, None, "deny", "needs context.amount"),
    ("nobody", "purchase.create", V, {"amount": 5}, "deny", "no member"),
    ("buyer-bot-1", "purchase.delete", V, {"amount": 5}, "deny", "unknown action"),
    ("buyer-bot-1", "purchase.create", C, {"amount": 5}, "deny", "applies to Vendor"),
    ("buyer-bot-1", "purchase.create", "Vendor::newco", {"amount": 5}, "deny",
     "not a known Vendor"),
    ("buyer-bot-1", "purchase.create", "globex", {"amount": 5}, "deny", "Type::id"),
    ("pricing-bot", "price.propose", "Sku::sku-9", {"change_percent": 2.5}, "deny",
     "whole number"),
    # escalated: to the nearest permitted ancestor, and only that one
    ("buyer-bot-1", "purchase.create", V, {"amount": 30000}, "escalate", ["sofia.alvarez"]),
    ("buyer-bot-1", "purchase.create", V, {"amount": 200000}, "escalate", ["priya.raman"]),
    ("buyer-bot-2", "purchase.create", V, {"amount": 3000}, "escalate", ["james.liu"]),
    ("james.liu", "purchase.create", V, {"amount": 30000}, "escalate", ["sofia.alvarez"]),
    ("triage-bot", "purchase.create", V, {"amount": 100}, "escalate", ["priya.raman"]),
    ("buyer-bot-1", "refund.issue", C, {"amount": 100}, "escalate", ["priya.raman"]),
    ("ap-bot-2", "invoice.approve", V, {"amount": 800}, "escalate", ["tom.brennan"]),
    ("pricing-bot", "price.propose", "Sku::sku-9", {"change_percent": 5}, "escalate",
     ["nina.kapoor"]),
    ("pricing-bot", "price.propose", "Sku::sku-9", {"change_percent": 30}, "escalate",
     ["nina.kapoor"]),
    # quorum of two: the two nearest permitted
    ("treasury-bot", "payment.release", V, {"amount": 80000}, "escalate",
     ["elena.petrova", "marcus.okafor"]),
    ("vendor-bot", "vendor.onboard", V, {}, "escalate", ["sofia.alvarez", "priya.raman"]),
]


@pytest.mark.parametrize(("member", "action", "resource", "context", "outcome", "expect"),
                         CASES, ids=[f"{i}-{c[0]}-{c[1]}-{c[4]}" for i, c in enumerate(CASES)])
def test_decision_table(acme: Charter, member, action, resource, context, outcome, expect):
    decision = acme.authorize(member, action, resource, context)
    assert decision.outcome == outcome, decision.explain()
    assert decision.reasons, "every decision has reasons"
    if outcome == "escalate":
        assert list(decision.approvers) == expect, decision.explain()
        assert decision.quorum == len(expect)
        assert decision.approval_id
    else:
        text = " ".join(f"{r.kind} {r.message} {' '.join(r.policies)}"
                        for r in decision.reasons)
        assert expect in text, decision.explain()
    acme.flush_decisions()
    logged = [e for e in acme.events(kind="decision.made")
              if e.payload and e.payload["member"] == member]
    assert logged and logged[-1].payload["outcome"] == outcome
    assert logged[-1].payload["reasons"]


def test_forbid_overrides_permit(acme: Charter):
    decision = acme.authorize("buyer-bot-1", "purchase.create", "Vendor::initech",
                              {"amount": 300})
    assert decision.outcome == "deny"
    assert decision.reasons[0].policies == ("frozen-vendors-blocked",)


def test_a_forbid_blind_to_the_principal_denies_without_asking_the_chain(acme: Charter):
    # frozen-vendors-blocked never reads the principal: every approver would be
    # forbidden alike, so the decision says so instead of walking the chain
    decision = acme.authorize("buyer-bot-1", "purchase.create", "Vendor::initech",
                              {"amount": 300})
    assert decision.outcome == "deny"
    assert [r.kind for r in decision.reasons] == ["forbid", "chain"]
    assert "every member alike" in decision.reasons[1].message
    # a forbid that reads the principal still leaves the chain to be asked
    decision = acme.authorize("support-bot", "memory.read", PAYROLL, {})
    assert decision.outcome == "deny"
    assert "every member alike" not in decision.explain()


def test_text_no_database_stores_is_refused_and_still_recorded(acme):
    """A lone surrogate or a NUL in a resource or context is an invalid request; the
    decision is still recorded (the offending characters replaced), and the ledger
    goes on verifying."""
    for resource, context in (("Customer::\ud8004", {}), ("Customer::4\x002", {}),
                              ("Vendor::globex", {"amount": 5, "note\ud800": 1})):
        action = "ticket.resolve" if resource.startswith("Customer") else "purchase.create"
        decision = acme.authorize("support-bot", action, resource, context)
        assert decision.outcome == "deny" and decision.reasons[0].kind == "invalid"
    acme.flush_decisions()
    recorded = [e for e in acme.tail(10) if e.kind == "decision.made"]
    assert len(recorded) == 3
    assert all("\ud800" not in e.subject and "\x00" not in e.subject for e in recorded)
    assert acme.verify_ledger().ok
