"""The MCP gateway in front of the reference `mcp-server-time`, spoken to with the
official MCP client: Charter decides every call, only allowed ones reach the time
server, and each is recorded in the ledger.

The time server runs behind `tee`, which keeps a copy of every message the gateway
sends it, so the tests read whether a tool was really called."""

from __future__ import annotations

import asyncio
import json
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from typer.testing import CliRunner

import charter.cli_mcp  # noqa: F401 - registers `charter mcp` and `charter gateway`
from charter.cli import app as cli
from charter.mcp.gateway import gateway_app
from charter.mcp.results import result_size
from charter.mcp.upstreams import Upstreams, UpstreamSpec
from charter.system import Charter
from tests.engines.orgs import edit_org
from tests.engines.servers import free_port, serve
from tests.mcp.clients import (
    CHARTER_CLI,
    body,
    call,
    cli_env,
    listed,
    over_http,
    stdio_session,
    text,
)

TIME_SERVER = f"{shlex.quote(sys.executable)} -m mcp_server_time"

GATEWAY_ORG: dict[str, Any] = {
    "resources": {"McpServer": {"description": "An MCP server behind Charter's gateway"}},
    "actions": {
        "mcp.time.get_current_time": {
            "description": "Read the clock of a time zone (the time server's "
                           "get_current_time)",
            "resources": ["McpServer"], "context": {"timezone": "String?"}},
        "mcp.time.convert_time": {
            "description": "Convert a time between time zones",
            "resources": ["McpServer"],
            "context": {"source_timezone": "String?", "target_timezone": "String?"}},
    },
}

POLICIES = """\
@id("members-read-the-time")
permit (principal, action == Action::"mcp.time.get_current_time",
        resource == McpServer::"time");

@id("no-restricted-clocks")
forbid (principal, action == Action::"mcp.time.get_current_time", resource)
when { context has timezone && context.timezone == "Antarctica/Troll" };

@id("no-time-conversion")
forbid (principal, action == Action::"mcp.time.convert_time", resource);
"""

MANAGERS_ONLY = """\
@id("managers-read-the-time")
permit (principal in Role::"manager", action == Action::"mcp.time.get_current_time",
        resource == McpServer::"time");
"""


@dataclass
class Gateway:
    system: Charter
    url: str
    sent: Path
    upstream: str

    def token(self, member: str = "buyer-bot-1") -> str:
        return self.system.create_token(member).secret

    def tool_calls(self) -> list[dict[str, Any]]:
        """What the gateway asked the time server to call."""
        if not self.sent.exists():
            return []
        said = [json.loads(line) for line in self.sent.read_text().splitlines() if line]
        return [m["params"] for m in said if m.get("method") == "tools/call"]

    def calls(self) -> list[dict[str, Any]]:
        """The `mcp.called` events' payloads, oldest first."""
        return [event.payload for event in self.system.events(kind="mcp.called")
                if event.payload is not None]


@pytest.fixture
def start(system: Charter, workspace: Path,
          tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    """`start(policies, org, others)` loads the org with `org`'s entries (by default
    the gateway's) and `policies`, and serves the gateway (at /mcp) in front of the time
    server and the `others` upstreams (name → command)."""
    served: list[Any] = []

    def begin(policies: str, org: dict[str, Any] = GATEWAY_ORG,
              others: dict[str, str] | None = None) -> Gateway:
        (workspace / "policies" / "gateway.cedar").write_text(policies)
        system.load_org(edit_org(workspace, extra=org))
        sent = tmp_path / "sent.jsonl"
        upstream = f"sh -c {shlex.quote(f'tee -a {shlex.quote(str(sent))} | {TIME_SERVER}')}"
        specs = [UpstreamSpec("time", upstream),
                 *(UpstreamSpec(name, target) for name, target in (others or {}).items())]
        app = gateway_app(system, Upstreams(specs, timeout=60))
        running = serve(Starlette(routes=[Route("/mcp", app)]))
        base = running.__enter__()
        served.append(running)
        return Gateway(system, f"{base}/mcp", sent, upstream)

    yield begin
    for running in served:
        running.__exit__(None, None, None)


@pytest.fixture
def gateway(start: Callable[..., Gateway]) -> Gateway:
    return start(POLICIES)


def test_tools_list_shows_only_what_the_caller_may_call(gateway):
    async def tools(session: Any) -> list[Any]:
        return (await session.list_tools()).tools

    [tool] = over_http(gateway.url, gateway.token(), tools)
    assert tool.name == "time__get_current_time"
    assert "timezone" in tool.input_schema["properties"]
    assert tool.description == "Get current time in a specific timezone"
    assert gateway.tool_calls() == []


def test_a_tool_the_org_does_not_declare_is_neither_listed_nor_called(start):
    only_conversion = {**GATEWAY_ORG, "actions": {
        "mcp.time.convert_time": GATEWAY_ORG["actions"]["mcp.time.convert_time"]}}
    gateway = start('@id("anyone-converts")\n'
                    'permit (principal, action == Action::"mcp.time.convert_time", '
                    'resource);\n', only_conversion)
    secret = gateway.token()
    assert listed(gateway.url, secret) == ["time__convert_time"]
    refused = call(gateway.url, secret, "time__get_current_time", timezone="UTC")
    assert refused.is_error
    assert "unknown action 'mcp.time.get_current_time'" in text(refused)
    assert gateway.tool_calls() == []


def test_an_allowed_call_goes_through_and_returns_the_time(gateway):
    result = call(gateway.url, gateway.token(), "time__get_current_time",
                  timezone="Europe/London", verbose=True)
    assert not result.is_error, text(result)
    assert result.structured_content["timezone"] == "Europe/London"
    assert result.structured_content["datetime"].startswith("20")
    # Every argument reaches the tool; only the declared one reached Charter.
    assert gateway.tool_calls() == [{"name": "get_current_time", "arguments": {
        "timezone": "Europe/London", "verbose": True}}]
    gateway.system.flush_decisions()
    [decided] = [e.payload for e in gateway.system.events(kind="decision.made")]
    assert (decided["member"], decided["action"], decided["resource"]) == (
        "buyer-bot-1", "mcp.time.get_current_time", "McpServer::time")
    assert (decided["outcome"], decided["context"]) == ("allow",
                                                        {"timezone": "Europe/London"})
    [recorded] = gateway.calls()
    assert recorded["decision"] == "allow"
    assert recorded["forwarded"] is True and recorded["is_error"] is False
    assert (recorded["server"], recorded["tool"]) == ("time", "get_current_time")
    assert recorded["result_bytes"] == result_size(result)
    assert 0 < recorded["upstream_ms"] <= recorded["latency_ms"]
    [event] = gateway.system.events(kind="mcp.called")
    assert (event.actor, event.subject) == ("buyer-bot-1", "McpServer::time")


def test_a_forbidden_call_is_refused_naming_the_policy(gateway):
    secret = gateway.token()
    converted = call(gateway.url, secret, "time__convert_time", source_timezone="UTC",
                     time="12:00", target_timezone="Asia/Tokyo")
    assert converted.is_error
    assert "Charter denied buyer-bot-1 mcp.time.convert_time on McpServer::time" in text(
        converted)
    assert "forbidden by no-time-conversion" in text(converted)
    error = body(converted)["error"]
    assert error["type"] == "Forbidden"
    assert error["details"]["reasons"][0]["policies"] == ["no-time-conversion"]
    restricted = call(gateway.url, secret, "time__get_current_time",
                      timezone="Antarctica/Troll")
    assert restricted.is_error
    assert "no-restricted-clocks" in text(restricted)
    assert gateway.tool_calls() == []
    recorded = gateway.calls()
    assert [(c["tool"], c["decision"], c["forwarded"]) for c in recorded] == [
        ("convert_time", "deny", False), ("get_current_time", "deny", False)]
    assert [c["result_bytes"] for c in recorded] == [result_size(converted),
                                                     result_size(restricted)]
    assert all(c["upstream_ms"] is None and c["latency_ms"] > 0 for c in recorded)
    assert recorded[0]["reasons"][0]["policies"] == ["no-time-conversion"]


def test_both_kinds_of_call_are_in_the_ledger_in_order(gateway):
    secret = gateway.token()
    allowed = call(gateway.url, secret, "time__get_current_time", timezone="Asia/Tokyo")
    denied = call(gateway.url, secret, "time__convert_time", source_timezone="UTC",
                  time="09:30", target_timezone="Europe/Paris")
    recorded = gateway.calls()
    assert [(c["action"], c["decision"], c["forwarded"]) for c in recorded] == [
        ("mcp.time.get_current_time", "allow", True),
        ("mcp.time.convert_time", "deny", False)]
    assert [c["result_bytes"] for c in recorded] == [result_size(allowed),
                                                     result_size(denied)]
    assert all(c["latency_ms"] > 0 for c in recorded)
    assert gateway.system.verify_ledger().ok


def test_a_declared_argument_of_the_wrong_type_is_refused_clearly(gateway):
    result = call(gateway.url, gateway.token(), "time__get_current_time", timezone=42)
    assert result.is_error
    assert "context.timezone must be text" in text(result)
    assert gateway.tool_calls() == []


def test_a_call_needing_approval_waits_then_goes_through_once(start):
    gateway = start(MANAGERS_ONLY)
    secret = gateway.token("buyer-bot-1")
    assert listed(gateway.url, secret) == ["time__get_current_time"]  # approvable
    waiting = call(gateway.url, secret, "time__get_current_time", timezone="Europe/Oslo")
    assert waiting.is_error
    error = body(waiting)["error"]
    assert error["type"] == "ApprovalPending"
    assert error["details"]["approvers"] == ["james.liu"]
    approval_id = error["details"]["approval_id"]
    assert approval_id in text(waiting) and "james.liu" in text(waiting)
    assert "has NOT been called" in text(waiting)
    assert gateway.tool_calls() == []
    assert gateway.system.approval(approval_id).status == "pending"

    gateway.system.approve(approval_id, approver="james.liu")
    done = call(gateway.url, secret, "time__get_current_time", timezone="Europe/Oslo")
    assert not done.is_error, text(done)
    assert done.structured_content["timezone"] == "Europe/Oslo"
    assert gateway.system.approval(approval_id).status == "executed"
    assert len(gateway.tool_calls()) == 1

    again = call(gateway.url, secret, "time__get_current_time", timezone="Europe/Oslo")
    assert body(again)["error"]["type"] == "ApprovalPending"
    assert body(again)["error"]["details"]["approval_id"] != approval_id
    assert len(gateway.tool_calls()) == 1
    assert [(c["decision"], c["forwarded"], c["approval_id"]) for c in gateway.calls()] == [
        ("escalate", False, approval_id), ("allow", True, approval_id),
        ("escalate", False, body(again)["error"]["details"]["approval_id"])]


def test_a_call_to_an_unknown_tool_is_refused_and_recorded(gateway):
    secret = gateway.token()
    unknown_server = call(gateway.url, secret, "weather__forecast", city="Oslo")
    assert unknown_server.is_error
    assert "the servers are: time" in text(unknown_server)
    undeclared = call(gateway.url, secret, "time__set_time", time="12:00")
    assert undeclared.is_error
    assert "unknown action 'mcp.time.set_time'" in text(undeclared)
    assert gateway.tool_calls() == []
    assert [(c["server"], c["tool"], c["decision"]) for c in gateway.calls()] == [
        ("weather", "forecast", None), ("time", "set_time", "deny")]


FLAKY_SERVER = f"{shlex.quote(sys.executable)} {Path(__file__).parent / 'flaky_server.py'}"
FLAKY_ORG = {**GATEWAY_ORG, "actions": {
    **GATEWAY_ORG["actions"],
    "mcp.flaky.echo": {"resources": ["McpServer"], "context": {"text": "String?"}},
    "mcp.flaky.crash": {"resources": ["McpServer"]},
    "mcp.gone.anything": {"resources": ["McpServer"]}}}
FLAKY_POLICY = """
@id("anyone-uses-the-test-servers")
permit (principal, action in [Action::"mcp.flaky.echo", Action::"mcp.flaky.crash",
                              Action::"mcp.gone.anything"], resource);
"""


def test_an_upstream_that_breaks_is_reported_then_opened_again(start):
    gateway = start(POLICIES + FLAKY_POLICY, FLAKY_ORG,
                    {"flaky": FLAKY_SERVER, "gone": "no-such-mcp-server --stdio"})
    secret = gateway.token()
    assert listed(gateway.url, secret) == [
        "time__get_current_time", "flaky__echo", "flaky__crash"]  # gone lists nothing
    first = body(call(gateway.url, secret, "flaky__echo", text="one"))
    crashed = call(gateway.url, secret, "flaky__crash")
    assert crashed.is_error
    assert body(crashed)["error"]["type"] == "UpstreamError"
    assert "the MCP server flaky" in text(crashed)
    second = body(call(gateway.url, secret, "flaky__echo", text="two"))
    assert second["echo"] == "two"
    assert second["pid"] != first["pid"]  # a new session with a new process
    gone = call(gateway.url, secret, "gone__anything")
    assert gone.is_error
    assert "the MCP server gone could not be started (no-such-mcp-server --stdio)" in text(
        gone)
    assert [(c["tool"], c["forwarded"], c["is_error"]) for c in gateway.calls()] == [
        ("echo", True, False), ("crash", True, True), ("echo", True, False),
        ("anything", True, True)]


def test_a_request_without_a_valid_token_is_refused(gateway):
    for headers in ({}, {"Authorization": "Bearer ch_0_not-a-token"}):
        reply = httpx.post(gateway.url, headers={
            **headers, "Accept": "application/json, text/event-stream"}, json={
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "time__get_current_time", "arguments": {"timezone": "UTC"}}})
        assert reply.status_code == 401
        assert reply.json()["error"]["type"] == "Unauthenticated"
    assert gateway.tool_calls() == []
    assert gateway.calls() == []


def test_the_gateway_over_stdio_acts_as_the_tokens_member(system, workspace, db_url,
                                                            tmp_path):
    (workspace / "policies" / "gateway.cedar").write_text(POLICIES)
    system.load_org(edit_org(workspace, extra=GATEWAY_ORG))
    env = cli_env(db_url, system.create_token("support-bot").secret)
    command = [*CHARTER_CLI, "gateway", "--stdio", "--upstream", f"time={TIME_SERVER}"]

    async def work() -> tuple[list[str], Any, Any]:
        async with stdio_session(command, env) as session:
            names = [tool.name for tool in (await session.list_tools()).tools]
            allowed = await session.call_tool("time__get_current_time",
                                              {"timezone": "America/New_York"})
            denied = await session.call_tool("time__convert_time", {
                "source_timezone": "UTC", "time": "12:00", "target_timezone": "UTC"})
            return names, allowed, denied

    names, allowed, denied = asyncio.run(work())
    assert names == ["time__get_current_time"]
    assert allowed.structured_content["timezone"] == "America/New_York"
    assert denied.is_error and "no-time-conversion" in text(denied)
    recorded = [e for e in system.events(kind="mcp.called")]
    assert [(e.actor, e.payload["decision"]) for e in recorded] == [
        ("support-bot", "allow"), ("support-bot", "deny")]


def test_the_gateway_command_checks_its_upstreams():
    runner = CliRunner()
    for spec, says in (("time", "NAME=COMMAND or NAME=URL"),
                       ("my.server=python -m x", "letters, digits or hyphens"),
                       ("time=", "needs a command or a URL")):
        ran = runner.invoke(cli, ["gateway", "--upstream", spec], env={"COLUMNS": "250"})
        assert ran.exit_code == 2, ran.output
        assert says in ran.output


def test_charter_gateway_serves_http_at_mcp(system, workspace, db_url):
    (workspace / "policies" / "gateway.cedar").write_text(POLICIES)
    system.load_org(edit_org(workspace, extra=GATEWAY_ORG))
    port = free_port()
    process = subprocess.Popen(
        [*CHARTER_CLI, "gateway", "--port", str(port), "--upstream", f"time={TIME_SERVER}"],
        env=cli_env(db_url, None), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 60
        while not _listening(port):
            assert time.monotonic() < deadline, "the gateway did not start"
            assert process.poll() is None, process.communicate()
            time.sleep(0.1)
        assert httpx.post(url, json={}).status_code == 401
        secret = system.create_token("refund-bot").secret
        assert listed(url, secret) == ["time__get_current_time"]
        result = call(url, secret, "time__get_current_time", timezone="Asia/Kolkata")
        assert result.structured_content["timezone"] == "Asia/Kolkata"
    finally:
        process.terminate()  # uvicorn shuts down gracefully, then re-raises SIGTERM
        output, errors = process.communicate(timeout=30)
    assert f"Charter MCP gateway at {url} (upstreams: time)" in output
    assert "Traceback" not in errors, errors
    [recorded] = system.events(kind="mcp.called")
    assert (recorded.actor, recorded.payload["decision"]) == ("refund-bot", "allow")


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
