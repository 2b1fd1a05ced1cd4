"""The approvals inbox: what waits for the signed-in person, each request with its exact
arguments, why it was escalated, the requester's track record on that task type and the
quorum's progress; approve, or reject with a comment. Buttons show only where the
viewer may vote, and the vote itself is checked again by `approve`/`reject`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Connection, case, func, select

from charter.api.auth import SystemDep
from charter.approvals import Approval
from charter.errors import InvalidInput
from charter.store.schema import outcomes
from charter.system import Charter
from charter.types import Identifier
from charter.web.session import ActingViewerDep, Viewer, ViewerDep
from charter.web.templating import render
from charter.web.trackrecord import Figures

router = APIRouter()

INBOX_SIZE = 50
OTHERS_SIZE = 20
COMMENT_LIMIT = 2000


@dataclass(frozen=True)
class Record(Figures):
    """A member's outcomes on one task type (each as recorded), with the success rate
    and its 95% Wilson interval that `Figures` gives."""

    task_type: str = ""


def record_of(conn: Connection, member: str, task_type: str) -> Record:
    """One aggregate over the (member, task type) index, however many outcomes there are."""
    row = conn.execute(select(func.count(), func.sum(case((outcomes.c.success, 1), else_=0)),
                              func.sum(case((outcomes.c.verified, 1), else_=0)))
                       .where(outcomes.c.member == member,
                              outcomes.c.task_type == task_type)).one()
    return Record(n=int(row[0]), successes=int(row[1] or 0), verified=int(row[2] or 0),
                  task_type=task_type)


@dataclass(frozen=True)
class Card:
    """An approval as the viewer sees it."""

    approval: Approval
    record: Record | None
    can_vote: bool
    why_not: str


def card_for(conn: Connection, approval: Approval, viewer: Viewer,
             records: dict[tuple[str, str], Record]) -> Card:
    """The card of `approval`; `records` keeps the track records already counted."""
    task_type = approval.request.get("task_type")
    record = None
    if task_type:
        key = (approval.requester, task_type)
        if key not in records:
            records[key] = record_of(conn, *key)
        record = records[key]
    voted = any(vote.approver == viewer.member for vote in approval.votes)
    why_not = ("it is settled" if approval.status != "pending"
               else "it is your own request" if approval.requester == viewer.member
               else "you have voted on it" if voted
               else "you are not one of its approvers"
               if viewer.member not in approval.approvers else "")
    return Card(approval, record, not why_not, why_not)


def cards(system: Charter, approvals: list[Approval], viewer: Viewer) -> list[Card]:
    records: dict[tuple[str, str], Record] = {}
    with system.store.reading() as conn:
        return [card_for(conn, approval, viewer, records) for approval in approvals]


@router.get("/approvals")
def inbox(request: Request, system: SystemDep, viewer: ViewerDep) -> Response:
    mine = system.approval_page(limit=INBOX_SIZE, awaiting=viewer.member)
    mine_ids = {approval.id for approval in mine}
    others = [approval for approval in system.approval_page(limit=OTHERS_SIZE + len(mine),
                                                            status="pending")
              if approval.id not in mine_ids][:OTHERS_SIZE]
    return render(request, "approvals.html", viewer, section="approvals", title="Approvals",
                  mine=cards(system, mine, viewer), others=cards(system, others, viewer))


@router.get("/approvals/{approval_id}")
def approval_page(approval_id: Identifier, request: Request, system: SystemDep,
                  viewer: ViewerDep) -> Response:
    card = cards(system, [system.approval(approval_id)], viewer)[0]
    return render(request, "approval.html", viewer, section="approvals",
                  title=f"Approval {approval_id[:8]}", card=card)


@router.post("/approvals/{approval_id}/approve")
def approve(approval_id: Identifier, request: Request, system: SystemDep,
            viewer: ActingViewerDep,
            comment: Annotated[str, Form(max_length=COMMENT_LIMIT)] = "") -> Response:
    voted = system.approve(approval_id, approver=viewer.member, comment=comment.strip())
    return _after_vote(request, system, viewer, voted, "approved")


@router.post("/approvals/{approval_id}/reject")
def reject(approval_id: Identifier, request: Request, system: SystemDep,
           viewer: ActingViewerDep,
           comment: Annotated[str, Form(max_length=COMMENT_LIMIT)] = "") -> Response:
    if not comment.strip():
        raise InvalidInput("say why you reject it: the comment is what the requester reads")
    voted = system.reject(approval_id, approver=viewer.member, comment=comment.strip())
    return _after_vote(request, system, viewer, voted, "rejected")


def _after_vote(request: Request, system: Charter, viewer: Viewer, voted: Approval,
                verb: str) -> Response:
    if not request.headers.get("HX-Request"):
        return RedirectResponse(f"/approvals/{voted.id}", status_code=303)
    task_id = voted.request.get("task")
    task = None if not task_id else system.task(task_id)
    return render(request, "approval_card.html", viewer, card=cards(system, [voted],
                                                                   viewer)[0],
                  flash=f"You {verb} it." + (f" Task {task.id[:8]} is now "
                                            f"{task.state.replace('_', ' ')}."
                                            if task else ""))
