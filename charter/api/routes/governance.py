"""`/v1/authorize`, `/v1/approvals`, `/v1/delegations`, `/v1/budgets`, `/v1/spend`:
ask for decisions, answer escalations, lend authority and spend. A member asks, votes,
executes, delegates and spends only as itself."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from charter.api.auth import CallerDep, SystemDep
from charter.api.fields import Whole
from charter.api.pages import Cursor, Limit, decode_cursor, page
from charter.canonical import json_safe
from charter.decisions import Decision
from charter.errors import Forbidden, InvalidInput
from charter.types import ActionName, Identifier, TypeName

router = APIRouter()

MAX_NESTING = 16
"""How deep a request context may nest (declared contexts are flat)."""

ApprovalStatus = Literal["pending", "approved", "rejected", "expired", "executed"]
Amount = Annotated[Decimal, Field(ge=0, le=Decimal("1e15"), allow_inf_nan=False)]


def _no_control(text: str) -> str:
    if any(ord(char) < 32 and char not in "\t\n\r" for char in text):
        raise ValueError("control characters are not allowed")
    return text


def _plain_json(value: dict[str, Any]) -> dict[str, Any]:
    """JSON a decision can record as sent: finite numbers, UTF-8 text, shallow."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_NESTING:
            raise ValueError(f"nested more than {MAX_NESTING} levels")
        if isinstance(item, dict):
            for key, inner in item.items():
                _utf8(key)
                pending.append((inner, depth + 1))
        elif isinstance(item, list):
            pending.extend((inner, depth + 1) for inner in item)
        elif isinstance(item, str):
            _utf8(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError("numbers must be finite")
    return value


def _utf8(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None


def _in_range(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range") from None


Text = Annotated[str, Field(max_length=2000), AfterValidator(_no_control)]
Context = Annotated[dict[str, Any], Field(max_length=64), AfterValidator(_plain_json)]
ResourceText = Annotated[str, Field(min_length=1, max_length=512,
                                    description="`Type::id`, e.g. `Vendor::globex`"),
                         AfterValidator(_no_control)]
When = Annotated[AwareDatetime, AfterValidator(_in_range)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResourceRef(Body):
    type: TypeName
    id: Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_no_control)]


class ActionRequest(Body):
    """An action on a resource, with its context (as the org declares the action)."""

    action: Annotated[ActionName, Field(max_length=128)]
    resource: ResourceText | ResourceRef
    context: Context = Field(default_factory=dict)
    task_type: Identifier | None = None
    task_id: Identifier | None = Field(None, description="The task the request is made "
                                                         "for (its approval is bound to it).")

    def resource_value(self) -> str | dict[str, str]:
        if isinstance(self.resource, str):
            return self.resource
        return {"type": self.resource.type, "id": self.resource.id}


class AuthorizeRequest(ActionRequest):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "action": "purchase.create", "resource": "Vendor::globex",
        "context": {"amount": 800}}]})
    member: Identifier | None = Field(None, description="Whom the request is for (default: "
                                                        "you; anyone else needs an admin).")


class ExecuteRequest(ActionRequest):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "action": "purchase.create", "resource": "Vendor::globex",
        "context": {"amount": 8000}}]})


class Vote(Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"comment": "within the quarter's plan"}]})
    comment: Text = ""


class Rejection(Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"comment": "vendor not yet approved"}]})
    comment: Annotated[Text, Field(min_length=1)]


class DelegationRequest(Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "to": "sofia.alvarez", "actions": ["purchase.create"],
        "until": "2027-01-01T00:00:00Z"}]})
    to: Identifier
    actions: list[Annotated[ActionName, Field(max_length=128)]] = Field(
        min_length=1, max_length=50)
    until: When = Field(description="When it stops working.")


class SpendRequest(Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"amount": "1200.00", "purpose": "PO 4471, 40 monitors"}]})
    amount: Amount
    purpose: Annotated[Text, Field(min_length=1, max_length=500)]
    ttl_seconds: Whole = Field(3600, ge=1, le=31 * 86400,
                             description="How long the hold lasts unless committed.")
    approval_id: Identifier | None = Field(None, description="An approved override of "
                                                             "this exact spend.")


class Commit(Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"actual": "1180.50"}]})
    actual: Amount


class Release(Body):
    reason: Annotated[Text, Field(min_length=1)] = "released by its member"


def _decision(decision: Decision) -> dict[str, Any]:
    found: dict[str, Any] = json_safe(decision.to_json())
    return found


# -- decisions and approvals ----------------------------------------------------------

@router.post("/authorize", tags=["authorize"],
             summary="May a member do this? Allow, deny or escalate, with reasons")
def authorize(body: AuthorizeRequest, caller: CallerDep,
              system: SystemDep) -> dict[str, Any]:
    # An escalation opens an approval on the member's behalf: only as yourself, or admin.
    member = caller.about(body.member)
    if body.task_id is not None:
        system.task(body.task_id)
    return _decision(system.authorize(member, body.action, body.resource_value(),
                                      body.context, task_type=body.task_type,
                                      task_id=body.task_id))


@router.get("/approvals", tags=["approvals"], summary="Approvals, oldest first (cursor "
                                                      "pages)")
def list_approvals(caller: CallerDep, system: SystemDep, limit: Limit = 100,
                   cursor: Cursor = None, status: ApprovalStatus | None = None,
                   approver: Identifier | None = None, task_id: Identifier | None = None,
                   mine: bool = False) -> dict[str, Any]:
    """`mine=true`: only the pending approvals you may still vote on."""
    if mine and (status is not None or approver is not None):
        raise InvalidInput("mine=true lists the pending approvals you may vote on: drop "
                           "`status` and `approver`")
    after = decode_cursor(cursor, (str, str))
    found = system.approval_page(
        after=None if after is None else (str(after[0]), str(after[1])), limit=limit + 1,
        status=status, approver=approver, task_id=task_id,
        awaiting=caller.member if mine else None)
    return page([approval.to_json() for approval in found], limit, ["created_at", "id"])


@router.get("/approvals/{approval_id}", tags=["approvals"], summary="One approval")
def get_approval(approval_id: Identifier, caller: CallerDep,
                 system: SystemDep) -> dict[str, Any]:
    return system.approval(approval_id).to_json()


@router.post("/approvals/{approval_id}/approve", tags=["approvals"],
             summary="Approve, as one of its approvers (never your own request)")
def approve(approval_id: Identifier, body: Vote, caller: CallerDep,
            system: SystemDep) -> dict[str, Any]:
    return system.approve(approval_id, approver=caller.member, comment=body.comment).to_json()


@router.post("/approvals/{approval_id}/reject", tags=["approvals"],
             summary="Reject, as one of its approvers, saying why")
def reject(approval_id: Identifier, body: Rejection, caller: CallerDep,
           system: SystemDep) -> dict[str, Any]:
    return system.reject(approval_id, approver=caller.member, comment=body.comment).to_json()


@router.post("/approvals/{approval_id}/execute", tags=["approvals"],
             summary="Act on your approved request, once (the exact request approved)")
def execute(approval_id: Identifier, body: ExecuteRequest, caller: CallerDep,
            system: SystemDep) -> dict[str, Any]:
    if system.approval(approval_id).request.get("action") == "budget.spend":
        raise InvalidInput(f"approval {approval_id} overrides a budget: spend with it "
                           "through POST /v1/spend and its `approval_id`")
    decision = system.execute_approved(approval_id, caller.member, body.action,
                                       body.resource_value(), body.context,
                                       task_type=body.task_type, task_id=body.task_id)
    if not decision.allowed:
        raise decision.refusal(f"execute approval {approval_id}")
    return _decision(decision)


# -- delegations ----------------------------------------------------------------------

@router.post("/delegations", status_code=201, tags=["delegations"],
             summary="Lend some of your authority to another member until a time")
def delegate(body: DelegationRequest, caller: CallerDep, system: SystemDep) -> dict[str, Any]:
    return system.delegate(caller.member, body.to, body.actions, body.until,
                           actor=caller.member).to_json()


@router.get("/delegations", tags=["delegations"], summary="Delegations in force now")
def list_delegations(caller: CallerDep, system: SystemDep,
                     member: Identifier | None = None) -> list[dict[str, Any]]:
    """With `member`: those it gave or received."""
    return [granted.to_json() for granted in system.delegations(member=member)]


@router.get("/delegations/{delegation_id}", tags=["delegations"],
            summary="One delegation, in force or not")
def get_delegation(delegation_id: Identifier, caller: CallerDep,
                   system: SystemDep) -> dict[str, Any]:
    return system.delegation(delegation_id).to_json()


@router.delete("/delegations/{delegation_id}", tags=["delegations"],
               summary="Revoke a delegation (who gave it, or an admin)")
def revoke_delegation(delegation_id: Identifier, caller: CallerDep,
                      system: SystemDep) -> dict[str, Any]:
    granted = system.delegation(delegation_id)
    if granted.from_member != caller.member and not caller.admin:
        raise Forbidden(f"only {granted.from_member} (who gave it) or an admin may revoke "
                        f"delegation {delegation_id}")
    system.revoke_delegation(delegation_id, actor=caller.member)
    return system.delegation(delegation_id).to_json()


# -- budgets --------------------------------------------------------------------------

@router.get("/budgets", tags=["budgets"],
            summary="Every envelope: amount, reserved, committed, available")
def list_budgets(caller: CallerDep, system: SystemDep) -> list[dict[str, Any]]:
    return [envelope.to_json() for envelope in system.budget_usage()]


@router.post("/spend", status_code=201, tags=["budgets"],
             summary="Reserve spend from your envelope",
             responses={403: {"description": "Over budget: escalated to the envelope's "
                                             "owner (details carry the approval_id) or "
                                             "denied"}})
def reserve_spend(body: SpendRequest, caller: CallerDep, system: SystemDep) -> dict[str, Any]:
    """Over budget, the request escalates to the owner of the envelope that is short;
    once they approve, ask again with the same amount and purpose and the `approval_id`."""
    ttl = timedelta(seconds=body.ttl_seconds)
    if body.approval_id is not None:
        result = system.reserve_spend(caller.member, body.amount, body.purpose, ttl=ttl,
                                      approval_id=body.approval_id)
    else:
        result = system.request_spend(caller.member, body.amount, body.purpose, ttl=ttl)
    if result.reservation is None:
        raise result.decision.refusal(
            f"spend {body.amount}",
            then="ask again with its approval_id once it is approved")
    return {"decision": _decision(result.decision),
            "reservation": result.reservation.to_json()}


def _own_reservation(system: SystemDep, caller: CallerDep, reservation_id: str) -> None:
    held = system.reservation(reservation_id)
    if held.member != caller.member and not caller.admin:
        raise Forbidden(f"reservation {reservation_id} is {held.member}'s; only they or "
                        "an admin may settle it")


@router.post("/spend/{reservation_id}/commit", tags=["budgets"],
             summary="Settle your reservation at the amount actually spent")
def commit_spend(reservation_id: Identifier, body: Commit, caller: CallerDep,
                 system: SystemDep) -> dict[str, Any]:
    _own_reservation(system, caller, reservation_id)
    return system.commit_spend(reservation_id, body.actual, actor=caller.member).to_json()


@router.post("/spend/{reservation_id}/release", tags=["budgets"],
             summary="Give your reservation's hold back")
def release_spend(reservation_id: Identifier, caller: CallerDep, system: SystemDep,
                  body: Release | None = None) -> dict[str, Any]:
    _own_reservation(system, caller, reservation_id)
    reason = body.reason if body is not None else Release().reason
    return system.release_spend(reservation_id, actor=caller.member,
                                reason=reason).to_json()
