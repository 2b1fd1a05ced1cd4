"""Edits to a copy of the example org for engine tests: engines, performers, leases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def edit_org(workspace: Path, *, engines: dict[str, dict[str, Any]] | None = None,
             performers: dict[str, str] | None = None,
             leases: dict[str, str] | None = None,
             extra: dict[str, Any] | None = None) -> Path:
    """Give members engines, actions performers and task types lease lengths; `extra`
    adds to the org's sections: a mapping section (actions, resources, skills) gains the
    given entries, a list section (members, task_types) the given items, each replacing
    the one with its id."""
    path = workspace / "charter.yaml"
    org = yaml.safe_load(path.read_text())
    for section, added in (extra or {}).items():
        if isinstance(added, dict):
            org[section] = {**(org.get(section) or {}), **added}
        else:
            ids = {item["id"] for item in added}
            org[section] = [*(i for i in org.get(section) or [] if i["id"] not in ids), *added]
    for member in org["members"]:
        if member["id"] in (engines or {}):
            member["engine"] = engines[member["id"]]  # type: ignore[index]
    for action, target in (performers or {}).items():
        spec = org["actions"][action]
        org["actions"][action] = {**({"description": spec} if isinstance(spec, str) else spec),
                                  "perform": target}
    for task_type in org["task_types"]:
        if task_type["id"] in (leases or {}):
            task_type["lease"] = leases[task_type["id"]]  # type: ignore[index]
    path.write_text(yaml.safe_dump(org, sort_keys=False))
    return path
