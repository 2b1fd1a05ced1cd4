"""The org and policies in force: the org's versions, its task types, budgets and
actions, the policy set file by file with its `@id` policies; and the authorize
playground, which asks "may this member do this action on this resource?" and shows the
decision with its reasons.

Asking is a real `authorize` (as `/v1/authorize`): the decision is recorded in the
ledger, and an escalation opens (or finds waiting) an approval. A member other than an
admin asks only about itself. A question that is not valid (bad JSON, an unknown action,
a context the action does not declare) is answered with what is wrong and records
nothing."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from charter.api.auth import SystemDep
from charter.api.routes.governance import AuthorizeRequest
from charter.budgets import EnvelopeUsage
from charter.decisions import Decision
from charter.errors import Forbidden, NoOrgLoaded
from charter.org import Org
from charter.policy import PolicyStatement
from charter.policyversions import PolicyVersion
from charter.requests import RequestInvalid, build_request
from charter.system import Charter
from charter.types import TaskType
from charter.web.session import ActingViewerDep, Viewer, ViewerDep
from charter.web.templating import render

router = APIRouter()

VERSIONS_SHOWN = 20
CONTEXT_CHARS = 20_000
"""The most text the playground's context field may hold."""
FIELD_CHARS = 512

_NOT_IN_ANCHOR = re.compile(r"[^A-Za-z0-9_.:-]")


def policy_anchor(policy_id: str) -> str:
    """The page anchor of a policy, from its id."""
    return "policy-" + _NOT_IN_ANCHOR.sub("-", policy_id)


def fallback_text(task_type: TaskType) -> str:
    """A task type's fallback protocol as people read it: `retry 1 time → escalate
    to supervisor`."""
    steps = [f"escalate to {step.to}" if step.action == "escalate"
             else f"{step.action} {step.count} time{'' if step.count == 1 else 's'}"
             for step in task_type.fallback]
    return " → ".join(steps) or "none"


@dataclass(frozen=True)
class PolicyFile:
    """One `.cedar` file of the set in force: its text and the policies it holds."""

    name: str
    text: str
    statements: tuple[PolicyStatement, ...]


def policy_files(system: Charter, version: PolicyVersion) -> list[PolicyFile]:
    """The files of `version` with their policies, as parsed by the engine deciding now
    (or parsed afresh if another set was loaded since it was built)."""
    compiled = system.authority().engine.policies
    if compiled.digest != version.digest:
        compiled = system.check_policies(version.files)
    by_file: dict[str, list[PolicyStatement]] = {}
    for statement in compiled.statements.values():
        by_file.setdefault(statement.file, []).append(statement)
    return [PolicyFile(name, text, tuple(sorted(by_file.get(name, []),
                                                key=lambda s: s.line)))
            for name, text in sorted(version.files.items())]


@dataclass(frozen=True)
class Envelope:
    """A budget envelope's usage and how deep it nests (0 for the org's own)."""

    usage: EnvelopeUsage
    depth: int

    @property
    def used_share(self) -> float:
        used = self.usage.reserved + self.usage.committed
        return 0.0 if self.usage.amount <= 0 else float(used / self.usage.amount)


def envelopes(system: Charter) -> list[Envelope]:
    """Every envelope, parents before their children."""
    depth: dict[str, int] = {}
    shown = []
    for usage in system.budget_usage():
        depth[usage.id] = 0 if usage.parent_id is None else depth.get(usage.parent_id, 0) + 1
        shown.append(Envelope(usage, depth[usage.id]))
    return shown


@dataclass(frozen=True)
class Question:
    """What the playground was asked, as typed (so the form shows it again)."""

    member: str = ""
    action: str = ""
    resource: str = ""
    context: str = "{}"
    task_type: str = ""


def playground(org: Org, viewer: Viewer, asked: Question | None = None) -> dict[str, Any]:
    """What the authorize form offers: members (only the viewer, unless an admin),
    actions, task types and the resources the org names."""
    members = (list(org.spec.members) if viewer.admin
               else [org.members[viewer.member]] if viewer.member in org.members else [])
    resources = [f"{type_name}::{item}" for type_name, spec in org.spec.resources.items()
                 for item in spec.items]
    return {"members": members, "actions": org.spec.actions,
            "task_types": org.spec.task_types, "resources": resources,
            "asked": asked or Question(member=viewer.member)}


@router.get("/org")
def org_page(request: Request, system: SystemDep, viewer: ViewerDep) -> Response:
    current = system.current_org()
    if current is None:
        raise NoOrgLoaded()
    org = current.org
    versions = system.org_versions()
    policies = system.current_policies()
    members = org.spec.members
    return render(
        request, "org.html", viewer, section="org", title="Org & policies",
        current=current, org=org, versions=versions[::-1][:VERSIONS_SHOWN],
        version_count=len(versions),
        people=sum(1 for m in members if m.kind == "human"),
        agents=sum(1 for m in members if m.kind == "ai"),
        inactive=sum(1 for m in members if m.status != "active"),
        envelopes=envelopes(system), policies=policies,
        files=[] if policies is None else policy_files(system, policies),
        fallback_text=fallback_text, policy_anchor=policy_anchor,
        **playground(org, viewer))


@router.get("/org/authorize")
def authorize_page(request: Request, system: SystemDep, viewer: ViewerDep) -> Response:
    return render(request, "authorize.html", viewer, section="org", title="Authorize",
                  policy_anchor=policy_anchor, **playground(system.org, viewer))


@router.post("/org/authorize")
def authorize(request: Request, system: SystemDep, viewer: ActingViewerDep,
              member: Annotated[str, Form()] = "", action: Annotated[str, Form()] = "",
              resource: Annotated[str, Form()] = "", context: Annotated[str, Form()] = "",
              task_type: Annotated[str, Form()] = "") -> Response:
    """Ask, and show the decision; a question that is not valid shows what is wrong
    (in the result area) and records nothing."""
    asked = Question(member.strip() or viewer.member, action.strip(), resource.strip(),
                     context, task_type.strip())
    if asked.member != viewer.member and not viewer.admin:
        raise Forbidden(f"you are signed in as {viewer.member}; asking about "
                        f"{asked.member} needs an admin")
    org = system.org
    answer = ask(system, org, asked)
    problem = answer if isinstance(answer, str) else None
    decision = answer if isinstance(answer, Decision) else None
    fragment = bool(request.headers.get("HX-Request"))
    # A fragment answers 200 either way: the result area shows the problem, and an
    # error status would make htmx report a failed request.
    status = 422 if problem is not None and not fragment else 200
    template = "authorize_result.html" if fragment else "authorize.html"
    return render(request, template, viewer, section="org", title="Authorize",
                  status=status, problem=problem, decision=decision,
                  policy_anchor=policy_anchor, **playground(org, viewer, asked))


def ask(system: Charter, org: Org, asked: Question) -> Decision | str:
    """The decision for `asked`, or what is wrong with it (then nothing is recorded)."""
    if len(asked.context) > CONTEXT_CHARS:
        return f"the context is longer than {CONTEXT_CHARS:,} characters"
    too_long = [name for name in ("member", "action", "resource", "task_type")
                if len(getattr(asked, name)) > FIELD_CHARS]
    if too_long:
        return f"{too_long[0]} is longer than {FIELD_CHARS} characters"
    if not asked.resource:
        return "name the resource as Type::id, such as Vendor::globex"
    try:
        context = json.loads(asked.context) if asked.context.strip() else {}
    except json.JSONDecodeError as error:
        return (f"the context is not valid JSON: {error.msg} at line {error.lineno}, "
                f"column {error.colno}; write an object such as {{\"amount\": 800}}")
    if not isinstance(context, dict):
        return ("the context must be a JSON object (such as {\"amount\": 800}), not "
                f"{type(context).__name__}")
    try:
        body = AuthorizeRequest.model_validate({
            "member": asked.member, "action": asked.action, "resource": asked.resource,
            "context": context, "task_type": asked.task_type or None})
    except ValidationError as error:
        return validation_problems(error)
    try:  # checked here too, so a question the org cannot answer records nothing
        build_request(org, asked.member, body.action, body.resource_value(), body.context,
                      body.task_type)
    except RequestInvalid as error:
        return f"the request is not valid: {error}"
    return system.authorize(asked.member, body.action, body.resource_value(), body.context,
                            task_type=body.task_type)


def validation_problems(error: ValidationError) -> str:
    """A question's problems, one per field (pydantic's names for the alternatives it
    tried, such as `ResourceRef`, are left out)."""
    by_field: dict[str, str] = {}
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]
                         if not (isinstance(part, str) and ("[" in part or part[:1].isupper())))
        by_field.setdefault(where or "request", problem["msg"])
    return "; ".join(f"{where}: {message}" for where, message in list(by_field.items())[:5])
