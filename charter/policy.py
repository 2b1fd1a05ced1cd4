"""Cedar policies: read a folder of `.cedar` files, validate them against the org's
schema, and keep the parsed handles that every decision is evaluated with.

An invalid set is rejected as a whole, each problem with file, line and Cedar's message.
Policies are named by their `@id("…")` annotation (else `file:line`), so a decision's
reasons read well.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cedarpy

from charter.canonical import digest
from charter.cedarschema import entities, schema_text
from charter.errors import InvalidInput
from charter.org import Org
from charter.policyslices import ActionSlices
from charter.yamlsource import SourceProblem

MAX_POLICY_CHARS = 1_000_000
"""The most text a policy set may hold, all files together."""
MAX_POLICY_TOKENS = 5_000
MAX_POLICY_DEPTH = 32
MAX_HAS_PATH = 16
"""Cedar parses recursively (about a thousand nested brackets, or some tens of thousands
of chained `&&` or `if`, overflow its stack and end the process) and expands `has a.b.c`
into a test quadratic in its length: one policy may hold this many tokens, brackets this
deep and `has` paths this long."""
MAX_CEDAR_NESTING = 120
"""Cedar reads a policy set back from JSON nested at most 128 levels (about 60 chained
`&&`, `||` or `if`)."""

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_STRINGS_AND_COMMENTS = re.compile(r'"(?:[^"\\]|\\.)*"|//[^\n]*')
_BRACKETS = re.compile(r"[\[\]{}]")
_TOKEN = re.compile(r"[A-Za-z_]\w*|\d+|\S")
_HAS_PATH = re.compile(r"\bhas\s+[A-Za-z_]\w*((?:\s*\.\s*[A-Za-z_]\w*)*)")


class PolicyInvalid(InvalidInput):
    """The policy set is not valid; the previous set keeps deciding."""


@dataclass(frozen=True)
class PolicyStatement:
    """One policy as written: where it is, its text, its id and annotations."""

    file: str
    line: int
    text: str
    id: str = ""
    annotations: dict[str, str] = field(default_factory=dict)


def read_policy_files(folder: Path) -> dict[str, str]:
    """The folder's `.cedar` files by name (sorted), as text."""
    if not folder.is_dir():
        raise PolicyInvalid(f"policies folder not found: {folder}")
    files: dict[str, str] = {}
    for path in sorted(folder.glob("*.cedar")):
        try:
            files[path.name] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise _invalid([SourceProblem(path.name, None, "",
                                          f"cannot be read: {error}")]) from None
    return files


def split_statements(text: str) -> Iterator[tuple[int, str]]:
    """Each policy's starting line and text: `;` ends a policy, outside strings and
    `//` comments."""
    start, line, start_line = 0, 1, None
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        if char == "\n":
            line += 1
        elif char == "/" and text.startswith("//", index):
            end = text.find("\n", index)
            index = length if end < 0 else end
            continue
        elif char == '"':
            index += 1
            while index < length and text[index] != '"':
                if text[index] == "\\":
                    index += 1
                elif text[index] == "\n":
                    line += 1
                index += 1
        elif not char.isspace() and start_line is None:
            start_line = line
        elif char == ";" and start_line is not None:
            yield start_line, text[start:index + 1]
            start, start_line = index + 1, None
        if start_line is None and char != ";":
            start = index if not char.isspace() else index + 1
        index += 1
    if start_line is not None:
        yield start_line, text[start:]


@dataclass
class CompiledPolicies:
    """Policies parsed and validated: the Cedar handles plus where each policy is."""

    policy_set: Any
    statements: dict[str, PolicyStatement]
    digest: str
    files: dict[str, str]
    slices: ActionSlices
    """Per action, the policies that can apply to it: what a request is evaluated
    against."""
    quorums: dict[str, int] = field(default_factory=dict)
    universal_forbids: frozenset[str] = frozenset()
    """Forbids that read nothing of the principal: one that denies a request denies it
    to every member alike."""


MAX_QUORUM = 20
"""The most approvers a `@quorum` may ask for."""


def _quorum_problem(annotations: dict[str, str], policy: dict[str, Any]) -> str | None:
    """What is wrong with a policy's `@quorum("n")`, if anything: it is silently a
    one-approver rule otherwise."""
    if "quorum" not in annotations:
        return None
    written = annotations["quorum"].strip()
    if not written.isdigit() or not 1 <= int(written) <= MAX_QUORUM:
        return (f'@quorum("{written}") is not a number of approvers: write a whole number '
                f'from 1 to {MAX_QUORUM}, e.g. @quorum("2")')
    if policy.get("effect") == "forbid":
        return ("@quorum applies to what a permit allows; on a forbid it would never be "
                "used: move it to the permit that needs several approvers")
    return None


def compile_policies(files: dict[str, str], schema: Any) -> CompiledPolicies:
    """Parse and validate every policy; raise `PolicyInvalid` listing every problem.

    A policy too large or too deep for Cedar's parser is refused before Cedar sees it."""
    problems = _text_problems(files)
    if problems:
        raise _invalid(problems)
    statements: dict[str, PolicyStatement] = {}
    static: dict[str, Any] = {}
    for name, text in files.items():
        for line, body in split_statements(text):
            policy = _parse_statement(body)
            if isinstance(policy, str):
                problems.append(SourceProblem(name, line, "", policy))
                continue
            annotations = {k: str(v) for k, v in (policy.get("annotations") or {}).items()}
            policy_id = annotations.get("id") or f"{name}:{line}"
            named = annotations.get("id", "")  # problems name a policy only by its @id
            if (quorum := _quorum_problem(annotations, policy)) is not None:
                problems.append(SourceProblem(name, line, named, quorum))
            if policy_id in statements:
                first = statements[policy_id]
                problems.append(SourceProblem(name, line, "", f"duplicate policy id "
                                              f"`{policy_id}` (first at {first.file}:"
                                              f"{first.line})"))
                continue
            try:
                result = cedarpy.validate_policies(body, schema)
            except (ValueError, RecursionError) as error:
                problems.append(SourceProblem(name, line, named, f"Cedar: {error}"))
                continue
            for problem in result.errors:
                message = problem.error.replace(f"for policy `{problem.policy_id}`, ", "")
                problems.append(SourceProblem(name, line, named, f"Cedar: {message}"))
            statements[policy_id] = PolicyStatement(name, line, body.strip(), policy_id,
                                                    annotations)
            static[policy_id] = policy
    if problems:
        raise _invalid(problems)
    try:
        policy_set = _policy_set(static)
    except (ValueError, RecursionError):
        raise _invalid(_unreadable(statements, static)) from None
    quorums = {policy_id: int(statement.annotations["quorum"])
               for policy_id, statement in statements.items()
               if statement.annotations.get("quorum", "").isdigit()}
    universal = frozenset(policy_id for policy_id, policy in static.items()
                          if _forbids_everyone(policy))
    return CompiledPolicies(policy_set, statements, digest(files), dict(files),
                            ActionSlices(static), quorums, universal)


def _invalid(problems: list[SourceProblem]) -> PolicyInvalid:
    listing = "\n".join(f"  {problem}" for problem in problems)
    return PolicyInvalid(
        f"the policy set is not valid ({len(problems)} problem"
        f"{'s' if len(problems) != 1 else ''}); the previous set keeps deciding:\n"
        f"{listing}",
        details=[{"file": p.file, "line": p.line, "policy": p.path, "message": p.message}
                 for p in problems])


def _text_problems(files: dict[str, str]) -> list[SourceProblem]:
    """The files' text as a whole: bounded in size, and storable (no NUL character,
    which PostgreSQL refuses)."""
    problems, total = [], 0
    for name, text in files.items():
        if "\x00" in text:
            line = text.count("\n", 0, text.index("\x00")) + 1
            problems.append(SourceProblem(name, line, "", "NUL characters are not allowed"))
        total += len(text)
        if total > MAX_POLICY_CHARS:
            problems.append(SourceProblem(name, None, "", f"too large: the policy files may "
                                          f"hold at most {MAX_POLICY_CHARS} characters"))
            break
    return problems


def _parse_statement(body: str) -> dict[str, Any] | str:
    """One policy in Cedar's JSON form, or why it is refused."""
    problem = _shape_problem(body)
    if problem is not None:
        return problem
    try:
        parsed = cedarpy.policies_to_json_str(body)
    except ValueError as error:
        return f"Cedar: {error}"
    if _nesting(parsed) > MAX_CEDAR_NESTING:
        return ("its conditions nest too deeply for Cedar: split long chains of `&&`, "
                "`||` or `if` into several policies")
    try:
        policies = json.loads(parsed)["staticPolicies"]
    except (ValueError, RecursionError):
        return "its conditions nest too deeply for Cedar"
    if len(policies) != 1:
        return "expected one policy here"
    policy: dict[str, Any] = next(iter(policies.values()))
    return policy


def _shape_problem(statement: str) -> str | None:
    """Why one policy's text is too large or too deep for Cedar's parser, or None."""
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
        return (f"too large: a policy may hold at most {MAX_POLICY_TOKENS} tokens "
                f"(this one {count})")
    if deepest > MAX_POLICY_DEPTH:
        return f"too deep: brackets nest more than {MAX_POLICY_DEPTH} deep"
    longest = max((m[1].count(".") + 1 for m in _HAS_PATH.finditer(code)), default=0)
    if longest > MAX_HAS_PATH:
        return (f"too long: a `has` path may name at most {MAX_HAS_PATH} attributes "
                f"(this one {longest})")
    return None


def _nesting(parsed: str) -> int:
    """How deep the brackets of a JSON text nest, outside strings."""
    depth = deepest = 0
    for bracket in _BRACKETS.finditer(_STRINGS.sub("", parsed)):
        depth += 1 if bracket[0] in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _policy_set(static: dict[str, Any]) -> Any:
    return cedarpy.PolicySet.from_json_str(json.dumps(
        {"staticPolicies": static, "templates": {}, "templateLinks": []}))


def _unreadable(statements: dict[str, PolicyStatement],
                static: dict[str, Any]) -> list[SourceProblem]:
    """The policies Cedar cannot read back from their JSON form, each with its place
    (or the whole set, when no single one is at fault)."""
    problems = []
    for policy_id, policy in static.items():
        try:
            _policy_set({policy_id: policy})
        except (ValueError, RecursionError):
            statement = statements[policy_id]
            problems.append(SourceProblem(statement.file, statement.line, policy_id,
                                          "its conditions nest too deeply for Cedar"))
    files = sorted({statement.file for statement in statements.values()})
    return problems or [SourceProblem(", ".join(files), None, "",
                                      "Cedar cannot read this policy set")]


def _forbids_everyone(policy: dict[str, Any]) -> bool:
    """Whether a policy (Cedar's JSON form) is a forbid whose scope and conditions never
    look at the principal, so it matches every member or none."""
    scope = policy.get("principal") or {}
    any_member = scope.get("op") == "All" or (
        scope.get("op") == "is" and scope.get("entity_type") == "Member"
        and "in" not in scope)
    return (policy.get("effect") == "forbid" and any_member
            and not _mentions_principal(policy.get("conditions") or []))


def _mentions_principal(node: Any) -> bool:
    if isinstance(node, dict):
        return node.get("Var") == "principal" or any(
            _mentions_principal(value) for value in node.values())
    if isinstance(node, list):
        return any(_mentions_principal(item) for item in node)
    return False


class PolicyEngine:
    """The org and policy set in force, parsed once: evaluates requests with Cedar,
    always against the schema (so a malformed request is refused, never allowed)."""

    def __init__(self, org: Org, policies: CompiledPolicies,
                 schema: Any | None = None) -> None:
        self.org = org
        self.policies = policies
        self.schema = schema if schema is not None else cedarpy.Schema.from_str(
            schema_text(org))
        self.entities = cedarpy.Entities.from_json_str(json.dumps(entities(org)))

    @classmethod
    def build(cls, org: Org, files: dict[str, str]) -> PolicyEngine:
        """Compile `files` against `org`'s schema; raise `PolicyInvalid` if they fail."""
        schema = cedarpy.Schema.from_str(schema_text(org))
        return cls(org, compile_policies(files, schema), schema)

    def with_policies(self, files: dict[str, str]) -> PolicyEngine:
        """The same org and entities with another policy set (validated first)."""
        engine = PolicyEngine.__new__(PolicyEngine)
        engine.org, engine.schema, engine.entities = self.org, self.schema, self.entities
        engine.policies = compile_policies(files, self.schema)
        return engine

    def evaluate(self, principals: Sequence[str], action: str, resource: dict[str, str],
                 context: dict[str, Any]) -> list[Any]:
        """One Cedar answer per principal for the same action, resource and context,
        evaluated against the policies that can apply to `action`."""
        request = {"action": {"type": "Action", "id": action}, "resource": resource,
                   "context": context}
        policy_set = self.policies.slices.for_action(action)
        if len(principals) == 1:
            return [cedarpy.is_authorized({**request, "principal": {
                "type": "Member", "id": principals[0]}}, policy_set, self.entities,
                self.schema)]
        return list(cedarpy.is_authorized_batch(
            [{**request, "principal": {"type": "Member", "id": p}} for p in principals],
            policy_set, self.entities, self.schema))

    def annotation(self, policy_id: str, name: str) -> str | None:
        statement = self.policies.statements.get(policy_id)
        return None if statement is None else statement.annotations.get(name)

    def quorum(self, policy_ids: Sequence[str]) -> int:
        """The largest `@quorum("n")` among these policies (1 when none asks)."""
        quorums = self.policies.quorums
        return max((quorums.get(p, 1) for p in policy_ids), default=1)
