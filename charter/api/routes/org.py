"""`/v1/org`, `/v1/members`, `/v1/policies`: the org and policy set in force, its
members, and loading new versions (admins). An invalid org or policy set is refused as
a whole with file, line and reason, and the versions in force keep deciding."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from charter import tasks
from charter.api.auth import AdminDep, CallerDep, SystemDep
from charter.errors import NoOrgLoaded, NotFound, OrgInvalid
from charter.org import parse_org
from charter.orgversions import OrgVersion
from charter.policy import MAX_POLICY_CHARS, CompiledPolicies
from charter.policyversions import PolicyVersion
from charter.system import Charter
from charter.types import Identifier, Member
from charter.yamlsource import load_located

router = APIRouter()

ORG_SOURCE = "charter.yaml"
"""The name problems in an org sent over the API are reported against."""
POLICY_SOURCE = "api"
"""The source recorded for a policy set loaded over the API."""

def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("NUL characters are not allowed")
    return text


PolicyName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}\.cedar$",
                                  description="A file name ending in `.cedar`.")]
PolicyText = Annotated[str, Field(max_length=256_000), AfterValidator(_no_nul)]
PolicyFiles = Annotated[dict[PolicyName, PolicyText], Field(max_length=100)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PolicySet(Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"files": {
        "spending.cedar": '@id("buyers-purchase")\npermit(principal in Role::"buyer", '
                          'action == Action::"purchase.create", resource)\n'
                          "when { context.amount <= principal.limits.purchase };"}}]})
    files: PolicyFiles = Field(min_length=1, description="File name -> Cedar text.")

    @model_validator(mode="after")
    def _bounded(self) -> PolicySet:
        _check_total(self.files)
        return self


class OrgFile(Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "yaml": "org: {id: acme, name: Acme Corporation}\n…",
        "policies": {"spending.cedar": "permit(principal, action, resource);"}}]})
    yaml: Annotated[str, Field(min_length=1, max_length=1_000_000,
                               description="The text of charter.yaml.")]
    policies: PolicyFiles | None = Field(None, description="Its policy files (default: "
                                                           "the set in force).")

    @model_validator(mode="after")
    def _bounded(self) -> OrgFile:
        _check_total(self.policies or {})
        return self


def _check_total(files: dict[str, str]) -> None:
    if sum(len(text) for text in files.values()) > MAX_POLICY_CHARS:
        raise ValueError(f"the policy files hold more than {MAX_POLICY_CHARS} characters")


# -- org ------------------------------------------------------------------------------

def _org_json(version: OrgVersion, system: Charter) -> dict[str, Any]:
    policies = system.current_policies()
    org = version.org
    return {"version": version.version, "id": org.id, "digest": org.digest,
            "source": org.source, "loaded_at": version.loaded_at,
            "loaded_by": version.loaded_by, "event_seq": version.event_seq,
            "policy_version": None if policies is None else policies.version,
            "spec": org.document()}


@router.get("/org", tags=["org"], summary="The org in force")
def get_org(caller: CallerDep, system: SystemDep) -> dict[str, Any]:
    current = system.current_org()
    if current is None:
        raise NoOrgLoaded()
    return _org_json(current, system)


@router.get("/org/versions", tags=["org"], summary="Every version of the org, oldest first")
def org_versions(caller: CallerDep, system: SystemDep) -> list[dict[str, Any]]:
    return system.org_versions()


@router.post("/org", status_code=201, tags=["org"],
             summary="Load a new version of the org (admin)")
def load_org(body: OrgFile, caller: AdminDep, system: SystemDep) -> dict[str, Any]:
    """Validated as a whole with its policies (default: the set in force); an invalid
    org changes nothing and every problem is listed with its line."""
    if body.policies is not None:
        files = body.policies
    else:
        in_force = system.current_policies()
        files = {} if in_force is None else in_force.files
    with tempfile.TemporaryDirectory(prefix="charter-org-") as folder:
        base = Path(folder).resolve()
        target = _policies_folder(body.yaml, base)
        target.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (target / name).write_text(text, encoding="utf-8")
        org = parse_org(body.yaml, ORG_SOURCE, base_dir=base)
        version = system.install_org(org, actor=caller.member)
    return {**_org_json(version, system), "warnings": list(org.warnings)}


def _policies_folder(text: str, base: Path) -> Path:
    """Where the org file's `policies:` points, which must be inside `base` (the files
    come with the request, never from the server's disk)."""
    document, _ = load_located(text, ORG_SOURCE)
    if document is None or not isinstance(document.data, dict) or not isinstance(
            document.data.get("policies"), str):
        return base / "policies"  # reading the org reports what is wrong
    target: Path = (base / document.data["policies"]).resolve()
    if not target.is_relative_to(base):
        raise _org_problem(document.line_of(("policies",)), "policies",
                           "over the API the policy files come with the request: "
                           "`policies` must name a folder beside the org file")
    return target


def _org_problem(line: int | None, path: str, message: str) -> OrgInvalid:
    where = f"{ORG_SOURCE}:{line}" if line else ORG_SOURCE
    return OrgInvalid(f"{ORG_SOURCE} is not valid: {where}: {message}; nothing was changed",
                      details=[{"file": ORG_SOURCE, "line": line, "path": path,
                                "message": message}])


# -- members --------------------------------------------------------------------------

def _loads(system: Charter) -> dict[str, int]:
    with system.store.reading() as conn:
        return tasks.loads(conn)


def _member_json(member: Member, load: int) -> dict[str, Any]:
    return {"id": member.id, "name": member.display_name, "kind": member.kind,
            "title": member.title, "department": member.department,
            "roles": list(member.roles), "teams": list(member.teams),
            "reports_to": member.reports_to, "capacity": member.capacity,
            "status": member.status, "load": load}


@router.get("/members", tags=["members"],
            summary="Every member, with the tasks each holds now (`load`)")
def list_members(caller: CallerDep, system: SystemDep) -> list[dict[str, Any]]:
    org, held = system.org, _loads(system)
    return [_member_json(member, held.get(member.id, 0)) for member in org.spec.members]


@router.get("/members/{member_id}", tags=["members"],
            summary="One member as declared, with its chain of command")
def get_member(member_id: Identifier, caller: CallerDep, system: SystemDep) -> dict[str, Any]:
    org = system.org
    member = org.member(member_id)
    return {**member.model_dump(mode="json"),
            **_member_json(member, _loads(system).get(member_id, 0)),
            "chain_of_command": org.chain_of_command(member_id),
            "direct_reports": org.direct_reports(member_id)}


@router.get("/members/{member_id}/stats", tags=["members"],
            summary="Its track record per task type and engine version")
def member_stats(member_id: Identifier, caller: CallerDep,
                 system: SystemDep) -> list[dict[str, Any]]:
    return [record.to_json() for record in system.track_record(member_id)]


@router.get("/breakers", tags=["members"],
            summary="Circuit breakers that have opened, per member and engine version")
def list_breakers(caller: CallerDep, system: SystemDep,
                  member: Identifier | None = None) -> list[dict[str, Any]]:
    return [breaker.to_json() for breaker in system.circuit_breakers(member=member)]


# -- policies -------------------------------------------------------------------------

def _statements(compiled: CompiledPolicies) -> list[dict[str, Any]]:
    return [{"id": s.id, "file": s.file, "line": s.line, "annotations": s.annotations}
            for s in compiled.statements.values()]


def _policies_json(version: PolicyVersion, compiled: CompiledPolicies) -> dict[str, Any]:
    return {"version": version.version, "digest": version.digest, "source": version.source,
            "loaded_at": version.loaded_at, "loaded_by": version.loaded_by,
            "event_seq": version.event_seq, "policies": _statements(compiled),
            "files": version.files}


@router.get("/policies", tags=["policies"], summary="The policy set in force")
def get_policies(caller: CallerDep, system: SystemDep) -> dict[str, Any]:
    version = system.current_policies()
    if version is None:
        raise NotFound("no policy set is loaded: load the org first")
    return _policies_json(version, _compiled(system, version))


@router.post("/policies", status_code=201, tags=["policies"],
             summary="Validate a policy set and make it the one in force (admin)")
def load_policies(body: PolicySet, caller: AdminDep, system: SystemDep) -> dict[str, Any]:
    """An invalid set is refused as a whole (422, each problem with file and line) and
    the set in force keeps deciding."""
    loaded = system.load_policy_files(body.files, source=POLICY_SOURCE, actor=caller.member)
    return _policies_json(loaded, _compiled(system, loaded))


def _compiled(system: Charter, version: PolicyVersion) -> CompiledPolicies:
    """The parsed set of `version`: the one deciding, unless another was loaded since."""
    compiled = system.authority().engine.policies
    if compiled.digest != version.digest:
        compiled = system.check_policies(version.files)
    return compiled


@router.post("/policies/validate", tags=["policies"],
             summary="Check a policy set against the org in force, without loading it")
def validate_policies(body: PolicySet, caller: CallerDep,
                      system: SystemDep) -> dict[str, Any]:
    compiled = system.check_policies(body.files)
    return {"valid": True, "digest": compiled.digest, "policies": _statements(compiled)}
