"""A scripted OpenAI-compatible chat-completions server for tests.

Each model name has a script: a function from the conversation so far to the next
reply (tool calls, or a final message). The server checks the request's shape, records
every request, and reports token usage as the endpoint of a real model would.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, HTTPException, Request

Reply = dict[str, Any]
"""{"content": str} or {"tool_calls": [{"name": ..., "arguments": {...}}]}"""
Script = Callable[[list[dict[str, Any]]], Reply]


@dataclass
class ScriptedLLM:
    scripts: dict[str, Script]
    requests: list[dict[str, Any]] = field(default_factory=list)
    completion_tokens: int = 25

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def complete(request: Request) -> dict[str, Any]:
            body = await request.json()
            self.requests.append(body)
            script = self.scripts.get(body.get("model"))
            if script is None:
                raise HTTPException(404, f"no model {body.get('model')!r}")
            reply = script(body["messages"])
            calls = [{"id": f"call_{len(self.requests)}_{n}", "type": "function",
                      "function": {"name": call["name"],
                                   "arguments": json.dumps(call["arguments"])}}
                     for n, call in enumerate(reply.get("tool_calls", []))]
            message: dict[str, Any] = {"role": "assistant",
                                       "content": reply.get("content")}
            if calls:
                message["tool_calls"] = calls
            prompt = sum(len(str(m.get("content") or "")) for m in body["messages"]) // 4
            return {"id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion",
                    "model": body["model"],
                    "choices": [{"index": 0, "message": message,
                                 "finish_reason": "tool_calls" if calls else "stop"}],
                    "usage": {"prompt_tokens": prompt,
                              "completion_tokens": self.completion_tokens,
                              "total_tokens": prompt + self.completion_tokens}}

        return app


def task_of(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The task the engine put in its first user message (a JSON block)."""
    first = next(m for m in messages if m["role"] == "user")
    found = re.search(r"```json\n(.*?)\n```", first["content"], re.DOTALL)
    assert found is not None, "the task is not in the first user message"
    return dict(json.loads(found.group(1)))


def buyer(messages: list[dict[str, Any]]) -> Reply:
    """Raises the purchase order the task asks for, then reports what Charter said."""
    last = messages[-1]
    if last["role"] == "user" and len([m for m in messages if m["role"] == "user"]) == 1:
        payload = task_of(messages)["payload"]
        return {"tool_calls": [{"name": "purchase_create", "arguments": {
            "resource": payload["vendor"], "amount": payload["amount"]}}]}
    if last["role"] == "tool":
        said = json.loads(last["content"])
        return {"content": f"purchase: {said['status']}"}
    return {"content": "the approval is settled: " + last["content"].splitlines()[1]}
