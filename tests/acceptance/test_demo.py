"""`charter demo`: the real command, as a new user runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.acceptance.test_cli import run

WIDE = {"COLUMNS": "160"}


def test_a_small_demo_runs_the_month_twice_and_reports(tmp_path: Path):
    workspace = tmp_path / "demo"
    result = run("demo", "--tasks", "120", "--seed", "1", "--workspace", str(workspace),
                 cwd=tmp_path, env=WIDE)
    assert result.returncode == 0, result.stderr
    report = result.stdout
    for expected in ("Learned allocator vs round_robin", "utility = Σ value·success - cost",
                     "Who does what", "What the allocator learned", "Approvals",
                     "Conflicts", "Earned autonomy", "Engine swap on day 15", "Budgets",
                     "learned: ledger verified OK", "round_robin: ledger verified OK"):
        assert expected in report, expected
    assert re.search(r"The learned allocator (came out ahead of|did NOT come out ahead of) "
                     r"round_robin", report)
    assert re.search(r"refund-bot got \d+% of its refund tasks wrong", report)
    assert "demoted" in report or "not demoted" in report
    for database in (workspace / "charter.db", workspace / "round-robin" / "charter.db"):
        verified = run("ledger", "verify", "--db", f"sqlite:///{database}", cwd=tmp_path)
        assert verified.returncode == 0, verified.stderr
    versions = run("org", "versions", "--db", f"sqlite:///{workspace / 'charter.db'}",
                   cwd=tmp_path, env=WIDE)
    assert versions.stdout.count("acme") == 2  # the month's org, then the engine swap


def test_the_demo_will_not_write_into_a_directory_it_did_not_make(tmp_path: Path):
    (tmp_path / "mine.txt").write_text("keep me")
    result = run("demo", "--tasks", "8", "--workspace", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert "not made by `charter demo`" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def test_the_demo_needs_an_empty_database(tmp_path: Path):
    assert run("init", "acme", cwd=tmp_path).returncode == 0
    assert run("org", "load", cwd=tmp_path / "acme").returncode == 0
    used = f"sqlite:///{tmp_path / 'acme' / 'charter.db'}"
    result = run("demo", "--tasks", "8", "--workspace", str(tmp_path / "demo"), "--db", used,
                 cwd=tmp_path)
    assert result.returncode == 1 and "already holds an org" in result.stderr


@pytest.mark.slow
def test_the_default_demo_shows_learning_ahead_of_round_robin(tmp_path: Path):
    # Its two-minute target is measured by benchmarks/demo.py, not asserted here.
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
    result = subprocess.run([sys.executable, "-m", "charter", "demo", "--workspace",
                             str(tmp_path / "demo")], cwd=tmp_path,
                            env={**environment, **WIDE}, capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    assert "The learned allocator came out ahead of round_robin" in result.stdout
