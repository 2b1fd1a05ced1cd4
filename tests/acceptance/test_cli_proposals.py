"""`charter proposals` as subprocesses: propose, list, show, settle."""

from __future__ import annotations

import json
from pathlib import Path

from tests.acceptance.test_cli import run

WIDE = {"COLUMNS": "220"}


def propose(workspace: Path, member: str, value: str) -> str:
    made = run("proposals", "propose", member, "Vendor::globex", "supplier_terms", value,
               "--type", "purchase_order", "--context", '{"amount": 300}', cwd=workspace,
               env=WIDE)
    assert made.returncode == 0, made.stderr
    return made.stdout


def test_a_tie_is_listed_shown_and_settled_by_the_manager(loaded: Path):
    first = propose(loaded, "buyer-bot-1", "net-30")
    assert "open" in first
    second = propose(loaded, "buyer-bot-2", '{"days": 45}')
    assert "escalated" in second and "waiting for james.liu" in second
    listed = run("proposals", "list", "--subject", "Vendor::globex", cwd=loaded, env=WIDE)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("escalated") == 2
    assert "buyer-bot-1" in listed.stdout and '{"days": 45}' in listed.stdout
    ids = [json.loads(line)["payload"]["id"] for line in run(
        "ledger", "export", cwd=loaded).stdout.splitlines()
        if json.loads(line)["kind"] == "proposal.made"]
    shown = run("proposals", "show", ids[1][:8], cwd=loaded)
    assert shown.returncode == 0, shown.stderr
    proposal = json.loads(shown.stdout)
    assert proposal["value"] == {"days": 45} and proposal["status"] == "escalated"
    resolution = proposal["resolution"]
    assert resolution["rule"] == "authority" and resolution["evidence"]["tie"] is True
    assert [p["rank"] for p in resolution["evidence"]["parties"]] == [4, 4]
    assert resolution["evidence"]["manager"] == "james.liu"

    own = run("proposals", "settle", resolution["id"][:8], ids[1][:8], "--as",
              "buyer-bot-1", cwd=loaded)
    assert own.returncode == 1 and "separation of duties" in own.stderr
    settled = run("proposals", "settle", resolution["id"][:8], ids[1][:8], "--as",
                  "james.liu", cwd=loaded, env=WIDE)
    assert settled.returncode == 0, settled.stderr
    assert f"proposal {ids[1]} wins" in settled.stdout
    won = run("proposals", "list", "--status", "won", cwd=loaded, env=WIDE)
    assert ids[1][:8] in won.stdout and ids[0][:8] not in won.stdout
    after = json.loads(run("proposals", "show", ids[0], cwd=loaded).stdout)
    assert after["status"] == "lost" and after["resolution"]["winner"] == ids[1]

    assert run("ledger", "replay", cwd=loaded).returncode == 0
    assert json.loads(run("proposals", "show", ids[0], cwd=loaded).stdout) == after
    assert run("ledger", "verify", cwd=loaded).returncode == 0


def test_refusals_exit_1_with_the_reason(loaded: Path):
    bad = run("proposals", "propose", "buyer-bot-1", "Vendor::globex", "supplier_terms",
              "net-30", "--type", "purchase_order", cwd=loaded, env=WIDE)
    assert bad.returncode == 1 and "needs context.amount" in bad.stderr
    frozen = run("proposals", "propose", "buyer-bot-1", "Vendor::initech", "terms",
                 "net-30", "--type", "purchase_order", "--context", '{"amount": 300}',
                 cwd=loaded, env=WIDE)
    assert frozen.returncode == 1 and "frozen-vendors-blocked" in frozen.stderr
    missing = run("proposals", "show", "ffffffff", cwd=loaded)
    assert missing.returncode == 1 and "no proposals match" in missing.stderr
    empty = run("proposals", "list", cwd=loaded, env=WIDE)
    assert empty.returncode == 0 and "buyer-bot-1" not in empty.stdout
