"""Tool results as Charter's MCP servers give them: JSON in, JSON out.

A result carries its value twice, as MCP asks: as structured content (a JSON object)
and as a text block holding the same JSON, for clients that read only text. A refusal
is a tool error (`isError`) whose text is Charter's message and whose structured
content is Charter's one error shape, `{"error": {"type", "message", "details"}}`.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.types import CallToolResult, TextContent
from pydantic_core import to_jsonable_python

from charter.errors import CharterError


def plain(value: Any) -> Any:
    """`value` as JSON types: decimals and times as text, anything else by its `str`."""
    return to_jsonable_python(value, fallback=str)


def json_result(value: dict[str, Any]) -> CallToolResult:
    """A successful tool result holding `value`."""
    body = plain(value)
    return CallToolResult(content=[_text(json.dumps(body, ensure_ascii=False))],
                          structured_content=body)


def error_result(kind: str, message: str, details: Any = None) -> CallToolResult:
    """A tool error: `message` for people and models, the error shape for programs."""
    body = {"error": {"type": kind, "message": message, "details": plain(details)}}
    return CallToolResult(content=[_text(message)], structured_content=body, is_error=True)


def refusal_result(error: CharterError) -> CallToolResult:
    """The tool error for a Charter refusal (its type, message and details)."""
    return error_result(type(error).__name__, error.message, error.details)


def result_size(result: CallToolResult) -> int:
    """The size in bytes of a result as JSON, as it goes back to the caller."""
    dumped = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    return len(json.dumps(dumped, ensure_ascii=False).encode("utf-8"))


def _text(text: str) -> TextContent:
    return TextContent(type="text", text=text)
