"""The OpenAI Agents SDK: a function tool behind Charter's authority check.

Charter is asked from the tool's `needs_approval`, so an escalated call becomes the SDK's
own tool-approval interruption (`result.interruptions`). When a person has granted the
Charter approval, approve the interruption on the run state and run again: the call then
goes through `execute_approved` and the tool runs, once. A denied call, or a resumed call
whose approval was not granted (still pending, rejected, expired), never runs: the model
gets Charter's reasons as the tool's result.

What Charter said about a call is kept by the `GovernedTool` between the interruption and
the resume, so resume with the same `GovernedTool` (a run state serialized with
`to_json` may be restored, in the same process). A call the SDK runs without asking
first (after `always_approve`, or resumed elsewhere) is authorized afresh, never run
unasked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

from agents import FunctionTool, RunContextWrapper, ToolApprovalItem
from agents.tool_context import ToolContext

from charter.integrations.governed import Arguments, GovernedAction, Verdict

__all__ = ["GovernedTool"]


class GovernedTool:
    """An Agents SDK function tool whose calls Charter authorizes before they run.

    Give `tool` to the agent: `Agent(..., tools=[GovernedTool(buy, governed).tool])`.
    """

    def __init__(self, tool: FunctionTool, governed: GovernedAction) -> None:
        if tool.needs_approval is not False:
            raise ValueError(f"tool {tool.name} sets needs_approval: with Charter, Charter "
                             "decides which calls wait for a person")
        self.governed = governed
        self._inner = tool
        self._asked: dict[str, tuple[dict[str, Any], Verdict]] = {}
        """Call id -> the arguments Charter was asked about, and its verdict."""
        self.tool: FunctionTool = dataclasses.replace(
            tool, needs_approval=self._needs_approval, on_invoke_tool=self._invoke)

    def approval_id(self, item: ToolApprovalItem) -> str | None:
        """The Charter approval an interrupted call of this tool waits for (None for an
        interruption this tool did not raise)."""
        call_id = getattr(item.raw_item, "call_id", None)
        asked = self._asked.get(call_id) if isinstance(call_id, str) else None
        return None if asked is None else asked[1].approval_id

    async def _needs_approval(self, run: RunContextWrapper[Any], arguments: dict[str, Any],
                              call_id: str) -> bool:
        verdict = await asyncio.to_thread(self.governed.authorize, arguments)
        self._asked[call_id] = (dict(arguments), verdict)
        return verdict.outcome == "escalate"

    async def _invoke(self, context: ToolContext[Any], arguments_json: str) -> Any:
        arguments = _arguments(arguments_json)
        if arguments is None:
            return (f"Charter refused: the arguments of {self.tool.name} are not a JSON "
                    "object; the tool was not run")
        verdict = await asyncio.to_thread(self._verdict, context.tool_call_id, arguments)
        if not verdict.runs:
            return verdict.message
        return await self._inner.on_invoke_tool(context, arguments_json)

    def _verdict(self, call_id: str, arguments: Arguments) -> Verdict:
        """Charter's final word on a call the SDK is about to run."""
        asked = self._asked.pop(call_id, None)
        if asked is None or asked[0] != arguments:  # the SDK did not ask about these
            return self.governed.authorize(arguments)
        verdict = asked[1]
        if verdict.outcome == "escalate" and verdict.approval_id is not None:
            # Run only after an approved interruption: use Charter's approval, once.
            return self.governed.execute_approved(verdict.approval_id, arguments)
        return verdict


def _arguments(arguments_json: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(arguments_json or "{}")
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None
