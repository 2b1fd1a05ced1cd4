"""The LangGraph adapter: a graph whose scripted chat model calls a governed tool.

The graph is LangGraph's own agent loop: a model node, and a `ToolNode` that gets each
tool call as its own task (`Send`), with a checkpointer so an interrupted call can be
resumed. The model is a scripted `BaseChatModel` (no network); the tool is a real
LangChain tool that counts the purchase orders it raises.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

pytest.importorskip("langgraph")

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, create_react_agent
from langgraph.types import Command, Send

from charter.errors import Conflict
from charter.integrations.governed import GovernedAction
from charter.integrations.langgraph import GovernedTool, governed_tool
from charter.system import Charter

ALLOWED = {"vendor": "globex", "amount": 800}
FROZEN = {"vendor": "initech", "amount": 800}
ABOVE_LIMIT = {"vendor": "globex", "amount": 8000}


class ScriptedChatModel(BaseChatModel):
    """A chat model that answers with the next message of its script."""

    script: list[AIMessage]

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.script.pop(0))])


class Purchasing:
    """A buyer agent with one governed tool, and the orders that tool really raised."""

    def __init__(self, charter: Charter, *calls: dict[str, object]) -> None:
        self.orders: list[tuple[str, int]] = []

        @tool
        def create_purchase_order(vendor: str, amount: int) -> str:
            """Raise a purchase order with a vendor."""
            self.orders.append((vendor, amount))
            return f"PO-{len(self.orders)} raised: {amount} with {vendor}"

        self.tool = governed_tool(create_purchase_order, GovernedAction(
            charter, "buyer-bot-1", "purchase.create", "Vendor::{vendor}"))
        self.model = ScriptedChatModel(script=[
            AIMessage("", tool_calls=[
                {"name": "create_purchase_order", "args": args, "id": f"call-{n}"}
                for n, args in enumerate(calls)]),
            AIMessage("done")])
        self.thread = {"configurable": {"thread_id": str(uuid.uuid4())}}
        self.graph = self._agent_loop()

    def _agent_loop(self) -> Any:
        def call_model(state: MessagesState) -> dict[str, list[BaseMessage]]:
            return {"messages": [self.model.invoke(state["messages"])]}

        def each_call_its_own_task(state: MessagesState) -> Any:
            last = state["messages"][-1]
            assert isinstance(last, AIMessage)
            return [Send("tools", [call]) for call in last.tool_calls] or END

        builder = StateGraph(MessagesState)
        builder.add_node("model", call_model)
        builder.add_node("tools", ToolNode([self.tool]))
        builder.add_edge(START, "model")
        builder.add_conditional_edges("model", each_call_its_own_task, ["tools", END])
        builder.add_edge("tools", "model")
        return builder.compile(checkpointer=InMemorySaver())

    def run(self, start: Any = None) -> dict[str, Any]:
        start = start or {"messages": [("user", "buy what we need")]}
        result: dict[str, Any] = self.graph.invoke(start, self.thread)
        return result


def tool_messages(result: dict[str, Any]) -> dict[str, ToolMessage]:
    return {m.tool_call_id: m for m in result["messages"] if isinstance(m, ToolMessage)}


def test_an_allowed_call_runs_once(acme: Charter):
    buyer = Purchasing(acme, ALLOWED)
    result = buyer.run()
    assert buyer.orders == [("globex", 800)]
    assert "__interrupt__" not in result
    answer = tool_messages(result)["call-0"]
    assert answer.content == "PO-1 raised: 800 with globex" and answer.status == "success"
    assert result["messages"][-1].content == "done"


def test_a_denied_call_never_runs_and_the_model_is_told_why(acme: Charter):
    buyer = Purchasing(acme, FROZEN)
    result = buyer.run()
    assert buyer.orders == []
    assert "__interrupt__" not in result
    answer = tool_messages(result)["call-0"]
    assert answer.status == "error"
    assert str(answer.content).startswith("Charter refused: buyer-bot-1 may not "
                                          "purchase.create on Vendor::initech")
    assert "frozen-vendors-blocked" in str(answer.content)


def test_an_escalated_call_waits_in_an_interrupt_then_runs_exactly_once(acme: Charter):
    buyer = Purchasing(acme, ABOVE_LIMIT)
    first = buyer.run()
    assert buyer.orders == []
    (waiting,) = first["__interrupt__"]
    assert waiting.value["outcome"] == "escalate"
    assert waiting.value["approvers"] == ["james.liu"]
    assert waiting.value["request"] == {"member": "buyer-bot-1", "action": "purchase.create",
                                        "resource": "Vendor::globex",
                                        "context": {"amount": 8000}}
    approval_id = waiting.value["approval_id"]
    assert acme.approval(approval_id).status == "pending"

    acme.approve(approval_id, approver="james.liu", comment="budgeted")
    resumed = buyer.run(Command(resume="approved"))

    assert buyer.orders == [("globex", 8000)]
    assert tool_messages(resumed)["call-0"].content == "PO-1 raised: 8000 with globex"
    assert resumed["messages"][-1].content == "done"
    assert acme.approval(approval_id).status == "executed"
    assert [a.id for a in acme.approvals()] == [approval_id]  # resuming asked nothing again
    with pytest.raises(Conflict, match="already executed"):
        acme.execute_approved(approval_id, "buyer-bot-1", "purchase.create",
                              "Vendor::globex", {"amount": 8000})


def test_resumed_before_anyone_approved_it_does_not_run(acme: Charter):
    buyer = Purchasing(acme, ABOVE_LIMIT)
    (waiting,) = buyer.run()["__interrupt__"]
    approval_id = waiting.value["approval_id"]
    resumed = buyer.run(Command(resume="approved"))  # the graph's resume, not Charter's
    assert buyer.orders == []
    answer = tool_messages(resumed)["call-0"]
    assert answer.status == "error"
    assert answer.content == (f"Charter approval {approval_id} still waits for james.liu "
                              "(0 of 1 approvals); the tool was not run")
    assert [(a.id, a.status) for a in acme.approvals()] == [(approval_id, "pending")]


def test_a_rejected_approval_does_not_run_and_the_model_hears_why(acme: Charter):
    buyer = Purchasing(acme, ABOVE_LIMIT)
    (waiting,) = buyer.run()["__interrupt__"]
    approval_id = waiting.value["approval_id"]
    acme.reject(approval_id, approver="james.liu", comment="use the framework contract")
    resumed = buyer.run(Command(resume="rejected"))
    assert buyer.orders == []
    assert tool_messages(resumed)["call-0"].content == (
        f"Charter approval {approval_id} was rejected by james.liu: use the framework "
        "contract; the tool was not run")


def test_one_turn_with_an_allowed_a_denied_and_an_escalated_call(acme: Charter):
    buyer = Purchasing(acme, ALLOWED, FROZEN, ABOVE_LIMIT)
    first = buyer.run()
    assert buyer.orders == [("globex", 800)]
    (waiting,) = first["__interrupt__"]
    acme.approve(waiting.value["approval_id"], approver="james.liu")
    resumed = buyer.run(Command(resume="approved"))
    assert buyer.orders == [("globex", 800), ("globex", 8000)]
    answers = tool_messages(resumed)
    assert [answers[f"call-{n}"].status for n in range(3)] == ["success", "error", "success"]


def test_an_async_graph_run_waits_and_resumes_the_same_way(acme: Charter):
    buyer = Purchasing(acme, ABOVE_LIMIT)

    async def run_and_resume() -> dict[str, Any]:
        first = await buyer.graph.ainvoke({"messages": [("user", "buy")]}, buyer.thread)
        (waiting,) = first["__interrupt__"]
        assert buyer.orders == []
        acme.approve(waiting.value["approval_id"], approver="james.liu")
        resumed: dict[str, Any] = await buyer.graph.ainvoke(Command(resume="approved"),
                                                            buyer.thread)
        return resumed

    resumed = asyncio.run(run_and_resume())
    assert buyer.orders == [("globex", 8000)]
    assert tool_messages(resumed)["call-0"].content == "PO-1 raised: 8000 with globex"


@pytest.mark.filterwarnings("ignore:create_react_agent has been moved")
def test_the_prebuilt_react_agent_waits_and_resumes_the_same_way(acme: Charter):
    buyer = Purchasing(acme, ABOVE_LIMIT)
    agent = create_react_agent(buyer.model, [buyer.tool], checkpointer=InMemorySaver())
    (waiting,) = agent.invoke({"messages": [("user", "buy")]}, buyer.thread)["__interrupt__"]
    assert buyer.orders == []
    acme.approve(waiting.value["approval_id"], approver="james.liu")
    agent.invoke(Command(resume="approved"), buyer.thread)
    assert buyer.orders == [("globex", 8000)]
    assert acme.approval(waiting.value["approval_id"]).status == "executed"


def test_outside_a_graph_an_escalated_call_is_not_run(acme: Charter):
    buyer = Purchasing(acme)
    assert isinstance(buyer.tool, GovernedTool)
    assert buyer.tool.invoke(ALLOWED) == "PO-1 raised: 800 with globex"
    said = buyer.tool.invoke(ABOVE_LIMIT)
    assert buyer.orders == [("globex", 800)]
    (approval,) = acme.approvals(status="pending")
    assert said.startswith("Charter escalated: buyer-bot-1 may not purchase.create on "
                           "Vendor::globex without approval from james.liu")
    assert said.endswith(f"the tool was not run: it waits for approval {approval.id}")
