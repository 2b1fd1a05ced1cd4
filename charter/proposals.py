"""Proposals: decisions members put forward on a subject and key, and how disagreeing
ones are arbitrated, in the transaction that records the proposal.

A proposal is *live* while younger than its task type's `conflict.window` (one exactly
a window old is outside it) and not lost. A new proposal meets the live ones on its
subject and key: alone, it is `open`; backing the one value standing, with no dispute
pending, it and the open ones are `agreed`; otherwise the dispute (the live proposals,
every party of an unsettled resolution among them, and the new one) is arbitrated by the
type's rule. So a late proposal meets the standing winner again: a new resolution names
it as a party (and under `standing`), the earlier one staying as decided. A dispute
waiting on its manager is joined by a proposal backing a value at stake under the same
manager (`escalated`, same resolution); anything else reopens it with a new resolution
and approval, the old approval expiring as superseded.

Values are compared as canonical JSON; `charter.arbitration` weighs them under the
`authority` and `track_record` rules; `escalate` always escalates.

An escalation opens an approval, bound to the exact dispute (resolution id, each
proposal's member and value), for the proposers' lowest active common manager; `settle`
lets that manager, never a proposer, pick the winner. Proposers with no common manager
(one tops the chain of command) cannot be escalated: the proposal is refused with
`Conflict` and nothing is recorded. Nobody above the manager is asked when it does not
answer: the approval expires at its SLA; a later proposal inside the window reopens the
dispute, one outside it starts afresh (the unsettled ones stay `escalated`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Row, select

from charter import approvals, readmodel
from charter.arbitration import Verdict, party, records, weigh_authority, weigh_track_record
from charter.canonical import canonical_json
from charter.clock import Clock
from charter.decisions import Decision, Reason
from charter.errors import Conflict, Forbidden, InvalidInput, NotFound
from charter.ledger import EventDraft, Ledger, format_time
from charter.org import Org, common_managers
from charter.requests import AuthzRequest
from charter.store.schema import proposals, resolutions

PROPOSED = "proposal.made"
RESOLVED = "proposal.resolved"
SETTLED = "proposal.settled"
SETTLE_ACTION = "proposal.settle"
"""The action an escalated dispute's approval names (no policy grants it: only the
common manager it names may settle the dispute)."""

Status = Literal["open", "agreed", "won", "lost", "escalated"]


@dataclass(frozen=True)
class Resolution:
    """How a dispute was arbitrated: the rule, the winner and losers (once decided), what
    the rule weighed, and the approval an escalation waits on."""

    id: str
    task_type: str
    subject: str
    key: str
    rule: str
    status: Literal["decided", "escalated"]
    winner: str | None
    losers: tuple[str, ...]
    evidence: dict[str, Any]
    approval_id: str | None
    at: str

    @property
    def parties(self) -> tuple[str, ...]:
        """The proposals weighed when it was made."""
        return tuple(party["proposal"] for party in self.evidence["parties"])

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "losers": list(self.losers)}


@dataclass(frozen=True)
class Proposal:
    """A value a member proposed for a subject and key, and where it stands."""

    id: str
    task_type: str
    subject: str
    key: str
    value: Any
    member: str
    confidence: float | None
    rationale: str
    status: Status
    resolution_id: str | None
    created_at: str
    resolution: Resolution | None = field(default=None, compare=False)

    @property
    def value_json(self) -> str:
        return canonical_json(self.value)

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "resolution": None if self.resolution is None
                else self.resolution.to_json()}


def propose(conn: Connection, ledger: Ledger, clock: Clock, org: Org, decision: Decision,
            *, key: str, value: Any, confidence: float | None, rationale: str) -> str:
    """Record an authorized proposal (`decision` allowed its task type's action on its
    subject) and arbitrate the dispute it starts or joins; return its id."""
    request = decision.request
    assert request is not None and request.task_type is not None
    task_type, subject, now = request.task_type, request.resource, clock.now()
    ledger.hold_head(conn)  # one arbitration per subject and key at a time
    live = _live(conn, org, task_type, subject, key, now)
    made: dict[str, Any] = {
        "id": str(uuid.uuid4()), "task_type": task_type, "subject": subject, "key": key,
        "value": value, "member": request.member, "confidence": confidence,
        "rationale": rationale, "context": request.context,
        "permitted_by": [reason.to_json() for reason in decision.reasons],
        "status": "open", "resolution": None, "agrees": []}
    new = Proposal(made["id"], task_type, subject, key, value, request.member, confidence,
                   rationale, "open", None, format_time(now))
    unsettled = {p.resolution_id for p in live if p.status == "escalated"}
    waiting = _waiting(conn, unsettled, now)
    if waiting is not None and _joins(org, live, new, *waiting):
        made.update(status="escalated", resolution=waiting[0])
        drafts = [_made(made)]
    elif not unsettled and {p.value_json for p in live} <= {new.value_json}:
        made.update(status="agreed" if live else "open",
                    agrees=[p.id for p in live if p.status == "open"])
        drafts = [_made(made)]
    else:
        drafts = [_made(made), *_arbitrate(conn, clock, org, [*live, new], unsettled,
                                           None if waiting is None else waiting[1])]
    readmodel.record_drafts(conn, ledger, drafts)
    return str(made["id"])


def settle(conn: Connection, ledger: Ledger, clock: Clock, resolution_id: str,
           winner: str, *, by: str) -> Resolution:
    """As the manager an escalated dispute waits on, pick its winning proposal."""
    ledger.hold_head(conn)
    resolution = get_resolution(conn, resolution_id)
    if resolution.status != "escalated":
        raise Conflict(f"resolution {resolution_id} was already decided: proposal "
                       f"{resolution.winner} won")
    parties = _parties(conn, [resolution_id])
    moved = set(resolution.parties) - {p.id for p in parties}
    if moved:
        raise Conflict(f"resolution {resolution_id} was superseded by resolution "
                       f"{get(conn, min(moved)).resolution_id} (a later proposal reopened "
                       "the dispute): settle that one")
    chosen = next((p for p in parties if p.id == winner), None)
    if chosen is None:
        raise InvalidInput(f"proposal {winner} is not a party to resolution {resolution_id}"
                           f"; its parties are {', '.join(p.id for p in parties)}")
    proposers = sorted({p.member for p in parties})
    if by in proposers:
        raise Forbidden(f"separation of duties: {by} proposed a value in this dispute, so "
                        f"cannot settle it (proposers: {', '.join(proposers)})")
    assert resolution.approval_id is not None
    approval = approvals.get(conn, resolution.approval_id, lock=True)
    if by not in approval.approvers:
        raise Forbidden(f"{by} may not settle resolution {resolution_id}: it waits on "
                        f"{', '.join(approval.approvers)} (approval {approval.id})")
    if approval.status == "pending":
        approvals.vote(conn, ledger, clock, approval.id, approver=by, approve=True,
                       comment=f"settled: proposal {winner} wins")
    approvals.execute(conn, ledger, clock, approval.id, approval.request_hash, actor=by)
    readmodel.record(conn, ledger, kind=SETTLED, actor=by,
                     subject=f"resolution:{resolution_id}", payload={
                         "id": resolution_id, "winner": winner, "by": by,
                         "approval_id": approval.id,
                         "winners": [p.id for p in parties
                                     if p.value_json == chosen.value_json],
                         "losers": [p.id for p in parties
                                    if p.value_json != chosen.value_json]})
    return get_resolution(conn, resolution_id)


def _live(conn: Connection, org: Org, task_type: str, subject: str, key: str,
          now: datetime) -> list[Proposal]:
    """The live proposals on subject and key, and every party of an unsettled
    resolution one of them belongs to, oldest first."""
    windows = {t.id: t.conflict.window for t in org.spec.task_types}
    query = select(proposals).where(
        proposals.c.subject == subject, proposals.c.key == key,
        proposals.c.status != "lost",
        proposals.c.created_at > format_time(now - max(windows.values())))
    live = [p for p in map(_proposal, conn.execute(query))
            if p.task_type in windows and p.created_at > format_time(now - windows[p.task_type])]
    other = next((p for p in live if p.task_type != task_type), None)
    if other is not None:
        raise Conflict(f"{subject} {key} is being decided under task type {other.task_type} "
                       f"(proposal {other.id} by {other.member}) until its window ends: "
                       f"propose under {other.task_type}, or after the window")
    unsettled = {p.resolution_id for p in live if p.status == "escalated"}
    known = {p.id for p in live}
    live += [p for p in _parties(conn, unsettled) if p.id not in known]
    return sorted(live, key=lambda p: (p.created_at, p.id))


def _waiting(conn: Connection, unsettled: set[str | None],
             now: datetime) -> tuple[str, approvals.Approval] | None:
    """The unsettled resolution whose approval can still be given, and that approval."""
    stamp = format_time(now)
    for resolution_id in sorted(r for r in unsettled if r is not None):
        approval_id = get_resolution(conn, resolution_id).approval_id
        approval = None if approval_id is None else approvals.get(conn, approval_id)
        if approval is not None and approval.status in ("pending", "approved") \
                and approval.expires_at > stamp:
            return resolution_id, approval
    return None


def _joins(org: Org, live: list[Proposal], new: Proposal, resolution_id: str,
           approval: approvals.Approval) -> bool:
    """Whether `new` leaves the waiting question as it is: it backs a value at stake,
    and the manager asked is still above every proposer."""
    at_stake = {p.value_json for p in live if p.resolution_id == resolution_id}
    members = {p.member for p in live if p.resolution_id == resolution_id} | {new.member}
    above = common_managers(org, members)
    return new.value_json in at_stake and all(a in above for a in approval.approvers)


def _arbitrate(conn: Connection, clock: Clock, org: Org, parties: list[Proposal],
               unsettled: set[str | None],
               superseded: approvals.Approval | None) -> list[EventDraft]:
    """The events that resolve a dispute: decided by the rule, or escalated to the
    proposers' lowest common manager."""
    newest = parties[-1]
    spec = org.task_types[newest.task_type]
    rule = spec.conflict.rule
    if rule == "authority":
        verdict = weigh_authority(org, parties)
    elif rule == "track_record":
        verdict = weigh_track_record(records(conn, newest.task_type,
                                             {p.member for p in parties}), parties)
    else:
        verdict = Verdict(None, {"rule": rule, "parties": [party(p) for p in parties]})
    evidence = {**verdict.evidence, "standing": [  # what the dispute reopens
        {"resolution": p.resolution_id, "proposal": p.id, "status": p.status}
        for p in parties[:-1] if p.resolution_id is not None]}
    resolved: dict[str, Any] = {
        "id": str(uuid.uuid4()), "task_type": newest.task_type, "subject": newest.subject,
        "key": newest.key, "rule": rule, "parties": [p.id for p in parties],
        "approval_id": None, "supersedes": sorted(r for r in unsettled if r is not None)}
    drafts = []
    if superseded is not None:  # its question changed: the new resolution asks it now
        drafts.append(EventDraft("approval.expired", "charter", f"approval:{superseded.id}",
                                 {"id": superseded.id, "reason": "superseded by resolution "
                                                                 f"{resolved['id']}"}))
    if verdict.winner is not None:
        chosen = next(p for p in parties if p.id == verdict.winner)
        resolved.update(status="decided", winner=chosen.id, evidence=evidence,
                        winners=[p.id for p in parties if p.value_json == chosen.value_json],
                        losers=[p.id for p in parties if p.value_json != chosen.value_json])
    else:
        opened = _escalation(org, clock, parties, resolved["id"], evidence)
        drafts.append(opened)
        resolved.update(status="escalated", winner=None, winners=[], losers=[],
                        approval_id=opened.payload["id"], evidence={
                            **evidence, "manager": opened.payload["approvers"][0],
                            "common_managers": common_managers(org, (p.member
                                                                     for p in parties))})
    drafts.append(EventDraft(RESOLVED, newest.member, f"resolution:{resolved['id']}",
                             resolved))
    return drafts


def _escalation(org: Org, clock: Clock, parties: list[Proposal], resolution_id: str,
                evidence: dict[str, Any]) -> EventDraft:
    """The approval that asks the proposers' lowest active common manager to settle."""
    newest = parties[-1]
    members = list(dict.fromkeys(p.member for p in parties))
    manager = next((m for m in common_managers(org, members)
                    if org.members[m].status == "active"), None)
    if manager is None:
        raise Conflict(
            f"nobody can settle {newest.subject} {newest.key}: {', '.join(members)} have no "
            f"active manager in common to escalate to ({evidence['rule']} rule); nothing "
            "was recorded. Propose the standing value, or propose again once the "
            f"{org.task_types[newest.task_type].conflict.window} window after the latest "
            f"proposal ({max(p.created_at for p in parties[:-1])}) has passed")
    context = {"subject": newest.subject, "key": newest.key, "proposals": [
        {"id": p.id, "member": p.member, "value": p.value} for p in parties]}
    request = AuthzRequest(newest.member, SETTLE_ACTION, "Resolution", resolution_id,
                           context, {}, newest.task_type)
    why = Reason("chain", f"escalated to {manager}, the lowest common manager of "
                          f"{', '.join(members)}, to pick the winning proposal")
    decision = Decision("escalate", newest.member, SETTLE_ACTION, request.resource, context,
                        (why,), request, approvers=(manager,))
    # Nobody above the common manager is asked: the dispute is reopened instead.
    rule = org.task_types[newest.task_type].approval.model_copy(update={"on_timeout": "deny"})
    return approvals.requested_draft(decision, rule, clock.now(), actor=newest.member)


def _made(payload: dict[str, Any]) -> EventDraft:
    return EventDraft(PROPOSED, payload["member"], f"proposal:{payload['id']}", payload)


# -- reading ---------------------------------------------------------------------------

def get(conn: Connection, proposal_id: str) -> Proposal:
    """A proposal with its resolution."""
    row = conn.execute(select(proposals).where(proposals.c.id == proposal_id)).first()
    if row is None:
        raise NotFound(f"no proposal {proposal_id}")
    found = _proposal(row)
    if found.resolution_id is None:
        return found
    return Proposal(**{**found.__dict__,
                       "resolution": get_resolution(conn, found.resolution_id)})


def get_resolution(conn: Connection, resolution_id: str) -> Resolution:
    row = conn.execute(select(resolutions).where(resolutions.c.id == resolution_id)).first()
    if row is None:
        raise NotFound(f"no resolution {resolution_id}")
    return Resolution(row.id, row.task_type, row.subject, row.key, row.rule, row.status,
                      row.winner, tuple(json.loads(row.losers)), json.loads(row.evidence),
                      row.approval_id, row.at)


def listing(conn: Connection, *, subject: str | None = None, key: str | None = None,
            member: str | None = None, status: str | None = None,
            limit: int = 1000) -> list[Proposal]:
    """Proposals, oldest first, filtered by subject, key, member and status."""
    query = select(proposals).order_by(proposals.c.created_at, proposals.c.id).limit(limit)
    for column, value in (("subject", subject), ("key", key), ("member", member),
                          ("status", status)):
        if value is not None:
            query = query.where(proposals.c[column] == value)
    return [_proposal(row) for row in conn.execute(query)]


def page(conn: Connection, *, after: tuple[str, str] | None, limit: int,
         subject: str | None = None, key: str | None = None, member: str | None = None,
         status: str | None = None) -> list[Proposal]:
    """Proposals oldest first, from just after `after` (created_at, id): keyset pages,
    filtered by subject, key, member and status."""
    query = select(proposals).order_by(proposals.c.created_at, proposals.c.id).limit(limit)
    if after is not None:
        query = query.where((proposals.c.created_at > after[0])
                            | ((proposals.c.created_at == after[0])
                               & (proposals.c.id > after[1])))
    for column, value in (("subject", subject), ("key", key), ("member", member),
                          ("status", status)):
        if value is not None:
            query = query.where(proposals.c[column] == value)
    return [_proposal(row) for row in conn.execute(query)]


def _parties(conn: Connection, resolution_ids: Iterable[str | None]) -> list[Proposal]:
    wanted = sorted(r for r in resolution_ids if r is not None)
    if not wanted:
        return []
    query = select(proposals).where(proposals.c.resolution_id.in_(wanted)).order_by(
        proposals.c.created_at, proposals.c.id)
    return [_proposal(row) for row in conn.execute(query)]


def _proposal(row: Row[Any]) -> Proposal:
    return Proposal(row.id, row.task_type, row.subject, row.key, json.loads(row.value),
                    row.member, row.confidence, row.rationale, row.status,
                    row.resolution_id, row.created_at)
