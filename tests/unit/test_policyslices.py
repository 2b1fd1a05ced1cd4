"""Slicing a policy set by action changes no decision, reason or error."""

from __future__ import annotations

import itertools
from typing import Any

import cedarpy
import pytest

from charter.cedarschema import schema_text
from charter.org import read_org
from charter.policy import PolicyEngine, compile_policies, read_policy_files
from charter.policyslices import UNCONSTRAINED, scoped_actions
from tests.conftest import EXAMPLE_ORG


def _action(action_id: str) -> dict[str, str]:
    return {"type": "Action", "id": action_id}


@pytest.mark.parametrize(("scope", "expected"), [
    ({"op": "All"}, UNCONSTRAINED),
    ({"op": "==", "entity": _action("refund.issue")}, {"refund.issue"}),
    ({"op": "in", "entity": _action("refund.issue")}, {"refund.issue"}),
    ({"op": "==", "entity": {"__entity": _action("refund.issue")}}, {"refund.issue"}),
    ({"op": "in", "entities": [_action("a"), _action("b")]}, {"a", "b"}),
    ({"op": "in", "entities": []}, set()),
    ({"op": "in", "entities": [_action("a"), {"type": "Role", "id": "b"}]}, UNCONSTRAINED),
    ({"op": "is", "entity_type": "Action"}, UNCONSTRAINED),
    (None, UNCONSTRAINED),
])
def test_the_actions_a_scope_names(scope: Any, expected: Any):
    policy = {} if scope is None else {"action": scope}
    found = scoped_actions(policy)
    assert found == (expected if expected is UNCONSTRAINED else frozenset(expected))


def test_a_slice_keeps_the_policies_that_can_apply_and_only_those():
    org = read_org(EXAMPLE_ORG)
    schema = cedarpy.Schema.from_str(schema_text(org))
    compiled = compile_policies({"p.cedar": (
        '@id("any") permit (principal, action, resource) when { principal.kind == "ai" };\n'
        '@id("refunds") permit (principal, action == Action::"refund.issue", resource);\n'
        '@id("two") forbid (principal, action in [Action::"refund.issue", '
        'Action::"ticket.resolve"], resource);\n')}, schema)
    assert compiled.slices.policy_ids("refund.issue") == ["any", "refunds", "two"]
    assert compiled.slices.policy_ids("ticket.resolve") == ["any", "two"]
    assert compiled.slices.policy_ids("memory.read") == ["any"]
    assert compiled.slices.for_action("memory.read") is compiled.slices.for_action(
        "memory.read")


def test_a_policy_that_fails_to_evaluate_is_in_its_actions_slice():
    """An overflowing forbid errors (and Cedar skips it): the slice reports the same
    error, so the request is refused as before."""
    org = read_org(EXAMPLE_ORG)
    engine = PolicyEngine.build(org, {"p.cedar": (
        '@id("refunds") permit (principal, action == Action::"refund.issue", resource);\n'
        '@id("overflows") forbid (principal, action == Action::"refund.issue", resource) '
        "when { context.amount + 9223372036854775807 > 0 };\n"
        '@id("elsewhere") forbid (principal, action == Action::"ticket.resolve", '
        "resource) when { 9223372036854775807 + 1 > 0 };\n")})
    request = {"principal": {"type": "Member", "id": "ap-bot-1"},
               "action": {"type": "Action", "id": "refund.issue"},
               "resource": {"type": "Customer", "id": "c1"}, "context": {"amount": 5}}
    whole = cedarpy.is_authorized(request, engine.policies.policy_set, engine.entities,
                                  engine.schema)
    (sliced,) = engine.evaluate(["ap-bot-1"], "refund.issue", request["resource"],
                                request["context"])
    assert _answer(sliced) == _answer(whole)
    assert any("overflows" in error for error in _answer(sliced)[2])


def _requests(engine: PolicyEngine) -> list[dict[str, Any]]:
    """Every member doing every action on each known resource of its types, with
    amounts below, between and above the example's limits (and requests that cannot
    be built: a missing amount, a string, a negative one)."""
    org = engine.org
    built = []
    contexts: list[dict[str, Any]] = [{}, {"amount": 50}, {"amount": 2_500},
                                      {"amount": 90_000}, {"amount": "500"},
                                      {"amount": -1}, {"change_percent": 4},
                                      {"change_percent": 40}]
    for member, (action, spec) in itertools.product(org.members,
                                                    org.spec.actions.items()):
        for resource_type in (spec.resources or ["Vendor"]):
            items = org.spec.resources.get(resource_type)
            names = list(items.items) if items is not None and items.items else ["x"]
            for name, context in itertools.product(names, contexts):
                built.append({"principal": {"type": "Member", "id": member},
                              "action": {"type": "Action", "id": action},
                              "resource": {"type": resource_type, "id": name},
                              "context": context})
    return built


def _answer(result: Any) -> tuple[str, list[str], list[str]]:
    return (str(result.decision), sorted(result.diagnostics.reasons),
            sorted(result.diagnostics.errors))


EXTRA_POLICIES = (
    '@id("ai-reads-anything") permit (principal, action, resource) '
    'when { principal.kind == "ai" && action == Action::"memory.read" };\n'
    '@id("no-large-anything") forbid (principal, action, resource) '
    'when { context has amount && context.amount > 80000 };\n'
    '@id("listed") forbid (principal, action in [Action::"refund.issue", '
    'Action::"vendor.onboard"], resource) when { principal.kind == "ai" };\n')
"""Policies of every scope shape beside the example's: unconstrained, listed."""


@pytest.mark.parametrize("extra", [False, True], ids=["example", "with-extra-scopes"])
def test_the_example_org_decides_alike_on_its_slices_and_on_the_whole_set(extra: bool):
    org = read_org(EXAMPLE_ORG)
    files = read_policy_files(EXAMPLE_ORG.parent / "policies")
    if extra:
        files["extra.cedar"] = EXTRA_POLICIES
    engine = PolicyEngine.build(org, files)
    requests = _requests(engine)
    assert len(requests) > 1_000
    decisions = set()
    for request in requests:
        whole = cedarpy.is_authorized(request, engine.policies.policy_set, engine.entities,
                                      engine.schema)
        (sliced,) = engine.evaluate([request["principal"]["id"]], request["action"]["id"],
                                    request["resource"], request["context"])
        assert _answer(sliced) == _answer(whole), request
        decisions.add(_answer(whole)[0])
    assert decisions == {"Decision.Allow", "Decision.Deny", "Decision.NoDecision"}
