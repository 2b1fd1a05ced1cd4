"""The `openai` engine against a scripted OpenAI-compatible server: Charter authorizes
every tool call the model makes, before it runs."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from charter.system import Charter
from tests.engines.orgs import edit_org
from tests.engines.scripted_llm import ScriptedLLM, buyer
from tests.engines.servers import serve
from tests.engines.shop import order, orders, work


@pytest.fixture
def llm() -> Iterator[tuple[ScriptedLLM, str]]:
    scripted = ScriptedLLM({"buyer-llm": buyer})
    with serve(scripted.app()) as url:
        yield scripted, url


@pytest.fixture
def shop(system: Charter, workspace: Path, tmp_path: Path, llm) -> tuple[Charter, Path]:
    _, url = llm
    engine = {"kind": "openai", "base_url": f"{url}/v1", "model": "buyer-llm",
              "input_price_per_1k": "0.5", "output_price_per_1k": "1.5"}
    system.load_org(edit_org(workspace, engines={"buyer-bot-1": engine},
                             performers={"purchase.create": "tests.engines.shop:purchase"}))
    return system, tmp_path / "shop.jsonl"






def test_an_allowed_call_happens_exactly_once_and_tokens_and_cost_are_recorded(shop, llm):
    system, shop_file = shop
    scripted, _ = llm
    task_id = order(system, shop_file, amount=800)
    work(system)
    task = system.task(task_id)
    assert task.state == "done"
    assert [o["amount"] for o in orders(shop_file)] == [800]
    assert task.result["outputs"] == "purchase: performed"
    usage = task.result["usage"]
    assert usage["model_calls"] == 2 and usage["completion_tokens"] == 50
    assert usage["prompt_tokens"] > 0
    [outcome] = system.outcomes(member="buyer-bot-1")
    expected = (Decimal(usage["prompt_tokens"]) * Decimal("0.5") + 50 * Decimal("1.5")) / 1000
    assert outcome.cost == expected
    offered = {tool["function"]["name"] for tool in scripted.requests[0]["tools"]}
    assert offered == {"purchase_create", "fail_task"}


def test_a_purchase_above_the_limit_is_escalated_and_waits_for_a_person(shop, llm):
    system, shop_file = shop
    scripted, _ = llm
    task_id = order(system, shop_file, amount=8000)
    work(system)
    # the model was told, as the tool's result, that Charter escalated the call
    told = scripted.requests[1]["messages"][-1]
    assert told["role"] == "tool" and "escalated" in told["content"]
    assert "james.liu" in told["content"] and "NOT been done" in told["content"]
    assert system.task(task_id).state == "awaiting_approval"
    assert orders(shop_file) == []
    [approval] = system.approvals(task_id=task_id)
    work(system)  # nothing to claim while the approval is pending
    assert orders(shop_file) == []
    system.approve(approval.id, approver="james.liu")
    work(system)
    task = system.task(task_id)
    assert task.state == "done", task.reason
    assert [o["amount"] for o in orders(shop_file)] == [8000]
    assert task.result["outputs"].startswith("the approval is settled")
    # the whole conversation was paid for: both runs' tokens
    assert task.result["usage"]["model_calls"] == 3


def test_a_denied_call_is_not_made_and_the_model_hears_why(shop, llm):
    system, shop_file = shop
    scripted, _ = llm
    task_id = order(system, shop_file, "initech", 100)
    work(system)
    told = scripted.requests[1]["messages"][-1]
    assert told["role"] == "tool" and '"status": "denied"' in told["content"]
    assert orders(shop_file) == []
    assert system.performed_actions(task_id=task_id) == []
