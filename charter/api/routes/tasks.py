"""`/v1/tasks`, `/v1/claims`, `/v1/outcomes`, `/v1/reviews`: submit work, claim it,
finish it, record how it went, and review sampled tasks. A member claims, completes,
fails and reviews only as itself."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import AwareDatetime, ConfigDict, Field

from charter.api.auth import AdminDep, CallerDep, SystemDep
from charter.api.fields import (
    MAX_WHOLE,
    Body,
    Context,
    Number,
    PathId,
    Reason,
    StorableJson,
    Subject,
    Whole,
)
from charter.api.pages import Cursor, Limit, decode_cursor, page
from charter.api.writes import run_write
from charter.errors import Forbidden
from charter.types import Identifier

router = APIRouter(tags=["tasks"])

TaskId = PathId
Amount = Annotated[Decimal, Field(ge=0, le=Decimal("1e15"), allow_inf_nan=False)]
TaskState = Literal["queued", "assigned", "running", "awaiting_approval", "done", "failed",
                   "cancelled"]


class TaskRequest(Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "type": "purchase_order", "subject": "vendor:globex",
        "payload": {"vendor": "Vendor::globex", "amount": 800}, "priority": 0}]})
    type: Identifier
    subject: Subject
    payload: Context = Field(default_factory=dict)
    priority: Whole = Field(0, ge=-1000, le=1000)
    deadline: AwareDatetime | None = None
    value: Amount | None = None
    dispatch: bool = Field(False, description="Assign it at once (the allocator's pick).")


class Fenced(Body):
    fencing: Whole = Field(ge=0, le=MAX_WHOLE, description="The token of your claim.")


class Completion(Fenced):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"fencing": 1, "result": {"order": "PO-1"}, "cost": 0.03, "duration_s": 2.5}]})
    result: StorableJson = None
    cost: Amount | None = None
    duration_s: Number | None = Field(None, ge=0, le=1e9)
    quality: Number | None = Field(None, ge=0, le=1)


class Failure(Fenced):
    reason: Reason
    cost: Amount | None = None


class Release(Fenced):
    reason: Reason = "released by its worker"


class Assignment(Body):
    member: Identifier


class Cancellation(Body):
    reason: Reason = "cancelled"


class OutcomeRequest(Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"task_id": "0f0e…", "success": True, "verified": True, "quality": 0.9}]})
    task_id: TaskId
    success: bool
    verified: bool = False
    quality: Number | None = Field(None, ge=0, le=1)
    cost: Amount | None = None
    duration_s: Number | None = Field(None, ge=0, le=1e9)
    member: Identifier | None = Field(None, description="Whose attempt (default: the "
                                                        "latest holder).")


@router.post("/tasks", status_code=201, summary="Submit a task (you are its requester)")
async def submit_task(body: TaskRequest, caller: CallerDep,
                      system: SystemDep) -> dict[str, Any]:
    task = await run_write(system, system.submit_task, body.type, body.subject,
                           body.payload, requester=caller.member, priority=body.priority,
                           deadline=body.deadline, value=body.value,
                           dispatch=body.dispatch)
    return task.to_json()


@router.get("/tasks", summary="Tasks, oldest first (cursor pages)")
def list_tasks(caller: CallerDep, system: SystemDep, limit: Limit = 100,
               cursor: Cursor = None,
               state: TaskState | None = None,
               assignee: Identifier | None = None,
               type: Identifier | None = None) -> dict[str, Any]:
    after = decode_cursor(cursor, (str, str))
    found = system.task_page(after=None if after is None else (after[0], after[1]),
                             limit=limit + 1, state=state, assignee=assignee,
                             task_type=type)
    return page([task.to_json() for task in found], limit, ["created_at", "id"])


@router.get("/tasks/{task_id}", summary="One task")
def get_task(task_id: TaskId, caller: CallerDep, system: SystemDep) -> dict[str, Any]:
    return system.task(task_id).to_json()


@router.get("/tasks/{task_id}/explain", summary="Why it was assigned as it was")
def explain_task(task_id: TaskId, caller: CallerDep, system: SystemDep) -> dict[str, str]:
    return {"explanation": system.explain_task(task_id)}


@router.get("/tasks/{task_id}/handoff", summary="What its next holder gets")
def task_handoff(task_id: TaskId, caller: CallerDep, system: SystemDep) -> dict[str, Any]:
    return system.handoff(task_id, holder=caller.member).to_json()


@router.post("/tasks/{task_id}/cancel", summary="Cancel an open task (its requester or "
                                                "an admin)")
def cancel_task(task_id: TaskId, body: Cancellation, caller: CallerDep,
                system: SystemDep) -> dict[str, Any]:
    task = system.task(task_id)
    if task.requester != caller.member and not caller.admin:
        raise Forbidden(f"only {task.requester} (who asked for it) or an admin may cancel "
                        f"task {task_id}")
    return system.cancel_task(task_id, actor=caller.member, reason=body.reason).to_json()


@router.post("/tasks/{task_id}/assign", summary="Give a queued task to a member (admin)")
def assign_task(task_id: TaskId, body: Assignment, caller: AdminDep,
                system: SystemDep) -> dict[str, Any]:
    return system.assign_task(task_id, body.member, actor=caller.member).to_json()


@router.post("/tasks/dispatch", summary="Assign queued tasks (admin)")
def dispatch(caller: AdminDep, system: SystemDep,
             limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> list[dict[str, Any]]:
    return [task.to_json() for task in system.dispatch_queued(limit=limit)]


@router.post("/claims", summary="Claim your most urgent assigned task",
             responses={204: {"description": "Nothing to claim"}})
async def claim_next(request: Request, caller: CallerDep, system: SystemDep) -> Any:
    started = time.perf_counter()
    claim = await run_write(system, system.claim_next, caller.member)
    request.app.state.metrics.claim_seconds.observe(time.perf_counter() - started)
    if claim is None:
        return Response(status_code=204)
    return {"task": claim.task.to_json(), "fencing": claim.fencing,
            "lease_until": claim.lease_until,
            "handoff": None if claim.handoff is None else claim.handoff.to_json(),
            "resume": claim.resume}


@router.post("/tasks/{task_id}/heartbeat", summary="Extend your claim's lease")
async def heartbeat(task_id: TaskId, body: Fenced, caller: CallerDep,
                    system: SystemDep) -> dict[str, str]:
    until = await run_write(system, system.heartbeat, task_id, member=caller.member,
                            fencing=body.fencing)
    return {"lease_until": until}


@router.post("/tasks/{task_id}/complete", summary="Finish your attempt successfully")
async def complete_task(task_id: TaskId, body: Completion, caller: CallerDep,
                        system: SystemDep) -> dict[str, Any]:
    task = await run_write(system, system.complete_task, task_id, member=caller.member,
                           fencing=body.fencing, result=body.result, cost=body.cost,
                           duration_s=body.duration_s, quality=body.quality)
    return task.to_json()


@router.post("/tasks/{task_id}/fail", summary="Report your attempt failed")
async def fail_task(task_id: TaskId, body: Failure, caller: CallerDep,
                    system: SystemDep) -> dict[str, Any]:
    task = await run_write(system, system.fail_task, task_id, member=caller.member,
                           fencing=body.fencing, reason=body.reason, cost=body.cost)
    return task.to_json()


@router.post("/tasks/{task_id}/release", summary="Give your attempt back unfinished")
async def release_task(task_id: TaskId, body: Release, caller: CallerDep,
                       system: SystemDep) -> dict[str, Any]:
    task = await run_write(system, system.release_task, task_id, member=caller.member,
                           fencing=body.fencing, reason=body.reason)
    return task.to_json()


class ReviewRequest(Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"success": False, "quality": 0.2, "comment": "ordered the wrong SKU"}]})
    success: bool
    quality: Number | None = Field(None, ge=0, le=1)
    comment: Annotated[str, Field(max_length=4000, pattern=r"^[^\x00]*$")] = ""


@router.post("/tasks/{task_id}/review", status_code=201,
             summary="Record your verdict on a task sampled for review (its evaluator)")
def review_task(task_id: TaskId, body: ReviewRequest, caller: CallerDep,
                system: SystemDep) -> dict[str, Any]:
    return system.review_task(task_id, by=caller.member, success=body.success,
                              quality=body.quality, comment=body.comment).to_json()


@router.get("/reviews", summary="Tasks sampled for review (an evaluator's queue with "
                                "`evaluator` and `status=pending`)")
def list_reviews(caller: CallerDep, system: SystemDep,
                 evaluator: Identifier | None = None,
                 status: Literal["pending", "done"] | None = None,
                 member: Identifier | None = None,
                 limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
                 ) -> list[dict[str, Any]]:
    return [review.to_json() for review in system.reviews(
        evaluator=evaluator, status=status, member=member, limit=limit)]


@router.post("/outcomes", status_code=201, summary="Record how a task went (you report it)")
def record_outcome(body: OutcomeRequest, caller: CallerDep,
                   system: SystemDep) -> dict[str, Any]:
    return system.record_outcome(body.task_id, success=body.success,
                                 reported_by=caller.member, verified=body.verified,
                                 quality=body.quality, cost=body.cost,
                                 duration_s=body.duration_s, member=body.member).to_json()


@router.get("/outcomes", summary="Recorded outcomes")
def list_outcomes(caller: CallerDep, system: SystemDep, member: Identifier | None = None,
                  task_type: Identifier | None = None) -> list[dict[str, Any]]:
    return [o.to_json() for o in system.outcomes(member=member, task_type=task_type)]
