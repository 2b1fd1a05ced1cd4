"""Policy sets: validated against the org's schema, swapped whole, recorded in the ledger."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import cedarpy
import pytest

from charter import policy
from charter.cedarschema import schema_text
from charter.policy import (
    MAX_HAS_PATH,
    MAX_POLICY_DEPTH,
    MAX_POLICY_TOKENS,
    PolicyInvalid,
    compile_policies,
    split_statements,
)
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
    "quorum not a number": ('@id("two")\n@quorum("two")\npermit (principal, action == '
                            'Action::"lease", resource);\n', 1, '@quorum("two") is not a number'),
    "quorum of nobody": ('@id("none")\n@quorum("0")\npermit (principal, action == '
                         'Action::"lease", resource);\n', 1, "from 1 to 20"),
    "quorum on a forbid": ('@id("never")\n@quorum("2")\nforbid (principal, action == '
                           'Action::"lease", resource);\n', 1, "on a forbid it would never"),
}


def test_a_problem_of_a_policy_without_an_id_names_its_place_once():
    from charter.org import read_org
    from tests.conftest import EXAMPLE_ORG

    schema = schema_text(read_org(EXAMPLE_ORG))
    with pytest.raises(PolicyInvalid) as caught:
        compile_policies({"x.cedar": "permit (principal is Ghost, action, resource);\n"},
                         schema)
    assert "x.cedar:1: x.cedar:1" not in caught.value.message
    assert "x.cedar:1: Cedar: unrecognized entity type `Ghost`" in caught.value.message


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


def _refused_set(acme: Charter, folder: Path) -> list[dict[str, Any]]:
    """Load `folder`, which must be refused as a whole: nothing recorded, the set in force
    kept and still deciding. Returns the problems."""
    before = acme.current_policies()
    acme.flush_decisions()  # decisions made before are written now, not while loading
    events_before = len(acme.events())
    started = time.perf_counter()
    with pytest.raises(PolicyInvalid) as caught:
        acme.load_policies(folder)
    assert time.perf_counter() - started < 10
    assert len(acme.events()) == events_before
    after = acme.current_policies()
    assert before is not None and after is not None and after.version == before.version
    decision = acme.authorize("buyer-bot-1", "purchase.create", "Vendor::globex",
                              {"amount": 300})
    assert decision.outcome == "allow"
    problems: list[dict[str, Any]] = caught.value.details
    for problem in problems:
        where = f"{problem['file']}:{problem['line']}" if problem["line"] else problem["file"]
        assert f"{where}: " in caught.value.message
    return problems


def _policy_folder(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "a_good.cedar").write_text(GOOD, encoding="utf-8")
    for name, text in files.items():
        if isinstance(text, bytes):
            (folder / name).write_bytes(text)
        else:
            (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize(("condition", "fragment"), [
    ("(" * 1000 + "true" + ")" * 1000, f"brackets nest more than {MAX_POLICY_DEPTH} deep"),
    ("[" * 40 + "]" * 40 + " == []", f"brackets nest more than {MAX_POLICY_DEPTH} deep"),
    (" && ".join(["true"] * 20_000), f"at most {MAX_POLICY_TOKENS} tokens"),
    (" && ".join(["true"] * 100), "nest too deeply for Cedar"),
    ("if true then " * 100 + "true" + " else false" * 100, "nest too deeply for Cedar"),
    ("principal has a" + ".b" * 999, f"at most {MAX_HAS_PATH} attributes (this one 1000)"),
], ids=["parentheses", "lists", "long-chain", "chain-past-cedar-nesting", "if-chain",
        "has-path"])
def test_policies_too_deep_or_large_for_cedar_are_refused_with_file_and_line(
        acme: Charter, tmp_path: Path, condition: str, fragment: str):
    statement = f'@id("deep")\npermit (principal, action, resource) when {{ {condition} }};\n'
    folder = _policy_folder(tmp_path, {"z_deep.cedar": "// too deep\n\n" + statement})
    (problem,) = _refused_set(acme, folder)
    assert (problem["file"], problem["line"]) == ("z_deep.cedar", 3)
    assert fragment in problem["message"]


@pytest.mark.parametrize("links", [100, 600], ids=["set-unreadable", "json-too-deep"])
def test_what_cedar_cannot_read_back_is_refused_not_raised(
        acme: Charter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, links: int):
    # Past the nesting check, Cedar (and Python's json) fail on their own: those failures
    # are refusals too, with the policy's place.
    monkeypatch.setattr(policy, "MAX_CEDAR_NESTING", 100_000)
    chain = " && ".join(["true"] * links)
    folder = _policy_folder(tmp_path, {
        "z_chain.cedar": f"\npermit (principal, action, resource) when {{ {chain} }};\n"})
    (problem,) = _refused_set(acme, folder)
    assert (problem["file"], problem["line"]) == ("z_chain.cedar", 2)
    assert "nest too deeply for Cedar" in problem["message"]


def test_policy_text_that_cannot_be_stored_or_read_is_refused(
        acme: Charter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = _policy_folder(tmp_path, {
        "z_nul.cedar": "permit (principal, action, resource);\n// a \x00 here\n"})
    assert [(p["file"], p["line"]) for p in _refused_set(acme, folder)] == [("z_nul.cedar", 2)]
    shutil.rmtree(folder)
    folder = _policy_folder(tmp_path, {"z_latin1.cedar": b"// caf\xe9\n"})
    (problem,) = _refused_set(acme, folder)
    assert problem["file"] == "z_latin1.cedar" and "cannot be read" in problem["message"]
    shutil.rmtree(folder)
    monkeypatch.setattr(policy, "MAX_POLICY_CHARS", len(GOOD) + 10)
    folder = _policy_folder(tmp_path, {"z_more.cedar": GOOD.replace("buyers", "more")})
    (problem,) = _refused_set(acme, folder)
    assert problem["file"] == "z_more.cedar" and "too large" in problem["message"]


def test_policies_within_the_limits_are_loaded(acme: Charter, tmp_path: Path):
    vendors = ", ".join(f'Vendor::"v{i}"' for i in range(500))
    inside = MAX_POLICY_DEPTH - 1  # within `when { }`
    brackets = "(" * inside + "false" + ")" * inside
    has = "principal has " + ".".join(f"a{i}" for i in range(MAX_HAS_PATH))
    text = (f'@id("blocked")\nforbid (principal, action, resource) '
            f"when {{ resource in [{vendors}] }};\n"
            f'@id("never")\nforbid (principal, action, resource) '
            f"when {{ {brackets} || {has} }};\n")
    loaded = acme.load_policies(_policy_folder(tmp_path, {"z_big.cedar": text}))
    assert loaded.version == 2
    assert acme.authorize("buyer-bot-1", "purchase.create", "Vendor::globex",
                          {"amount": 300}).outcome == "allow"
    assert acme.authorize("buyer-bot-1", "purchase.create", 'Vendor::"v499"',
                          {"amount": 300}).outcome == "deny"
