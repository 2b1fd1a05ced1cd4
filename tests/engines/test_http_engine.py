"""The `http` engine: a signed webhook decides, Charter acts. A real webhook server on
127.0.0.1 verifies each request's signature, records it and answers from a script."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from charter.engines.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify_signature
from charter.system import Charter
from tests.engines.orgs import edit_org
from tests.engines.servers import serve
from tests.engines.shop import order, orders, work

SECRET = "s3cret-shared-with-the-webhook"
SECRET_ENV = "CHARTER_TEST_WEBHOOK_SECRET"
HANG = (0, None)
"""An answer that never comes: the webhook holds the request until the caller gives up."""


class Receiver:
    """A webhook that refuses requests without Charter's signature, records each one it
    accepts and answers from a script: one answer per request, the last one repeating."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, Any]] = [(200, {})]
        self.deliveries: list[dict[str, Any]] = []
        self.refused = 0
        self.app = FastAPI()
        self.app.post("/hook")(self.hook)

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        if not verify_signature(SECRET, request.headers.get(TIMESTAMP_HEADER), body,
                                request.headers.get(SIGNATURE_HEADER)):
            self.refused += 1
            return JSONResponse({"error": "bad signature"}, status_code=401)
        self.deliveries.append(json.loads(body))
        status, answer = self.answers[min(len(self.deliveries), len(self.answers)) - 1]
        if (status, answer) == HANG:
            while not await request.is_disconnected():
                await asyncio.sleep(0.02)
            return Response(status_code=204)
        return JSONResponse(answer, status_code=status)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    hook = Receiver()
    with serve(hook.app) as url:
        yield hook, f"{url}/hook"


@pytest.fixture
def shop(system: Charter, workspace: Path, tmp_path: Path, receiver: tuple[Receiver, str],
         monkeypatch: pytest.MonkeyPatch):
    hook, url = receiver
    monkeypatch.setenv(SECRET_ENV, SECRET)

    def use_webhook(**spec: Any) -> None:
        engine = {"kind": "http", "url": url, "secret_env": SECRET_ENV, **spec}
        system.load_org(edit_org(workspace, engines={"buyer-bot-1": engine},
                                 performers={"purchase.create": "tests.engines.shop:purchase"}))

    use_webhook()
    return system, hook, tmp_path / "shop.jsonl", use_webhook






def purchase(vendor: str, amount: int, **reply: Any) -> dict[str, Any]:
    """A webhook's reply asking Charter to raise one purchase order."""
    return {"actions": [{"action": "purchase.create", "resource": f"Vendor::{vendor}",
                         "context": {"amount": amount}}], **reply}


# -- signatures --------------------------------------------------------------------------

def test_a_signature_verifies_only_for_its_body_secret_and_time():
    body = b'{"task": {"id": "t-1"}}'
    header = sign(SECRET, 1_700_000_000, body)
    assert header.startswith("sha256=")
    assert verify_signature(SECRET, "1700000000", body, header, now=1_700_000_100)
    assert not verify_signature(SECRET, "1700000000", body + b" ", header, now=1_700_000_100)
    assert not verify_signature("another secret", "1700000000", body, header,
                                now=1_700_000_100)
    assert not verify_signature(SECRET, "1700000001", body, header, now=1_700_000_100)
    assert not verify_signature(SECRET, "1700000000", body, header, now=1_700_000_301)
    assert not verify_signature(SECRET, "1700000000", body, header, max_age=60,
                                now=1_700_000_100)
    assert not verify_signature(SECRET, "yesterday", body, header, now=1_700_000_100)
    assert not verify_signature(SECRET, None, body, header)
    assert not verify_signature(SECRET, "1700000000", body, None, now=1_700_000_100)


def test_the_webhook_gets_the_signed_task_and_verifies_it(shop):
    system, hook, shop_file, _ = shop
    hook.answers = [(200, {"outputs": {"note": "nothing to buy"}})]
    task_id = order(system, shop_file, "globex", 800)
    work(system, max_tasks=1)
    assert hook.refused == 0
    [delivery] = hook.deliveries
    assert delivery["task"]["id"] == task_id
    assert delivery["task"]["payload"]["amount"] == 800
    assert delivery["member"] == "buyer-bot-1"
    assert (delivery["handoff"], delivery["resume"], delivery["settled"]) == (None, None, [])
    task = system.task(task_id)
    assert task.state == "done"
    assert task.result["outputs"] == {"note": "nothing to buy"}


def test_a_webhook_with_another_secret_refuses_and_the_attempt_fails(shop, monkeypatch):
    system, hook, shop_file, _ = shop
    monkeypatch.setenv(SECRET_ENV, "not the shared secret")
    task_id = order(system, shop_file, "globex", 800)
    work(system, max_tasks=1)
    assert (hook.refused, hook.deliveries) == (1, [])
    assert "HTTP 401" in system.task(task_id).reason


def test_a_missing_secret_fails_the_attempt_naming_the_variable(shop, monkeypatch):
    system, hook, shop_file, _ = shop
    monkeypatch.delenv(SECRET_ENV)
    task_id = order(system, shop_file, "globex", 800)
    work(system, max_tasks=1)
    assert hook.deliveries == []
    assert f"set {SECRET_ENV}" in system.task(task_id).reason


# -- the webhook decides, Charter acts ----------------------------------------------------

def test_an_allowed_purchase_is_made_once_and_the_task_is_done(shop):
    system, hook, shop_file, _ = shop
    hook.answers = [(200, purchase("globex", 800, outputs={"po": "requested"}, cost=0.25,
                                   usage={"tokens": 120}))]
    task_id = order(system, shop_file, "globex", 800)
    work(system, max_tasks=1)
    task = system.task(task_id)
    assert task.state == "done"
    assert [o["amount"] for o in orders(shop_file)] == [800]
    assert task.result["outputs"] == {"po": "requested"}
    assert task.result["usage"] == {"tokens": 120}
    assert [a["status"] for a in task.result["actions"]] == ["performed"]
    [performed] = system.performed_actions(task_id=task_id)
    assert (performed.member, performed.action, performed.resource) == (
        "buyer-bot-1", "purchase.create", "Vendor::globex")
    [outcome] = system.outcomes(member="buyer-bot-1")
    assert (outcome.task_id, outcome.success, outcome.cost) == (task_id, True, Decimal("0.25"))


def test_a_denied_purchase_is_never_made_and_the_attempt_fails(shop):
    system, hook, shop_file, _ = shop
    hook.answers = [(200, purchase("initech", 100))]  # a frozen vendor
    task_id = order(system, shop_file, "initech", 100)
    work(system, max_tasks=1)
    assert orders(shop_file) == []
    assert system.performed_actions(task_id=task_id) == []
    task = system.task(task_id)
    assert task.state != "done"
    assert "Charter denied purchase.create on Vendor::initech" in task.reason


def test_an_escalated_purchase_pauses_then_the_webhook_hears_how_it_was_settled(shop):
    system, hook, shop_file, _ = shop
    # Called again on resume, the webhook asks for the same purchase: it is not repeated.
    hook.answers = [(200, purchase("globex", 8000, resume={"step": "ordered"}))]
    task_id = order(system, shop_file, "globex", 8000)
    work(system, max_tasks=1)
    assert system.task(task_id).state == "awaiting_approval"
    assert orders(shop_file) == []
    [approval] = system.approvals(task_id=task_id)
    system.approve(approval.id, approver="james.liu")
    work(system, max_tasks=1)
    assert system.task(task_id).state == "done"
    assert [o["amount"] for o in orders(shop_file)] == [8000]
    first, second = hook.deliveries
    assert first["settled"] == [] and first["resume"] is None
    assert second["resume"] == {"step": "ordered"}
    [settled] = second["settled"]
    assert (settled["status"], settled["approval_id"]) == ("performed", approval.id)
    assert settled["call"]["context"] == {"amount": 8000}
    [performed] = system.performed_actions(task_id=task_id)
    assert performed.approval_id == approval.id


# -- delivery: retries, timeouts, refusals, bad replies -------------------------------------

def test_a_webhook_that_fails_twice_with_503_is_retried_and_succeeds(shop):
    system, hook, shop_file, use_webhook = shop
    use_webhook(retries=2)
    hook.answers = [(503, {"error": "warming up"}), (503, {"error": "warming up"}),
                    (200, purchase("globex", 800))]
    task_id = order(system, shop_file, "globex", 800)
    work(system, max_tasks=1)
    assert len(hook.deliveries) == 3
    assert system.task(task_id).state == "done"
    assert [o["amount"] for o in orders(shop_file)] == [800]


def test_a_webhook_that_always_times_out_fails_the_attempt_with_a_clear_reason(shop):
    system, hook, shop_file, use_webhook = shop
    use_webhook(timeout=0.3, retries=1)
    hook.answers = [HANG]
    task_id = order(system, shop_file, "globex", 800)
    work(system, max_tasks=1)
    assert len(hook.deliveries) == 2
    task = system.task(task_id)
    assert task.state != "done"
    assert "did not answer within 0.3s (tried 2 times)" in task.reason
    assert orders(shop_file) == []


def test_a_refusal_other_than_429_is_not_retried(shop):
    system, hook, shop_file, use_webhook = shop
    use_webhook(retries=3)
    hook.answers = [(422, {"error": "no such catalogue item"})]
    task_id = order(system, shop_file, "globex", 800)
    work(system, max_tasks=1)
    assert len(hook.deliveries) == 1
    reason = system.task(task_id).reason
    assert "refused the task: HTTP 422" in reason
    assert "no such catalogue item" in reason


def test_an_invalid_reply_fails_the_attempt_naming_what_is_wrong(shop):
    system, hook, shop_file, _ = shop
    hook.answers = [(200, {"success": "maybe", "cost": -1,
                           "actions": [{"action": "purchase.create"}]})]
    task_id = order(system, shop_file, "globex", 800)
    work(system, max_tasks=1)
    task = system.task(task_id)
    assert task.state != "done"
    assert "invalid reply" in task.reason
    for field in ("success:", "cost:", "actions.0.resource: Field required"):
        assert field in task.reason
    assert orders(shop_file) == []
