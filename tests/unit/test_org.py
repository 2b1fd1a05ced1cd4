"""Validation of the org file: every problem, each with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from charter.errors import OrgInvalid
from charter.org import read_org

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "acme" / "charter.yaml"

VALID = """\
org: {id: tiny, name: Tiny Ltd}
departments: {ops: Operations}
roles: {boss: Runs things}
skills: {typing: Types}
actions: {doc.write: Write a document}
members:
  - id: ann
    kind: human
    department: ops
    roles: [boss]
  - id: bob
    kind: human
    department: ops
    reports_to: ann
    skills: {typing: 0.5}
  - id: bot
    kind: ai
    department: ops
    reports_to: bob
    skills: {typing: 0.9}
    capacity: 3
    engine: {kind: python, target: "tiny.agents:write"}
task_types:
  - id: write_doc
    action: doc.write
    skills: [typing]
    value: 10
    timeout: 1h
    fallback: [{retry: 1}, {escalate: supervisor}]
budgets:
  - id: all
    amount: 1000
    owner: ann
    children:
      - {id: bot-spend, amount: 100, owner: bot}
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "policies").mkdir(exist_ok=True)
    path = tmp_path / "charter.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[dict[str, object]]:
    with pytest.raises(OrgInvalid) as caught:
        read_org(write(tmp_path, text))
    details = caught.value.details
    assert isinstance(details, list) and details
    assert "nothing was changed" in caught.value.message
    return details


def test_example_org_is_valid_and_realistic():
    org = read_org(EXAMPLE)
    assert org.warnings == ()
    kinds = {m.kind for m in org.spec.members}
    assert len(org.members) >= 12 and kinds == {"ai", "human"}
    assert {"procurement", "finance", "support"} <= {m.department for m in org.spec.members}
    assert max(len(org.chain_of_command(m)) for m in org.members) >= 3
    assert len(org.task_types) >= 5
    assert any(org.budget_parent[b] for b in org.budgets if org.budget_parent[b]
               and org.budget_parent[org.budget_parent[b]])  # at least three levels


def test_valid_small_org(tmp_path: Path):
    org = read_org(write(tmp_path, VALID))
    assert org.chain_of_command("bot") == ["bob", "ann"]
    assert org.task_types["write_doc"].timeout.total_seconds() == 3600
    assert [step.action for step in org.task_types["write_doc"].fallback] == [
        "retry", "escalate"]
    assert org.budget_parent == {"all": None, "bot-spend": "all"}
    assert org.roots() == ["ann"]


def test_digest_ignores_formatting_but_not_content(tmp_path: Path):
    first = read_org(write(tmp_path, VALID)).digest
    second = read_org(write(tmp_path, VALID.replace("value: 10", "value:   10.0"))).digest
    third = read_org(write(tmp_path, VALID.replace("value: 10", "value: 11"))).digest
    assert first == second != third


@pytest.mark.parametrize(("name", "old", "new", "line", "fragment"), [
    ("yaml syntax", "roles: [boss]", "roles: [boss", 11, "YAML syntax error"),
    ("cycle", "  - id: ann\n    kind: human\n",
     "  - id: ann\n    kind: human\n    reports_to: bot\n", 9, "cycle: ann → bot → bob → ann"),
    ("unknown member", "reports_to: ann", "reports_to: anne", 14, "unknown member `anne`"),
    ("duplicate id", "  - id: bob\n", "  - id: ann\n", 11, "duplicate member id `ann`"),
    ("wrong type", "capacity: 3", "capacity: lots", 21, "capacity"),
    ("unknown skill", "skills: {typing: 0.9}", "skills: {typign: 0.9}", 20,
     "unknown skill `typign`"),
    ("negative capacity", "capacity: 3", "capacity: -1", 21, "greater than or equal to 0"),
    ("missing field", "    kind: human\n    department: ops\n    reports_to: ann",
     "    kind: human\n    reports_to: ann", 11, "missing required field `department`"),
    ("negative amount", "amount: 1000", "amount: -5", 32, "greater than or equal to 0"),
    ("unknown action", "action: doc.write", "action: doc.delete", 25, "unknown action"),
    ("duplicate key", "    capacity: 3\n", "    capacity: 3\n    capacity: 4\n", 22,
     "duplicate key 'capacity'"),
    ("unknown field", "capacity: 3", "capacitty: 3", 21, "unknown field `capacitty`"),
    ("bad duration", "timeout: 1h", "timeout: soon", 28, "such as '15m'"),
    ("engine on a person", "    roles: [boss]\n",
     "    roles: [boss]\n    engine: {kind: python, target: 'a:b'}\n", 7, "a person has no engine"),
    ("child budget exceeds parent", "amount: 100,", "amount: 5000,", 35, "exceeds its parent"),
    ("escalate to an agent", "{escalate: supervisor}", "{escalate: bot}", 29,
     "is an AI agent"),
    ("unknown department", "department: ops\n    reports_to: bob",
     "department: opps\n    reports_to: bob", 18, "unknown department `opps`"),
])
def test_malformed_org_is_rejected_with_location(tmp_path: Path, name: str, old: str,
                                                 new: str, line: int, fragment: str):
    assert old in VALID, name
    found = problems(tmp_path, VALID.replace(old, new, 1))
    matching = [p for p in found if fragment in str(p["message"]) + str(p["path"])]
    assert matching, f"{name}: no problem mentions {fragment!r} in {found}"
    assert matching[0]["line"] == line, f"{name}: {matching[0]}"
    assert matching[0]["file"].endswith("charter.yaml")


def test_every_problem_is_reported_at_once(tmp_path: Path):
    text = (VALID.replace("capacity: 3", "capacity: -1")
            .replace("reports_to: ann", "reports_to: nobody")
            .replace("skills: [typing]", "skills: [typing, singing]"))
    messages = " | ".join(str(p["message"]) for p in problems(tmp_path, text))
    assert "greater than or equal to 0" in messages
    assert "unknown member `nobody`" in messages
    assert "unknown skill `singing`" in messages


def test_missing_file_and_missing_policies_folder(tmp_path: Path):
    with pytest.raises(OrgInvalid, match="not found"):
        read_org(tmp_path / "nope.yaml")
    path = write(tmp_path, VALID.replace("budgets:", "policies: rules\nbudgets:"))
    with pytest.raises(OrgInvalid, match="policies folder not found"):
        read_org(path)


def test_not_a_mapping(tmp_path: Path):
    found = problems(tmp_path, "- just\n- a list\n")
    assert "must be a mapping" in str(found[0]["message"])


def test_warnings_do_not_reject(tmp_path: Path):
    text = VALID.replace("skills: [typing]", "skills: [typing]\n    autonomy_ceiling: notify")
    text = text.replace("    capacity: 3\n",
                        "    capacity: 3\n    autonomy: {write_doc: autonomous}\n")
    org = read_org(write(tmp_path, text))
    assert any("above the task type's ceiling" in warning for warning in org.warnings)


def test_common_managers_meet_at_the_lowest_shared_manager():
    from charter.org import common_managers

    org = read_org(EXAMPLE)
    # two agents under one lead meet at the lead, then climb together
    assert common_managers(org, ["buyer-bot-1", "buyer-bot-2"]) == [
        "james.liu", "sofia.alvarez", "priya.raman", "dana.whitfield"]
    # a manager and its report meet above the manager, never at a member of the set
    assert common_managers(org, ["pricing-bot", "nina.kapoor"])[0] == "priya.raman"
    # different departments meet higher up
    assert common_managers(org, ["nina.kapoor", "marcus.okafor"]) == ["dana.whitfield"]
    assert common_managers(org, ["triage-bot", "ap-bot-1", "buyer-bot-1"]) == [
        "dana.whitfield"]
    # one member alone: its own managers; the top of the chain meets nobody
    assert common_managers(org, ["pricing-bot"]) == ["nina.kapoor", "priya.raman",
                                                     "dana.whitfield"]
    assert common_managers(org, ["dana.whitfield", "nina.kapoor"]) == []
    assert common_managers(org, []) == []
