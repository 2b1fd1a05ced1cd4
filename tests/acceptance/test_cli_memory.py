"""`charter memory remember|recall|forget` as subprocesses."""

from __future__ import annotations

import re
from pathlib import Path

from tests.acceptance.test_cli import run

WIDE = {"COLUMNS": "250"}


def remember(workspace: Path, *args: str) -> str:
    """Run `charter memory remember` and return the id it printed."""
    result = run("memory", "remember", *args, cwd=workspace, env=WIDE)
    assert result.returncode == 0, result.stderr
    found = re.search(r"Remembered ([0-9a-f-]{36})", result.stdout)
    assert found, result.stdout
    return found.group(1)


def test_remember_recall_forget(loaded: Path):
    refund = remember(loaded, "Customer::3", "Returned a damaged espresso machine; refund "
                      "approved.", "--by", "support-bot", "--kind", "fact", "--tag",
                      "returns", "--tag", "vip")
    remember(loaded, "Customer::3", "Prefers email in the morning.", "--by", "triage-bot")
    secret = remember(loaded, "customer:3", "Zqxvelt shared a quorblax diagnosis.", "--by",
                      "support-bot", "--private")

    recalled = run("memory", "recall", "Customer::3", "espresso refunds", "--by",
                   "triage-bot", cwd=loaded, env=WIDE)
    assert recalled.returncode == 0, recalled.stderr
    assert refund[:8] in recalled.stdout and "score" in recalled.stdout
    assert "returns, vip" in recalled.stdout and "Prefers email" not in recalled.stdout
    latest = run("memory", "recall", "Customer::3", "--by", "triage-bot", "--limit", "5",
                 cwd=loaded, env=WIDE)
    assert latest.returncode == 0 and "Prefers email" in latest.stdout
    assert "Zqxvelt" not in latest.stdout  # private to support-bot
    own = run("memory", "recall", "Customer::3", "quorblax", "--by", "support-bot",
              cwd=loaded, env=WIDE)
    assert "Zqxvelt" in own.stdout and "(private)" in own.stdout

    forgotten = run("memory", "forget", secret[:8], "--by", "support-bot", "--reason",
                    "erasure request 118", cwd=loaded, env=WIDE)
    assert forgotten.returncode == 0, forgotten.stderr
    assert "redacted" in forgotten.stdout
    gone = run("memory", "recall", "Customer::3", "quorblax", "--by", "support-bot",
               cwd=loaded, env=WIDE)
    assert gone.returncode == 0 and "No memories" in gone.stdout
    verified = run("ledger", "verify", cwd=loaded, env=WIDE)
    assert verified.returncode == 0 and "redacted payloads" in verified.stdout
    database = loaded / "charter.db"
    for file in (database, database.with_name("charter.db-wal")):
        if file.exists():
            raw = file.read_bytes().lower()
            assert b"zqxvelt" not in raw and b"quorblax" not in raw
    assert "quorblax" not in run("ledger", "export", cwd=loaded).stdout.lower()


def test_refusals_and_bad_input_exit_1(loaded: Path):
    refused = run("memory", "recall", "Payroll::2026-11", "bonus", "--by", "triage-bot",
                  cwd=loaded, env=WIDE)
    assert refused.returncode == 1
    assert "payroll-never-outside-finance" in refused.stderr
    written = run("memory", "remember", "Payroll::2026-11", "Bonus moved to the 25th.",
                  "--by", "support-bot", cwd=loaded, env=WIDE)
    assert written.returncode == 1 and "may not memory.write" in written.stderr
    finance = run("memory", "remember", "Payroll::2026-11", "Bonus moved to the 25th.",
                  "--by", "ap-bot-1", cwd=loaded, env=WIDE)
    assert finance.returncode == 0, finance.stderr
    for args, message in [
        (("remember", "Customer::3", "x", "--by", "support-bot", "--kind", "memo"),
         "not one of fact, note, summary"),
        (("remember", "Planet::3", "x", "--by", "support-bot"), "Planet"),
        (("remember", "Customer::3", "x", "--by", "nobody"), "no member"),
        (("recall", "Customer::3", "?!", "--by", "support-bot"), "no words"),
        (("forget", "ffffffff", "--by", "support-bot", "--reason", "x"), "no memories"),
    ]:
        result = run("memory", *args, cwd=loaded, env=WIDE)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert message in result.stderr, (args, result.stderr)
    missing_by = run("memory", "recall", "Customer::3", cwd=loaded)
    assert missing_by.returncode == 2 and "--by" in missing_by.stderr
