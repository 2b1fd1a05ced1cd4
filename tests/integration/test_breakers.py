"""Circuit breakers: an agent whose engine keeps failing is routed around until its
cool-down ends, then one probe task decides; every transition is a ledger event, the
state survives a replay of the ledger, and a new engine version starts fresh."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from charter import ManualClock
from charter.errors import Conflict
from charter.store.schema import breaker_counts
from charter.system import Charter
from charter.worker import Worker
from tests.engines.flaky import set_failures
from tests.engines.orgs import edit_org

FLAKY = {"kind": "python", "target": "tests.engines.flaky:flaky_buyer"}
BOT = "buyer-bot-1"


def breaker_org(workspace: Path, rule: dict[str, Any]) -> Path:
    """The example org with buyer-bot-1 on the scripted engine and a breaker, and
    buyer-bot-2 inactive (so the people who buy are the other eligible members)."""
    path = edit_org(workspace, engines={BOT: FLAKY})
    org = yaml.safe_load(path.read_text())
    org["breaker"] = rule
    for member in org["members"]:
        if member["id"] == "buyer-bot-2":
            member["status"] = "suspended"
    path.write_text(yaml.safe_dump(org, sort_keys=False))
    return path


@pytest.fixture
def flaky(acme: Charter, workspace: Path, tmp_path: Path) -> tuple[Charter, Path]:
    acme.load_org(breaker_org(workspace, {"failures": 3, "window": "10m",
                                          "cool_down": "1m"}))
    return acme, tmp_path / "failures-left"


def order(system: Charter, counter: Path, *, to: str | None = None) -> str:
    task = system.submit_task("purchase_order", "vendor:globex", {
        "vendor": "Vendor::globex", "amount": 300, "counter": str(counter)},
        requester="james.liu")
    if to is not None:
        system.assign_task(task.id, to, actor="james.liu")
    return task.id


def work(system: Charter, *, max_tasks: int | None = None) -> None:
    worker = Worker(system, BOT, poll_seconds=0.01)
    asyncio.run(worker.run(max_tasks=max_tasks, until_idle=max_tasks is None))


def breaker_events(system: Charter) -> list[tuple[str, dict[str, Any]]]:
    return [(e.kind, e.payload or {}) for e in system.events(subject=f"member:{BOT}")
            if e.kind.startswith("breaker.")]


def test_a_breaker_opens_routes_around_the_member_and_a_probe_closes_it(
        flaky: tuple[Charter, Path], clock: ManualClock):
    system, counter = flaky
    set_failures(counter, 3)
    first = []
    for _ in range(3):  # a second apart: claimed oldest first
        first.append(order(system, counter, to=BOT))
        clock.advance(timedelta(seconds=1))
    work(system, max_tasks=3)  # task 1 fails twice (retry), task 2 once: three failures

    [(kind, opened)] = breaker_events(system)
    assert kind == "breaker.opened"
    assert (opened["failures"], opened["calls"], opened["window_s"]) == (3, 3, 600.0)
    assert opened["rate"] == 1.0 and "3 failed attempts" in opened["reason"]
    [shown] = system.circuit_breakers(member=BOT)
    assert shown.state == "open" and shown.until == opened["until"]
    # its tasks that had not started went back to the queue
    assert [t.id for t in system.tasks(assignee=BOT, state="assigned")] == []
    assert {system.task(t).state for t in first[1:]} == {"queued"}
    assert BOT in system.task(first[0]).excluded  # the reassigned one stays excluded

    # routed around: explained, refused by hand, and dispatched to someone else
    explained = system.explain_task(first[1])
    assert "circuit breaker open until" in explained and BOT in explained
    with pytest.raises(Conflict, match="circuit breaker open"):
        system.assign_task(first[1], BOT, actor="james.liu")
    order(system, counter)
    moved = system.dispatch_queued(strategy="greedy")
    assert len(moved) == 4 and all(t.assignee not in (BOT, None) for t in moved)

    # after the cool-down the next task is the probe; nothing more until it ends
    clock.advance(timedelta(seconds=61))
    probe = order(system, counter)
    [probed] = system.dispatch_queued(strategy="greedy")
    assert (probed.id, probed.assignee) == (probe, BOT)
    kind, half = breaker_events(system)[-1]
    assert (kind, half["probe_task"]) == ("breaker.half_open", probe)
    waiting = order(system, counter)
    assert "probe task" in system.explain_task(waiting)
    [elsewhere] = system.dispatch_queued(strategy="greedy")
    assert elsewhere.assignee != BOT

    work(system)  # the engine works again: the probe succeeds
    assert system.task(probe).state == "done"
    kind, closed = breaker_events(system)[-1]
    assert (kind, closed["probe_task"]) == ("breaker.closed", probe)
    assert system.circuit_breakers(member=BOT)[0].state == "closed"
    again = order(system, counter)
    system.assign_task(again, BOT, actor="james.liu")
    work(system)
    assert system.task(again).state == "done"
    assert system.verify_ledger().ok


def test_a_failed_probe_opens_it_again_for_another_cool_down(
        flaky: tuple[Charter, Path], clock: ManualClock):
    system, counter = flaky
    set_failures(counter, 10)
    for _ in range(3):
        order(system, counter, to=BOT)
    work(system, max_tasks=3)
    clock.advance(timedelta(minutes=2))
    probe = order(system, counter, to=BOT)  # by hand: it is the probe all the same
    work(system, max_tasks=1)
    kinds = [kind for kind, _ in breaker_events(system)]
    assert kinds == ["breaker.opened", "breaker.half_open", "breaker.opened"]
    _, reopened = breaker_events(system)[-1]
    assert reopened["reason"] == f"probe task {probe} failed"
    assert reopened["until"] > breaker_events(system)[0][1]["until"]
    with pytest.raises(Conflict):
        order(system, counter, to=BOT)


def test_an_expired_lease_counts_as_a_failure(acme: Charter, workspace: Path,
                                               clock: ManualClock, tmp_path: Path):
    acme.load_org(breaker_org(workspace, {"failures": 1, "cool_down": "5m"}))
    crashed = order(acme, tmp_path / "counter", to=BOT)
    assert acme.claim_next(BOT) is not None  # a worker claims it, then dies
    clock.advance(timedelta(minutes=16))
    acme.expire_tasks()
    [(kind, opened)] = breaker_events(acme)
    assert (kind, opened["task"], opened["failures"]) == ("breaker.opened", crashed, 1)
    # its fallback retried it with the same member: the open breaker sent it back
    assert acme.task(crashed).state == "queued"


def test_the_error_rate_waits_for_enough_attempts(acme: Charter, workspace: Path,
                                                   tmp_path: Path):
    acme.load_org(breaker_org(workspace, {"error_rate": 0.5, "min_calls": 4,
                                          "window": "5m"}))
    counter = tmp_path / "counter"
    set_failures(counter, 0)
    order(acme, counter, to=BOT)
    work(acme)  # one success
    set_failures(counter, 2)
    order(acme, counter, to=BOT)  # fails, retried, fails: 2 of 3 but fewer than 4
    work(acme, max_tasks=2)
    assert breaker_events(acme) == []
    set_failures(counter, 1)
    order(acme, counter, to=BOT)
    work(acme, max_tasks=1)  # 3 of 4 failed: 75% ≥ 50%
    [(kind, opened)] = breaker_events(acme)
    assert (kind, opened["failures"], opened["calls"], opened["rate"]) == (
        "breaker.opened", 3, 4, 0.75)


def test_a_new_engine_version_starts_with_a_closed_breaker(
        flaky: tuple[Charter, Path], workspace: Path):
    system, counter = flaky
    set_failures(counter, 3)
    for _ in range(3):
        order(system, counter, to=BOT)
    work(system, max_tasks=3)
    [old] = system.circuit_breakers(member=BOT)
    assert old.state == "open"
    org = yaml.safe_load((workspace / "charter.yaml").read_text())
    for member in org["members"]:
        if member["id"] == BOT:
            member["engine"] = {"kind": "python", "target": "tests.engines.agents:buyer"}
    (workspace / "charter.yaml").write_text(yaml.safe_dump(org, sort_keys=False))
    system.load_org(workspace / "charter.yaml")
    fresh = order(system, counter)
    system.assign_task(fresh, BOT, actor="james.liu")  # not refused: a fresh breaker
    assert system.task(fresh).assignee == BOT
    assert [b.engine_version for b in system.circuit_breakers(member=BOT)] == [
        old.engine_version]


def test_breakers_and_their_counts_survive_a_replay_of_the_ledger(
        flaky: tuple[Charter, Path], clock: ManualClock):
    system, counter = flaky
    set_failures(counter, 3)
    for _ in range(3):
        order(system, counter, to=BOT)
    work(system, max_tasks=3)
    clock.advance(timedelta(minutes=2))
    order(system, counter, to=BOT)  # the probe, half-open

    def counts() -> list[tuple[Any, ...]]:
        with system.store.reading() as conn:
            return [tuple(row) for row in conn.execute(
                breaker_counts.select().order_by(breaker_counts.c.second))]

    before, counted = system.circuit_breakers(), counts()
    assert before[0].state == "half_open" and sum(row[3] for row in counted) == 3
    system.rebuild_read_tables()
    assert system.circuit_breakers() == before
    assert counts() == counted


def test_a_batch_dispatch_lets_one_probe_through(flaky: tuple[Charter, Path],
                                                 clock: ManualClock):
    system, counter = flaky
    set_failures(counter, 3)
    for _ in range(3):
        order(system, counter, to=BOT)
    work(system, max_tasks=3)
    clock.advance(timedelta(minutes=2))
    for _ in range(system.settings.batch_dispatch_at):
        order(system, counter)
    moved = system.dispatch_queued(strategy="greedy")  # enough to assign in one batch
    assert [t.assignee for t in moved].count(BOT) == 1
    assert [kind for kind, _ in breaker_events(system)] == ["breaker.opened",
                                                            "breaker.half_open"]
