"""Decisions, approvals, delegations and budgets over HTTP. A member asks, votes,
executes, delegates and spends only as itself."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from charter import ManualClock
from charter.system import Charter
from tests.api.errors import refused

V = "Vendor::globex"




def purchase(amount: int, vendor: str = V) -> dict:
    return {"action": "purchase.create", "resource": vendor, "context": {"amount": amount}}




# -- authorize ------------------------------------------------------------------------

def test_authorize_allows_escalates_and_denies(client: TestClient, as_member):
    bot = as_member("buyer-bot-1")
    allowed = client.post("/v1/authorize", json=purchase(800), headers=bot).json()
    assert (allowed["outcome"], allowed["member"]) == ("allow", "buyer-bot-1")
    assert allowed["reasons"][0]["policies"] == ["buyers-purchase-within-limit"]
    escalated = client.post("/v1/authorize", json=purchase(8000), headers=bot).json()
    assert escalated["outcome"] == "escalate"
    assert escalated["approvers"] == ["james.liu"] and escalated["approval_id"]
    frozen = client.post("/v1/authorize", json=purchase(800, "Vendor::initech"),
                         headers=bot).json()
    assert frozen["outcome"] == "deny"
    as_object = client.post("/v1/authorize", json={**purchase(800), "resource": {
        "type": "Vendor", "id": "globex"}}, headers=bot).json()
    assert as_object["outcome"] == "allow"


def test_authorize_for_another_member_needs_an_admin(client: TestClient, as_member, admin,
                                                     acme: Charter):
    asked_for_another = client.post("/v1/authorize",
                                    json={**purchase(8000), "member": "buyer-bot-1"},
                                    headers=as_member("buyer-bot-2"))
    refused(asked_for_another, 403)
    assert acme.approvals() == []  # nothing was opened on buyer-bot-1's behalf
    mine = client.post("/v1/authorize", json={**purchase(800), "member": "buyer-bot-2"},
                       headers=as_member("buyer-bot-2"))
    assert mine.json()["member"] == "buyer-bot-2"
    asked = client.post("/v1/authorize", json={**purchase(800), "member": "buyer-bot-1"},
                        headers=admin)
    assert (asked.json()["outcome"], asked.json()["member"]) == ("allow", "buyer-bot-1")


def test_authorize_refuses_bad_input_and_denies_malformed_requests(client: TestClient,
                                                                   as_member):
    bot = as_member("buyer-bot-1")
    headers = {**bot, "Content-Type": "application/json"}
    for raw in ('{"action": "purchase.create", "resource": "Vendor::globex", '
                '"context": {"amount": NaN}}',
                '{"action": "purchase.create", "resource": "Vendor::globex", '
                '"context": {"amount": "\\ud800"}}',
                '{"action": "purchase.create", "resource": "Vendor::glo\\u0000bex"}',
                '{"action": "purchase.create", "resource": "Vendor::globex", "context": '
                + '{"a": ' * 40 + "1" + "}" * 40 + "}",
                '{"action": "not an action", "resource": "Vendor::globex"}',
                '{"action": "purchase.create", "resource": "Vendor::globex", "extra": 1}'):
        refused(client.post("/v1/authorize", content=raw, headers=headers), 422)
    unknown_task = client.post("/v1/authorize", json={**purchase(8000), "task_id": "nope"},
                               headers=bot)
    refused(unknown_task, 404)
    undeclared = client.post("/v1/authorize", json={**purchase(800), "context": {
        "amount": 800, "colour": "red"}}, headers=bot).json()
    assert undeclared["outcome"] == "deny"
    assert undeclared["reasons"][0]["kind"] == "invalid"


# -- approvals ------------------------------------------------------------------------

def test_escalate_approve_execute_once(client: TestClient, as_member):
    bot, james = as_member("buyer-bot-1"), as_member("james.liu")
    approval_id = client.post("/v1/authorize", json=purchase(8000),
                              headers=bot).json()["approval_id"]
    approved = client.post(f"/v1/approvals/{approval_id}/approve",
                           json={"comment": "within plan"}, headers=james)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert approved.json()["votes"][0]["approver"] == "james.liu"
    changed = client.post(f"/v1/approvals/{approval_id}/execute", json=purchase(8001),
                          headers=bot)
    refused(changed, 403)
    by_another = client.post(f"/v1/approvals/{approval_id}/execute", json=purchase(8000),
                             headers=as_member("buyer-bot-2"))
    refused(by_another, 403)
    executed = client.post(f"/v1/approvals/{approval_id}/execute", json=purchase(8000),
                           headers=bot)
    assert executed.status_code == 200, executed.text
    assert (executed.json()["outcome"], executed.json()["approval_id"]) == ("allow",
                                                                            approval_id)
    again = client.post(f"/v1/approvals/{approval_id}/execute", json=purchase(8000),
                        headers=bot)
    assert "already executed" in refused(again, 409)["message"]
    assert client.get(f"/v1/approvals/{approval_id}",
                      headers=bot).json()["status"] == "executed"


def test_only_an_approver_other_than_the_requester_votes(client: TestClient, as_member,
                                                         admin):
    bot = as_member("buyer-bot-1")
    approval_id = client.post("/v1/authorize", json=purchase(8000),
                              headers=bot).json()["approval_id"]
    own = client.post(f"/v1/approvals/{approval_id}/approve", json={}, headers=bot)
    assert "separation of duties" in refused(own, 403)["message"]
    for outsider in (as_member("sofia.alvarez"), admin):
        vote = client.post(f"/v1/approvals/{approval_id}/approve",
                           json={"comment": "ok"}, headers=outsider)
        refused(vote, 403)
    smuggled = client.post(f"/v1/approvals/{approval_id}/approve",
                           json={"approver": "james.liu"}, headers=bot)
    refused(smuggled, 422)
    assert client.get(f"/v1/approvals/{approval_id}",
                      headers=bot).json()["status"] == "pending"
    james = as_member("james.liu")
    refused(client.post(f"/v1/approvals/{approval_id}/reject", json={"comment": ""},
                             headers=james), 422)
    rejected = client.post(f"/v1/approvals/{approval_id}/reject",
                           json={"comment": "use the framework contract"}, headers=james)
    assert rejected.json()["status"] == "rejected"
    executed = client.post(f"/v1/approvals/{approval_id}/execute", json=purchase(8000),
                           headers=bot)
    refused(executed, 409)
    refused(client.get("/v1/approvals/nope", headers=bot), 404)
    refused(client.post("/v1/approvals/nope/approve", json={}, headers=james), 404)


def test_approval_pages_follow_the_cursor_and_filter(client: TestClient, as_member,
                                                     clock: ManualClock):
    bot, james = as_member("buyer-bot-1"), as_member("james.liu")
    made = []
    for n in range(5):
        made.append(client.post("/v1/authorize", json=purchase(6000 + n),
                                headers=bot).json()["approval_id"])
        if n != 2:  # two share a time: the id orders them
            clock.advance(timedelta(seconds=1))
    made[2:4] = sorted(made[2:4])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/approvals", params=params, headers=bot).json()
        assert len(page["items"]) <= 2
        seen += [approval["id"] for approval in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made  # oldest first, each once
    client.post(f"/v1/approvals/{made[0]}/approve", json={}, headers=james)

    def ids(params: dict, headers: dict) -> list[str]:
        found = client.get("/v1/approvals", params=params, headers=headers)
        assert found.status_code == 200, found.text
        return [approval["id"] for approval in found.json()["items"]]

    assert ids({"mine": "true"}, james) == made[1:]
    assert ids({"mine": "true"}, as_member("sofia.alvarez")) == []
    assert ids({"mine": "true"}, bot) == []
    assert ids({"status": "approved"}, bot) == made[:1]
    assert ids({"approver": "james.liu", "status": "pending"}, bot) == made[1:]
    assert ids({"approver": "james_liu"}, bot) == []  # `_` is not a wildcard
    refused(client.get("/v1/approvals", params={"mine": "true", "status": "approved"},
                            headers=james), 422)
    refused(client.get("/v1/approvals", params={"cursor": "bm90IGEgY3Vyc29y"},
                            headers=bot), 422)
    refused(client.get("/v1/approvals", params={"status": "maybe"}, headers=bot), 422)


def test_approvals_bound_to_a_task(client: TestClient, as_member, acme: Charter):
    bot = as_member("buyer-bot-1")
    task = acme.submit_task("purchase_order", V, requester="james.liu")
    bound = client.post("/v1/authorize", json={**purchase(8000), "task_id": task.id},
                        headers=bot).json()
    client.post("/v1/authorize", json=purchase(9000), headers=bot)
    found = client.get("/v1/approvals", params={"task_id": task.id}, headers=bot).json()
    assert [approval["id"] for approval in found["items"]] == [bound["approval_id"]]


# -- delegations ----------------------------------------------------------------------

def test_delegate_list_and_revoke(client: TestClient, as_member, admin, acme: Charter):
    sofia, james = as_member("sofia.alvarez"), as_member("james.liu")
    until = (acme.clock.now() + timedelta(hours=8)).isoformat()
    request = {**purchase(30000), "member": "james.liu"}
    assert client.post("/v1/authorize", json=purchase(30000),
                       headers=james).json()["outcome"] == "escalate"
    granted = client.post("/v1/delegations", json={"to": "james.liu",
                                                   "actions": ["purchase.create"],
                                                   "until": until}, headers=sofia)
    assert granted.status_code == 201, granted.text
    delegation = granted.json()
    assert (delegation["from"], delegation["to"]) == ("sofia.alvarez", "james.liu")
    assert client.post("/v1/authorize", json=request,
                       headers=admin).json()["outcome"] == "allow"
    listed = client.get("/v1/delegations", headers=james).json()
    assert [d["id"] for d in listed] == [delegation["id"]]
    assert client.get("/v1/delegations", params={"member": "buyer-bot-1"},
                      headers=james).json() == []
    refused(client.delete(f"/v1/delegations/{delegation['id']}", headers=james), 403)
    revoked = client.delete(f"/v1/delegations/{delegation['id']}", headers=sofia)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    assert client.get("/v1/delegations", headers=james).json() == []
    assert client.get(f"/v1/delegations/{delegation['id']}",
                      headers=james).json()["revoked_at"] is not None
    assert client.post("/v1/authorize", json=request,
                       headers=admin).json()["outcome"] == "escalate"
    refused(client.delete(f"/v1/delegations/{delegation['id']}", headers=admin), 409)
    refused(client.delete("/v1/delegations/nope", headers=admin), 404)


def test_an_admin_revokes_anyones_delegation(client: TestClient, as_member, admin,
                                             acme: Charter):
    until = (acme.clock.now() + timedelta(days=1)).isoformat()
    made = client.post("/v1/delegations", json={"to": "buyer-bot-2",
                                                "actions": ["purchase.create"],
                                                "until": until},
                       headers=as_member("james.liu")).json()
    assert client.delete(f"/v1/delegations/{made['id']}", headers=admin).status_code == 200


@pytest.mark.parametrize("body", [
    {"to": "james.liu", "actions": ["purchase.create"], "until": "2000-01-01T00:00:00Z"},
    {"to": "james.liu", "actions": ["purchase.create"], "until": "9999-12-31T23:59:59-23:59"},
    {"to": "james.liu", "actions": ["purchase.create"], "until": "2030-01-01T00:00:00"},
    {"to": "james.liu", "actions": ["no.such"], "until": "2030-01-01T00:00:00Z"},
    {"to": "james.liu", "actions": [], "until": "2030-01-01T00:00:00Z"},
    {"to": "sofia.alvarez", "actions": ["purchase.create"], "until": "2030-01-01T00:00:00Z"},
    {"to": "nobody", "actions": ["purchase.create"], "until": "2030-01-01T00:00:00Z"},
    {"to": "james.liu", "actions": ["purchase.create"], "until": "2030-01-01T00:00:00Z",
     "from": "dana.whitfield"},
], ids=["past", "out-of-range", "naive", "undeclared-action", "no-action", "to-self",
        "unknown-member", "from-in-body"])
def test_bad_delegations_are_refused(client: TestClient, as_member, body):
    response = client.post("/v1/delegations", json=body, headers=as_member("sofia.alvarez"))
    assert response.status_code in (404, 422), response.text
    assert client.get("/v1/delegations", headers=as_member("sofia.alvarez")).json() == []


# -- budgets --------------------------------------------------------------------------

def test_budgets_reserve_commit_release(client: TestClient, as_member):
    bot = as_member("buyer-bot-1")
    envelopes = {e["id"]: e for e in client.get("/v1/budgets", headers=bot).json()}
    assert envelopes["buyer-bot-1-spend"] == {
        "id": "buyer-bot-1-spend", "parent_id": "purchasing-spend", "owner": "james.liu",
        "amount": "60000", "reserved": "0", "committed": "0", "available": "60000",
        "period": "month", "period_start": envelopes["buyer-bot-1-spend"]["period_start"]}
    reserved = client.post("/v1/spend", json={"amount": "1200.50",
                                              "purpose": "PO 4471, 40 monitors"}, headers=bot)
    assert reserved.status_code == 201, reserved.text
    reservation = reserved.json()["reservation"]
    assert (reservation["amount"], reservation["status"],
            reservation["budget_id"]) == ("1200.5", "reserved", "buyer-bot-1-spend")
    assert reserved.json()["decision"]["outcome"] == "allow"
    after = {e["id"]: e for e in client.get("/v1/budgets", headers=bot).json()}
    assert after["buyer-bot-1-spend"]["reserved"] == "1200.5"
    assert after["purchasing-spend"]["reserved"] == "1200.5"
    rid = reservation["id"]
    refused(client.post(f"/v1/spend/{rid}/commit", json={"actual": "1180"},
                             headers=as_member("buyer-bot-2")), 403)
    committed = client.post(f"/v1/spend/{rid}/commit", json={"actual": "1180"}, headers=bot)
    assert committed.status_code == 200, committed.text
    assert (committed.json()["status"], committed.json()["actual"]) == ("committed", "1180")
    refused(client.post(f"/v1/spend/{rid}/commit", json={"actual": "1180"},
                             headers=bot), 409)
    second = client.post("/v1/spend", json={"amount": 300, "purpose": "cables"},
                         headers=bot).json()["reservation"]["id"]
    released = client.post(f"/v1/spend/{second}/release", headers=bot)
    assert released.json()["status"] == "released"
    refused(client.post(f"/v1/spend/{second}/release", json={"reason": "again"},
                             headers=bot), 409)
    refused(client.post("/v1/spend/nope/commit", json={"actual": 1}, headers=bot), 404)
    final = {e["id"]: e for e in client.get("/v1/budgets", headers=bot).json()}
    assert (final["buyer-bot-1-spend"]["reserved"],
            final["buyer-bot-1-spend"]["committed"]) == ("0", "1180")


def test_over_budget_escalates_to_the_owner_then_spends_once(client: TestClient, as_member):
    bot, james = as_member("buyer-bot-1"), as_member("james.liu")
    spend = {"amount": "70000", "purpose": "annual licence"}
    error = refused(client.post("/v1/spend", json=spend, headers=bot), 403)
    decision = error["details"]
    assert (decision["outcome"], decision["approvers"]) == ("escalate", ["james.liu"])
    approval_id = decision["approval_id"]
    assert approval_id
    still_waiting = client.post("/v1/spend", json={**spend, "approval_id": approval_id},
                                headers=bot)
    refused(still_waiting, 409)
    client.post(f"/v1/approvals/{approval_id}/approve", json={}, headers=james)
    refused(client.post(f"/v1/approvals/{approval_id}/execute",
                             json={"action": "budget.spend", "resource": "Budget::x"},
                             headers=bot), 422)
    other = client.post("/v1/spend", json={**spend, "amount": "70001",
                                           "approval_id": approval_id}, headers=bot)
    refused(other, 403)
    spent = client.post("/v1/spend", json={**spend, "approval_id": approval_id}, headers=bot)
    assert spent.status_code == 201, spent.text
    assert spent.json()["reservation"]["amount"] == "70000"
    twice = client.post("/v1/spend", json={**spend, "approval_id": approval_id}, headers=bot)
    refused(twice, 409)


@pytest.mark.parametrize("body", [
    {"amount": -1, "purpose": "x"},
    {"amount": 0, "purpose": "x"},
    {"amount": "1e400", "purpose": "x"},
    {"amount": "0.00001", "purpose": "x"},
    {"amount": 10, "purpose": ""},
    {"amount": 10, "purpose": "a\u0000b"},
    {"amount": 10, "purpose": "x", "ttl_seconds": 0},
    {"amount": 10, "purpose": "x", "member": "buyer-bot-2"},
    {"amount": 10, "purpose": "x", "budget": "acme-opex"},
], ids=["negative", "zero", "huge", "too-precise", "no-purpose", "nul", "no-ttl",
        "member-in-body", "budget-in-body"])
def test_bad_spend_requests_are_invalid(client: TestClient, as_member, body):
    refused(client.post("/v1/spend", json=body, headers=as_member("buyer-bot-1")), 422)
