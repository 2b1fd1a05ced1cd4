"""The OpenAI Agents SDK adapter: an agent whose scripted model calls a governed tool.

The model is the SDK's own `ScriptedModel` (no network); the tool is a real function
tool that counts the purchase orders it raises.
"""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("agents")

from agents import (
    Agent,
    RunConfig,
    Runner,
    RunResult,
    RunState,
    ToolCallOutputItem,
    function_tool,
)
from agents.testing import ScriptedModel, assistant_message, function_call

from charter.errors import Conflict
from charter.integrations.governed import GovernedAction
from charter.integrations.openai_agents import GovernedTool
from charter.system import Charter

RUN = RunConfig(tracing_disabled=True)
ALLOWED = {"vendor": "globex", "amount": 800}
FROZEN = {"vendor": "initech", "amount": 800}
ABOVE_LIMIT = {"vendor": "globex", "amount": 8000}


class Purchasing:
    """A buyer agent with one governed tool, and the orders that tool really raised."""

    def __init__(self, charter: Charter, *calls: dict[str, object]) -> None:
        self.orders: list[tuple[str, int]] = []

        @function_tool
        def create_purchase_order(vendor: str, amount: int) -> str:
            """Raise a purchase order with a vendor."""
            self.orders.append((vendor, amount))
            return f"PO-{len(self.orders)} raised: {amount} with {vendor}"

        self.governed = GovernedTool(create_purchase_order, GovernedAction(
            charter, "buyer-bot-1", "purchase.create", "Vendor::{vendor}"))
        self.model = ScriptedModel([
            [function_call("create_purchase_order", args, call_id=f"call-{n}")
             for n, args in enumerate(calls)],
            [assistant_message("done")]])
        self.agent = Agent(name="buyer", model=self.model, tools=[self.governed.tool])

    def run(self, start: str | RunState = "buy what we need") -> RunResult:
        return Runner.run_sync(self.agent, start, run_config=RUN)


def outputs(result: RunResult) -> dict[str, str]:
    """Each tool call's result, as the model got it, by call id."""
    found = {}
    for item in result.new_items:
        if isinstance(item, ToolCallOutputItem):
            raw = item.raw_item
            call_id = raw["call_id"] if isinstance(raw, dict) else raw.call_id
            found[call_id] = str(item.output)
    return found


def test_an_allowed_call_runs_once(acme: Charter):
    buyer = Purchasing(acme, ALLOWED)
    result = buyer.run()
    assert buyer.orders == [("globex", 800)]
    assert result.interruptions == []
    assert outputs(result) == {"call-0": "PO-1 raised: 800 with globex"}
    assert result.final_output == "done"
    assert acme.approvals() == []


def test_a_denied_call_never_runs_and_the_model_is_told_why(acme: Charter):
    buyer = Purchasing(acme, FROZEN)
    result = buyer.run()
    assert buyer.orders == []
    assert result.interruptions == []
    said = outputs(result)["call-0"]
    assert said.startswith("Charter refused: buyer-bot-1 may not purchase.create on "
                           "Vendor::initech")
    assert "frozen-vendors-blocked" in said and "the tool was not run" in said
    seen_by_model = buyer.model.last_call
    assert seen_by_model is not None and said in str(seen_by_model.input)


def test_an_escalated_call_waits_for_approval_then_runs_exactly_once(acme: Charter):
    buyer = Purchasing(acme, ABOVE_LIMIT)
    first = buyer.run()
    assert buyer.orders == []
    (interruption,) = first.interruptions
    approval_id = buyer.governed.approval_id(interruption)
    assert approval_id is not None
    approval = acme.approval(approval_id)
    assert approval.status == "pending" and approval.approvers == ("james.liu",)
    assert approval.request["context"] == {"amount": 8000}

    acme.approve(approval_id, approver="james.liu", comment="budgeted")
    state = first.to_state()
    state.approve(interruption)
    resumed = buyer.run(state)

    assert buyer.orders == [("globex", 8000)]
    assert outputs(resumed) == {"call-0": "PO-1 raised: 8000 with globex"}
    assert resumed.final_output == "done"
    assert acme.approval(approval_id).status == "executed"
    with pytest.raises(Conflict, match="already executed"):
        acme.execute_approved(approval_id, "buyer-bot-1", "purchase.create",
                              "Vendor::globex", {"amount": 8000})
    assert len(acme.approvals()) == 1


def test_a_serialized_run_state_resumes_the_same_way(acme: Charter):
    buyer = Purchasing(acme, ABOVE_LIMIT)
    first = buyer.run()
    (interruption,) = first.interruptions
    approval_id = buyer.governed.approval_id(interruption)
    assert approval_id is not None
    acme.approve(approval_id, approver="james.liu")
    state = asyncio.run(RunState.from_json(buyer.agent, first.to_state().to_json()))
    (restored,) = state.get_interruptions()
    state.approve(restored)
    buyer.run(state)
    assert buyer.orders == [("globex", 8000)]
    assert acme.approval(approval_id).status == "executed"


def test_resumed_before_anyone_approved_it_does_not_run(acme: Charter):
    buyer = Purchasing(acme, ABOVE_LIMIT)
    first = buyer.run()
    (interruption,) = first.interruptions
    approval_id = buyer.governed.approval_id(interruption)
    state = first.to_state()
    state.approve(interruption)  # the SDK's approval, without Charter's
    resumed = buyer.run(state)
    assert buyer.orders == []
    said = outputs(resumed)["call-0"]
    assert said == (f"Charter approval {approval_id} still waits for james.liu "
                    "(0 of 1 approvals); the tool was not run")
    assert acme.approval(str(approval_id)).status == "pending"


def test_a_rejected_approval_does_not_run_and_the_model_hears_why(acme: Charter):
    buyer = Purchasing(acme, ABOVE_LIMIT)
    first = buyer.run()
    (interruption,) = first.interruptions
    approval_id = buyer.governed.approval_id(interruption)
    assert approval_id is not None
    acme.reject(approval_id, approver="james.liu", comment="use the framework contract")
    state = first.to_state()
    state.approve(interruption)
    resumed = buyer.run(state)
    assert buyer.orders == []
    assert outputs(resumed)["call-0"] == (
        f"Charter approval {approval_id} was rejected by james.liu: use the framework "
        "contract; the tool was not run")


def test_one_turn_with_an_allowed_a_denied_and_an_escalated_call(acme: Charter):
    buyer = Purchasing(acme, ALLOWED, FROZEN, ABOVE_LIMIT)
    first = buyer.run()
    assert buyer.orders == [("globex", 800)]
    (interruption,) = first.interruptions
    assert interruption.arguments == '{"vendor":"globex","amount":8000}'
    approval_id = buyer.governed.approval_id(interruption)
    assert approval_id is not None
    acme.approve(approval_id, approver="james.liu")
    state = first.to_state()
    state.approve(interruption)
    buyer.run(state)
    assert buyer.orders == [("globex", 800), ("globex", 8000)]


def test_a_tool_that_decides_its_own_approvals_is_not_accepted(acme: Charter):
    @function_tool(needs_approval=True)
    def wire_money(vendor: str, amount: int) -> str:
        """Wire money to a vendor."""
        return "wired"

    with pytest.raises(ValueError, match="needs_approval"):
        GovernedTool(wire_money, GovernedAction(acme, "treasury-bot", "payment.release",
                                                "Vendor::{vendor}"))
