"""The kill switch over HTTP (admin): suspend and resume members, freeze and unfreeze
actions; anyone may see what is stopped."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from charter.api.auth import AdminDep, CallerDep, SystemDep
from charter.api.fields import Body, Reason
from charter.types import ActionName, Identifier

router = APIRouter(tags=["kill switch"])


class StopRequest(Body):
    reason: Reason = Field(description="Why (recorded in the ledger).",
                           examples=["runaway spending"])


@router.post("/members/{member_id}/suspend", summary="Suspend a member now (admin)")
def suspend(member_id: Identifier, body: StopRequest, caller: AdminDep,
            system: SystemDep) -> dict[str, Any]:
    return system.suspend_member(member_id, reason=body.reason, by=caller.member).to_json()


@router.post("/members/{member_id}/resume", summary="Lift a suspension (admin)")
def resume(member_id: Identifier, caller: AdminDep, system: SystemDep) -> dict[str, Any]:
    return system.resume_member(member_id, by=caller.member).to_json()


@router.post("/actions/{action}/freeze", summary="Deny an action to everyone (admin)")
def freeze(action: ActionName, body: StopRequest, caller: AdminDep,
           system: SystemDep) -> dict[str, Any]:
    return system.freeze_action(action, reason=body.reason, by=caller.member).to_json()


@router.post("/actions/{action}/unfreeze", summary="Lift a freeze (admin)")
def unfreeze(action: ActionName, caller: AdminDep, system: SystemDep) -> dict[str, Any]:
    return system.unfreeze_action(action, by=caller.member).to_json()


@router.get("/stops", summary="Suspended members and frozen actions")
def stops(caller: CallerDep, system: SystemDep) -> dict[str, Any]:
    suspended, frozen = system.stops()
    return {"suspended": [s.to_json() for s in suspended],
            "frozen": [f.to_json() for f in frozen]}
