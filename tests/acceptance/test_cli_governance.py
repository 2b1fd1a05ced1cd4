"""`charter authorize`, `approvals`, `policy`, `delegate`, `budgets` as subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

from tests.acceptance.test_cli import run


def test_authorize_exit_codes_and_reasons(loaded: Path):
    allowed = run("authorize", "buyer-bot-1", "purchase.create", "Vendor::globex",
                  "--context", '{"amount": 300}', cwd=loaded)
    assert allowed.returncode == 0 and "ALLOW" in allowed.stdout
    assert "buyers-purchase-within-limit" in allowed.stdout
    denied = run("authorize", "buyer-bot-1", "purchase.create", "Vendor::initech",
                 "--context", '{"amount": 300}', cwd=loaded)
    assert denied.returncode == 1 and "frozen-vendors-blocked" in denied.stdout
    escalated = run("authorize", "buyer-bot-1", "purchase.create", "Vendor::globex",
                    "--context", '{"amount": 30000}', "--json", cwd=loaded)
    assert escalated.returncode == 3
    decision = json.loads(escalated.stdout)
    assert decision["approvers"] == ["sofia.alvarez"]
    bad_json = run("authorize", "buyer-bot-1", "purchase.create", "Vendor::globex",
                   "--context", "{amount", cwd=loaded)
    assert bad_json.returncode == 1 and "not valid JSON" in bad_json.stderr
    verified = run("ledger", "verify", cwd=loaded)
    assert verified.returncode == 0
    exported = run("ledger", "export", cwd=loaded).stdout
    assert exported.count('"kind": "decision.made"') == 3


def test_approvals_flow(loaded: Path):
    escalated = run("authorize", "buyer-bot-1", "purchase.create", "Vendor::globex",
                    "--context", '{"amount": 30000}', "--json", cwd=loaded)
    approval_id = json.loads(escalated.stdout)["approval_id"]
    listed = run("approvals", "list", cwd=loaded, env={"COLUMNS": "200"})
    assert approval_id[:8] in listed.stdout
    own = run("approvals", "approve", approval_id[:8], "--as", "buyer-bot-1", cwd=loaded)
    assert own.returncode == 1 and "separation of duties" in own.stderr
    approved = run("approvals", "approve", approval_id[:8], "--as", "sofia.alvarez",
                   cwd=loaded)
    assert approved.returncode == 0 and "approved" in approved.stdout
    shown = json.loads(run("approvals", "show", approval_id, cwd=loaded).stdout)
    assert shown["votes"][0]["approver"] == "sofia.alvarez"


def test_policy_validate_reports_file_and_line(loaded: Path, tmp_path: Path):
    folder = tmp_path / "bad-policies"
    folder.mkdir()
    (folder / "x.cedar").write_text('\n@id("x")\npermit (principal is Ghost, action, resource);\n',
                                    encoding="utf-8")
    result = run("policy", "validate", str(folder), cwd=loaded, env={"COLUMNS": "200"})
    assert result.returncode == 1
    assert "x.cedar:2" in result.stderr and "Ghost" in result.stderr
    good = run("policy", "validate", "policies", cwd=loaded)
    assert good.returncode == 0 and "valid" in good.stdout
    reloaded = run("policy", "load", cwd=loaded)
    assert reloaded.returncode == 0 and "version 2" in reloaded.stdout


def test_delegate_and_budgets_show(loaded: Path):
    before = run("authorize", "james.liu", "purchase.create", "Vendor::globex",
                 "--context", '{"amount": 30000}', cwd=loaded)
    assert before.returncode == 3
    granted = run("delegate", "sofia.alvarez", "james.liu", "--action", "purchase.create",
                  "--for", "4h", cwd=loaded)
    assert granted.returncode == 0, granted.stderr
    after = run("authorize", "james.liu", "purchase.create", "Vendor::globex",
                "--context", '{"amount": 30000}', cwd=loaded)
    assert after.returncode == 0 and "delegation" in after.stdout
    bad = run("delegate", "sofia.alvarez", "james.liu", "--action", "purchase.create",
              "--for", "soon", cwd=loaded)
    assert bad.returncode == 1
    shown = run("budgets", "show", cwd=loaded, env={"COLUMNS": "200"})
    assert shown.returncode == 0
    assert "acme-opex" in shown.stdout and "buyer-bot-1-spend" in shown.stdout
