"""Governance verbs of the `Charter` facade: policies, authorize, approvals, delegations,
budgets. Each state change is one transaction; bare decisions go through the
group-commit decision log."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from charter import (
    approvals,
    approvalwaits,
    autonomy,
    delegations,
    orgversions,
    policyversions,
    readmodel,
    suspensions,
    tracing,
)
from charter.approvals import Approval
from charter.authority import Authority
from charter.canonical import json_safe, storable_text
from charter.clock import Clock
from charter.decisionlog import DecisionLog
from charter.decisions import Decision, Reason
from charter.delegations import Delegation
from charter.errors import NoOrgLoaded
from charter.ledger import EventDraft, Ledger
from charter.org import Org
from charter.orgversions import OrgVersion
from charter.policy import CompiledPolicies, PolicyEngine, read_policy_files
from charter.policyversions import PolicyVersion
from charter.requests import AuthzRequest
from charter.settings import Settings
from charter.store import Store
from charter.types import ApprovalRule

DECISION = "decision.made"
DEFAULT_APPROVAL = ApprovalRule()
"""How escalations outside any task type wait: 4h SLA, then one level further."""


@dataclass(frozen=True)
class Snapshot:
    """The org, policy set and delegations decisions are made against."""

    org_version: int
    policy_version: int | None
    authority: Authority
    checked_at: float


class GovernanceVerbs:
    """Mixed into `Charter`; expects its store, ledger, clock and settings."""

    store: Store
    ledger: Ledger
    clock: Clock
    settings: Settings
    _snapshot: Snapshot | None
    _decisions: DecisionLog
    current_org: Callable[[], OrgVersion | None]
    """The org in force, cached by version (`Charter` provides it)."""

    # -- policies ----------------------------------------------------------------------

    def load_policies(self, folder: str | Path | None = None, *,
                      actor: str = "system") -> PolicyVersion:
        """Validate a policy folder (default: the org's) against the org in force and
        make it the policy set (a ledger event). An invalid set changes nothing."""
        org = self._require_org()
        files = read_policy_files(Path(folder) if folder else org.policies_dir)
        return self.load_policy_files(files, source=str(Path(folder or org.policies_dir)
                                                        .resolve()), actor=actor)

    def load_policy_files(self, files: dict[str, str], *, source: str,
                          actor: str = "system") -> PolicyVersion:
        """Validate policy files (name -> text) against the org in force and make them
        the policy set, recording `source` as where they came from. An invalid set
        changes nothing."""
        engine = PolicyEngine.build(self._require_org(), files)
        with self.store.transaction() as conn:
            draft = policyversions.policy_loaded_draft(conn, engine.policies, source, actor)
            event = readmodel.record_draft(conn, self.ledger, draft)
        self._keep_org_handles()
        return PolicyVersion(draft.payload["version"], engine.policies.digest,
                             draft.payload["source"], dict(files), event.at, actor,
                             event.seq)

    def check_policies(self, files: dict[str, str]) -> CompiledPolicies:
        """Validate policy files against the org in force without loading them; raise
        `PolicyInvalid` listing every problem."""
        return PolicyEngine.build(self._require_org(), files).policies

    def _keep_org_handles(self) -> None:
        """Make the next decision re-read versions, keeping the org's parsed handles."""
        if self._snapshot is not None:
            self._snapshot = replace(self._snapshot, checked_at=float("-inf"))

    def current_policies(self) -> PolicyVersion | None:
        with self.store.reading() as conn:
            number = policyversions.current_version_number(conn)
            return None if number is None else policyversions.read_version(conn, number)

    def authority(self) -> Authority:
        """The decision-maker for the org and policies in force (refreshed from the
        database at most every `governance_refresh` seconds, and at once after a change
        made through this process)."""
        snapshot = self._snapshot
        if snapshot is not None and (time.monotonic() - snapshot.checked_at
                                     < self.settings.governance_refresh):
            return snapshot.authority
        with self.store.reading() as conn:
            org_number = orgversions.current_version_number(conn)
            if org_number is None:
                raise NoOrgLoaded()
            policy_number = policyversions.current_version_number(conn)
            live = delegations.load_delegations(conn, self.clock.now())
            levels = autonomy.current_levels(conn)
            stopped, frozen = suspensions.suspended(conn), suspensions.frozen(conn)
            if snapshot is None or snapshot.org_version != org_number:
                engine = self._build_engine(conn, org_number, policy_number)
            elif snapshot.policy_version != policy_number:
                # Same org: keep its schema and entities, parse only the new policies.
                engine = snapshot.authority.engine.with_policies(
                    self._policy_files(conn, policy_number))
            else:
                engine = snapshot.authority.engine
        self._snapshot = Snapshot(org_number, policy_number,
                                  Authority(engine, live, levels, stopped, frozen),
                                  time.monotonic())
        return self._snapshot.authority

    def _build_engine(self, conn: Connection, org_number: int,
                      policy_number: int | None) -> PolicyEngine:
        version = orgversions.read_version(conn, org_number)
        assert version is not None
        return PolicyEngine.build(version.org, self._policy_files(conn, policy_number))

    @staticmethod
    def _policy_files(conn: Connection, policy_number: int | None) -> dict[str, str]:
        if policy_number is None:
            return {}
        policies = policyversions.read_version(conn, policy_number)
        assert policies is not None
        return policies.files

    # -- decisions ---------------------------------------------------------------------

    def authorize(self, member: str, action: str, resource: str | dict[str, str],
                  context: dict[str, Any] | None = None, *,
                  task_type: str | None = None, task_id: str | None = None) -> Decision:
        """May `member` do `action` on `resource` with `context`? Allow, deny, or
        escalate to approvers (an approval is opened); always with reasons. Every
        decision is recorded in the ledger. With `task_id`, the request (and so its
        approval) is bound to that task."""
        authority = self.authority()
        with tracing.start("charter.authorize",
                           parent=tracing.request_parent(self.store, task_id),
                           member=member, action=action, task_type=task_type,
                           task_id=task_id) as span:
            decision = authority.decide(member, action, resource, context,
                                        task_type=task_type, now=self.clock.now(),
                                        task=task_id)
            if decision.outcome == "escalate":  # opens an approval, or finds it waiting
                with self.store.transaction() as conn:
                    decision = self._escalate(conn, authority, decision)
            else:
                self._decisions.submit(self._decision_draft(decision))
            tracing.describe(span, decision=decision.outcome, resource=decision.resource,
                             approval_id=decision.approval_id)
            return decision

    def flush_decisions(self) -> None:
        """Wait until every decision made so far is in the ledger."""
        self._decisions.flush()

    def _decision_draft(self, decision: Decision) -> EventDraft:
        snapshot = self._snapshot
        payload = decision.to_json()
        actor, subject = decision.member, decision.resource[:256]
        if decision.request is None:  # invalid: record what was sent, as nearly as it can be
            payload = json_safe(payload)
            actor, subject = storable_text(actor)[:128], storable_text(subject)
        if snapshot is not None:
            payload["org_version"] = snapshot.org_version
            payload["policy_version"] = snapshot.policy_version
        return EventDraft(DECISION, actor, subject, payload)

    def _escalate(self, conn: Connection, authority: Authority,
                  decision: Decision) -> Decision:
        assert decision.request is not None
        pending = approvals.find_pending(conn, decision.request.hash)
        if pending is not None:  # the same exact request is already waiting
            decision = replace(decision, approval_id=pending.id, approvers=pending.approvers)
            readmodel.record_draft(conn, self.ledger, self._decision_draft(decision))
            return decision
        rule = self._approval_rule(authority.org, decision.request)
        opened = approvals.requested_draft(decision, rule, self.clock.now(),
                                           actor=decision.member)
        decision = replace(decision, approval_id=opened.payload["id"])
        readmodel.record_drafts(conn, self.ledger, [opened, self._decision_draft(decision)])
        return decision

    @staticmethod
    def _approval_rule(org: Org, request: AuthzRequest | None) -> ApprovalRule:
        if request is None or request.task_type is None:
            return DEFAULT_APPROVAL
        return org.task_types[request.task_type].approval

    # -- approvals ---------------------------------------------------------------------

    def approvals(self, *, status: str | None = None, approver: str | None = None,
                  task_id: str | None = None) -> list[Approval]:
        """Approvals, oldest first: by status, by who may approve, by task."""
        with self.store.reading() as conn:
            return approvals.listing(conn, status=status, approver=approver,
                                     task_id=task_id)

    def approval_page(self, *, after: tuple[str, str] | None = None, limit: int = 100,
                      status: str | None = None, approver: str | None = None,
                      task_id: str | None = None,
                      awaiting: str | None = None) -> list[Approval]:
        """Approvals oldest first, after the (created_at, id) of the last one seen;
        `awaiting` keeps the pending ones that member may still vote on."""
        with self.store.reading() as conn:
            return approvals.page(conn, after=after, limit=limit, status=status,
                                  approver=approver, task_id=task_id, awaiting=awaiting)

    def approval(self, approval_id: str) -> Approval:
        with self.store.reading() as conn:
            return approvals.get(conn, approval_id)

    def approve(self, approval_id: str, *, approver: str, comment: str = "") -> Approval:
        """Approve as `approver` (one of the approvers; never the requester)."""
        with self.store.transaction() as conn:
            voted = approvals.vote(conn, self.ledger, self.clock, approval_id,
                                   approver=approver, approve=True, comment=comment)
            _resume_task(conn, self.ledger, voted)
            return voted

    def reject(self, approval_id: str, *, approver: str, comment: str) -> Approval:
        with self.store.transaction() as conn:
            voted = approvals.vote(conn, self.ledger, self.clock, approval_id,
                                   approver=approver, approve=False, comment=comment)
            _resume_task(conn, self.ledger, voted)
            return voted

    def execute_approved(self, approval_id: str, member: str, action: str,
                         resource: str | dict[str, str],
                         context: dict[str, Any] | None = None, *,
                         task_type: str | None = None,
                         task_id: str | None = None) -> Decision:
        """Act on an approved request, once: the request must be exactly the one that
        was approved (same member, action, resource, context, task)."""
        authority = self.authority()
        decision = authority.decide(member, action, resource, context, task_type=task_type,
                                    now=self.clock.now(), task=task_id)
        if decision.request is None:
            return decision
        with self.store.transaction() as conn:
            approval = approvals.execute(conn, self.ledger, self.clock, approval_id,
                                         decision.request.hash, actor=member)
            voters = [v.approver for v in approval.votes if v.vote == "approve"]
            allowed = Decision("allow", member, action, decision.resource, decision.context,
                               (Reason("approval", f"approved by {', '.join(voters)} "
                                                   f"(approval {approval_id})"),),
                               decision.request, approval_id=approval_id)
            readmodel.record_draft(conn, self.ledger, self._decision_draft(allowed))
        return allowed

    def apply_approval_timeouts(self) -> list[Approval]:
        """Deny or escalate one level further every approval past its SLA; expire
        those past their expiry. Run it periodically (a worker or cron)."""
        authority = self.authority()

        def next_approver(approval: Approval) -> str | None:
            return _next_permitted(authority, approval, self.clock.now())

        def sla(approval: Approval) -> timedelta:
            task_type = approval.request.get("task_type")
            rule = (authority.org.task_types[task_type].approval
                    if task_type in authority.org.task_types else DEFAULT_APPROVAL)
            return rule.sla

        with self.store.transaction() as conn:
            changed = approvals.apply_timeouts(conn, self.ledger, self.clock, next_approver,
                                               sla)
            for approval in changed:
                _resume_task(conn, self.ledger, approval)
            return changed

    # -- delegations -------------------------------------------------------------------

    def delegate(self, from_member: str, to_member: str, actions: list[str],
                 until: datetime, *, actor: str | None = None) -> Delegation:
        """Let `to_member` act with `from_member`'s authority for `actions` until
        `until` (it stops working then, with no restart)."""
        org = self._require_org()
        with self.store.transaction() as conn:
            granted = delegations.delegate(conn, self.ledger, self.clock, org,
                                           from_member=from_member, to_member=to_member,
                                           actions=actions, until=until,
                                           actor=actor or from_member)
        self._keep_org_handles()
        return granted

    def delegations(self, *, member: str | None = None) -> list[Delegation]:
        """Delegations in force now, oldest first; with `member`, those it gave or
        received."""
        with self.store.reading() as conn:
            return delegations.load_delegations(conn, self.clock.now(), member=member)

    def delegation(self, delegation_id: str) -> Delegation:
        with self.store.reading() as conn:
            return delegations.get(conn, delegation_id)

    def revoke_delegation(self, delegation_id: str, *, actor: str) -> None:
        with self.store.transaction() as conn:
            delegations.revoke(conn, self.ledger, delegation_id, actor=actor)
        self._keep_org_handles()

    def _require_org(self) -> Org:
        current = self.current_org()
        if current is None:
            raise NoOrgLoaded()
        return current.org


def _resume_task(conn: Connection, ledger: Ledger, approval: Approval) -> None:
    """A settled approval may be the last one its task was waiting for."""
    task_id = approval.request.get("task")
    if task_id is not None and approval.status != "pending":
        approvalwaits.resume_if_settled(conn, ledger, task_id)


def _next_permitted(authority: Authority, approval: Approval, now: datetime) -> str | None:
    """The next member up the chain, above the current approvers, permitted the request."""
    request = approval.request
    org = authority.org
    chain = org.chain_of_command(approval.requester) if approval.requester in org.members \
        else []
    highest = max((chain.index(a) for a in approval.approvers if a in chain), default=-1)
    for candidate in chain[highest + 1:]:
        if request.get("action") == "budget.spend":
            return candidate
        decision = authority.decide(candidate, request["action"], request["resource"],
                                    request["context"], task_type=request.get("task_type"),
                                    now=now, autonomy="autonomous", task=request.get("task"))
        if decision.outcome == "allow":
            return candidate
    return None
