"""`charter tasks`, `outcomes record` and `members stats` as subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

from charter import Settings
from charter.system import open_charter
from tests.acceptance.test_cli import run


def test_submit_list_show_cancel(loaded: Path):
    submitted = run("tasks", "submit", "purchase_order", "Vendor::globex", "--payload",
                    '{"amount": 300}', "--priority", "2", "--deadline", "4h", cwd=loaded)
    assert submitted.returncode == 0, submitted.stderr
    task_id = submitted.stdout.split()[2]
    listed = run("tasks", "list", cwd=loaded, env={"COLUMNS": "200"})
    assert task_id[:8] in listed.stdout and "queued" in listed.stdout
    shown = run("tasks", "show", task_id[:8], cwd=loaded, env={"COLUMNS": "200"})
    assert shown.returncode == 0 and "task.submitted" in shown.stdout
    explained = run("tasks", "explain", task_id[:8], cwd=loaded, env={"COLUMNS": "200"})
    assert explained.returncode == 0 and "if dispatched now" in explained.stdout
    assert run("tasks", "cancel", task_id[:8], cwd=loaded).returncode == 0
    second = run("tasks", "submit", "ticket_triage", "Customer::4", cwd=loaded)
    assert second.returncode == 0
    dispatched = run("tasks", "dispatch", cwd=loaded)
    assert dispatched.returncode == 0 and "1 tasks assigned" in dispatched.stdout
    again = run("tasks", "cancel", task_id[:8], cwd=loaded)
    assert again.returncode == 1 and "already cancelled" in again.stderr
    bad = run("tasks", "submit", "no_such_type", "Vendor::globex", cwd=loaded)
    assert bad.returncode == 1 and "unknown task type" in bad.stderr
    bad_json = run("tasks", "submit", "purchase_order", "Vendor::globex", "--payload", "[1",
                   cwd=loaded)
    assert bad_json.returncode == 1 and "not valid JSON" in bad_json.stderr


def test_outcomes_and_member_stats(loaded: Path):
    settings = Settings(secret_file=loaded / "charter.db.secret")
    with open_charter(f"sqlite:///{loaded / 'charter.db'}", settings=settings) as system:
        task = system.submit_task("refund", "Customer::9", requester="ben.kowalski")
        system.assign_task(task.id, "refund-bot", actor="ben.kowalski")
        claim = system.claim_next("refund-bot")
        assert claim is not None
        system.complete_task(task.id, member="refund-bot", fencing=claim.fencing, cost=0.2,
                             duration_s=40)
    recorded = run("outcomes", "record", task.id, "--failure", "--verified", cwd=loaded)
    assert recorded.returncode == 0 and "verified" in recorded.stdout
    stats = json.loads(run("members", "stats", "refund-bot", "--json", cwd=loaded).stdout)
    (row,) = stats
    assert (row["task_type"], row["n"], row["verified"], row["successes"]) == (
        "refund", 1, 1, 0)
    assert row["autonomy"] == "notify"
    unknown = run("members", "stats", "nobody", cwd=loaded)
    assert unknown.returncode == 1 and "no member" in unknown.stderr
