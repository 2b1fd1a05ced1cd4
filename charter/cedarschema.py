"""The org as Cedar sees it: a schema, and the entities policies are evaluated against.

Members are `Member` entities whose parents are their roles, teams and department, so a
policy can say `principal in Role::"approver"`. Budgets are `Budget` entities nested in
their parents. The org's resource types become entity types with the attributes it
declares, and its actions become Cedar actions with their request context.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

from charter.org import Org, walk_budgets
from charter.types import ActionSpec

_CEDAR_TYPE = {"Long": "Long", "Amount": "Long", "String": "String", "Bool": "Bool"}


def _quote(name: str) -> str:
    return json.dumps(name)


def _record(attributes: dict[str, str]) -> str:
    fields = []
    for name, type_name in attributes.items():
        optional = "?" if type_name.endswith("?") else ""
        fields.append(f"{_quote(name)}{optional}: {_CEDAR_TYPE[type_name.rstrip('?')]}")
    return "{" + ", ".join(fields) + "}"


def limit_names(org: Org) -> list[str]:
    """Every limit any member declares, so the schema can offer them all (optional)."""
    return sorted({name for member in org.spec.members for name in member.limits})


def action_resource_types(org: Org, spec: ActionSpec) -> tuple[str, ...]:
    return spec.resources or (*org.spec.resources, "Member", "Budget")


def schema_text(org: Org) -> str:
    """The Cedar schema (human-readable syntax) for the org."""
    limits = _record({name: "Long?" for name in limit_names(org)})
    lines = [
        "entity Department;",
        "entity Role;",
        "entity Team in [Department];",
        "entity Member in [Role, Team, Department] {",
        '  "kind": String, "title": String, "department": String, "status": String,',
        f'  "rank": Long, "limits": {limits}',
        "};",
        'entity Budget in [Budget] { "amount": Long, "period": String, "owner": String };',
    ]
    for name, resource_type in org.spec.resources.items():
        lines.append(f"entity {name} {_record(resource_type.attributes)};")
    for action, spec in org.spec.actions.items():
        resources = ", ".join(action_resource_types(org, spec))
        lines.append(f"action {_quote(action)} appliesTo {{ principal: [Member], "
                     f"resource: [{resources}], context: {_record(spec.context)} }};")
    return "\n".join(lines) + "\n"


def whole_units(amount: Decimal | float | int, *, round_up: bool) -> int:
    """Cedar compares whole units: limits round down, requested amounts round up, so a
    rounded comparison never permits more than the exact one would."""
    return math.ceil(amount) if round_up else math.floor(amount)


def _uid(entity_type: str, entity_id: str) -> dict[str, str]:
    return {"type": entity_type, "id": entity_id}


def entities(org: Org) -> list[dict[str, Any]]:
    """The org's entities in Cedar's JSON form."""
    found: list[dict[str, Any]] = []
    found += [{"uid": _uid("Department", d), "attrs": {}, "parents": []}
              for d in org.spec.departments]
    found += [{"uid": _uid("Role", r), "attrs": {}, "parents": []} for r in org.spec.roles]
    found += [{"uid": _uid("Team", t), "attrs": {},
               "parents": [_uid("Department", team.department)]}
              for t, team in org.spec.teams.items()]
    for member in org.spec.members:
        parents = [_uid("Role", r) for r in member.roles]
        parents += [_uid("Team", t) for t in member.teams]
        parents.append(_uid("Department", member.department))
        found.append({"uid": _uid("Member", member.id), "parents": parents, "attrs": {
            "kind": member.kind, "title": member.title, "department": member.department,
            "status": member.status, "rank": len(org.chain_of_command(member.id)),
            "limits": {name: whole_units(value, round_up=False)
                       for name, value in member.limits.items()},
        }})
    for budget, parent in walk_budgets(org.spec.budgets, None):
        found.append({"uid": _uid("Budget", budget.id),
                      "parents": [_uid("Budget", parent)] if parent else [],
                      "attrs": {"amount": whole_units(budget.amount, round_up=False),
                                "period": budget.period, "owner": budget.owner or ""}})
    for name, resource_type in org.spec.resources.items():
        for item, values in resource_type.items.items():
            attrs = {key: (whole_units(value, round_up=False)
                           if resource_type.attributes[key].startswith("Amount") else value)
                     for key, value in values.items()}
            found.append({"uid": _uid(name, item), "attrs": attrs, "parents": []})
    return found
