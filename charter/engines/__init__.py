"""Engines: what runs an AI member's tasks. One module per kind; `build` picks it.

Kinds: `python` (a `module:function`), `http` (a signed webhook), `openai` (any
OpenAI-compatible chat-completions endpoint, with the member's actions as tools) and
`mcp` (a tool on an MCP server). Whatever an engine does in the world goes through
`RunContext.act`, so Charter's authority check is in the action path.
"""

from __future__ import annotations

from charter.engines.base import (
    ActionCall,
    ActionResult,
    Engine,
    EngineError,
    EngineResult,
    RunContext,
)
from charter.types import EngineSpec, HttpEngine, McpEngine, OpenAIEngine, PythonEngine

__all__ = ["ActionCall", "ActionResult", "Engine", "EngineError", "EngineResult",
           "RunContext", "build"]


def build(spec: EngineSpec) -> Engine:
    """The engine an org's `engine:` entry describes."""
    if isinstance(spec, PythonEngine):
        from charter.engines.python import PythonCallable
        return PythonCallable(spec)
    if isinstance(spec, HttpEngine):
        from charter.engines.http import Webhook
        return Webhook(spec)
    if isinstance(spec, OpenAIEngine):
        from charter.engines.openai import ChatCompletions
        return ChatCompletions(spec)
    if isinstance(spec, McpEngine):
        from charter.engines.mcp import McpTool
        return McpTool(spec)
    raise TypeError(f"no engine for {spec!r}")
