"""The real `charter` command, run as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text


def run(*args: str, cwd: Path, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "charter", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    result = run("init", "demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path / "demo"


def test_quick_start(workspace: Path):
    for command in (["org", "validate"], ["org", "load"]):
        result = run(*command, cwd=workspace)
        assert result.returncode == 0, result.stderr
    shown = run("org", "show", cwd=workspace, env={"COLUMNS": "160"})
    assert shown.returncode == 0, shown.stderr
    for heading in ("Members by department", "Chain of command", "Task types", "Budgets",
                    "procurement", "finance", "support", "Dana Whitfield"):
        assert heading in shown.stdout
    assert (workspace / "charter.db").exists()
    assert (workspace / "charter.db.secret").exists()
    verified = run("ledger", "verify", cwd=workspace)
    assert verified.returncode == 0 and "ok" in verified.stdout


def test_init_refuses_to_overwrite(workspace: Path):
    result = run("init", ".", cwd=workspace)
    assert result.returncode == 1 and "already exists" in result.stderr


def test_invalid_org_exits_1_with_file_and_line(workspace: Path):
    path = workspace / "charter.yaml"
    run("org", "load", cwd=workspace)
    path.write_text(path.read_text(encoding="utf-8").replace(
        "reports_to: dana.whitfield", "reports_to: nobody", 1), encoding="utf-8")
    result = run("org", "load", cwd=workspace, env={"COLUMNS": "200"})
    assert result.returncode == 1
    assert "charter.yaml:" in result.stderr and "unknown member `nobody`" in result.stderr
    assert "nothing was changed" in result.stderr
    versions = run("org", "versions", cwd=workspace)
    assert versions.stdout.count("acme") == 1


def test_org_and_policies_too_deep_or_large_are_refused_with_their_place(workspace: Path):
    org = workspace / "charter.yaml"
    text = org.read_text(encoding="utf-8")
    bomb = "x-laughs: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"x-{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n"
        for p, c in zip("abcdefghi", "bcdefghij", strict=True))
    org.write_text(text + bomb, encoding="utf-8")
    refused = run("org", "validate", cwd=workspace, env={"COLUMNS": "200"})
    assert refused.returncode == 1
    assert f"charter.yaml:{text.count(chr(10)) + 6}: too large" in refused.stderr
    org.write_text(text, encoding="utf-8")
    assert run("org", "load", cwd=workspace).returncode == 0
    deep = workspace / "deep"
    deep.mkdir()
    (deep / "deep.cedar").write_text(
        "\npermit (principal, action, resource) when { " + "(" * 1000 + "true"
        + ")" * 1000 + " };\n", encoding="utf-8")
    for command in ("validate", "load"):
        result = run("policy", command, str(deep), cwd=workspace, env={"COLUMNS": "200"})
        assert result.returncode == 1
        assert "deep.cedar:2: too deep" in result.stderr


def test_tampering_makes_verify_exit_1_naming_the_event(workspace: Path):
    for _ in range(3):
        assert run("org", "load", cwd=workspace).returncode == 0
    engine = create_engine(f"sqlite:///{workspace / 'charter.db'}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE events SET actor = 'mallory' WHERE seq = 2"))
    engine.dispose()
    result = run("ledger", "verify", cwd=workspace)
    assert result.returncode == 1
    assert "event 2" in result.stderr


def test_redaction_is_reported_by_verify(workspace: Path):
    assert run("org", "load", cwd=workspace).returncode == 0
    redacted = run("ledger", "redact", "1", "--reason", "erasure request", cwd=workspace)
    assert redacted.returncode == 0, redacted.stderr
    result = run("ledger", "verify", cwd=workspace)
    assert result.returncode == 0 and "redacted" in result.stdout


def test_export_tail_checkpoint_replay(workspace: Path):
    assert run("org", "load", cwd=workspace).returncode == 0
    exported = run("ledger", "export", cwd=workspace)
    assert exported.returncode == 0 and '"kind": "org.loaded"' in exported.stdout
    assert "org.loaded" in run("ledger", "tail", cwd=workspace).stdout
    assert '"seq": 2' in run("ledger", "checkpoint", cwd=workspace).stdout
    replayed = run("ledger", "replay", cwd=workspace)
    assert replayed.returncode == 0 and "2 events" in replayed.stdout


def test_version_usage_errors_and_db_upgrade(workspace: Path):
    assert run("--version", cwd=workspace).stdout.startswith("charter ")
    assert run("no-such-command", cwd=workspace).returncode == 2
    assert run("ledger", "tail", "-n", "zero", cwd=workspace).returncode == 2
    upgraded = run("db", "upgrade", "--db", "sqlite:///other.db", cwd=workspace)
    from charter.store import open_store

    head = open_store("sqlite://", migrate=False).head_revision()
    assert upgraded.returncode == 0 and f"revision {head}" in upgraded.stdout


def test_unsupported_database_exits_1(workspace: Path):
    result = run("org", "show", cwd=workspace, env={"CHARTER_DB": "mysql://x/y"})
    assert result.returncode == 1 and "unsupported database" in result.stderr


def test_help_lists_settings(workspace: Path):
    result = run("--help", cwd=workspace, env={"COLUMNS": "200"})
    assert result.returncode == 0
    for name in ("CHARTER_DB", "CHARTER_SECRET", "CHARTER_AUTO_MIGRATE"):
        assert name in result.stdout
