"""Policy sets: validated against the org's schema, swapped whole, recorded in the ledger."""

from __future__ import annotations

import shutil
from pathlib import Path

import cedarpy
import pytest

from charter.cedarschema import schema_text
from charter.policy import PolicyInvalid, compile_policies, split_statements
from charter.system import Charter

GOOD = '''// A comment; with a semicolon and a "quote"
@id("buyers")
permit (principal in Role::"buyer", action == Action::"purchase.create", resource)
when { principal.limits has purchase && context.amount <= principal.limits.purchase };
'''

BAD_SETS = {
    "syntax error": ('@id("broken")\npermit (principal action, resource);\n', 1,
                     "unexpected token"),
    "unknown entity type": ('\n\n@id("ghost")\npermit (principal is Ghost, action, resource);\n',
                            3, "unrecognized entity type `Ghost`"),
    "unknown attribute": ('@id("salary")\npermit (principal, action == Action::"purchase.create",'
                          ' resource)\nwhen { principal.salary > 5 };\n', 1,
                          "attribute `salary`"),
    "type error": ('@id("typed")\npermit (principal, action == Action::"purchase.create",'
                   ' resource)\nwhen { context.amount == "lots" };\n', 1,
                   "not compatible"),
    "unknown action": ('@id("nope")\npermit (principal, action == Action::"purchase.steal",'
                       ' resource);\n', 1, "unrecognized action"),
    "duplicate id": ('@id("buyers")\npermit (principal, action == Action::"lease", resource);\n',
                     1, "duplicate policy id `buyers`"),
}


def test_statements_are_split_outside_strings_and_comments():
    text = GOOD + '\nforbid (principal, action, resource) when { context.note == "a;b" };\n'
    starts = [line for line, _ in split_statements(text)]
    assert starts == [2, 6]


@pytest.mark.parametrize("case", sorted(BAD_SETS))
def test_invalid_policy_set_is_rejected_with_file_line_and_cedar_message(
        acme: Charter, tmp_path: Path, case: str):
    text, line, fragment = BAD_SETS[case]
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a_good.cedar").write_text(GOOD, encoding="utf-8")
    (folder / "z_bad.cedar").write_text(text, encoding="utf-8")
    before = acme.current_policies()
    events_before = len(acme.events())
    with pytest.raises(PolicyInvalid) as caught:
        acme.load_policies(folder)
    problems = caught.value.details
    assert any(p["file"] == "z_bad.cedar" and p["line"] == line and fragment in p["message"]
               for p in problems), problems
    assert f"z_bad.cedar:{line}" in caught.value.message
    assert len(acme.events()) == events_before
    after = acme.current_policies()
    assert before is not None and after is not None and after.version == before.version
    # the previous set keeps deciding
    decision = acme.authorize("buyer-bot-1", "purchase.create", "Vendor::globex",
                              {"amount": 300})
    assert decision.outcome == "allow"


def test_loading_a_policy_set_swaps_it_and_is_recorded(acme: Charter, tmp_path: Path):
    folder = tmp_path / "strict"
    folder.mkdir()
    (folder / "only.cedar").write_text(GOOD, encoding="utf-8")
    handles = acme.authority().engine
    loaded = acme.load_policies(folder, actor="ciso")
    swapped = acme.authority().engine
    assert swapped.policies is not handles.policies
    assert swapped.entities is handles.entities  # the org did not change: kept, not rebuilt
    assert loaded.version == 2
    (event,) = acme.events(kind="policy.loaded", after=loaded.event_seq - 1)
    assert event.payload and event.payload["digest"] == loaded.digest
    assert event.payload["policies"] == ["buyers"]
    # the memory policies are gone: default deny
    decision = acme.authorize("support-bot", "memory.write", "Customer::1", {})
    assert decision.outcome == "deny"


def test_org_load_rejects_policies_that_no_longer_fit(system: Charter, workspace: Path):
    system.load_org(workspace / "charter.yaml")
    org_file = workspace / "charter.yaml"
    org_file.write_text(org_file.read_text(encoding="utf-8").replace(
        "  refund.issue:\n", "  refund.issued:\n", 1).replace(
        "action: refund.issue", "action: refund.issued"), encoding="utf-8")
    with pytest.raises(PolicyInvalid, match="unrecognized action"):
        system.load_org(org_file)
    assert system.current_org().version == 1  # type: ignore[union-attr]


def test_empty_policy_folder_denies_everything(system: Charter, workspace: Path):
    shutil.rmtree(workspace / "policies")
    (workspace / "policies").mkdir()
    system.load_org(workspace / "charter.yaml")
    decision = system.authorize("dana.whitfield", "purchase.create", "Vendor::globex",
                                {"amount": 1})
    assert decision.outcome == "deny"


def test_forbids_blind_to_the_principal_are_told_apart(acme: Charter):
    org = acme.org
    schema = cedarpy.Schema.from_str(schema_text(org))
    text = (
        '@id("everyone") forbid (principal, action, resource is Vendor) '
        "when { resource.frozen };\n"
        '@id("any-member") forbid (principal is Member, action, resource is Vendor) '
        "when { resource.frozen };\n"
        '@id("reads-principal") forbid (principal, action, resource is Vendor) '
        'when { resource.frozen && principal.kind == "ai" };\n'
        '@id("scoped") forbid (principal in Role::"buyer", action, resource is Vendor) '
        "when { resource.frozen };\n"
        '@id("a-permit") permit (principal, action, resource is Vendor);\n')
    compiled = compile_policies({"p.cedar": text}, schema)
    assert compiled.universal_forbids == {"everyone", "any-member"}
