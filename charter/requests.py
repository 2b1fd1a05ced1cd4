"""Authorization requests: checked against the org before Cedar ever sees them.

A request names a member, an action, a resource and a context. Each part is checked
against what the org declares — the member exists, the action is declared, the resource
is of a type the action applies to, the context has exactly the declared attributes
with the declared types (amounts non-negative) — so a malformed request is refused with
a clear reason and never reaches a policy that might skip it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property, lru_cache
from typing import Any

from charter.canonical import digest, storable_text
from charter.cedarschema import action_resource_types
from charter.org import Org
from charter.orgrules import value_matches

_QUOTED = re.compile(r'^([A-Za-z][A-Za-z0-9_]*)::"((?:[^"\\]|\\.)*)"$')
_PLAIN = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)(?:::|:)(.+)$")


class RequestInvalid(ValueError):
    """The request does not match what the org declares."""


@dataclass(frozen=True)
class AuthzRequest:
    """A checked request, with its Cedar form and the hash that binds approvals to it."""

    member: str
    action: str
    resource_type: str
    resource_id: str
    context: dict[str, Any]
    cedar_context: dict[str, Any]
    task_type: str | None
    task: str | None = None
    """The task the request is made for, if any: its approval is then bound to that task
    too, and shows in the task's hand-off packet."""

    @cached_property
    def hash(self) -> str:
        """sha256 of the exact request: approving it approves nothing else."""
        return digest(self.to_json())

    @property
    def resource(self) -> str:
        return f"{self.resource_type}::{self.resource_id}"

    @property
    def cedar_resource(self) -> dict[str, str]:
        return {"type": self.resource_type, "id": self.resource_id}

    def to_json(self) -> dict[str, Any]:
        body = {"member": self.member, "action": self.action, "resource": self.resource,
                "context": self.context, "task_type": self.task_type}
        return body if self.task is None else {**body, "task": self.task}


def parse_resource(org: Org, action: str, resource: str | dict[str, str]) -> tuple[str, str]:
    """`Vendor::globex`, `Vendor::"globex"`, `vendor:globex` or {type, id}."""
    spelt = [resource] if isinstance(resource, str) else (
        [str(v) for v in resource.values()] if isinstance(resource, dict) else [])
    if any(storable_text(text) != text for text in spelt):
        raise RequestInvalid("the resource is not valid text (it holds a lone surrogate "
                             "or a NUL character)")
    if isinstance(resource, str):
        return _parse_text_resource(org, action, resource)
    return _parse_resource(org, action, resource)


def resource_name(org: Org, action: str, resource: str | dict[str, str]) -> str:
    """The resource as Charter records it, `Type::id` (the type spelt as the org declares
    it); `RequestInvalid` when it is not one `action` applies to."""
    type_name, item = parse_resource(org, action, resource)
    return f"{type_name}::{item}"


@lru_cache(maxsize=4096)
def _parse_text_resource(org: Org, action: str, resource: str) -> tuple[str, str]:
    return _parse_resource(org, action, resource)


def _parse_resource(org: Org, action: str,
                    resource: str | dict[str, str]) -> tuple[str, str]:
    allowed = action_resource_types(org, org.spec.actions[action])
    if isinstance(resource, dict):
        type_name, item = str(resource.get("type", "")), str(resource.get("id", ""))
    elif isinstance(resource, str) and (match := _QUOTED.match(resource) or
                                        _PLAIN.match(resource)):
        type_name, item = match.group(1), match.group(2)
    else:
        raise RequestInvalid(f"resource {resource!r} is not `Type::id` (e.g. Vendor::globex)")
    by_lower = {name.lower(): name for name in allowed}
    if type_name.lower() not in by_lower:
        raise RequestInvalid(f"action {action} applies to {', '.join(allowed)}, "
                             f"not to {type_name!r}")
    type_name = by_lower[type_name.lower()]
    if not item:
        raise RequestInvalid("the resource id is empty")
    _check_known(org, type_name, item)
    return type_name, item


def _check_known(org: Org, type_name: str, item: str) -> None:
    if type_name == "Member" and item not in org.members:
        raise RequestInvalid(f"no member {item!r}")
    if type_name == "Budget" and item not in org.budgets:
        raise RequestInvalid(f"no budget {item!r}")
    declared = org.spec.resources.get(type_name)
    if declared is None or item in declared.items:
        return
    required = [name for name, kind in declared.attributes.items() if not kind.endswith("?")]
    if required:
        raise RequestInvalid(
            f"{type_name}::{item} is not a known {type_name}: policies read its attributes "
            f"({', '.join(required)}); add it under resources.{type_name}.items")


def check_context(org: Org, action: str,
                  context: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The context as checked, and in Cedar's form; raise `RequestInvalid` naming what
    is wrong."""
    if not isinstance(context, dict):
        raise RequestInvalid("the context must be a JSON object")
    declared = org.spec.actions[action].context
    unknown = sorted(set(context) - set(declared))
    if unknown:
        raise RequestInvalid(f"{action} takes no context attribute "
                             f"{', '.join(map(repr, unknown))} (it takes: "
                             f"{', '.join(declared) or 'none'})")
    plain: dict[str, Any] = {}
    cedar: dict[str, Any] = {}
    for name, type_name in declared.items():
        if name not in context:
            if type_name.endswith("?"):
                continue
            raise RequestInvalid(f"{action} needs context.{name} ({type_name})")
        value = context[name]
        if isinstance(value, Decimal):
            value = int(value) if value == value.to_integral_value() else float(value)
        base = type_name.rstrip("?")
        if isinstance(value, float) and not math.isfinite(value):
            raise RequestInvalid(f"context.{name} must be a finite number")
        if base == "Long" and isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str) and storable_text(value) != value:
            raise RequestInvalid(f"context.{name} is not valid text (it holds a lone "
                                 "surrogate or a NUL character)")
        if not value_matches(type_name, value) or (base == "Long" and isinstance(value, float)):
            wanted = {"Amount": "a non-negative number", "Long": "a whole number",
                      "String": "text", "Bool": "true or false"}[base]
            raise RequestInvalid(f"context.{name} must be {wanted}, got {value!r}")
        # Amounts reach Cedar in whole units, rounded up: never more permissive.
        plain[name] = value
        cedar[name] = math.ceil(value) if base == "Amount" else value
    return plain, cedar


def build_request(org: Org, member: str, action: str, resource: str | dict[str, str],
                  context: Any, task_type: str | None = None,
                  task: str | None = None) -> AuthzRequest:
    """Check a request against the org; raise `RequestInvalid` with the reason."""
    if member not in org.members:
        raise RequestInvalid(f"no member {member!r} in org {org.id}")
    if action not in org.spec.actions:
        raise RequestInvalid(f"unknown action {action!r}: the org declares "
                             f"{', '.join(org.spec.actions)}")
    if task_type is None:
        matching = [t.id for t in org.spec.task_types if t.action == action]
        task_type = matching[0] if len(matching) == 1 else None
    elif task_type not in org.task_types:
        raise RequestInvalid(f"unknown task type {task_type!r}")
    elif org.task_types[task_type].action != action:
        raise RequestInvalid(f"task type {task_type} needs action "
                             f"{org.task_types[task_type].action}, not {action}")
    type_name, item = parse_resource(org, action, resource)
    plain_context, cedar_context = check_context(org, action,
                                                 context if context is not None else {})
    if task is not None and (not isinstance(task, str) or not 0 < len(task) <= 36):
        raise RequestInvalid(f"a task id is 1 to 36 characters, got {task!r}")
    return AuthzRequest(member, action, type_name, item, plain_context, cedar_context,
                        task_type, task)
