"""`charter tasks reviews|review` and `charter members breakers` as subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from charter import Settings
from charter.system import open_charter
from tests.acceptance.test_cli import run

WIDE = {"COLUMNS": "250"}


def test_review_a_sampled_task_and_see_the_breakers(loaded: Path):
    path = loaded / "charter.yaml"
    org = yaml.safe_load(path.read_text())
    org["breaker"] = {"failures": 1, "cool_down": "5m"}
    for task_type in org["task_types"]:
        if task_type["id"] == "refund":
            task_type["evaluation"] = {"evaluator": "ben.kowalski", "sample": 1.0}
    path.write_text(yaml.safe_dump(org, sort_keys=False))
    assert run("org", "load", cwd=loaded).returncode == 0
    settings = Settings(secret_file=loaded / "charter.db.secret")
    with open_charter(f"sqlite:///{loaded / 'charter.db'}", settings=settings) as system:
        done = system.submit_task("refund", "Customer::9", requester="ben.kowalski")
        system.assign_task(done.id, "refund-bot", actor="ben.kowalski")
        claim = system.claim_next("refund-bot")
        assert claim is not None
        system.complete_task(done.id, member="refund-bot", fencing=claim.fencing)
        failed = system.submit_task("ticket_triage", "Customer::4", requester="ben.kowalski")
        system.assign_task(failed.id, "triage-bot", actor="ben.kowalski")
        claim = system.claim_next("triage-bot")
        assert claim is not None
        system.fail_task(failed.id, member="triage-bot", fencing=claim.fencing,
                         reason="model endpoint down")

    queue = run("tasks", "reviews", "--evaluator", "ben.kowalski", cwd=loaded, env=WIDE)
    assert queue.returncode == 0 and done.id[:8] in queue.stdout and "pending" in queue.stdout
    refused = run("tasks", "review", done.id[:8], "--success", "--as", "refund-bot",
                  cwd=loaded)
    assert refused.returncode == 1 and "own work" in refused.stderr
    reviewed = run("tasks", "review", done.id[:8], "--failure", "--as", "ben.kowalski",
                   "--quality", "0.1", "--comment", "refunded twice", cwd=loaded, env=WIDE)
    assert reviewed.returncode == 0, reviewed.stderr
    assert "disagrees with refund-bot's own report" in reviewed.stdout
    again = run("tasks", "review", done.id[:8], "--success", "--as", "ben.kowalski",
                cwd=loaded)
    assert again.returncode == 1 and "already reviewed" in again.stderr
    stats = json.loads(run("members", "stats", "refund-bot", "--json", cwd=loaded).stdout)
    assert stats[0]["reviewed"] == 1 and stats[0]["self_report_weight"] < 0.3

    breakers = run("members", "breakers", cwd=loaded, env=WIDE)
    assert breakers.returncode == 0 and "triage-bot" in breakers.stdout
    assert "open" in breakers.stdout and "1 failed attempt within" in breakers.stdout
