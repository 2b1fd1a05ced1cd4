"""The org: load and validate `charter.yaml`, and answer questions about it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from charter.canonical import digest
from charter.errors import NotFound, OrgInvalid
from charter.orgrules import OrgParts, check_references, find_warnings
from charter.types import ActionMap, Budget, Member, OrgSpec, ResourceMap, TaskType, Team
from charter.yamlsource import LocatedDocument, SourceProblem, format_path, load_located

_ITEM_SECTIONS: dict[str, type[Member] | type[TaskType] | type[Budget]] = {
    "members": Member, "task_types": TaskType, "budgets": Budget,
}
_TEAMS = TypeAdapter(dict[str, Team])
_ACTIONS: TypeAdapter[Any] = TypeAdapter(ActionMap)
_RESOURCES: TypeAdapter[Any] = TypeAdapter(ResourceMap)


def _valid_or_empty(adapter: TypeAdapter[Any], value: Any) -> Any:
    try:
        return adapter.validate_python(value or {})
    except ValidationError:
        return {}


@dataclass(frozen=True, eq=False)
class Org:
    """A validated org, with indexes over its members, task types and budgets.

    Compared and hashed by identity: one loaded version is one object."""

    spec: OrgSpec
    source: str
    policies_dir: Path
    warnings: tuple[str, ...] = ()
    digest: str = field(init=False)
    members: dict[str, Member] = field(init=False)
    task_types: dict[str, TaskType] = field(init=False)
    budgets: dict[str, Budget] = field(init=False)
    budget_parent: dict[str, str | None] = field(init=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "digest", digest(self.document()))
        set_(self, "members", {m.id: m for m in self.spec.members})
        set_(self, "task_types", {t.id: t for t in self.spec.task_types})
        budgets: dict[str, Budget] = {}
        parents: dict[str, str | None] = {}
        for budget, parent in walk_budgets(self.spec.budgets, None):
            budgets[budget.id] = budget
            parents[budget.id] = parent
        set_(self, "budgets", budgets)
        set_(self, "budget_parent", parents)

    @property
    def id(self) -> str:
        return self.spec.org.id

    def document(self) -> dict[str, Any]:
        """The org as JSON data: what the ledger records and `from_document` reads."""
        return self.spec.model_dump(mode="json")

    @classmethod
    def from_document(cls, document: dict[str, Any], source: str) -> Org:
        """Rebuild an org recorded earlier (already validated when it was loaded)."""
        spec = OrgSpec.model_validate(document)
        return cls(spec, source, Path(source).parent / spec.policies)

    def member(self, member_id: str) -> Member:
        found = self.members.get(member_id)
        if found is None:
            raise NotFound(f"no member `{member_id}` in org `{self.id}`")
        return found

    def chain_of_command(self, member_id: str) -> list[str]:
        """The member's managers, nearest first."""
        chain: list[str] = []
        current = self.member(member_id).reports_to
        while current is not None and current not in chain:
            chain.append(current)
            current = self.members[current].reports_to
        return chain

    def direct_reports(self, member_id: str) -> list[str]:
        return [m.id for m in self.spec.members if m.reports_to == member_id]

    def roots(self) -> list[str]:
        """Members who report to nobody: the tops of the chain of command."""
        return [m.id for m in self.spec.members if m.reports_to is None]


def walk_budgets(budgets: tuple[Budget, ...],
                  parent: str | None) -> Iterator[tuple[Budget, str | None]]:
    for budget in budgets:
        yield budget, parent
        yield from walk_budgets(budget.children, budget.id)


def read_org(path: str | Path) -> Org:
    """Read and validate an org file; raise `OrgInvalid` listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OrgInvalid(f"org file not found: {path}",
                         details=[_as_dict(SourceProblem(str(path), None, "",
                                                         "file not found"))]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise OrgInvalid(f"cannot read org file {path}: {error}") from None
    return parse_org(text, str(path), base_dir=path.parent)


def parse_org(text: str, source: str, base_dir: Path) -> Org:
    """Validate org file text; raise `OrgInvalid` listing every problem."""
    document, problems = load_located(text, source)
    if document is None:
        raise _invalid(source, problems)
    if not isinstance(document.data, dict):
        problems.append(document.problem((), "the org file must be a mapping with the "
                                             "sections org, departments and members"))
        raise _invalid(source, problems)
    spec: OrgSpec | None = None
    try:
        spec = OrgSpec.model_validate(document.data)
    except ValidationError as error:
        problems += _schema_problems(error, document)
    parts = _parts(spec, document)
    problems += check_references(parts, document)
    policies_dir = base_dir / (spec.policies if spec else "policies")
    if spec is not None and not policies_dir.is_dir():
        problems.append(document.problem(("policies",),
                                         f"policies folder not found: {policies_dir}"))
    if problems or spec is None:
        raise _invalid(source, problems)
    return Org(spec, source, policies_dir, tuple(find_warnings(parts)))


def _parts(spec: OrgSpec | None, document: LocatedDocument) -> OrgParts:
    """The valid pieces of the file, so cross-references are checked even when some
    items are malformed (every problem is reported at once)."""
    raw: dict[str, Any] = document.data
    declared: dict[str, set[str]] = {}
    for section in ("departments", "roles", "teams", "skills", "actions"):
        value = raw.get(section)
        declared[section] = {str(key) for key in value} if isinstance(value, dict) else set()
    for section in _ITEM_SECTIONS:
        value = raw.get(section)
        items = value if isinstance(value, list) else []
        declared[section] = {str(item["id"]) for item in items
                             if isinstance(item, dict) and "id" in item}
    if spec is not None:
        return OrgParts(declared, dict(spec.teams), dict(spec.actions), dict(spec.resources),
                        list(enumerate(spec.members)),
                        list(enumerate(spec.task_types)), list(enumerate(spec.budgets)))
    parts = OrgParts(declared, _valid_or_empty(_TEAMS, raw.get("teams")),
                     _valid_or_empty(_ACTIONS, raw.get("actions")),
                     _valid_or_empty(_RESOURCES, raw.get("resources")))
    for section, model in _ITEM_SECTIONS.items():
        value = raw.get(section)
        for index, item in enumerate(value if isinstance(value, list) else []):
            try:
                getattr(parts, section).append((index, model.model_validate(item)))
            except ValidationError:
                continue
    return parts


def _schema_problems(error: ValidationError, document: LocatedDocument) -> list[SourceProblem]:
    problems = []
    for detail in error.errors(include_url=False):
        location: list[str | int] = []
        for part in detail["loc"]:
            if (*location, part) in document.lines:
                location.append(part)
        kind = detail["type"]
        last = detail["loc"][-1] if detail["loc"] else ""
        if kind == "missing":
            message = f"missing required field `{last}`"
            location.append(last)
        elif kind == "extra_forbidden":
            message = f"unknown field `{last}`"
        else:
            message = detail["msg"].removeprefix("Value error, ")
            if not isinstance(detail.get("input"), dict | list):
                message += f" (got {detail.get('input')!r})"
        line = document.line_of(detail["loc"])
        problems.append(SourceProblem(document.file, line, format_path(location), message))
    return problems


def _as_dict(problem: SourceProblem) -> dict[str, Any]:
    return {"file": problem.file, "line": problem.line, "path": problem.path,
            "message": problem.message}


def _invalid(source: str, problems: list[SourceProblem]) -> OrgInvalid:
    listing = "\n".join(f"  {problem}" for problem in problems)
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return OrgInvalid(f"{source} is not valid ({count}); nothing was changed:\n{listing}",
                      details=[_as_dict(problem) for problem in problems])


def common_managers(org: Org, member_ids: Iterable[str]) -> list[str]:
    """The managers above every one of `member_ids`, nearest first: the first is their
    lowest common manager. Never one of the members themselves (nobody is in their own
    chain of command); empty when they meet nowhere, e.g. one of them tops the chain."""
    chains = [org.chain_of_command(member) for member in dict.fromkeys(member_ids)]
    if not chains:
        return []
    shared = set(chains[0]).intersection(*chains[1:])
    return [manager for manager in chains[0] if manager in shared]
