"""A framework's tool call as a Charter request: the core every integration shares.

A `GovernedAction` says who calls a tool and how its arguments name the Cedar action's
resource and context. `authorize` asks Charter before the tool runs; when Charter
escalated, `execute_approved` uses the approval once a person has granted it. Both
answer with a `Verdict`: whether the tool runs now, and otherwise the words the agent
gets instead of the tool's result. Adapters turn an escalation into their framework's
own way of waiting for a person.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from charter.errors import CharterError, Conflict, Forbidden, NotFound

if TYPE_CHECKING:
    from charter.approvals import Approval
    from charter.decisions import Decision
    from charter.system import Charter

Arguments = Mapping[str, Any]
"""A tool call's arguments, as the model sent them."""

VerdictOutcome = Literal["allow", "deny", "escalate", "approved", "unapproved"]

_NOT_RUN = "the tool was not run"


class ArgumentsUnfit(ValueError):
    """The tool's arguments do not make a request (a resource or context is missing)."""


@dataclass(frozen=True)
class Verdict:
    """Charter's answer to one tool call: whether the tool runs, and what the agent is
    told when it does not.

    `allow` and `approved` run the tool; `deny` never does; `escalate` waits for the
    approval `approval_id` from `approvers`; `unapproved` is a resumed call whose approval
    was not granted (still pending, rejected, expired or already used).
    """

    outcome: VerdictOutcome
    message: str
    request: dict[str, Any]
    """The request as asked: member, action, resource and context."""
    approval_id: str | None = None
    approvers: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()

    @property
    def runs(self) -> bool:
        return self.outcome in ("allow", "approved")

    def to_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "message": self.message, "request": self.request,
                "approval_id": self.approval_id, "approvers": list(self.approvers),
                "reasons": list(self.reasons)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Verdict:
        return cls(data["outcome"], data["message"], dict(data["request"]),
                   data.get("approval_id"), tuple(data.get("approvers", ())),
                   tuple(data.get("reasons", ())))


@dataclass(frozen=True)
class GovernedAction:
    """How one tool's calls become Charter requests.

    `resource` is a template filled from the arguments (`"Vendor::{vendor}"`) or a
    function of them. `context` is a function of the arguments; by default the context is
    the arguments named like the attributes the org declares for `action`.
    """

    charter: Charter
    member: str
    action: str
    resource: str | Callable[[Arguments], str]
    context: Callable[[Arguments], Mapping[str, Any]] | None = None
    task_type: str | None = None
    task_id: str | None = None

    def request_for(self, arguments: Arguments) -> tuple[str, dict[str, Any]]:
        """The resource and context a call with `arguments` asks for; `ArgumentsUnfit`
        when they cannot be built from them."""
        try:
            resource = (self.resource(arguments) if callable(self.resource)
                        else self.resource.format_map(arguments))
            context = (dict(self.context(arguments)) if self.context is not None
                       else {name: arguments[name] for name in self._declared_context()
                             if name in arguments})
        except (LookupError, ValueError, TypeError, AttributeError) as error:
            raise ArgumentsUnfit(f"the arguments do not make a {self.action} request: "
                                 f"{type(error).__name__}: {error}") from error
        return resource, context

    def authorize(self, arguments: Arguments) -> Verdict:
        """Ask Charter whether the call may run (an escalation opens an approval, or finds
        the one already waiting for this exact request)."""
        try:
            resource, context = self.request_for(arguments)
        except ArgumentsUnfit as unfit:
            return self._unfit(arguments, unfit)
        decision = self.charter.authorize(self.member, self.action, resource, context,
                                          task_type=self.task_type, task_id=self.task_id)
        request = self._asked(resource, context)
        reasons = tuple(reason.message for reason in decision.reasons)
        if decision.outcome == "allow":
            return Verdict("allow", f"Charter allowed {self._doing(resource)}", request,
                           reasons=reasons)
        if decision.outcome == "deny":
            return Verdict("deny", f"Charter refused: {self._refusal(decision, resource)}; "
                                   f"{_NOT_RUN}", request, reasons=reasons)
        then = f"{_NOT_RUN}: it waits for approval {decision.approval_id}"
        return Verdict("escalate",
                       f"Charter escalated: {self._refusal(decision, resource, then)}",
                       request, decision.approval_id, decision.approvers, reasons)

    def execute_approved(self, approval_id: str, arguments: Arguments) -> Verdict:
        """Use approval `approval_id` for this exact call, once: `approved` when it was
        granted (the tool may run now), `unapproved` with the reason otherwise."""
        try:
            resource, context = self.request_for(arguments)
        except ArgumentsUnfit as unfit:
            return self._unfit(arguments, unfit)
        request = self._asked(resource, context)
        try:
            decision = self.charter.execute_approved(
                approval_id, self.member, self.action, resource, context,
                task_type=self.task_type, task_id=self.task_id)
        except (Conflict, Forbidden, NotFound) as refused:
            return Verdict("unapproved", f"{self._unapproved(approval_id, refused)}; "
                                         f"{_NOT_RUN}", request, approval_id)
        reasons = tuple(reason.message for reason in decision.reasons)
        if not decision.allowed:  # the request no longer fits the org in force
            return Verdict("unapproved", f"Charter refused: "
                                         f"{self._refusal(decision, resource)}; {_NOT_RUN}",
                           request, approval_id, reasons=reasons)
        return Verdict("approved", f"Charter allowed {self._doing(resource)}: "
                                   f"{'; '.join(reasons)}", request, approval_id,
                       reasons=reasons)

    def _unapproved(self, approval_id: str, refusal: CharterError) -> str:
        """Why approval `approval_id` could not be used, in the approvers' words when
        they gave some."""
        if not isinstance(refusal, Conflict):  # another request, or no such approval
            return f"Charter refused: {refusal.message}"
        approval = self.charter.approval(approval_id)
        if approval.status == "pending":
            return (f"Charter approval {approval_id} still waits for "
                    f"{', '.join(approval.approvers)} ({approval.approvals_count} of "
                    f"{approval.quorum} approvals)")
        if approval.status == "rejected":
            return f"Charter approval {approval_id} was rejected{_rejections(approval)}"
        if approval.status == "expired":
            return f"Charter approval {approval_id} expired before it was used"
        if approval.status == "executed":
            return f"Charter approval {approval_id} was already used (it allows one call)"
        return f"Charter refused: {refusal.message}"

    def _declared_context(self) -> tuple[str, ...]:
        declared = self.charter.authority().org.spec.actions.get(self.action)
        return () if declared is None else tuple(declared.context)

    def asked(self, arguments: Arguments) -> dict[str, Any]:
        """The request a call with `arguments` makes, as its verdict names it."""
        try:
            return self._asked(*self.request_for(arguments))
        except ArgumentsUnfit:
            return {"member": self.member, "action": self.action,
                    "arguments": dict(arguments)}

    def _unfit(self, arguments: Arguments, unfit: ArgumentsUnfit) -> Verdict:
        return Verdict("deny", f"Charter refused: {unfit}; {_NOT_RUN}", self.asked(arguments),
                       reasons=(str(unfit),))

    def _asked(self, resource: str, context: dict[str, Any]) -> dict[str, Any]:
        return {"member": self.member, "action": self.action, "resource": resource,
                "context": context}

    def _doing(self, resource: str) -> str:
        return f"{self.member} to {self.action} on {resource}"

    def _refusal(self, decision: Decision, resource: str, then: str = "") -> str:
        return decision.refusal(f"{self.action} on {resource}", then=then).message


def _rejections(approval: Approval) -> str:
    said = "; ".join(f"{vote.approver}: {vote.comment}" if vote.comment else vote.approver
                     for vote in approval.votes if vote.vote == "reject")
    return f" by {said}" if said else ""
