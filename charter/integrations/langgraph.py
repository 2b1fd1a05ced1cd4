"""LangGraph: a LangChain tool behind Charter's authority check.

Inside a graph run, a `GovernedTool` asks Charter before the tool it wraps runs.
Allowed, the tool runs. Denied, it never runs: the model gets Charter's reasons as the
tool's result (a `ToolMessage` with status "error"). Escalated, the call waits in a
LangGraph `interrupt` whose value is the verdict (`approval_id`, `approvers`, `message`,
`request`); when a person has decided the Charter approval, resume the graph with
`Command(resume=...)`. Charter's approval, not the resume value, decides: a granted one
is used through `execute_approved` and the tool runs once; otherwise the model is told
why it did not.

A resumed graph runs the interrupted call again from its start, so Charter's first
answer is taken in a LangGraph task: the checkpoint keeps it, and the resumed call reads
it instead of asking again (which would open a second approval). Tasks are told apart by
the order they are called in, so give each tool call its own graph task, as
`create_react_agent` does and as `Send("tools", [tool_call])` to a `ToolNode` does. A
call whose kept answer names another request is refused, never run on it.

Outside a graph run (a bare `invoke`), the tool is authorized the same way, but an
escalated call cannot wait: it is not run, and the result says which approval it needs.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.messages.tool import ToolCall
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import run_in_executor
from langchain_core.tools import BaseTool
from langgraph.config import get_config
from langgraph.func import task
from langgraph.types import interrupt
from pydantic import InstanceOf

from charter.integrations.governed import GovernedAction, Verdict

__all__ = ["GovernedTool", "governed_tool"]

ToolInput = str | dict[str, Any] | ToolCall


@task
def _first_verdict(governed: GovernedAction, arguments: dict[str, Any]) -> dict[str, Any]:
    """Charter's answer when the call was first made, kept in the checkpoint."""
    return governed.authorize(arguments).to_json()


class GovernedTool(BaseTool):
    """A LangChain tool whose calls Charter authorizes before they run; made by
    `governed_tool`."""

    tool: BaseTool
    governed: InstanceOf[GovernedAction]

    def invoke(self, input: ToolInput, config: RunnableConfig | None = None,
               **kwargs: Any) -> Any:
        verdict = self.verdict(input)
        if not verdict.runs:
            return self._refusal(input, verdict)
        return self.tool.invoke(input, config, **kwargs)

    async def ainvoke(self, input: ToolInput, config: RunnableConfig | None = None,
                      **kwargs: Any) -> Any:
        verdict = await run_in_executor(None, self.verdict, input)
        if not verdict.runs:
            return self._refusal(input, verdict)
        return await self.tool.ainvoke(input, config, **kwargs)

    def _run(self, *args: Any, **kwargs: Any) -> Any:
        """`run` with parsed arguments: governed as `invoke` is."""
        return self.invoke(args[0] if args else kwargs)

    def verdict(self, input: ToolInput) -> Verdict:
        """Charter's final word on a call: asked once, then (for an escalation, in a
        graph run) waited for in an interrupt and used through `execute_approved`."""
        arguments = self._arguments(input)
        if not _in_graph_run():
            return self.governed.authorize(arguments)
        verdict = Verdict.from_json(_first_verdict(self.governed, arguments).result())
        if verdict.request != self.governed.asked(arguments):
            return Verdict("deny", "Charter's answer to this call is not in the checkpoint "
                                   "(several governed calls share one graph task: give each "
                                   "tool call its own); the tool was not run",
                           self.governed.asked(arguments))
        if verdict.outcome != "escalate" or verdict.approval_id is None:
            return verdict
        interrupt(verdict.to_json())  # returns once the graph is resumed
        return self.governed.execute_approved(verdict.approval_id, arguments)

    def _arguments(self, input: ToolInput) -> dict[str, Any]:
        """The arguments the model gave (not those the graph injects)."""
        visible = list(self.tool.args)
        if isinstance(input, str):
            return {visible[0]: input} if visible else {}
        raw = input.get("args", {}) if input.get("type") == "tool_call" else input
        return {name: value for name, value in raw.items() if name in visible}

    def _refusal(self, input: ToolInput, verdict: Verdict) -> str | ToolMessage:
        if isinstance(input, dict) and input.get("type") == "tool_call":
            return ToolMessage(verdict.message, tool_call_id=input.get("id"), name=self.name,
                               status="error")
        return verdict.message


def governed_tool(tool: BaseTool, governed: GovernedAction) -> GovernedTool:
    """`tool` behind Charter: same name, description and arguments, for the model."""
    return GovernedTool(name=tool.name, description=tool.description,
                        args_schema=tool.args_schema, return_direct=tool.return_direct,
                        tags=tool.tags, metadata=tool.metadata, tool=tool,
                        governed=governed)


def _in_graph_run() -> bool:
    """Whether this call runs as part of a LangGraph graph (which can interrupt)."""
    try:
        configurable = get_config().get("configurable", {})
    except RuntimeError:
        return False
    return "checkpoint_ns" in configurable
