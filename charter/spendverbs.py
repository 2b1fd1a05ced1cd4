"""Spend against budget envelopes: reserve (escalating to the envelope's owner when it
is short), commit, release; every reservation is also a logged decision."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from charter import approvals, budgets, readmodel
from charter.budgets import EnvelopeUsage, OverBudget, Reservation
from charter.clock import Clock
from charter.decisionlog import DecisionLog
from charter.decisions import Decision, Reason
from charter.governance import DEFAULT_APPROVAL
from charter.ledger import EventDraft, Ledger
from charter.org import Org
from charter.requests import AuthzRequest
from charter.store import Store


@dataclass(frozen=True)
class SpendResult:
    """A spend request's decision, and its reservation when allowed."""

    decision: Decision
    reservation: Reservation | None = None


class SpendVerbs:
    """Mixed into `Charter`; expects its store, ledger, clock and decision log."""

    store: Store
    ledger: Ledger
    clock: Clock
    _decisions: DecisionLog
    _require_org: Callable[[], Org]
    _decision_draft: Callable[[Decision], EventDraft]

    def reserve_spend(self, member: str, amount: Decimal | int | str, purpose: str, *,
                      budget: str | None = None, ttl: timedelta = timedelta(hours=1),
                      approval_id: str | None = None) -> SpendResult:
        """Reserve spend for `member`. Over budget, the request escalates to the owner of
        the envelope that is short (who may approve an override, raising it), or is
        denied when that owner is the requester. With `approval_id` of an approved
        override, the envelope is topped up and the spend reserved, once."""
        org = self._require_org()
        subject = budget or budgets.envelope_for(org, member) or "?"
        request = _spend_request(member, subject, amount, purpose)
        with self.store.transaction() as conn:
            if approval_id is not None:
                approvals.execute(conn, self.ledger, self.clock, approval_id, request.hash,
                                  actor=member)
            try:
                reservation = budgets.reserve(conn, self.ledger, self.clock, org,
                                              member=member, amount=amount, purpose=purpose,
                                              budget=budget, ttl=ttl)
            except OverBudget as short:
                if approval_id is None:
                    raise
                details: dict[str, Any] = short.details
                budgets.top_up(conn, self.ledger, self.clock, details["budget"],
                               amount=details["shortfall"], actor=member,
                               reason=f"override approved ({approval_id})")
                reservation = budgets.reserve(conn, self.ledger, self.clock, org,
                                              member=member, amount=amount, purpose=purpose,
                                              budget=budget, ttl=ttl)
            reason = Reason("budget", f"reserved {amount} on {reservation.budget_id}")
            allowed = Decision("allow", member, "budget.spend", f"Budget::{subject}",
                               request.context, (reason,), request, approval_id=approval_id)
            readmodel.record_draft(conn, self.ledger, self._decision_draft(allowed))
            return SpendResult(allowed, reservation)

    def request_spend(self, member: str, amount: Decimal | int | str, purpose: str, *,
                      budget: str | None = None,
                      ttl: timedelta = timedelta(hours=1)) -> SpendResult:
        """Like `reserve_spend`, but over budget it answers with a decision (escalate
        to the short envelope's owner, or deny) instead of raising."""
        try:
            return self.reserve_spend(member, amount, purpose, budget=budget, ttl=ttl)
        except OverBudget as short:
            return SpendResult(self._over_budget(member, amount, purpose, budget, short))

    def _over_budget(self, member: str, amount: Decimal | int | str, purpose: str,
                     budget: str | None, short: OverBudget) -> Decision:
        org = self._require_org()
        details: dict[str, Any] = short.details
        subject = budget or budgets.envelope_for(org, member) or "?"
        request = _spend_request(member, subject, amount, purpose)
        owners = _owner_members(org, details.get("owner"), member)
        why = Reason("budget", short.message)
        if not owners:
            decision = Decision("deny", member, "budget.spend", f"Budget::{subject}",
                                request.context, (why, Reason(
                                    "budget", f"{details['budget']} is owned by the "
                                              "requester: nobody else can override it")),
                                request)
            self._decisions.submit(self._decision_draft(decision))
            return decision
        decision = Decision("escalate", member, "budget.spend", f"Budget::{subject}",
                            request.context, (why, Reason(
                                "budget", f"escalated to {owners[0]}, who answers for "
                                          f"{details['budget']}")), request,
                            approvers=(owners[0],))
        with self.store.transaction() as conn:
            approval = approvals.open_approval(conn, self.ledger, self.clock, decision,
                                               DEFAULT_APPROVAL, actor=member)
            decision = replace(decision, approval_id=approval.id)
            readmodel.record_draft(conn, self.ledger, self._decision_draft(decision))
        return decision

    def commit_spend(self, reservation_id: str, actual: Decimal | int | str, *,
                     actor: str) -> Reservation:
        with self.store.transaction() as conn:
            return budgets.commit(conn, self.ledger, self.clock, reservation_id,
                                  actual=actual, actor=actor)

    def release_spend(self, reservation_id: str, *, actor: str,
                      reason: str = "released") -> Reservation:
        with self.store.transaction() as conn:
            return budgets.release(conn, self.ledger, self.clock, reservation_id,
                                   actor=actor, reason=reason)

    def reservation(self, reservation_id: str) -> Reservation:
        with self.store.reading() as conn:
            return budgets.reservation(conn, reservation_id)

    def budget_usage(self) -> list[EnvelopeUsage]:
        with self.store.reading() as conn:
            return budgets.usage(conn, at=self.clock.now())


def _spend_request(member: str, budget: str, amount: Decimal | int | str,
                   purpose: str) -> AuthzRequest:
    context = {"amount": str(amount), "purpose": purpose}
    return AuthzRequest(member, "budget.spend", "Budget", budget, context, context, None)


def _owner_members(org: Org, owner: str | None, requester: str) -> list[str]:
    """Who answers for an envelope: its owner, or for a team the team's most senior
    members; never the requester."""
    if owner is None:
        return []
    if owner in org.members:
        return [] if owner == requester else [owner]
    in_team = [m.id for m in org.spec.members if owner in m.teams and m.id != requester
               and m.kind == "human"]
    return sorted(in_team, key=lambda m: len(org.chain_of_command(m)))
