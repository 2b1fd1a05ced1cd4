"""The org file's cross-references: what a schema alone cannot check.

Unknown ids, duplicates, cycles in the chain of command, budgets that exceed their
parent. Each problem names where it is; every problem is reported, not just the first.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from charter.types import (
    AUTONOMY_ORDER,
    ActionSpec,
    Budget,
    Member,
    ResourceType,
    TaskType,
    Team,
)
from charter.yamlsource import LocatedDocument, SourceProblem

BUILT_IN_TYPES = frozenset({"Member", "Role", "Team", "Department", "Budget", "Action"})
"""Entity types Charter makes from the org itself; resource types may not reuse them."""
_RESOURCE_TARGETS = frozenset({"Member", "Budget"})

Indexed = list[tuple[int, Any]]


@dataclass
class OrgParts:
    """What validated of each section: the items with their index in the file."""

    declared: dict[str, set[str]]
    teams: dict[str, Team]
    actions: dict[str, ActionSpec] = field(default_factory=dict)
    resources: dict[str, ResourceType] = field(default_factory=dict)
    members: list[tuple[int, Member]] = field(default_factory=list)
    task_types: list[tuple[int, TaskType]] = field(default_factory=list)
    budgets: list[tuple[int, Budget]] = field(default_factory=list)


def check_references(parts: OrgParts, document: LocatedDocument) -> list[SourceProblem]:
    """Every cross-reference problem of the org, in file order."""
    found: list[SourceProblem] = []
    found += _check_teams(parts, document)
    found += _check_members(parts, document)
    found += _check_chain_of_command(parts, document)
    found += _check_task_types(parts, document)
    found += _check_budgets(parts, document)
    found += _check_resources(parts, document)
    return sorted(found, key=lambda problem: problem.line or 0)


def find_warnings(parts: OrgParts) -> list[str]:
    """Things that are allowed but probably not meant."""
    warnings = []
    for _, task_type in parts.task_types:
        able = [m for _, m in parts.members if set(task_type.skills) <= set(m.skills)]
        if not able:
            warnings.append(f"task type `{task_type.id}`: no member has all of its skills "
                            f"({', '.join(task_type.skills)}); nobody can be assigned it")
    ceilings = {t.id: t.autonomy_ceiling for _, t in parts.task_types}
    for _, member in parts.members:
        for type_id, level in member.autonomy.items():
            ceiling = ceilings.get(type_id)
            if ceiling and AUTONOMY_ORDER.index(level) > AUTONOMY_ORDER.index(ceiling):
                warnings.append(f"member `{member.id}`: autonomy `{level}` on `{type_id}` is "
                                f"above the task type's ceiling `{ceiling}`; the ceiling "
                                "applies")
    return warnings


def _unknown(document: LocatedDocument, path: tuple[Any, ...], what: str, name: str,
             known: set[str]) -> SourceProblem:
    hint = f"declare it under `{what}s:`" if what != "member" else "no member has this id"
    if what == "task type":
        hint = "no task type has this id"
    return document.problem(path, f"unknown {what} `{name}`: {hint}")


def _duplicates(items: list[tuple[int, Any]], section: str, what: str,
                document: LocatedDocument) -> Iterator[SourceProblem]:
    first: dict[str, int] = {}
    for index, item in items:
        if item.id in first:
            line = document.line_of((section, first[item.id]))
            yield document.problem((section, index, "id"),
                                   f"duplicate {what} id `{item.id}` (first on line {line})")
        else:
            first[item.id] = index


def _check_teams(parts: OrgParts, document: LocatedDocument) -> Iterator[SourceProblem]:
    for team_id, team in parts.teams.items():
        if team.department not in parts.declared["departments"]:
            yield _unknown(document, ("teams", team_id, "department"), "department",
                           team.department, parts.declared["departments"])


def _check_members(parts: OrgParts, document: LocatedDocument) -> Iterator[SourceProblem]:
    yield from _duplicates(parts.members, "members", "member", document)
    member_ids = parts.declared["members"]
    task_type_ids = parts.declared["task_types"]
    for index, member in parts.members:
        at = ("members", index)
        if member.department not in parts.declared["departments"]:
            yield _unknown(document, (*at, "department"), "department", member.department,
                           parts.declared["departments"])
        for section, names in (("roles", member.roles), ("teams", member.teams)):
            for position, name in enumerate(names):
                if name not in parts.declared[section]:
                    yield _unknown(document, (*at, section, position), section[:-1], name,
                                   parts.declared[section])
        for skill in member.skills:
            if skill not in parts.declared["skills"]:
                yield _unknown(document, (*at, "skills", skill), "skill", skill,
                               parts.declared["skills"])
        for task_type in member.autonomy:
            if task_type not in task_type_ids:
                yield _unknown(document, (*at, "autonomy", task_type), "task type",
                               task_type, task_type_ids)
        tools = getattr(member.engine, "actions", ())
        for position, action in enumerate(tools):
            if action not in parts.actions:
                yield _unknown(document, (*at, "engine", "actions", position), "action",
                               action, set(parts.actions))
        if member.reports_to == member.id:
            yield document.problem((*at, "reports_to"), "a member cannot report to itself")
        elif member.reports_to is not None and member.reports_to not in member_ids:
            yield _unknown(document, (*at, "reports_to"), "member", member.reports_to,
                           member_ids)


def _check_chain_of_command(parts: OrgParts,
                            document: LocatedDocument) -> Iterator[SourceProblem]:
    manager = {m.id: m.reports_to for _, m in parts.members if m.reports_to != m.id}
    index_of = {m.id: i for i, m in parts.members}
    reported: set[str] = set()
    for start in manager:
        path: list[str] = []
        current: str | None = start
        while current is not None and current in manager and current not in path:
            path.append(current)
            current = manager[current]
        if current is None or current not in path:
            continue
        cycle = path[path.index(current):]
        if reported.isdisjoint(cycle):
            reported.update(cycle)
            loop = " → ".join([*cycle, cycle[0]])
            yield document.problem(("members", index_of[cycle[0]], "reports_to"),
                                   f"the chain of command has a cycle: {loop}")


def _check_task_types(parts: OrgParts, document: LocatedDocument) -> Iterator[SourceProblem]:
    yield from _duplicates(parts.task_types, "task_types", "task type", document)
    members: Mapping[str, Member] = {m.id: m for _, m in parts.members}
    for index, task_type in parts.task_types:
        at = ("task_types", index)
        if task_type.action not in parts.declared["actions"]:
            yield _unknown(document, (*at, "action"), "action", task_type.action,
                           parts.declared["actions"])
        for position, skill in enumerate(task_type.skills):
            if skill not in parts.declared["skills"]:
                yield _unknown(document, (*at, "skills", position), "skill", skill,
                               parts.declared["skills"])
        yield from _check_evaluation(parts, document, task_type, at)
        for position, step in enumerate(task_type.fallback):
            if step.action != "escalate" or step.to == "supervisor" or step.to is None:
                continue
            where = (*at, "fallback", position)
            if step.to not in parts.declared["members"]:
                yield _unknown(document, where, "member", step.to, parts.declared["members"])
            elif step.to in members and members[step.to].kind != "human":
                yield document.problem(where, f"escalation ends in a person's queue, but "
                                              f"`{step.to}` is an AI agent")


def _check_evaluation(parts: OrgParts, document: LocatedDocument, task_type: TaskType,
                      at: tuple[Any, ...]) -> Iterator[SourceProblem]:
    evaluation = task_type.evaluation
    if evaluation is None:
        return
    if evaluation.evaluator not in parts.declared["members"]:
        yield _unknown(document, (*at, "evaluation", "evaluator"), "member",
                       evaluation.evaluator, parts.declared["members"])
    if evaluation.action is not None and evaluation.action not in parts.declared["actions"]:
        yield _unknown(document, (*at, "evaluation", "action"), "action", evaluation.action,
                       parts.declared["actions"])


def _check_budgets(parts: OrgParts, document: LocatedDocument) -> Iterator[SourceProblem]:
    owners = parts.declared["members"] | parts.declared["teams"]
    seen: dict[str, int | None] = {}

    def visit(budget: Budget, path: tuple[Any, ...],
              parent: Budget | None) -> Iterator[SourceProblem]:
        if budget.id in seen:
            yield document.problem((*path, "id"), f"duplicate budget id `{budget.id}` "
                                                  f"(first on line {seen[budget.id]})")
        else:
            seen[budget.id] = document.line_of(path)
        if budget.owner is not None and budget.owner not in owners:
            yield document.problem((*path, "owner"), f"unknown owner `{budget.owner}`: "
                                                     "name a member or a team")
        for position, spender in enumerate(budget.members):
            if spender not in parts.declared["members"]:
                yield document.problem((*path, "members", position),
                                       f"unknown member `{spender}`")
        if (parent is not None and budget.period == parent.period
                and budget.amount > parent.amount):
            yield document.problem((*path, "amount"),
                                   f"budget `{budget.id}` ({budget.amount}) exceeds its "
                                   f"parent `{parent.id}` ({parent.amount})")
        for position, child in enumerate(budget.children):
            yield from visit(child, (*path, "children", position), budget)

    for index, budget in parts.budgets:
        yield from visit(budget, ("budgets", index), None)


def value_matches(type_name: str, value: Any) -> bool:
    """Whether `value` is of the attribute type `type_name` (`?` marks optional)."""
    base = type_name.rstrip("?")
    if base == "Bool":
        return isinstance(value, bool)
    if base == "String":
        return isinstance(value, str)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return base == "Long" or value >= 0


def _check_resources(parts: OrgParts, document: LocatedDocument) -> Iterator[SourceProblem]:
    for name, resource_type in parts.resources.items():
        if name in BUILT_IN_TYPES:
            yield document.problem(("resources", name), f"`{name}` is a built-in entity "
                                                        "type: choose another name")
        for item, values in resource_type.items.items():
            at = ("resources", name, "items", item)
            for attribute, value in values.items():
                expected = resource_type.attributes.get(attribute)
                if expected is None:
                    yield document.problem((*at, attribute), f"`{attribute}` is not an "
                                           f"attribute of {name}: declare it under attributes")
                elif not value_matches(expected, value):
                    yield document.problem((*at, attribute), f"expected {expected}, "
                                           f"got {value!r}")
            for attribute, expected in resource_type.attributes.items():
                if not expected.endswith("?") and attribute not in values:
                    yield document.problem(at, f"missing attribute `{attribute}` "
                                               f"({expected})")
    known = set(parts.resources) | _RESOURCE_TARGETS
    for action, spec in parts.actions.items():
        for position, name in enumerate(spec.resources):
            if name not in known:
                yield document.problem(("actions", action, "resources", position),
                                       f"unknown resource type `{name}`: declare it "
                                       "under `resources:`")
