"""`charter members suspend|resume` and `charter actions freeze|unfreeze|stopped`."""

from __future__ import annotations

from pathlib import Path

from tests.acceptance.test_cli import run


def test_suspend_freeze_show_and_lift(loaded: Path):
    suspended = run("members", "suspend", "buyer-bot-1", "--reason", "runaway spending",
                    "--actor", "james.liu", cwd=loaded)
    assert suspended.returncode == 0, suspended.stderr
    assert "buyer-bot-1 suspended" in suspended.stdout
    frozen = run("actions", "freeze", "payment.release", "--reason", "bank incident",
                 cwd=loaded)
    assert frozen.returncode == 0, frozen.stderr
    shown = run("actions", "stopped", cwd=loaded, env={"COLUMNS": "200"})
    assert "buyer-bot-1" in shown.stdout and "payment.release" in shown.stdout
    denied = run("authorize", "buyer-bot-1", "purchase.create", "Vendor::globex",
                 "--context", '{"amount": 10}', cwd=loaded)
    assert denied.returncode == 1 and "suspended" in denied.stdout + denied.stderr
    again = run("members", "suspend", "buyer-bot-1", "--reason", "x", cwd=loaded)
    assert again.returncode == 1 and "already suspended" in again.stderr
    assert run("members", "resume", "buyer-bot-1", cwd=loaded).returncode == 0
    assert run("actions", "unfreeze", "payment.release", cwd=loaded).returncode == 0
    allowed = run("authorize", "buyer-bot-1", "purchase.create", "Vendor::globex",
                  "--context", '{"amount": 10}', cwd=loaded)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
