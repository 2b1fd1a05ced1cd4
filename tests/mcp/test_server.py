"""Charter's verbs as MCP tools, spoken to with the official MCP client: over streamable
HTTP at `/mcp` of the API app (bearer tokens), and over stdio with `charter mcp`."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from mcp import ClientSession
from mcp.shared.exceptions import MCPError

from charter.api import create_app
from charter.mcp.server import TOOLS, mcp_app
from charter.system import Charter
from tests.engines.servers import serve
from tests.mcp.clients import (
    CHARTER_CLI,
    body,
    call,
    cli_env,
    http_session,
    listed,
    over_http,
    stdio_session,
    text,
)


@pytest.fixture
def url(acme: Charter) -> Iterator[str]:
    """The API app with the MCP server at /mcp, as create_app serves it (the test server
    runs no lifespan: the session manager starts with the first request)."""
    with serve(api_app(acme)) as base:
        yield f"{base}/mcp"


def api_app(system: Charter) -> FastAPI:
    """The API with Charter's MCP server at /mcp, started and stopped with its lifespan,
    using its token cache and rate limit."""
    # The lambda is late bound: app.state.mcp is made just below.
    app = create_app(system, lifespans=[lambda: app.state.mcp.running()])  # noqa: PLW0108
    app.state.mcp = mcp_app(system, limiter=app.state.buckets,
                            authenticate=app.state.tokens.authenticate)
    app.add_route("/mcp", app.state.mcp, include_in_schema=False)
    return app


def token(system: Charter, member: str) -> str:
    return system.create_token(member).secret


def assigned_task(system: Charter, member: str = "buyer-bot-1") -> str:
    task = system.submit_task("purchase_order", "vendor:globex",
                              {"vendor": "Vendor::globex", "amount": 800},
                              requester="james.liu")
    system.assign_task(task.id, member, actor="james.liu")
    return task.id


def test_the_tools_are_charters_verbs_and_none_takes_a_member(acme, url):
    async def tools(session: ClientSession) -> list[Any]:
        return (await session.list_tools()).tools
    offered = over_http(url, token(acme, "buyer-bot-1"), tools)
    assert {tool.name for tool in offered} == set(TOOLS)
    assert {"authorize", "claim_task", "complete_task", "fail_task", "report_outcome",
            "remember", "recall", "acquire_lease", "release_lease", "propose"} <= set(TOOLS)
    for tool in offered:
        assert tool.description
        parameters = set(tool.input_schema.get("properties", {}))
        assert not parameters & {"member", "by", "actor", "requester", "reported_by"}, tool


def test_authorize_decides_for_the_caller(acme, url):
    secret = token(acme, "buyer-bot-1")
    allowed = body(call(url, secret, "authorize", action="purchase.create",
                        resource="Vendor::globex", context={"amount": 800}))
    assert (allowed["outcome"], allowed["member"]) == ("allow", "buyer-bot-1")
    assert allowed["reasons"][0]["policies"] == ["buyers-purchase-within-limit"]
    escalated = body(call(url, secret, "authorize", action="purchase.create",
                          resource="Vendor::globex", context={"amount": 8000}))
    assert (escalated["outcome"], escalated["approvers"]) == ("escalate", ["james.liu"])
    [approval] = acme.approvals(status="pending")
    assert (approval.id, approval.requester) == (escalated["approval_id"], "buyer-bot-1")
    acme.flush_decisions()
    decided = [e.payload for e in acme.events(kind="decision.made")]
    # The allow is group-committed, so it may land after the escalation's transaction.
    assert sorted((d["member"], d["outcome"]) for d in decided) == [
        ("buyer-bot-1", "allow"), ("buyer-bot-1", "escalate")]


def test_a_member_argument_does_not_change_who_acts(acme, url):
    result = call(url, token(acme, "buyer-bot-1"), "authorize", action="purchase.create",
                  resource="Vendor::globex", context={"amount": 20000},
                  member="dana.whitfield")
    decided = body(result)
    assert decided["member"] == "buyer-bot-1"
    assert decided["outcome"] == "escalate"  # dana.whitfield would have been allowed


def test_claim_then_complete_an_assigned_task(acme, url):
    task_id = assigned_task(acme)
    secret = token(acme, "buyer-bot-1")
    claimed = body(call(url, secret, "claim_task"))
    assert claimed["task"]["id"] == task_id
    assert claimed["task"]["state"] == "running"
    assert claimed["task"]["assignee"] == "buyer-bot-1"
    assert claimed["fencing"] >= 1 and claimed["lease_until"]
    beat = body(call(url, secret, "heartbeat", task_id=task_id, fencing=claimed["fencing"]))
    assert beat["lease_until"] >= claimed["lease_until"]
    done = body(call(url, secret, "complete_task", task_id=task_id,
                     fencing=claimed["fencing"], result={"order": "PO-1"}, cost="0.03"))
    assert done["task"]["state"] == "done"
    assert acme.task(task_id).result == {"order": "PO-1"}
    [outcome] = acme.outcomes(member="buyer-bot-1")
    assert (outcome.reported_by, outcome.success, outcome.cost) == (
        "buyer-bot-1", True, Decimal("0.03"))
    nothing = body(call(url, secret, "claim_task"))
    assert nothing["task"] is None


def test_a_member_cannot_act_on_another_members_task(acme, url):
    task_id = assigned_task(acme)
    other = token(acme, "james.liu")
    assert body(call(url, other, "claim_task"))["task"] is None
    assert acme.task(task_id).state == "assigned"
    claimed = body(call(url, token(acme, "buyer-bot-1"), "claim_task"))
    refused = call(url, other, "complete_task", task_id=task_id, fencing=claimed["fencing"])
    assert refused.is_error
    error = body(refused)["error"]
    assert error["type"] in ("Forbidden", "Conflict")
    assert "buyer-bot-1" in error["message"]
    failed = call(url, other, "fail_task", task_id=task_id, fencing=claimed["fencing"],
                  reason="not mine")
    assert failed.is_error
    assert acme.task(task_id).state == "running"


def test_fail_a_task_and_report_outcomes(acme, url):
    task_id = assigned_task(acme)
    secret = token(acme, "buyer-bot-1")
    claimed = body(call(url, secret, "claim_task"))
    moved = body(call(url, secret, "fail_task", task_id=task_id, fencing=claimed["fencing"],
                      reason="the vendor portal is down"))
    assert moved["task"]["id"] == task_id
    assert moved["task"]["state"] != "running"
    own = call(url, secret, "report_outcome", task_id=task_id, success=True, verified=True)
    assert own.is_error
    assert "may not verify its own work" in text(own)
    reviewed = body(call(url, token(acme, "james.liu"), "report_outcome", task_id=task_id,
                         success=False, verified=True, quality=0.2))
    assert reviewed["outcome"]["reported_by"] == "james.liu"
    assert reviewed["outcome"]["member"] == "buyer-bot-1"
    assert reviewed["outcome"]["verified"] is True


def test_a_refusal_is_a_tool_error_with_charters_message(acme, url):
    result = call(url, token(acme, "buyer-bot-1"), "remember", subject="Payroll::2026-11",
                  text="salaries are due on the 28th")
    assert result.is_error
    error = body(result)["error"]
    assert error["type"] == "Forbidden"
    assert "payroll-never-outside-finance" in error["message"]
    assert text(result) == error["message"]
    assert acme.memories("Payroll::2026-11", by="elena.petrova") == []


def test_invalid_arguments_are_a_tool_error(acme, url):
    result = call(url, token(acme, "buyer-bot-1"), "recall", subject="Customer::42",
                  limit=10_000)
    assert result.is_error
    assert "limit" in text(result)


def test_memory_leases_and_proposals_act_as_the_caller(acme, url):
    secret = token(acme, "support-bot")
    kept = body(call(url, secret, "remember", subject="customer:42",
                     text="prefers email over phone", kind="fact", tags=["contact"]))
    assert (kept["memory"]["by"], kept["memory"]["subject"]) == ("support-bot",
                                                                 "Customer::42")
    found = body(call(url, token(acme, "refund-bot"), "recall", subject="Customer::42",
                      query="email"))
    assert [m["text"] for m in found["memories"]] == ["prefers email over phone"]

    held = body(call(url, secret, "acquire_lease", resource="Customer::42", ttl_s=30))
    assert (held["lease"]["member"], held["lease"]["resource"]) == ("support-bot",
                                                                    "Customer::42")
    busy = call(url, token(acme, "refund-bot"), "acquire_lease", resource="Customer::42")
    assert busy.is_error
    assert "support-bot" in text(busy)
    stranger = call(url, token(acme, "refund-bot"), "release_lease",
                    lease_id=held["lease"]["id"])
    assert stranger.is_error
    released = body(call(url, secret, "release_lease", lease_id=held["lease"]["id"]))
    assert released["lease"]["id"] == held["lease"]["id"]
    assert acme.lease_holders("Customer::42") == []

    proposed = body(call(url, token(acme, "pricing-bot"), "propose", subject="Sku::sku-9",
                         key="price", value=12.5, task_type="price_change",
                         confidence=0.7, context={"change_percent": 5}))
    assert proposed["proposal"]["member"] == "pricing-bot"
    assert proposed["proposal"]["value"] == 12.5
    refused = call(url, token(acme, "pricing-bot"), "propose", subject="Sku::sku-9",
                   key="price", value=30, task_type="price_change",
                   context={"change_percent": 50})
    assert refused.is_error
    assert "nina.kapoor" in text(refused)


@pytest.mark.parametrize("authorization", [
    None, "Bearer nonsense", "Bearer ch_0000_unknown", "Basic dXNlcjpwYXNz"])
def test_a_request_without_a_valid_token_is_refused(acme, url, authorization):
    headers = {"Accept": "application/json, text/event-stream"}
    if authorization is not None:
        headers["Authorization"] = authorization
    reply = httpx.post(url, headers=headers, json={
        "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
    assert reply.status_code == 401
    assert reply.json()["error"]["type"] == "Unauthenticated"
    assert reply.headers["www-authenticate"].startswith("Bearer")


def test_a_revoked_token_is_refused_and_the_client_told_so(acme, url):
    made = acme.create_token("buyer-bot-1")
    assert listed(url, made.secret)  # works until revoked
    admin = {"Authorization": f"Bearer {acme.create_token('dana.whitfield', admin=True).secret}"}
    base = url.removesuffix("/mcp")
    assert httpx.delete(f"{base}/v1/tokens/{made.token.id}", headers=admin).status_code == 200
    statuses: list[int] = []

    async def connect() -> None:
        async with http_session(url, made.secret, statuses=statuses):
            pytest.fail("a session was opened with a revoked token")

    with pytest.raises(BaseExceptionGroup) as raised:
        asyncio.run(connect())
    assert raised.group_contains(MCPError)
    assert statuses == [401]


# -- stdio: `charter mcp` --------------------------------------------------------------------

def test_charter_mcp_serves_the_verbs_over_stdio(acme, db_url):
    task_id = assigned_task(acme)
    env = cli_env(db_url, token(acme, "buyer-bot-1"))

    async def work() -> tuple[list[str], dict[str, Any], dict[str, Any]]:
        async with stdio_session([*CHARTER_CLI, "mcp"], env) as session:
            names = [tool.name for tool in (await session.list_tools()).tools]
            decided = body(await session.call_tool("authorize", {
                "action": "purchase.create", "resource": "Vendor::globex",
                "context": {"amount": 800}}))
            claimed = body(await session.call_tool("claim_task", {}))
            return names, decided, claimed

    names, decided, claimed = asyncio.run(work())
    assert set(names) == set(TOOLS)
    assert (decided["member"], decided["outcome"]) == ("buyer-bot-1", "allow")
    assert claimed["task"]["id"] == task_id
    assert acme.task(task_id).state == "running"


def test_charter_mcp_needs_a_valid_token(acme, db_url):
    for secret, says in ((None, "a token is needed"), ("ch_nope_nope", "unknown token")):
        ran = subprocess.run([*CHARTER_CLI, "mcp"], env=cli_env(db_url, secret),
                             capture_output=True, text=True, timeout=60, check=False)
        assert ran.returncode == 1
        assert says in ran.stderr
        assert ran.stdout == ""


def test_the_api_app_runs_mcp_within_its_lifespan(acme):
    app = api_app(acme)
    headers = {"Authorization": f"Bearer {token(acme, 'buyer-bot-1')}",
               "Accept": "application/json, text/event-stream"}
    with TestClient(app) as client:
        assert app.state.mcp._running is not None  # started with the app
        opened = client.post("/mcp", headers=headers, json={
            "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "test", "version": "1"}}})
        assert opened.status_code == 200, opened.text
        assert opened.json()["result"]["serverInfo"]["name"] == "charter"
        assert client.get("/healthz").json() == {"status": "ok"}
        assert "/mcp" not in client.get("/openapi.json").json()["paths"]
    assert app.state.mcp._running is None  # stopped with it


def test_each_token_is_held_to_the_rate_limit(acme):
    from starlette.applications import Starlette
    from starlette.routing import Route

    from charter.api.auth import TokenBuckets

    app = Starlette(routes=[Route("/mcp", mcp_app(acme, limiter=TokenBuckets(0.5)))])
    headers = {"Authorization": f"Bearer {token(acme, 'buyer-bot-1')}",
               "Accept": "application/json, text/event-stream"}
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    with serve(app) as base:
        first = httpx.post(f"{base}/mcp", headers=headers, json=ping)
        second = httpx.post(f"{base}/mcp", headers=headers, json=ping)
    assert first.status_code == 200, first.text
    assert second.status_code == 429
    assert second.json()["error"]["type"] == "RateLimited"
    assert int(second.headers["retry-after"]) >= 1
