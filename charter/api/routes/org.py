"""`/v1/org`, `/v1/members`, `/v1/policies`: the org and policy set in force, its
members, and loading new versions (admins). An invalid org or policy set is refused as
a whole with file, line and reason, and the versions in force keep deciding."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Annotated, Any

import cedarpy
import yaml
from fastapi import APIRouter
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from charter import tasks
from charter.api.auth import AdminDep, CallerDep, SystemDep
from charter.errors import NoOrgLoaded, NotFound, OrgInvalid
from charter.org import parse_org
from charter.orgversions import OrgVersion
from charter.policy import CompiledPolicies, PolicyInvalid, split_statements
from charter.policyversions import PolicyVersion
from charter.system import Charter
from charter.types import Identifier, Member
from charter.yamlsource import load_located

router = APIRouter()

ORG_SOURCE = "charter.yaml"
"""The name problems in an org sent over the API are reported against."""
POLICY_SOURCE = "api"
"""The source recorded for a policy set loaded over the API."""

MAX_YAML_DEPTH = 64
MAX_YAML_NODES = 200_000
"""An org file is a few levels deep; aliases may not expand it past this many values."""
MAX_POLICY_TOKENS = 2000
MAX_POLICY_DEPTH = 32
MAX_HAS_PATH = 16
"""Cedar parses recursively, and expands `has a.b.c` quadratically: one policy may hold
this many tokens, brackets this deep and `has` paths this long."""
MAX_CEDAR_NESTING = 120
"""Cedar reads a policy set back from JSON nested at most 128 levels (about 60 chained
`&&`, `||` or `if`)."""
MAX_POLICY_CHARS = 1_000_000

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_STRINGS_AND_COMMENTS = re.compile(r'"(?:[^"\\]|\\.)*"|//[^\n]*')
_BRACKETS = re.compile(r"[\[\]{}]")
_TOKEN = re.compile(r"[A-Za-z_]\w*|\d+|\S")
_HAS_PATH = re.compile(r"\bhas\s+[A-Za-z_]\w*((?:\s*\.\s*[A-Za-z_]\w*)*)")


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
    _check_yaml_shape(body.yaml)
    if body.policies is not None:
        files = body.policies
    else:
        in_force = system.current_policies()
        files = {} if in_force is None else in_force.files
    _check_policy_shape(files)
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


def _check_yaml_shape(text: str) -> None:
    """Refuse YAML nested deeper than `MAX_YAML_DEPTH` or whose aliases expand past
    `MAX_YAML_NODES` values (a recursive alias never ends), before it is built."""
    open_nodes: list[list[Any]] = []  # [anchor, values so far] of each open collection
    expanded: dict[str, int] = {}
    try:
        for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            line = None if event.start_mark is None else event.start_mark.line + 1
            if isinstance(event, yaml.CollectionStartEvent):
                open_nodes.append([event.anchor, 1])
                if len(open_nodes) > MAX_YAML_DEPTH:
                    raise _org_problem(line, "", f"nested more than {MAX_YAML_DEPTH} levels")
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                anchor, size = open_nodes.pop()
            elif isinstance(event, yaml.AliasEvent):
                if any(node[0] == event.anchor for node in open_nodes):
                    raise _org_problem(line, "", f"the alias *{event.anchor} refers to a "
                                                 "value that contains it")
                anchor, size = None, expanded.get(str(event.anchor), 1)
            elif isinstance(event, yaml.ScalarEvent):
                anchor, size = event.anchor, 1
            else:
                continue
            if anchor is not None:
                expanded[anchor] = size
            if open_nodes:
                open_nodes[-1][1] += size
            if size > MAX_YAML_NODES or (open_nodes and open_nodes[-1][1] > MAX_YAML_NODES):
                raise _org_problem(line, "", f"its aliases expand to more than "
                                             f"{MAX_YAML_NODES} values")
    except yaml.YAMLError:
        return  # reading the org reports it, with its line


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
    _check_policy_shape(body.files)
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
    _check_policy_shape(body.files)
    compiled = system.check_policies(body.files)
    return {"valid": True, "digest": compiled.digest, "policies": _statements(compiled)}


def _check_policy_shape(files: dict[str, str]) -> None:
    """Refuse policies too large or deep for Cedar's recursive parser, before it sees
    them, with file and line."""
    problems = []
    for name, text in files.items():
        for line, statement in split_statements(text):
            problem = _shape_problem(statement)
            if problem is not None:
                problems.append({"file": name, "line": line, "policy": "",
                                 "message": problem})
    if problems:
        listing = "; ".join(f"{p['file']}:{p['line']}: {p['message']}" for p in problems[:5])
        raise PolicyInvalid(f"the policy set is not valid ({listing}); the previous set "
                            "keeps deciding", details=problems)


def _shape_problem(statement: str) -> str | None:
    code = _STRINGS_AND_COMMENTS.sub(lambda m: '""' if m[0].startswith('"') else "",
                                     statement)
    depth = deepest = count = 0
    for token in _TOKEN.finditer(code):
        count += 1
        if token[0] in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif token[0] in ")]}":
            depth -= 1
    if count > MAX_POLICY_TOKENS:
        return f"a policy may hold at most {MAX_POLICY_TOKENS} tokens (this one {count})"
    if deepest > MAX_POLICY_DEPTH:
        return f"brackets nest more than {MAX_POLICY_DEPTH} deep"
    longest = max((m[1].count(".") + 1 for m in _HAS_PATH.finditer(code)), default=0)
    if longest > MAX_HAS_PATH:
        return f"a `has` path may name at most {MAX_HAS_PATH} attributes"
    try:
        parsed = cedarpy.policies_to_json_str(statement)
    except ValueError:
        return None  # not Cedar: validation reports it, with Cedar's message
    depth = deepest = 0
    for bracket in _BRACKETS.finditer(_STRINGS.sub("", parsed)):
        depth += 1 if bracket[0] in "[{" else -1
        deepest = max(deepest, depth)
    if deepest > MAX_CEDAR_NESTING:
        return ("its conditions nest too deeply for Cedar: split long chains of `&&`, "
                "`||` or `if` into several policies")
    return None
