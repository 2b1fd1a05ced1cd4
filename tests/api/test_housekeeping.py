"""Housekeeping: a sweep applies what time made due; the served app sweeps by itself."""

from __future__ import annotations

import time
from datetime import timedelta

from fastapi.testclient import TestClient

from charter import ManualClock
from charter.api import create_app
from charter.housekeeping import Swept, sweep
from charter.system import Charter


def _claimed(acme: Charter) -> str:
    task = acme.submit_task("purchase_order", "Vendor::globex", requester="james.liu")
    acme.assign_task(task.id, "buyer-bot-1", actor="james.liu")
    assert acme.claim_next("buyer-bot-1") is not None
    return task.id


def test_a_sweep_changes_nothing_before_it_is_due(acme: Charter, clock: ManualClock):
    task_id = _claimed(acme)
    clock.advance(timedelta(minutes=14))  # purchase_order leases last 15m
    assert sweep(acme) == Swept()
    assert acme.task(task_id).state == "running"


def test_a_sweep_reroutes_an_expired_lease(acme: Charter, clock: ManualClock):
    task_id = _claimed(acme)
    clock.advance(timedelta(minutes=16))
    swept = sweep(acme)
    assert [task.id for task in swept.tasks] == [task_id]
    assert acme.task(task_id).state == "assigned"  # the type's retry: back to its holder
    kinds = [e.kind for e in acme.events(subject=f"task:{task_id}")]
    assert kinds[-2:] == ["task.lease_expired", "task.fallback.retry"]


def test_a_sweep_without_an_org_does_nothing(system: Charter):
    assert sweep(system) == Swept()


def test_the_served_app_sweeps_while_it_runs(acme: Charter, clock: ManualClock):
    task_id = _claimed(acme)
    clock.advance(timedelta(minutes=16))
    with TestClient(create_app(acme, housekeeping=0.05)):
        deadline = time.monotonic() + 10
        while acme.task(task_id).state == "running" and time.monotonic() < deadline:
            time.sleep(0.05)
    assert acme.task(task_id).state == "assigned"
    assert "lease expired" in (acme.task(task_id).reason or "")


def test_an_app_without_housekeeping_leaves_it_to_others(acme: Charter,
                                                        clock: ManualClock):
    task_id = _claimed(acme)
    clock.advance(timedelta(minutes=16))
    with TestClient(create_app(acme)):
        time.sleep(0.3)
    assert acme.task(task_id).state == "running"
