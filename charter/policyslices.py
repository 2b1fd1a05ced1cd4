"""The policies that can apply to one action, as a Cedar policy set of their own.

Cedar checks a policy's scope before its conditions, so a policy whose action scope
does not name the requested action is neither satisfied nor in error: leaving it out
changes no decision, no reason and no error. Cedar's cost grows with the number of
policies it scans (about a microsecond each), so a request is evaluated against the
slice for its action, built on first use and kept with the policy set it came from.

Charter's schema declares no action groups (an action is only `in` itself), so a
scope applies to an action when it is unconstrained, names the action, or lists it.
A scope of any other shape is kept in every slice: a slice may hold too much, never
too little.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

import cedarpy

UNCONSTRAINED = None
"""What `scoped_actions` returns for a policy that may apply to any action."""


def scoped_actions(policy: Mapping[str, Any]) -> frozenset[str] | None:
    """The actions a policy (Cedar's JSON form) can apply to, or `UNCONSTRAINED`."""
    scope = policy.get("action")
    if not isinstance(scope, Mapping):
        return UNCONSTRAINED
    operator = scope.get("op")
    if operator == "==" or (operator == "in" and "entity" in scope):
        named = _action_id(scope.get("entity"))
        return UNCONSTRAINED if named is None else frozenset((named,))
    if operator == "in" and isinstance(scope.get("entities"), list):
        listed = [_action_id(entity) for entity in scope["entities"]]
        if any(named is None for named in listed):
            return UNCONSTRAINED
        return frozenset(named for named in listed if named is not None)
    return UNCONSTRAINED


def _action_id(entity: Any) -> str | None:
    """The id of an `Action` entity reference, in either of Cedar's JSON spellings."""
    if isinstance(entity, Mapping) and "__entity" in entity:
        entity = entity["__entity"]
    if (isinstance(entity, Mapping) and entity.get("type") == "Action"
            and isinstance(entity.get("id"), str)):
        return str(entity["id"])
    return None


class ActionSlices:
    """Per action, a parsed policy set holding only the policies that can apply to it."""

    def __init__(self, static: Mapping[str, Mapping[str, Any]]) -> None:
        self._static = dict(static)
        self._scopes = {policy_id: scoped_actions(policy)
                        for policy_id, policy in self._static.items()}
        self._built: dict[str, Any] = {}
        self._lock = threading.Lock()

    def policy_ids(self, action: str) -> list[str]:
        """The ids of the policies the slice for `action` holds, in the set's order."""
        return [policy_id for policy_id, scope in self._scopes.items()
                if scope is UNCONSTRAINED or action in scope]

    def for_action(self, action: str) -> Any:
        """The parsed policy set for `action` (built once, then reused)."""
        built = self._built.get(action)
        if built is not None:
            return built
        with self._lock:
            built = self._built.get(action)
            if built is None:
                kept = {policy_id: self._static[policy_id]
                        for policy_id in self.policy_ids(action)}
                built = cedarpy.PolicySet.from_json_str(json.dumps(
                    {"staticPolicies": kept, "templates": {}, "templateLinks": []}))
                self._built[action] = built
            return built
