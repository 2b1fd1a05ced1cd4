"""`/v1/leases`, `/v1/proposals`, `/v1/resolutions`, `/v1/memory`: hold resources with
fencing tokens, propose decisions and see how disputes were settled, and keep memory
about subjects. A member acquires, renews and releases leases, proposes, settles,
remembers, recalls and forgets only as itself."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import ConfigDict, Field, StringConstraints

from charter import memory
from charter.api.auth import CallerDep, SystemDep
from charter.api.fields import (
    MAX_WHOLE,
    NO_NUL,
    Body,
    Context,
    Key,
    Number,
    Reason,
    StorableJson,
    Subject,
)
from charter.api.pages import Cursor, Limit, decode_cursor, page
from charter.errors import InvalidInput
from charter.leaseverbs import MAX_TTL
from charter.proposalverbs import MAX_RATIONALE
from charter.types import Identifier

router = APIRouter()

Tag = Annotated[str, StringConstraints(pattern=r"^[\w.:-]{1,64}$")]
Seconds = Annotated[Number, Field(gt=0, le=MAX_TTL.total_seconds(), allow_inf_nan=False)]
ProposalStatus = Literal["open", "agreed", "won", "lost", "escalated"]


# -- leases ----------------------------------------------------------------------------

class LeaseRequest(Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"resource": "Customer::42", "mode": "exclusive", "duration_s": 60}]})
    resource: Subject
    mode: Literal["exclusive", "shared"] = "exclusive"
    duration_s: Seconds = Field(60, description="How long it lasts unless renewed.")
    task_id: Identifier | None = Field(None, description="Release it when this task fails "
                                                         "or its own lease expires.")


class Renewal(Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"duration_s": 60}]})
    duration_s: Seconds = Field(60, description="How long from now it lasts.")


@router.post("/leases", status_code=201, tags=["leases"],
             summary="Hold a resource (you are its holder); 409 names the holders in the way")
def acquire_lease(body: LeaseRequest, caller: CallerDep, system: SystemDep) -> dict[str, Any]:
    return system.acquire_lease(body.resource, caller.member, mode=body.mode,
                                ttl=body.duration_s, task_id=body.task_id).to_json()


@router.get("/leases", tags=["leases"], summary="Live leases, by resource (cursor pages)")
def list_leases(caller: CallerDep, system: SystemDep, limit: Limit = 100,
                cursor: Cursor = None, member: Identifier | None = None,
                resource: Subject | None = None) -> dict[str, Any]:
    key = decode_cursor(cursor, (str, int, str))
    after = None if key is None else (str(key[0]), int(key[1]), str(key[2]))
    found = system.lease_page(after=after, limit=limit + 1, member=member,
                              resource=resource)
    return page([lease.to_json() for lease in found], limit, ["resource", "token", "id"])


@router.get("/leases/fenced", tags=["leases"],
            summary="Whether a fencing token was superseded (a write carrying it must be "
                    "refused)")
def fenced(caller: CallerDep, system: SystemDep, resource: Subject,
           token: Annotated[int, Query(ge=0, le=MAX_WHOLE)]) -> dict[str, Any]:
    return {"resource": resource, "token": token,
            "fenced": system.fenced(resource, token)}


@router.get("/leases/{lease_id}", tags=["leases"], summary="One live lease")
def get_lease(lease_id: Identifier, caller: CallerDep, system: SystemDep) -> dict[str, Any]:
    return system.lease(lease_id).to_json()


@router.post("/leases/{lease_id}/renew", tags=["leases"], summary="Extend your lease")
def renew_lease(lease_id: Identifier, body: Renewal, caller: CallerDep,
                system: SystemDep) -> dict[str, Any]:
    return system.renew_lease(lease_id, caller.member, ttl=body.duration_s).to_json()


@router.post("/leases/{lease_id}/release", tags=["leases"],
             summary="End your lease (its fencing token stays spent)")
def release_lease(lease_id: Identifier, caller: CallerDep,
                  system: SystemDep) -> dict[str, Any]:
    return system.release_lease(lease_id, caller.member).to_json()


# -- proposals -------------------------------------------------------------------------

class ProposalRequest(Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "task_type": "price_change", "subject": "Sku::sku-9", "key": "price",
        "value": {"amount": "10.50"}, "confidence": 0.8,
        "rationale": "competitors moved to 10.45", "context": {"change_percent": 5}}]})
    task_type: Identifier
    subject: Subject
    key: Key
    value: StorableJson
    confidence: Number | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    rationale: str = Field(min_length=1, max_length=MAX_RATIONALE, pattern=NO_NUL)
    context: Context = Field(
        default_factory=dict, max_length=64,
        description="The request context the task type's action takes (e.g. "
                    "`change_percent` for `price.propose`).")


class Settlement(Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"resolution_id": "5d1c…", "winner": "9a0b…"}]})
    resolution_id: Identifier
    winner: Identifier = Field(description="The winning proposal: a party to the dispute.")


@router.post("/proposals", status_code=201, tags=["proposals"],
             summary="Propose a value for a subject's key (you are its proposer); returns it "
                     "as arbitrated")
def propose(body: ProposalRequest, caller: CallerDep, system: SystemDep) -> dict[str, Any]:
    return system.propose(caller.member, body.subject, body.key, body.value,
                          task_type=body.task_type, confidence=body.confidence,
                          rationale=body.rationale, context=body.context).to_json()


@router.get("/proposals", tags=["proposals"], summary="Proposals, oldest first (cursor pages)")
def list_proposals(caller: CallerDep, system: SystemDep, limit: Limit = 100,
                   cursor: Cursor = None,
                   subject: Annotated[Subject | None, Query(
                       description="As recorded: `Type::id`.")] = None,
                   key: Key | None = None, member: Identifier | None = None,
                   status: ProposalStatus | None = None) -> dict[str, Any]:
    last = decode_cursor(cursor, (str, str))
    after = None if last is None else (str(last[0]), str(last[1]))
    found = system.proposal_page(after=after, limit=limit + 1, subject=subject, key=key,
                                 member=member, status=status)
    return page([proposal.to_json() for proposal in found], limit, ["created_at", "id"])


@router.post("/proposals/settle", tags=["proposals"],
             summary="Settle an escalated dispute: as the manager it waits on, pick the "
                     "winning proposal")
def settle(body: Settlement, caller: CallerDep, system: SystemDep) -> dict[str, Any]:
    return system.settle_proposals(body.resolution_id, body.winner,
                                   by=caller.member).to_json()


@router.get("/proposals/{proposal_id}", tags=["proposals"],
            summary="One proposal, where it stands and its resolution")
def get_proposal(proposal_id: Identifier, caller: CallerDep,
                 system: SystemDep) -> dict[str, Any]:
    return system.proposal(proposal_id).to_json()


@router.get("/resolutions/{resolution_id}", tags=["proposals"],
            summary="How a dispute was arbitrated: rule, winner, losers, evidence")
def get_resolution(resolution_id: Identifier, caller: CallerDep,
                   system: SystemDep) -> dict[str, Any]:
    return system.resolution(resolution_id).to_json()


# -- memory ----------------------------------------------------------------------------

class MemoryRequest(Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "subject": "Customer::42", "text": "Prefers invoices in EUR.", "kind": "fact",
        "tags": ["billing"], "private": False}]})
    subject: Subject
    text: str = Field(min_length=1, max_length=memory.MAX_TEXT, pattern=NO_NUL)
    kind: memory.Kind = "note"
    tags: list[Tag] = Field(default_factory=list, max_length=memory.MAX_TAGS)
    private: bool = Field(False, description="Only you will read it back.")


class Forgetting(Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"reason": "erasure request 118"}]})
    reason: Reason


@router.post("/memory", status_code=201, tags=["memory"],
             summary="Remember something about a subject (you are its author)")
def remember(body: MemoryRequest, caller: CallerDep, system: SystemDep) -> dict[str, Any]:
    return system.remember(body.subject, body.text, by=caller.member, kind=body.kind,
                           tags=body.tags, private=body.private).to_json()


@router.get("/memory/recall", tags=["memory"],
            summary="A subject's memories you may read, most relevant to a query first")
def recall(caller: CallerDep, system: SystemDep, subject: Subject,
           query: Annotated[str, Query(max_length=memory.MAX_QUERY, pattern=NO_NUL,
                                       description="A few words; empty for the latest.")] = "",
           limit: Annotated[int, Query(ge=1, le=500)] = 10) -> list[dict[str, Any]]:
    return [found.to_json()
            for found in system.recall(subject, query, by=caller.member, limit=limit)]


@router.get("/memory", tags=["memory"],
            summary="A subject's memories you may read, newest first (cursor pages)")
def list_memories(caller: CallerDep, system: SystemDep, subject: Subject, limit: Limit = 50,
                  cursor: Cursor = None) -> dict[str, Any]:
    last = decode_cursor(cursor, (int,))
    found = system.memory_page(subject, by=caller.member,
                               before=None if last is None else int(last[0]),
                               limit=limit + 1)
    return page([kept.to_json() for kept in found], limit, ["seq"])


@router.delete("/memory/{memory_id}", tags=["memory"],
               summary="Forget a memory everywhere (you wrote it, or may write about its "
                       "subject); give the reason in the body or as `?reason=`")
def forget(memory_id: Identifier, caller: CallerDep, system: SystemDep,
           body: Forgetting | None = None,
           reason: Annotated[Reason | None, Query(
               description="Why (when there is no body).")] = None) -> dict[str, Any]:
    given = {text for text in (None if body is None else body.reason, reason)
             if text is not None}
    if len(given) != 1:
        raise InvalidInput("forgetting needs one reason (e.g. 'erasure request 118'), in "
                           "the body or as `?reason=`; it is recorded in the ledger")
    return system.forget(memory_id, by=caller.member, reason=given.pop()).to_json()
