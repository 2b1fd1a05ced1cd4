"""The `mcp` engine: a tool on an MCP server does the task, called with the official MCP
client and only when Charter allows it.

Over stdio the server is the reference `mcp-server-time`, behind `tee`, which keeps a
copy of every message the client sends: the tests read in it whether the tool was
called. Over streamable HTTP the server is an in-process one whose tool records its
calls."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from charter.system import Charter
from tests.engines.orgs import edit_org
from tests.engines.servers import serve
from tests.engines.shop import work

TIME_SERVER = f"{shlex.quote(sys.executable)} -m mcp_server_time"
CLOCK_POLICIES = """\
@id("anyone-reads-clocks")
permit (principal, action == Action::"clock.read", resource is TimeZone);

@id("restricted-time-zones")
forbid (principal, action == Action::"clock.read", resource is TimeZone)
when { resource has restricted && resource.restricted };
"""


def clock_org(engine: dict[str, Any], autonomy: str = "autonomous") -> dict[str, Any]:
    """What the example org gains for these tests: time zones, reading a clock, and an
    agent whose engine is an MCP tool."""
    return {
        "resources": {"TimeZone": {
            "description": "An IANA time zone", "attributes": {"restricted": "Bool?"},
            "items": {"Antarctica/Troll": {"restricted": True}}}},
        "actions": {"clock.read": {"description": "Read the clock of a time zone",
                                   "resources": ["TimeZone"]}},
        "task_types": [{"id": "time_lookup", "description": "Tell the time somewhere",
                        "action": "clock.read", "value": 5, "timeout": "10m",
                        "autonomy_ceiling": "autonomous", "fallback": [{"retry": 1}]}],
        "members": [{"id": "clock-bot", "name": "Clock Agent", "kind": "ai",
                     "department": "operations", "reports_to": "nina.kapoor",
                     "capacity": 5, "engine": engine,
                     "autonomy": {"time_lookup": autonomy}}],
    }


@pytest.fixture
def clocks(system: Charter, workspace: Path, tmp_path: Path):
    """Loads the org with clock-bot running `engine` (by default, the time server's
    get_current_time behind a recording `tee`); returns the recorded messages' file."""
    (workspace / "policies" / "clocks.cedar").write_text(CLOCK_POLICIES)
    sent = tmp_path / "sent.jsonl"
    recorded = (f"sh -c {shlex.quote(f'tee -a {shlex.quote(str(sent))} | {TIME_SERVER}')}")

    def use(*, server: str = recorded, tool: str = "get_current_time",
            autonomy: str = "autonomous", **spec: Any) -> None:
        engine = {"kind": "mcp", "server": server, "tool": tool, **spec}
        system.load_org(edit_org(workspace, extra=clock_org(engine, autonomy)))

    use()
    return system, sent, use


def ask_time(system: Charter, zone: str, **payload: Any) -> str:
    task = system.submit_task("time_lookup", f"timezone:{zone}",
                              payload or {"arguments": {"timezone": zone}},
                              requester="nina.kapoor")
    system.assign_task(task.id, "clock-bot", actor="nina.kapoor")
    return task.id




def messages(sent: Path) -> list[dict[str, Any]]:
    """What the engine's MCP client sent the server."""
    return [json.loads(line) for line in sent.read_text().splitlines() if line.strip()]


def tool_calls(sent: Path) -> list[dict[str, Any]]:
    if not sent.exists():
        return []
    return [m["params"] for m in messages(sent) if m.get("method") == "tools/call"]


# -- stdio: the reference time server -------------------------------------------------------

def test_the_tool_is_called_with_the_mcp_client_and_the_outcome_recorded(clocks):
    system, sent, _ = clocks
    task_id = ask_time(system, "Europe/London")
    work(system, max_tasks=1, member="clock-bot")
    task = system.task(task_id)
    assert task.state == "done", task.reason
    outputs = task.result["outputs"]
    assert outputs["timezone"] == "Europe/London"
    assert outputs["datetime"].startswith("20") and outputs["day_of_week"]
    said = messages(sent)
    assert said[0]["method"] == "initialize"
    assert said[0]["params"]["clientInfo"]["name"] == "charter"
    assert tool_calls(sent) == [{"name": "get_current_time",
                                 "arguments": {"timezone": "Europe/London"}}]
    [performed] = system.performed_actions(task_id=task_id)
    assert (performed.member, performed.action, performed.resource) == (
        "clock-bot", "clock.read", "TimeZone::Europe/London")
    assert performed.output == outputs
    [outcome] = system.outcomes(member="clock-bot")
    assert (outcome.task_id, outcome.task_type, outcome.success) == (
        task_id, "time_lookup", True)


def test_a_denied_call_never_reaches_the_tool(clocks):
    system, sent, _ = clocks
    task_id = ask_time(system, "Antarctica/Troll")
    work(system, max_tasks=1, member="clock-bot")
    assert tool_calls(sent) == []
    assert system.performed_actions(task_id=task_id) == []
    task = system.task(task_id)
    assert task.state != "done"
    assert "Charter denied clock.read on TimeZone::Antarctica/Troll" in task.reason


def test_an_unknown_tool_fails_the_attempt_and_is_never_called(clocks):
    system, sent, use = clocks
    use(tool="get_the_weather")
    task_id = ask_time(system, "Europe/London")
    work(system, max_tasks=1, member="clock-bot")
    assert tool_calls(sent) == []
    assert system.performed_actions(task_id=task_id) == []
    reason = system.task(task_id).reason
    assert "has no tool 'get_the_weather'" in reason
    assert "get_current_time" in reason


def test_a_tool_error_fails_the_attempt_with_the_tools_words(clocks):
    system, sent, _ = clocks
    task_id = ask_time(system, "Nowhere/Land")
    work(system, max_tasks=1, member="clock-bot")
    assert len(tool_calls(sent)) == 1
    assert system.performed_actions(task_id=task_id) == []
    task = system.task(task_id)
    assert task.state != "done"
    assert "Invalid timezone" in task.reason


def test_the_resource_and_arguments_can_be_given_in_the_payload(clocks):
    system, sent, _ = clocks
    task_id = ask_time(system, "Europe/London", resource="TimeZone::Asia/Tokyo",
                       arguments={"timezone": "Asia/Tokyo"})
    work(system, max_tasks=1, member="clock-bot")
    assert tool_calls(sent) == [{"name": "get_current_time",
                                 "arguments": {"timezone": "Asia/Tokyo"}}]
    assert system.task(task_id).result["outputs"]["timezone"] == "Asia/Tokyo"
    [performed] = system.performed_actions(task_id=task_id)
    assert performed.resource == "TimeZone::Asia/Tokyo"


def test_a_call_that_needs_approval_waits_then_is_made_once(clocks):
    system, sent, use = clocks
    use(autonomy="supervised")
    task_id = ask_time(system, "Europe/London")
    work(system, max_tasks=1, member="clock-bot")
    assert system.task(task_id).state == "awaiting_approval"
    assert tool_calls(sent) == []
    [approval] = system.approvals(task_id=task_id)
    system.approve(approval.id, approver="nina.kapoor")
    work(system, max_tasks=1, member="clock-bot")
    task = system.task(task_id)
    assert task.state == "done", task.reason
    assert task.result["outputs"]["timezone"] == "Europe/London"
    assert len(tool_calls(sent)) == 1
    [performed] = system.performed_actions(task_id=task_id)
    assert performed.approval_id == approval.id


def test_a_server_that_cannot_start_fails_the_attempt_with_what_it_said(clocks):
    system, _, use = clocks
    broken = f"{shlex.quote(sys.executable)} -c \"raise SystemExit('no licence for clocks')\""
    use(server=broken)
    task_id = ask_time(system, "Europe/London")
    work(system, max_tasks=1, member="clock-bot")
    reason = system.task(task_id).reason
    assert "the MCP server" in reason
    assert "no licence for clocks" in reason


def test_a_command_that_does_not_exist_fails_the_attempt(clocks):
    system, _, use = clocks
    use(server="no-such-mcp-server --stdio")
    task_id = ask_time(system, "Europe/London")
    work(system, max_tasks=1, member="clock-bot")
    reason = system.task(task_id).reason
    assert "the MCP server `no-such-mcp-server --stdio` could not be started" in reason


# -- streamable HTTP: a server whose tool records its calls ----------------------------------

class StartsOnFirstRequest:
    """An ASGI app whose lifespan (the MCP session manager) starts with its first request:
    the test server runs apps without lifespan events."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.ready: asyncio.Event | None = None
        self.alive: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.ready is None:
            self.ready = asyncio.Event()
            self.alive = asyncio.create_task(self._live(self.ready))
        await self.ready.wait()
        await self.app(scope, receive, send)

    async def _live(self, ready: asyncio.Event) -> None:
        async with self.app.router.lifespan_context(self.app):
            ready.set()
            await asyncio.Event().wait()


@pytest.fixture
def stamper() -> Iterator[tuple[list[dict[str, Any]], str]]:
    """A streamable-HTTP MCP server with a `stamp` tool that records each call."""
    calls: list[dict[str, Any]] = []
    server = MCPServer("stamper")

    @server.tool()
    async def stamp(timezone: str, pause: float = 0) -> dict[str, Any]:
        """Stamp a time zone; `pause` seconds first."""
        await asyncio.sleep(pause)
        calls.append({"timezone": timezone})
        return {"stamped": timezone, "number": len(calls)}

    with serve(StartsOnFirstRequest(server.streamable_http_app())) as url:
        yield calls, f"{url}/mcp"


def test_a_tool_on_a_streamable_http_server_is_called_once(clocks, stamper):
    system, _, use = clocks
    calls, url = stamper
    use(server=url, tool="stamp")
    task_id = ask_time(system, "Europe/London")
    work(system, max_tasks=1, member="clock-bot")
    task = system.task(task_id)
    assert task.state == "done", task.reason
    assert calls == [{"timezone": "Europe/London"}]
    assert task.result["outputs"] == {"stamped": "Europe/London", "number": 1}


def test_a_denied_call_never_reaches_the_http_tool(clocks, stamper):
    system, _, use = clocks
    calls, url = stamper
    use(server=url, tool="stamp")
    task_id = ask_time(system, "Antarctica/Troll")
    work(system, max_tasks=1, member="clock-bot")
    assert calls == []
    assert system.task(task_id).state != "done"


def test_a_tool_slower_than_the_timeout_fails_the_attempt(clocks, stamper):
    system, _, use = clocks
    _, url = stamper
    use(server=url, tool="stamp", timeout=0.5)
    task_id = ask_time(system, "Europe/London",
                       arguments={"timezone": "Europe/London", "pause": 5})
    work(system, max_tasks=1, member="clock-bot")
    task = system.task(task_id)
    assert task.state != "done"
    assert "did not answer within 0.5s" in task.reason
    assert system.performed_actions(task_id=task_id) == []
