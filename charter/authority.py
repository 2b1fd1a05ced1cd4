"""Authority: allow, deny or escalate a request along the chain of command.

If Cedar permits the member and its autonomy for the task type is `autonomous`: allow.
If permitted at a lower autonomy: escalate to the supervisor's chain (`supervised`) or
allow and notify (`notify`). A forbid that never reads the principal denies outright:
it would stop every approver alike. If not permitted and no forbid names the member, a
live delegation from someone who is permitted allows it. Otherwise the first ancestor in
`reports_to` for whom the same request is permitted is the approver (the chain is
checked in one batched Cedar call); nobody permitted → deny. Any policy evaluation
error, or a request Cedar cannot build, denies: Cedar skips a policy that errors, so an
erroring forbid would otherwise let a request through.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import cedarpy

from charter.autonomy import level_of
from charter.decisions import Decision, Reason
from charter.delegations import Delegation
from charter.policy import PolicyEngine
from charter.requests import AuthzRequest, RequestInvalid, build_request
from charter.types import AutonomyLevel

_ALLOW = cedarpy.Decision.Allow
_DENY = cedarpy.Decision.Deny


class Authority:
    """Decides requests against one org and policy set (and the live delegations)."""

    def __init__(self, engine: PolicyEngine, delegations: Sequence[Delegation] = (),
                 levels: dict[tuple[str, str], AutonomyLevel] | None = None,
                 suspended: Mapping[str, str] | None = None,
                 frozen: Mapping[str, str] | None = None) -> None:
        self.engine = engine
        self.org = engine.org
        self.delegations = tuple(delegations)
        self.levels = levels or {}
        self.suspended = dict(suspended or {})
        """Members stopped by the kill switch: member → why."""
        self.frozen = dict(frozen or {})
        """Actions frozen org-wide: action → why."""

    def active(self, member: str) -> bool:
        """Active in the org file and not suspended by the kill switch."""
        return (self.org.members[member].status == "active"
                and member not in self.suspended)

    def decide(self, member: str, action: str, resource: str | dict[str, str],
               context: Any = None, *, task_type: str | None = None,
               now: datetime, autonomy: AutonomyLevel | None = None,
               task: str | None = None) -> Decision:
        """The decision for one request at time `now` (for delegations' expiry), made
        for `task` when given."""
        try:
            request = build_request(self.org, member, action, resource, context, task_type,
                                    task)
        except RequestInvalid as error:
            return Decision("deny", member, action, str(resource),
                            context if isinstance(context, dict) else {},
                            (Reason("invalid", f"invalid request: {error}"),))
        if member in self.suspended:
            return self._decision(request, "deny", Reason(
                "suspended", f"{member} is suspended: {self.suspended[member]}"))
        if self.org.members[member].status != "active":
            return self._decision(request, "deny", Reason(
                "suspended", f"{member} is {self.org.members[member].status}"))
        if action in self.frozen:
            return self._decision(request, "deny", Reason(
                "frozen", f"{action} is frozen for everyone: {self.frozen[action]}"))
        (answer,) = self.engine.evaluate([member], action, request.cedar_resource,
                                         request.cedar_context)
        refusal = _refusal(answer)
        if refusal is not None:
            return self._decision(request, "deny", refusal)
        if answer.decision == _ALLOW:
            permitted_by = tuple(answer.diagnostics.reasons)
            return self._permitted(request, permitted_by, (Reason(
                "policy", f"permitted by {', '.join(permitted_by)}", permitted_by),), now,
                autonomy)
        return self._not_permitted(request, answer, now, autonomy)

    def _permitted(self, request: AuthzRequest, permitted_by: tuple[str, ...],
                   because: tuple[Reason, ...], now: datetime,
                   autonomy: AutonomyLevel | None) -> Decision:
        """A permitted request (by the member's own authority or a delegation): still
        escalated where its policies ask for a quorum or the member is supervised."""
        quorum = self.engine.quorum(permitted_by)
        if quorum > 1:
            return self._escalate(request, (*because, Reason(
                "quorum", f"{', '.join(permitted_by)} needs {quorum} distinct approvers")),
                quorum, now)
        level = autonomy
        if level is None and request.task_type is not None:
            level = level_of(self.org, self.levels, request.member, request.task_type)
        if level == "supervised":
            return self._escalate(request, (*because, Reason(
                "autonomy", f"{request.member} is supervised on {request.task_type}: "
                            "a manager approves its actions")), self._type_quorum(request), now)
        if level == "notify":
            manager = self.org.members[request.member].reports_to
            return self._decision(request, "allow", *because, Reason(
                "autonomy", f"{request.member} acts on {request.task_type} and notifies "
                            f"{manager or 'nobody'}"), notify=(manager,) if manager else ())
        return self._decision(request, "allow", *because)

    def _not_permitted(self, request: AuthzRequest, answer: Any, now: datetime,
                       autonomy: AutonomyLevel | None) -> Decision:
        forbidden_by = tuple(answer.diagnostics.reasons)
        why = (Reason("forbid", f"forbidden by {', '.join(forbidden_by)}", forbidden_by)
               if forbidden_by else
               Reason("no-permit", f"no policy permits {request.member} to {request.action} "
                                   f"{request.resource}"))
        universal = sorted(self.engine.policies.universal_forbids.intersection(forbidden_by))
        if universal:  # the same forbid would stop every approver: nobody to ask
            return self._decision(request, "deny", why, Reason(
                "chain", f"{', '.join(universal)} forbids this to every member alike, so "
                         "nobody in the chain of command may approve it", tuple(universal)))
        # A delegation lends authority the member lacks; it never lifts a forbid that
        # names the member.
        delegators = [] if forbidden_by else [
            d for d in self.delegations
            if d.to_member == request.member and d.covers(request.action, now)]
        if delegators:
            answers = self.engine.evaluate([d.from_member for d in delegators],
                                           request.action, request.cedar_resource,
                                           request.cedar_context)
            for delegation, delegated in zip(delegators, answers, strict=True):
                if delegated.decision == _ALLOW and not delegated.diagnostics.errors:
                    # Lent authority, not lent autonomy: a supervised member acting for
                    # someone still has its actions approved, and a quorum still holds.
                    policies = tuple(delegated.diagnostics.reasons)
                    return self._permitted(request, policies, (Reason(
                        "delegation", f"acting for {delegation.from_member} under delegation "
                                      f"{delegation.id} (until {delegation.until})", policies),
                        Reason("policy", f"{delegation.from_member} is permitted by "
                                         f"{', '.join(policies)}", policies)), now, autonomy)
        return self._escalate(request, (why,), self._type_quorum(request), now)

    def _type_quorum(self, request: AuthzRequest) -> int:
        if request.task_type is None:
            return 1
        return self.org.task_types[request.task_type].quorum

    def _escalate(self, request: AuthzRequest, reasons: tuple[Reason, ...], quorum: int,
                  now: datetime) -> Decision:
        """Escalate to the first `quorum` ancestors permitted the same request."""
        chain = [m for m in self.org.chain_of_command(request.member)
                 if self.active(m)]
        answers = self.engine.evaluate(chain, request.action, request.cedar_resource,
                                       request.cedar_context) if chain else []
        approvers = tuple(m for m, a in zip(chain, answers, strict=True)
                          if a.decision == _ALLOW and not a.diagnostics.errors)[:quorum]
        if not approvers:
            return self._decision(request, "deny", *reasons, Reason(
                "chain", f"nobody in {request.member}'s chain of command is permitted "
                         f"either ({' → '.join(chain) or 'no managers'})"))
        if len(approvers) < quorum:
            return self._decision(request, "deny", *reasons, Reason(
                "quorum", f"{quorum} approvers are needed but only {len(approvers)} in the "
                          f"chain of command are permitted ({', '.join(approvers)})"))
        return self._decision(request, "escalate", *reasons, Reason(
            "chain", f"escalated to {', '.join(approvers)}: the nearest in the chain of "
                     f"command permitted to {request.action} this"),
            approvers=approvers, quorum=quorum)

    @staticmethod
    def _decision(request: AuthzRequest, outcome: Any, *reasons: Reason,
                  approvers: tuple[str, ...] = (), quorum: int = 1,
                  notify: tuple[str, ...] = ()) -> Decision:
        return Decision(outcome, request.member, request.action, request.resource,
                        request.context, reasons, request, approvers, quorum, notify)


def _refusal(answer: Any) -> Reason | None:
    """A reason to deny outright: the request could not be built, or a policy failed."""
    errors = list(answer.diagnostics.errors)
    if answer.decision not in (_ALLOW, _DENY):
        return Reason("invalid", f"invalid request: {'; '.join(errors) or 'no decision'}")
    if errors:
        return Reason("error", "a policy failed to evaluate, so nothing is allowed: "
                               + "; ".join(errors))
    return None
