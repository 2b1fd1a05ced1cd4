"""`/v1/ledger` and `/v1/stats`: verify the hash chain, read its signed head and its
events, export or redact them (admins), and the counts that summarise a Charter.

Event payloads carry what members wrote (private memories among them), so a member
reads only the events it is the actor of; an admin reads them all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from charter import stats
from charter.api.auth import AdminDep, CallerDep, SystemDep
from charter.api.fields import Whole
from charter.api.pages import Limit
from charter.system import Charter

router = APIRouter()

MAX_SEQ = 2**62
"""The largest seq a request may name (the databases' BIGINT)."""
EXPORT_BATCH = 2000
"""Events read per query while exporting: each batch is its own short read."""
JSON_LINES = "application/x-ndjson"

Seq = Annotated[int, Query(ge=0, le=MAX_SEQ, description="Events after this seq.")]
EventText = Annotated[str, StringConstraints(min_length=1, max_length=256,
                                             pattern=r"^[^\x00]*$")]


class Redaction(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"seq": 42, "reason": "erasure request 118"}]})
    seq: Whole = Field(ge=1, le=MAX_SEQ, description="The event whose payload is erased.")
    reason: str = Field(min_length=1, max_length=2000, pattern=r"^[^\x00]*$")


@router.get("/ledger/verify", tags=["ledger"],
            summary="Recompute the hash chain and the signed head; name the first bad event")
def verify(caller: CallerDep, system: SystemDep) -> dict[str, Any]:
    return system.verify_ledger().to_json()


@router.get("/ledger/checkpoint", tags=["ledger"],
            summary="The signed head of the ledger, to anchor outside the database")
def checkpoint(caller: CallerDep, system: SystemDep) -> dict[str, Any]:
    return system.checkpoint().to_json()


@router.get("/ledger/events", tags=["ledger"],
            summary="Events in seq order (pages: pass `next_after` as `after`); yours, or "
                    "anyone's with an admin token")
def events(caller: CallerDep, system: SystemDep, after: Seq = 0, limit: Limit = 100,
           kind: EventText | None = None, subject: EventText | None = None,
           actor: Annotated[EventText | None, Query(
               description="Whose events (an admin's question, unless your own).")] = None,
           ) -> dict[str, Any]:
    whose = actor if caller.admin else caller.about(actor)
    found = system.events(after=after, kind=kind, subject=subject, actor=whose,
                          limit=limit + 1)
    shown = found[:limit]
    return {"items": [event.to_json() for event in shown],
            "next_after": shown[-1].seq if len(found) > limit else None}


@router.get("/ledger/export", tags=["ledger"], response_class=StreamingResponse,
            summary="Every event after `after` up to the head, as JSON Lines (admin)",
            responses={200: {"description": "One event per line",
                             "content": {JSON_LINES: {}}}})
def export(caller: AdminDep, system: SystemDep, after: Seq = 0) -> StreamingResponse:
    head = system.checkpoint().seq
    return StreamingResponse(_lines(system, after, head), media_type=JSON_LINES)


@router.post("/ledger/redact", tags=["ledger"],
             summary="Erase an event's payload, keeping its digest (admin); returns the "
                     "redaction event")
def redact(body: Redaction, caller: AdminDep, system: SystemDep) -> dict[str, Any]:
    return system.redact(body.seq, actor=caller.member, reason=body.reason).to_json()


@router.get("/stats", tags=["stats"],
            summary="Counts: tasks by state, approvals pending, members by kind, leases "
                    "held, ledger length, decisions recorded")
def counts(caller: CallerDep, system: SystemDep) -> dict[str, Any]:
    return stats.take(system.store, system.clock).to_json()


def _lines(system: Charter, after: int, head: int) -> Iterator[str]:
    """The events after seq `after` up to `head`, one JSON object a line, read in
    batches so no connection is held while the client reads."""
    while after < head:
        batch = [event for event in system.events(after=after, limit=EXPORT_BATCH)
                 if event.seq <= head]
        if not batch:
            return
        yield "".join(json.dumps(event.to_json(), ensure_ascii=False) + "\n"
                      for event in batch)
        after = batch[-1].seq
