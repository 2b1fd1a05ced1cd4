"""`charter worker` processes: one killed mid-task loses nothing and duplicates nothing;
one stopped with SIGTERM finishes or releases its task cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from charter.system import Charter
from tests.engines.orgs import edit_org
from tests.engines.shop import order, orders

SLOW_BUYER = {"kind": "python", "target": "tests.engines.agents:slow_buyer"}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def shop(system: Charter, workspace: Path, tmp_path: Path) -> tuple[Charter, Path]:
    system.load_org(edit_org(workspace, engines={"buyer-bot-1": SLOW_BUYER},
                             performers={"purchase.create": "tests.engines.shop:purchase"},
                             leases={"purchase_order": "2s"}))
    return system, tmp_path / "shop.jsonl"


@pytest.fixture
def start_worker(db_url: str) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(*options: str) -> subprocess.Popen[str]:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
        environment["CHARTER_SECRET"] = "test-secret"
        process = subprocess.Popen(
            [sys.executable, "-m", "charter", "worker", "--member", "buyer-bot-1",
             "--db", db_url, "--poll", "0.05", *options],
            cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)




def wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def completions(system: Charter, task_id: str) -> int:
    with system.store.reading() as conn:
        events = system.ledger.read(conn, subject=f"task:{task_id}")
        return sum(1 for event in events if event.kind == "task.completed")


def test_a_killed_worker_s_task_is_requeued_and_completed_once_by_another(shop,
                                                                        start_worker):
    system, shop_file = shop
    task_id = order(system, shop_file, seconds=120)
    first = start_worker()
    # Killed once the purchase is recorded (a kill between carrying it out and recording
    # it would leave the key unrecorded: the performer's own idempotency covers that).
    wait_for(lambda: len(orders(shop_file)) == 1 and system.task(task_id).state == "running"
             and len(system.performed_actions(task_id=task_id)) == 1)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert system.task(task_id).state == "running"  # its lease has not run out yet

    second = start_worker("--max-tasks", "1")
    output, _ = second.communicate(timeout=90)
    assert second.returncode == 0, output
    task = system.task(task_id)
    assert task.state == "done", task.reason
    assert task.attempts == 2
    assert completions(system, task_id) == 1
    assert len(orders(shop_file)) == 1  # the purchase made before the kill is not repeated
    assert len(system.performed_actions(task_id=task_id)) == 1
    assert system.verify_ledger().ok


def test_sigterm_lets_a_running_task_finish(shop, start_worker):
    system, shop_file = shop
    task_id = order(system, shop_file, seconds=1.5)
    worker = start_worker("--grace", "30")
    wait_for(lambda: system.task(task_id).state == "running")
    worker.send_signal(signal.SIGTERM)
    output, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, output
    assert system.task(task_id).state == "done"
    assert "completed 1" in output


def test_sigterm_releases_a_task_that_does_not_finish_in_the_grace_period(shop,
                                                                          start_worker):
    system, shop_file = shop
    task_id = order(system, shop_file, seconds=120)
    worker = start_worker("--grace", "0.2")
    wait_for(lambda: system.task(task_id).state == "running" and len(orders(shop_file)))
    worker.send_signal(signal.SIGTERM)
    output, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, output
    task = system.task(task_id)
    assert task.state == "assigned"
    assert task.reason.startswith("released by buyer-bot-1")
    assert "released 1" in output
