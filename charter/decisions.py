"""Decisions: the answer to "may member M do action A on resource R?", with reasons."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from charter.canonical import json_safe
from charter.errors import CharterError, Forbidden, InvalidInput
from charter.requests import AuthzRequest

Outcome = Literal["allow", "deny", "escalate"]
ReasonKind = Literal["policy", "forbid", "no-permit", "invalid", "error", "autonomy",
                     "delegation", "chain", "quorum", "budget", "approval", "suspended",
                     "frozen"]


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a decision went the way it did: a rule and, for policies, their ids."""

    kind: ReasonKind
    message: str
    policies: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "policies": list(self.policies)}


@dataclass(frozen=True, slots=True)
class Decision:
    """allow, deny or escalate (to approvers, needing `quorum` of them), with reasons.

    `request` is None only when the request itself was invalid.
    """

    outcome: Outcome
    member: str
    action: str
    resource: str
    context: dict[str, Any]
    reasons: tuple[Reason, ...]
    request: AuthzRequest | None = None
    approvers: tuple[str, ...] = ()
    quorum: int = 1
    notify: tuple[str, ...] = ()
    approval_id: str | None = None

    @property
    def allowed(self) -> bool:
        return self.outcome == "allow"

    @property
    def request_hash(self) -> str | None:
        return None if self.request is None else self.request.hash

    def to_json(self) -> dict[str, Any]:
        """The decision as recorded. The request hash, which binds approvals, is
        included where an approval is involved (it is derivable from the rest)."""
        recorded = {"outcome": self.outcome, "member": self.member, "action": self.action,
                    "resource": self.resource, "context": self.context,
                    "task_type": None if self.request is None else self.request.task_type,
                    "reasons": [reason.to_json() for reason in self.reasons],
                    "approvers": list(self.approvers), "quorum": self.quorum,
                    "notify": list(self.notify), "approval_id": self.approval_id}
        if self.approval_id is not None or self.outcome == "escalate":
            recorded["request_hash"] = self.request_hash
        return recorded

    def refusal(self, doing: str, *, then: str = "") -> CharterError:
        """The error to raise when a command needs this decision to be an allow and it is
        not: `InvalidInput` when the request itself was not valid, else `Forbidden` with
        the reasons; an escalation names who could approve it, and `then` says what to
        do about that (commands that cannot wait for an approval)."""
        why = "; ".join(reason.message for reason in self.reasons)
        details = json_safe(self.to_json())
        if self.request is None:
            return InvalidInput(f"{self.member} may not {doing}: the request is not valid: "
                                f"{why}", details=details)
        if self.outcome == "escalate":
            return Forbidden(f"{self.member} may not {doing} without approval from "
                             f"{', '.join(self.approvers)}: {why}"
                             + (f"; {then}" if then else ""), details=details)
        return Forbidden(f"{self.member} may not {doing}: {why}", details=details)

    def explain(self) -> str:
        """One line per reason, for people."""
        head = self.outcome.upper()
        if self.outcome == "escalate":
            head += f" to {', '.join(self.approvers)} (needs {self.quorum})"
        lines = [head] + [f"  - {r.kind}: {r.message}" for r in self.reasons]
        return "\n".join(lines)
