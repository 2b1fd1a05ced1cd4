"""`/v1/tokens`: bearer tokens, for admins."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from charter.api.auth import AdminDep, SystemDep
from charter.api.fields import PathId
from charter.types import Identifier

router = APIRouter(tags=["tokens"])


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"member": "buyer-bot-1", "admin": False,
                      "expires": "2027-01-01T00:00:00Z"}]})
    member: Identifier
    admin: bool = False
    expires: AwareDatetime | None = Field(None, description="When it stops working.")


@router.post("/tokens", status_code=201, summary="Make a token (shown once)")
def create_token(body: TokenRequest, caller: AdminDep, system: SystemDep) -> dict[str, Any]:
    expires: datetime | None = body.expires
    made = system.create_token(body.member, admin=body.admin, expires=expires,
                               actor=caller.member)
    return {**made.token.to_json(), "token": made.secret}


@router.get("/tokens", summary="Every token (never its secret)")
def list_tokens(caller: AdminDep, system: SystemDep,
                member: Identifier | None = None) -> list[dict[str, Any]]:
    return [token.to_json() for token in system.tokens(member=member)]


@router.delete("/tokens/{token_id}", summary="Revoke a token")
def revoke_token(token_id: PathId, request: Request, caller: AdminDep,
                 system: SystemDep) -> dict[str, Any]:
    revoked = system.revoke_token(token_id, actor=caller.member)
    request.app.state.tokens.forget(token_id)
    return revoked.to_json()
