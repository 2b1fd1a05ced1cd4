"""The `openai` engine: any OpenAI-compatible chat-completions endpoint.

Hosted APIs and local servers (vLLM, llama.cpp, Ollama) alike. The task, its hand-off
packet and the member's actions become messages and tools; every tool call the model
makes is authorized by Charter before it runs, and what Charter said (done, denied, or
escalated to whom) goes back to the model as the tool's result. A run whose calls wait
for approval pauses with the conversation saved; when the approvals are settled, the
model hears how (the approved call was done, or refused) and goes on.

Cost is the token usage the endpoint reports times the prices in the org.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from charter.engines.base import ActionCall, ActionResult, EngineError, EngineResult, RunContext
from charter.engines.retry import post_with_retries
from charter.handoff import HandoffPacket
from charter.org import Org
from charter.tasks import Task
from charter.types import OpenAIEngine

FAIL_TOOL = "fail_task"
_JSON_TYPES = {"Long": "integer", "Amount": "number", "String": "string", "Bool": "boolean"}


class _Function(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    arguments: str = "{}"


class _ToolCall(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    function: _Function


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    content: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _Choice(BaseModel):
    model_config = ConfigDict(extra="allow")
    message: _Message


class _Usage(BaseModel):
    model_config = ConfigDict(extra="allow")
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _Reply(BaseModel):
    """The part of a chat-completions reply Charter reads."""

    model_config = ConfigDict(extra="allow")
    choices: list[_Choice]
    usage: _Usage | None = None


class ChatCompletions:
    def __init__(self, spec: OpenAIEngine) -> None:
        self.spec = spec

    async def run(self, task: Task, handoff: HandoffPacket | None,
                  context: RunContext) -> EngineResult:
        tools = Toolbox(context.org, [context.org.task_types[task.type].action,
                                      *self.spec.actions])
        saved = context.resume or {}
        messages: list[dict[str, Any]] = list(saved.get("messages") or [])
        if not messages:
            messages = [{"role": "system", "content": self._instructions(context)},
                        {"role": "user", "content": _task_message(context.org, task, handoff)}]
        if context.settled:
            messages.append({"role": "user", "content": _settled_message(context.settled)})
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "model_calls": 0}
        taken: list[ActionResult] = []
        failure: str | None = None
        async with httpx.AsyncClient(timeout=self.spec.timeout.total_seconds()) as client:
            for _ in range(self.spec.max_turns):
                reply = await self._complete(client, messages, tools)
                usage["model_calls"] += 1
                if reply.usage is not None:
                    usage["prompt_tokens"] += reply.usage.prompt_tokens
                    usage["completion_tokens"] += reply.usage.completion_tokens
                message = reply.choices[0].message
                messages.append(_assistant(message))
                if not message.tool_calls:
                    return EngineResult(
                        success=failure is None, outputs=message.content or "",
                        reason=failure or "", cost=self._cost(usage), usage=usage,
                        actions=tuple(taken), resume={"messages": messages})
                for tool_call in message.tool_calls:
                    answer, result = await self._call_tool(tool_call, tools, context)
                    if result is not None:
                        taken.append(result)
                    elif tool_call.function.name == FAIL_TOOL:
                        failure = answer
                    messages.append({"role": "tool", "tool_call_id": tool_call.id,
                                     "content": answer})
        raise EngineError(f"the model did not finish within {self.spec.max_turns} turns "
                          "(engine `max_turns`)")

    async def _complete(self, client: httpx.AsyncClient, messages: list[dict[str, Any]],
                        tools: Toolbox) -> _Reply:
        body = {"model": self.spec.model, "messages": messages, "tools": tools.schemas(),
                "tool_choice": "auto"}
        response = await post_with_retries(client, self.spec.base_url.rstrip("/")
                                           + "/chat/completions", json=body,
                                           headers=self._headers(), retries=2)
        try:
            reply = _Reply.model_validate(response.json())
        except (ValueError, ValidationError) as error:
            raise EngineError(f"{self.spec.base_url} sent a reply that is not a chat "
                              f"completion: {str(error)[:300]}") from None
        if not reply.choices:
            raise EngineError(f"{self.spec.base_url} sent a reply without choices")
        return reply

    async def _call_tool(self, tool_call: _ToolCall, tools: Toolbox,
                         context: RunContext) -> tuple[str, ActionResult | None]:
        """What the model is told, and the action result when the call was an action."""
        name = tool_call.function.name
        try:
            arguments = json.loads(tool_call.function.arguments or "{}")
        except json.JSONDecodeError:
            return f"error: the arguments of {name} are not JSON; call it again", None
        if not isinstance(arguments, dict):
            return f"error: the arguments of {name} must be a JSON object", None
        if name == FAIL_TOOL:
            return str(arguments.get("reason") or "the model gave up"), None
        action = tools.action_of(name)
        if action is None:
            return f"error: there is no tool {name!r}; use one of {tools.names()}", None
        resource = arguments.pop("resource", None)
        if not isinstance(resource, str) or not resource:
            return f"error: {name} needs `resource` (Type::id)", None
        result = await context.gate.act(ActionCall(action, resource, arguments))
        return json.dumps({"status": result.status, "message": result.message,
                           "output": result.output}, default=str), result

    def _headers(self) -> dict[str, str]:
        if self.spec.api_key_env is None:
            return {}
        key = os.environ.get(self.spec.api_key_env)
        if not key:
            raise EngineError(f"set the environment variable {self.spec.api_key_env} to the "
                              f"API key for {self.spec.base_url}")
        return {"Authorization": f"Bearer {key}"}

    def _instructions(self, context: RunContext) -> str:
        member = context.member
        who = f"{member.display_name}, {member.title}" if member.title else member.display_name
        return (f"You are {who} at {context.org.spec.org.name}. Do the task you are given "
                "with the tools. Every tool call is checked against your authority before "
                "it runs: a denied call is not done; an escalated call waits for a "
                "person's approval and is done only once approved. When the task cannot "
                f"be done, call {FAIL_TOOL} with the reason. When you are finished, reply "
                "with a short summary and no tool call." + (
                    f"\n\n{self.spec.instructions}" if self.spec.instructions else ""))

    def _cost(self, usage: dict[str, int]) -> Decimal:
        return (Decimal(usage["prompt_tokens"]) * self.spec.input_price_per_1k
                + Decimal(usage["completion_tokens"]) * self.spec.output_price_per_1k
                ) / 1000


class Toolbox:
    """The member's actions as chat-completions tools (names without dots)."""

    def __init__(self, org: Org, action_names: list[str]) -> None:
        self.org = org
        self._by_name = {name.replace(".", "_"): name for name in dict.fromkeys(action_names)}

    def action_of(self, tool: str) -> str | None:
        return self._by_name.get(tool)

    def names(self) -> str:
        return ", ".join([*self._by_name, FAIL_TOOL])

    def schemas(self) -> list[dict[str, Any]]:
        found = [self._schema(tool, action) for tool, action in self._by_name.items()]
        found.append({"type": "function", "function": {
            "name": FAIL_TOOL, "description": "Give up the task, saying why.",
            "parameters": {"type": "object", "properties": {"reason": {"type": "string"}},
                           "required": ["reason"]}}})
        return found

    def _schema(self, tool: str, action: str) -> dict[str, Any]:
        spec = self.org.spec.actions[action]
        kinds = spec.resources or tuple(self.org.spec.resources)
        properties: dict[str, Any] = {"resource": {
            "type": "string",
            "description": f"what it applies to, as Type::id ({' or '.join(kinds)})"}}
        required = ["resource"]
        for name, kind in spec.context.items():
            properties[name] = {"type": _JSON_TYPES[kind.rstrip("?")]}
            if not kind.endswith("?"):
                required.append(name)
        return {"type": "function", "function": {
            "name": tool, "description": spec.description or action,
            "parameters": {"type": "object", "properties": properties,
                           "required": required}}}


def _task_message(org: Org, task: Task, handoff: HandoffPacket | None) -> str:
    kind = org.task_types[task.type]
    about = {"id": task.id, "type": task.type, "description": kind.description,
             "subject": task.subject, "payload": task.payload, "priority": task.priority,
             "deadline": task.deadline}
    text = "Your task:\n```json\n" + json.dumps(about, indent=2, default=str) + "\n```"
    if handoff is not None:
        text += ("\n\nIt was worked on before; what happened (attempts, approvals, notes "
                 "on the subject):\n```json\n"
                 + json.dumps(handoff.to_json(), indent=2, default=str) + "\n```")
    return text


def _settled_message(settled: tuple[ActionResult, ...]) -> str:
    lines = ["Charter settled the approvals you were waiting for:"]
    for result in settled:
        output = "" if result.output is None else f" Result: {json.dumps(result.output)}"
        lines.append(f"- {result.message}.{output}")
    lines.append("Go on with the task.")
    return "\n".join(lines)


def _assistant(message: _Message) -> dict[str, Any]:
    said: dict[str, Any] = {"role": "assistant", "content": message.content}
    if message.tool_calls:
        said["tool_calls"] = [{"id": call.id, "type": "function",
                               "function": {"name": call.function.name,
                                            "arguments": call.function.arguments}}
                              for call in message.tool_calls]
    return said
