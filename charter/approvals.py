"""Approvals: an escalated request waiting for n distinct approvers.

An approval is bound to the sha256 of the exact request, so approving one request never
approves another with different arguments, and an approved request executes once.
Nobody approves a request they made. When the SLA passes unanswered, the approval is
denied or escalated one level further, as its task type says.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, Row, bindparam, insert, select, update

from charter import readmodel
from charter.canonical import canonical_json
from charter.clock import Clock
from charter.decisions import Decision
from charter.errors import Conflict, Forbidden, InvalidInput, NotFound
from charter.ledger import Event, EventDraft, Ledger, format_time
from charter.store.schema import approval_votes, approvals
from charter.types import ApprovalRule

Status = Literal["pending", "approved", "rejected", "expired", "executed", "withdrawn"]
REQUESTED = "approval.requested"
_INSERT_APPROVAL = insert(approvals)
_PENDING = select(approvals.c.id, approvals.c.approvers).where(
    approvals.c.request_hash == bindparam("request_hash"), approvals.c.status == "pending")


@dataclass(frozen=True)
class Vote:
    approver: str
    vote: str
    comment: str
    at: str


@dataclass(frozen=True)
class Approval:
    """A pending or settled escalation."""

    id: str
    request_hash: str
    request: dict[str, Any]
    requester: str
    approvers: tuple[str, ...]
    quorum: int
    status: Status
    reasons: list[dict[str, Any]]
    created_at: str
    sla_at: str
    expires_at: str
    on_timeout: str
    votes: tuple[Vote, ...] = ()

    @property
    def approvals_count(self) -> int:
        return sum(1 for vote in self.votes if vote.vote == "approve")

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "request_hash": self.request_hash, "request": self.request,
                "requester": self.requester, "approvers": list(self.approvers),
                "quorum": self.quorum, "status": self.status, "reasons": self.reasons,
                "created_at": self.created_at, "sla_at": self.sla_at,
                "expires_at": self.expires_at, "on_timeout": self.on_timeout,
                "votes": [vote.__dict__ for vote in self.votes]}


@dataclass(frozen=True)
class Pending:
    """The approval already waiting for a request: its id and who may approve it."""

    id: str
    approvers: tuple[str, ...]


def find_pending(conn: Connection, request_hash: str) -> Pending | None:
    """The approval already pending for this exact request, if any."""
    row = conn.execute(_PENDING, {"request_hash": request_hash}).first()
    return None if row is None else Pending(row.id, tuple(json.loads(row.approvers)))


def requested_draft(decision: Decision, rule: ApprovalRule, now: datetime,
                    *, actor: str) -> EventDraft:
    """The event that opens the approval an escalated decision needs."""
    if decision.request is None or decision.outcome != "escalate":
        raise InvalidInput("only an escalated request needs an approval")
    payload: dict[str, Any] = {
        "id": str(uuid.uuid4()), "request": decision.request.to_json(),
        "request_hash": decision.request.hash, "requester": decision.member,
        "approvers": list(decision.approvers), "quorum": decision.quorum,
        "reasons": [reason.to_json() for reason in decision.reasons],
        "sla_at": format_time(now + rule.sla), "expires_at": format_time(now + rule.expires),
        "on_timeout": rule.on_timeout}
    return EventDraft(REQUESTED, actor, f"approval:{payload['id']}", payload)


def open_approval(conn: Connection, ledger: Ledger, clock: Clock, decision: Decision,
                  rule: ApprovalRule, *, actor: str) -> Approval:
    """Record the approval an escalation needs (or return the one already pending for
    the same exact request)."""
    if decision.request is not None and (
            pending := find_pending(conn, decision.request.hash)) is not None:
        return get(conn, pending.id)
    draft = requested_draft(decision, rule, clock.now(), actor=actor)
    readmodel.record_draft(conn, ledger, draft)
    return get(conn, draft.payload["id"])


def vote(conn: Connection, ledger: Ledger, clock: Clock, approval_id: str, *,
         approver: str, approve: bool, comment: str = "") -> Approval:
    """Approve or reject; the approval settles when the quorum is reached or anyone
    permitted rejects."""
    approval = get(conn, approval_id, lock=True)
    expire_if_due(conn, ledger, clock, approval)
    approval = get(conn, approval_id)
    if approval.status != "pending":
        raise Conflict(f"approval {approval_id} is {approval.status}, not pending")
    if approver == approval.requester:
        raise Forbidden("separation of duties: nobody approves their own request")
    if approver not in approval.approvers:
        raise Forbidden(f"{approver} is not an approver of {approval_id} "
                        f"(approvers: {', '.join(approval.approvers)})")
    if any(v.approver == approver for v in approval.votes):
        raise Conflict(f"{approver} has already voted on {approval_id}")
    if not approve and not comment.strip():
        raise InvalidInput("a rejection needs a comment saying why")
    subject = f"approval:{approval_id}"
    readmodel.record(conn, ledger, kind="approval.voted", actor=approver, subject=subject,
                     payload={"id": approval_id, "vote": "approve" if approve else "reject",
                              "comment": comment})
    approval = get(conn, approval_id)
    if not approve:
        readmodel.record(conn, ledger, kind="approval.rejected", actor=approver,
                         subject=subject, payload={"id": approval_id, "by": approver,
                                                   "comment": comment})
    elif approval.approvals_count >= approval.quorum:
        readmodel.record(conn, ledger, kind="approval.granted", actor=approver,
                         subject=subject, payload={
                             "id": approval_id,
                             "by": [v.approver for v in approval.votes if v.vote == "approve"]})
    return get(conn, approval_id)


def execute(conn: Connection, ledger: Ledger, clock: Clock, approval_id: str,
            request_hash: str, *, actor: str) -> Approval:
    """Use an approval for the exact request it approved; only once."""
    approval = get(conn, approval_id, lock=True)
    if request_hash != approval.request_hash:
        raise Forbidden(f"approval {approval_id} approved a different request: changed "
                        "arguments need a new approval")
    if approval.status == "executed":
        raise Conflict(f"approval {approval_id} was already executed")
    if approval.status != "approved":
        raise Conflict(f"approval {approval_id} is {approval.status} "
                       f"({approval.approvals_count} of {approval.quorum} approvals)")
    if format_time(clock.now()) >= approval.expires_at:
        expire_if_due(conn, ledger, clock, approval)
        raise Conflict(f"approval {approval_id} expired at {approval.expires_at}")
    readmodel.record(conn, ledger, kind="approval.executed", actor=actor,
                     subject=f"approval:{approval_id}", payload={"id": approval_id})
    return get(conn, approval_id)


def expire_if_due(conn: Connection, ledger: Ledger, clock: Clock, approval: Approval) -> bool:
    now = format_time(clock.now())
    if approval.status in ("pending", "approved") and now >= approval.expires_at:
        readmodel.record(conn, ledger, kind="approval.expired", actor="charter",
                         subject=f"approval:{approval.id}",
                         payload={"id": approval.id, "reason": "expired"})
        return True
    return False


NextApprover = Callable[[Approval], str | None]


def apply_timeouts(conn: Connection, ledger: Ledger, clock: Clock,
                   next_approver: NextApprover, sla: Callable[[Approval], timedelta]
                   ) -> list[Approval]:
    """Settle approvals whose SLA or expiry has passed; return those changed."""
    now = clock.now()
    stamp = format_time(now)
    due = conn.execute(select(approvals.c.id).where(
        approvals.c.status.in_(("pending", "approved")),
        (approvals.c.sla_at <= stamp) | (approvals.c.expires_at <= stamp))).scalars().all()
    changed = []
    for approval_id in due:
        approval = get(conn, approval_id, lock=True)
        if expire_if_due(conn, ledger, clock, approval):
            changed.append(get(conn, approval_id))
            continue
        if approval.status != "pending" or approval.sla_at > stamp:
            continue
        subject = f"approval:{approval_id}"
        further = next_approver(approval) if approval.on_timeout == "escalate" else None
        if further is None:
            readmodel.record(conn, ledger, kind="approval.expired", actor="charter",
                             subject=subject, payload={"id": approval_id,
                                                       "reason": "no answer within the SLA"})
        else:
            readmodel.record(conn, ledger, kind="approval.escalated", actor="charter",
                             subject=subject, payload={
                                 "id": approval_id, "to": further,
                                 "sla_at": format_time(now + sla(approval)),
                                 "reason": "no answer within the SLA"})
        changed.append(get(conn, approval_id))
    return changed


def get(conn: Connection, approval_id: str, *, lock: bool = False) -> Approval:
    query = select(approvals).where(approvals.c.id == approval_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"no approval {approval_id}")
    votes = tuple(Vote(v.approver, v.vote, v.comment, v.at) for v in conn.execute(
        select(approval_votes).where(approval_votes.c.approval_id == approval_id)
        .order_by(approval_votes.c.at, approval_votes.c.approver)))
    return _from_row(row, votes)


def listing(conn: Connection, *, status: str | None = None, approver: str | None = None,
            task_id: str | None = None) -> list[Approval]:
    query = select(approvals.c.id).order_by(approvals.c.created_at, approvals.c.id)
    if status is not None:
        query = query.where(approvals.c.status == status)
    if task_id is not None:
        query = query.where(approvals.c.task_id == task_id)
    found = [get(conn, approval_id) for approval_id in conn.execute(query).scalars()]
    if approver is not None:
        found = [a for a in found if approver in a.approvers]
    return found


def page(conn: Connection, *, after: tuple[str, str] | None, limit: int,
         status: str | None = None, approver: str | None = None,
         task_id: str | None = None, awaiting: str | None = None) -> list[Approval]:
    """Approvals oldest first, from just after `after` (created_at, id): keyset pages.
    `approver` keeps those it is named an approver of; `awaiting` keeps the pending ones
    that member may still vote on (an approver who has not voted and did not ask)."""
    query = select(approvals).order_by(approvals.c.created_at, approvals.c.id)
    if after is not None:
        query = query.where((approvals.c.created_at > after[0])
                            | ((approvals.c.created_at == after[0])
                               & (approvals.c.id > after[1])))
    if status is not None:
        query = query.where(approvals.c.status == status)
    if task_id is not None:
        query = query.where(approvals.c.task_id == task_id)
    for member in (approver, awaiting):
        if member is not None:  # the column holds a JSON list of quoted ids
            query = query.where(approvals.c.approvers.contains(json.dumps(member),
                                                               autoescape=True))
    if awaiting is not None:
        voted = select(approval_votes.c.approval_id).where(
            approval_votes.c.approval_id == approvals.c.id,
            approval_votes.c.approver == awaiting)
        query = query.where(approvals.c.status == "pending",
                            approvals.c.requester != awaiting, ~voted.exists())
    rows = conn.execute(query.limit(limit)).all()
    votes: dict[str, list[Vote]] = {row.id: [] for row in rows}
    if rows:
        for v in conn.execute(select(approval_votes)
                              .where(approval_votes.c.approval_id.in_(list(votes)))
                              .order_by(approval_votes.c.at, approval_votes.c.approver)):
            votes[v.approval_id].append(Vote(v.approver, v.vote, v.comment, v.at))
    return [_from_row(row, tuple(votes[row.id])) for row in rows]


def _from_row(row: Row[Any], votes: tuple[Vote, ...]) -> Approval:
    return Approval(row.id, row.request_hash, json.loads(row.request), row.requester,
                    tuple(json.loads(row.approvers)), row.quorum, row.status,
                    json.loads(row.reasons), row.created_at, row.sla_at, row.expires_at,
                    row.on_timeout, votes)


def _project_requested(conn: Connection, event: Event) -> None:
    p = event.payload or {}
    conn.execute(_INSERT_APPROVAL, {
        "id": p["id"], "request_hash": p["request_hash"],
        "request": canonical_json(p["request"]), "requester": p["requester"],
        "approvers": json.dumps(p["approvers"]), "quorum": p["quorum"], "status": "pending",
        "reasons": json.dumps(p["reasons"]), "created_at": event.at, "sla_at": p["sla_at"],
        "expires_at": p["expires_at"], "on_timeout": p["on_timeout"],
        "task_id": p["request"].get("task")})


def _project_voted(conn: Connection, event: Event) -> None:
    p = event.payload or {}
    conn.execute(insert(approval_votes).values(approval_id=p["id"], approver=event.actor,
                                               vote=p["vote"], comment=p["comment"],
                                               at=event.at))


def _status(status: Status, stamp: str) -> Callable[[Connection, Event], None]:
    def project(conn: Connection, event: Event) -> None:
        values: dict[str, Any] = {"status": status, stamp: event.at}
        conn.execute(update(approvals).where(approvals.c.id == (event.payload or {})["id"])
                     .values(**values))
    return project


def _project_escalated(conn: Connection, event: Event) -> None:
    p = event.payload or {}
    row = conn.execute(select(approvals.c.approvers).where(approvals.c.id == p["id"])).one()
    approvers = [*json.loads(row.approvers), p["to"]]
    conn.execute(update(approvals).where(approvals.c.id == p["id"])
                 .values(approvers=json.dumps(approvers), sla_at=p["sla_at"]))


PROJECTORS: dict[str, Callable[[Connection, Event], None]] = {
    REQUESTED: _project_requested,
    "approval.voted": _project_voted,
    "approval.granted": _status("approved", "decided_at"),
    "approval.rejected": _status("rejected", "decided_at"),
    "approval.expired": _status("expired", "decided_at"),
    "approval.executed": _status("executed", "executed_at"),
    "approval.withdrawn": _status("withdrawn", "decided_at"),
    "approval.escalated": _project_escalated,
}
"""How approval events change the `approvals` and `approval_votes` read tables."""

