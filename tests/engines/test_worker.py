"""The worker runs an AI member's tasks through its engine, with Charter in the action
path: allowed actions happen once, escalated ones wait for a person and then happen
once, denied ones never happen."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from charter.system import Charter
from charter.worker import Worker
from tests.engines.orgs import edit_org
from tests.engines.shop import order, orders, work

BUYER = {"kind": "python", "target": "tests.engines.agents:buyer"}


@pytest.fixture
def shop(system: Charter, workspace: Path, tmp_path: Path) -> tuple[Charter, Path]:
    system.load_org(edit_org(workspace, engines={"buyer-bot-1": BUYER},
                             performers={"purchase.create": "tests.engines.shop:purchase"}))
    return system, tmp_path / "shop.jsonl"






def test_an_allowed_purchase_happens_once_and_the_task_is_done(shop):
    system, shop_file = shop
    task_id = order(system, shop_file, "globex", 800)
    work(system, max_tasks=1)
    task = system.task(task_id)
    assert task.state == "done"
    assert [o["amount"] for o in orders(shop_file)] == [800]
    assert task.result["actions"][0]["status"] == "performed"
    [performed] = system.performed_actions(task_id=task_id)
    assert (performed.member, performed.action, performed.resource) == (
        "buyer-bot-1", "purchase.create", "Vendor::globex")


def test_an_escalated_purchase_waits_for_a_person_then_happens_once(shop):
    system, shop_file = shop
    task_id = order(system, shop_file, "globex", 8000)
    work(system, max_tasks=1)
    task = system.task(task_id)
    assert task.state == "awaiting_approval"
    assert orders(shop_file) == []
    [approval] = system.approvals(task_id=task_id)
    assert approval.approvers == ("james.liu",)
    system.approve(approval.id, approver="james.liu")
    assert system.task(task_id).state == "assigned"
    work(system, max_tasks=1)
    assert system.task(task_id).state == "done"
    assert [o["amount"] for o in orders(shop_file)] == [8000]
    assert system.approval(approval.id).status == "executed"
    [performed] = system.performed_actions(task_id=task_id)
    assert performed.approval_id == approval.id


def test_a_rejected_purchase_never_happens_and_the_attempt_fails(shop):
    system, shop_file = shop
    task_id = order(system, shop_file, "globex", 8000)
    work(system, max_tasks=1)
    [approval] = system.approvals(task_id=task_id)
    system.reject(approval.id, approver="james.liu", comment="over the quarter's plan")
    work(system, max_tasks=1)
    assert orders(shop_file) == []
    task = system.task(task_id)
    assert task.state != "done"
    assert "over the quarter's plan" in task.reason


def test_a_retry_after_a_rejection_asks_afresh(shop):
    system, shop_file = shop
    task_id = order(system, shop_file, "globex", 8000)
    work(system, max_tasks=1)
    [first] = system.approvals(task_id=task_id)
    system.reject(first.id, approver="james.liu", comment="not this quarter")
    work(system, max_tasks=1)  # the attempt fails; the protocol's retry comes back
    assert system.task(task_id).state == "assigned"
    work(system, max_tasks=1)  # the retry asks again instead of re-reading the rejection
    task = system.task(task_id)
    assert task.state == "awaiting_approval"
    second = [a for a in system.approvals(task_id=task_id) if a.id != first.id]
    assert [a.status for a in second] == ["pending"]
    system.approve(second[0].id, approver="james.liu")
    work(system, max_tasks=1)
    assert system.task(task_id).state == "done"
    assert [o["amount"] for o in orders(shop_file)] == [8000]


def test_a_denied_purchase_never_happens(shop):
    system, shop_file = shop
    task_id = order(system, shop_file, "initech", 100)  # a frozen vendor
    work(system, max_tasks=1)
    assert orders(shop_file) == []
    assert system.performed_actions(task_id=task_id) == []
    assert "frozen" in system.task(task_id).reason or system.task(task_id).state != "done"


def test_a_member_without_an_engine_has_no_worker(shop):
    system, _ = shop
    with pytest.raises(Exception, match="no engine"):
        Worker(system, "james.liu")


def test_an_engine_that_runs_past_the_task_type_s_timeout_fails_the_attempt(
        system: Charter, workspace: Path):
    path = edit_org(workspace, engines={"buyer-bot-1": {
        "kind": "python", "target": "tests.engines.agents:dawdler"}})
    org = yaml.safe_load(path.read_text())
    for task_type in org["task_types"]:
        if task_type["id"] == "purchase_order":
            task_type["timeout"] = "1s"
    path.write_text(yaml.safe_dump(org, sort_keys=False))
    system.load_org(path)
    task = system.submit_task("purchase_order", "vendor:globex", {"seconds": 30},
                              requester="james.liu")
    system.assign_task(task.id, "buyer-bot-1", actor="james.liu")
    started = time.monotonic()
    counts = work(system, max_tasks=1)
    assert time.monotonic() - started < 20
    assert counts.failed == 1
    [failed] = system.events(kind="task.attempt_failed", subject=f"task:{task.id}")
    assert failed.payload is not None
    assert "ran past the purchase_order task type's timeout (1s)" in str(failed.payload)
