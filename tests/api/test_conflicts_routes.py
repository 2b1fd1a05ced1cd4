"""Leases, proposals and memory over HTTP: each member acts only as itself; refusals
have the one error shape; pages follow the cursor; the ledger verifies afterwards."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from charter.system import Charter
from tests.api.errors import refused

Headers = dict[str, str]
ORDER = {"task_type": "purchase_order", "subject": "Vendor::globex", "key": "supplier_terms",
         "context": {"amount": 300}, "rationale": "the usual terms"}






def verifies(client: TestClient, acme: Charter, headers: Headers) -> None:
    """The ledger verifies (its pending decisions written), asked over HTTP."""
    acme.flush_decisions()
    report = client.get("/v1/ledger/verify", headers=headers).json()
    assert report["ok"] and report["problem"] is None, report


def every_page(client: TestClient, path: str, headers: Headers,
               params: dict[str, Any]) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        found = client.get(path, params={**params, **({"cursor": cursor} if cursor else {})},
                           headers=headers)
        assert found.status_code == 200, found.text
        assert len(found.json()["items"]) <= params["limit"]
        seen += found.json()["items"]
        cursor = found.json()["next_cursor"]
        if cursor is None:
            return seen


def crafted_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


# -- leases ----------------------------------------------------------------------------

def test_a_lease_is_held_renewed_and_released_only_by_its_holder(client, as_member, acme):
    bot, other = as_member("buyer-bot-1"), as_member("support-bot")
    made = client.post("/v1/leases", json={"resource": "Customer::42", "duration_s": 30},
                       headers=bot)
    assert made.status_code == 201, made.text
    lease = made.json()
    assert (lease["member"], lease["mode"], lease["token"]) == ("buyer-bot-1", "exclusive", 1)

    held = refused(client.post("/v1/leases", json={"resource": "Customer::42"},
                               headers=other), 409)
    assert [h["member"] for h in held["details"]["holders"]] == ["buyer-bot-1"]
    assert "buyer-bot-1" in held["message"]
    refused(client.post(f"/v1/leases/{lease['id']}/release", headers=other), 403)
    refused(client.post(f"/v1/leases/{lease['id']}/renew", json={}, headers=other), 403)
    # the holder comes from the token: a body naming another member is refused
    refused(client.post("/v1/leases", json={"resource": "Customer::43",
                                            "member": "support-bot"}, headers=other), 422)

    renewed = client.post(f"/v1/leases/{lease['id']}/renew", json={"duration_s": 600},
                          headers=bot)
    assert renewed.status_code == 200 and renewed.json()["expires_at"] > lease["expires_at"]
    assert client.get(f"/v1/leases/{lease['id']}", headers=other).json()["id"] == lease["id"]
    mine = client.get("/v1/leases", params={"member": "buyer-bot-1"}, headers=other).json()
    assert [held["id"] for held in mine["items"]] == [lease["id"]]

    released = client.post(f"/v1/leases/{lease['id']}/release", headers=bot)
    assert released.status_code == 200 and released.json()["id"] == lease["id"]
    refused(client.get(f"/v1/leases/{lease['id']}", headers=bot), 404)
    after = client.post("/v1/leases", json={"resource": "customer:42", "mode": "shared"},
                        headers=other).json()
    assert (after["member"], after["token"]) == ("support-bot", 2)

    def is_fenced(token: int) -> bool:
        answer = client.get("/v1/leases/fenced", params={"resource": "Customer::42",
                                                         "token": token}, headers=bot)
        assert answer.status_code == 200, answer.text
        return bool(answer.json()["fenced"])
    assert is_fenced(1) and not is_fenced(2)
    verifies(client, acme, bot)


def test_lease_refusals(client, as_member):
    bot = as_member("buyer-bot-1")
    refused(client.post("/v1/leases", json={"resource": "Vendor::globex"}, headers=bot), 403)
    refused(client.post("/v1/leases", json={"resource": "no-type"}, headers=bot), 422)
    refused(client.post("/v1/leases", json={"resource": "Customer::1", "duration_s": 0},
                        headers=bot), 422)
    refused(client.post("/v1/leases", json={"resource": "Customer::1", "mode": "all"},
                        headers=bot), 422)
    refused(client.post("/v1/leases", json={"resource": "Customer::1", "task_id": "nope"},
                        headers=bot), 404)
    refused(client.post("/v1/leases/nope/release", headers=bot), 404)
    refused(client.get("/v1/leases/fenced", params={"resource": "Customer::1",
                                                    "token": 2**63}, headers=bot), 422)
    refused(client.post("/v1/leases", json={"resource": "Customer::1"}), 401)


def test_lease_pages_follow_the_cursor(client, as_member):
    bot = as_member("buyer-bot-1")
    made = {client.post("/v1/leases", json={"resource": f"Customer::{n}"},
                        headers=bot).json()["id"] for n in range(5)}
    seen = every_page(client, "/v1/leases", bot, {"limit": 2})
    assert len(seen) == 5 and {lease["id"] for lease in seen} == made
    assert [lease["resource"] for lease in seen] == [f"Customer::{n}" for n in range(5)]
    for cursor in ("!!", crafted_cursor(["Customer::1", "one", "x"]),
                   crafted_cursor(["Customer::1", 2**63, "x"]),
                   crafted_cursor(["Customer::\u0000", 1, "x"])):
        refused(client.get("/v1/leases", params={"cursor": cursor}, headers=bot), 422)


# -- proposals -------------------------------------------------------------------------

def test_proposals_are_recorded_as_the_caller_and_arbitrated(client, as_member, acme):
    bot, lead = as_member("buyer-bot-1"), as_member("james.liu")
    first = client.post("/v1/proposals", json={**ORDER, "value": {"days": 30},
                                               "confidence": 0.9}, headers=bot)
    assert first.status_code == 201, first.text
    assert (first.json()["member"], first.json()["status"]) == ("buyer-bot-1", "open")
    refused(client.post("/v1/proposals", json={**ORDER, "value": {"days": 90},
                                               "member": "james.liu"}, headers=bot), 422)

    second = client.post("/v1/proposals", json={**ORDER, "value": {"days": 60}}, headers=lead)
    assert second.status_code == 201, second.text
    won = second.json()
    assert (won["member"], won["status"]) == ("james.liu", "won")
    resolution = won["resolution"]
    assert resolution["rule"] == "authority" and resolution["losers"] == [first.json()["id"]]

    learned = client.get(f"/v1/proposals/{first.json()['id']}", headers=bot).json()
    assert learned["status"] == "lost" and learned["resolution"]["winner"] == won["id"]
    assert client.get(f"/v1/resolutions/{resolution['id']}",
                      headers=bot).json() == resolution
    assert acme.proposal(won["id"]).member == "james.liu"
    refused(client.get("/v1/proposals/nope", headers=bot), 404)
    refused(client.get("/v1/resolutions/nope", headers=bot), 404)
    verifies(client, acme, bot)


def test_proposal_refusals(client, as_member):
    bot = as_member("buyer-bot-1")
    refused(client.post("/v1/proposals", json={**ORDER, "value": 1,
                                               "context": {"amount": 9000}}, headers=bot), 403)
    refused(client.post("/v1/proposals", json={**ORDER, "value": 1,
                                               "task_type": "nonsense"}, headers=bot), 422)
    refused(client.post("/v1/proposals", json={**ORDER, "value": "x" * 70_000},
                        headers=bot), 422)
    refused(client.post("/v1/proposals", json={**ORDER, "value": 1, "confidence": 2},
                        headers=bot), 422)
    without = {k: v for k, v in ORDER.items() if k != "rationale"}
    refused(client.post("/v1/proposals", json={**without, "value": 1}, headers=bot), 422)


def test_only_the_manager_a_dispute_waits_on_settles_it(client, as_member, acme):
    one, two = as_member("buyer-bot-1"), as_member("buyer-bot-2")
    first = client.post("/v1/proposals", json={**ORDER, "value": "net-30"}, headers=one).json()
    second = client.post("/v1/proposals", json={**ORDER, "value": "net-45"},
                         headers=two).json()
    assert second["status"] == "escalated"
    resolution = second["resolution"]
    assert resolution["evidence"]["manager"] == "james.liu"
    settle = {"resolution_id": resolution["id"], "winner": second["id"]}
    refused(client.post("/v1/proposals/settle", json=settle, headers=two), 403)
    refused(client.post("/v1/proposals/settle", json=settle,
                        headers=as_member("sofia.alvarez")), 403)
    refused(client.post("/v1/proposals/settle", json={**settle, "by": "james.liu"},
                        headers=two), 422)
    settled = client.post("/v1/proposals/settle", json=settle,
                          headers=as_member("james.liu"))
    assert settled.status_code == 200, settled.text
    assert settled.json()["winner"] == second["id"]
    assert settled.json()["evidence"]["settled"]["by"] == "james.liu"
    assert client.get(f"/v1/proposals/{first['id']}", headers=one).json()["status"] == "lost"
    refused(client.post("/v1/proposals/settle", json=settle,
                        headers=as_member("james.liu")), 409)
    verifies(client, acme, one)


def test_proposal_pages_follow_the_cursor(client, as_member, clock):
    made = []
    for member, subject in (("buyer-bot-1", "Vendor::globex"),
                            ("james.liu", "Vendor::umbrella-supplies"),
                            ("buyer-bot-1", "Vendor::umbrella-supplies")):
        clock.advance(timedelta(seconds=1))
        made.append(client.post("/v1/proposals", json={**ORDER, "subject": subject,
                                                       "value": member},
                                headers=as_member(member)).json()["id"])
    reader = as_member("support-bot")
    assert [p["id"] for p in every_page(client, "/v1/proposals", reader,
                                        {"limit": 1})] == made
    umbrella = every_page(client, "/v1/proposals", reader,
                          {"limit": 1, "subject": "Vendor::umbrella-supplies"})
    assert [p["id"] for p in umbrella] == made[1:]
    lost = every_page(client, "/v1/proposals", reader, {"limit": 5, "status": "lost"})
    assert [p["id"] for p in lost] == [made[2]]
    refused(client.get("/v1/proposals", params={"status": "maybe"}, headers=reader), 422)


# -- memory ----------------------------------------------------------------------------

def test_private_memory_is_read_back_by_its_author_only(client, as_member, acme):
    bot, other = as_member("buyer-bot-1"), as_member("support-bot")
    shared = client.post("/v1/memory", json={"subject": "Customer::42", "kind": "fact",
                                             "text": "Prefers invoices in EUR",
                                             "tags": ["billing"]}, headers=bot)
    assert shared.status_code == 201, shared.text
    assert shared.json()["by"] == "buyer-bot-1"
    private = client.post("/v1/memory", json={"subject": "Customer::42", "private": True,
                                              "text": "Invoices in EUR are late"},
                          headers=bot).json()
    refused(client.post("/v1/memory", json={"subject": "Customer::42", "text": "x",
                                            "by": "support-bot"}, headers=bot), 422)

    def recalled(headers: Headers) -> list[str]:
        found = client.get("/v1/memory/recall", params={"subject": "Customer::42",
                                                        "query": "EUR invoices"},
                           headers=headers)
        assert found.status_code == 200, found.text
        return [kept["id"] for kept in found.json()]
    assert set(recalled(bot)) == {shared.json()["id"], private["id"]}
    assert recalled(other) == [shared.json()["id"]]
    listed = every_page(client, "/v1/memory", other, {"limit": 5, "subject": "customer:42"})
    assert [kept["id"] for kept in listed] == [shared.json()["id"]]
    verifies(client, acme, bot)


def test_forgetting_is_done_as_the_caller(client, as_member, acme):
    clerk, buyer = as_member("ap-bot-1"), as_member("buyer-bot-1")
    payroll = client.post("/v1/memory", json={"subject": "Payroll::2026-11",
                                              "text": "Bonus run on the 28th"},
                          headers=clerk).json()
    refused(client.get("/v1/memory/recall", params={"subject": "Payroll::2026-11"},
                       headers=buyer), 403)
    refused(client.request("DELETE", f"/v1/memory/{payroll['id']}",
                           json={"reason": "tidy up"}, headers=buyer), 403)
    refused(client.request("DELETE", f"/v1/memory/{payroll['id']}",
                           json={"reason": "tidy up", "by": "ap-bot-1"}, headers=buyer), 422)
    refused(client.delete(f"/v1/memory/{payroll['id']}", headers=clerk), 422)
    refused(client.delete("/v1/memory/nope", params={"reason": "x"}, headers=clerk), 404)

    forgotten = client.delete(f"/v1/memory/{payroll['id']}",
                              params={"reason": "erasure request 118"}, headers=clerk)
    assert forgotten.status_code == 200, forgotten.text
    assert forgotten.json()["by"] == "ap-bot-1"
    assert client.get("/v1/memory", params={"subject": "Payroll::2026-11"},
                      headers=clerk).json()["items"] == []
    [event] = acme.events(kind="memory.forgotten")
    assert event.actor == "ap-bot-1" and event.payload == {
        "id": payroll["id"], "seq": payroll["seq"], "reason": "erasure request 118"}
    assert acme.verify_ledger().redacted == (payroll["seq"],)

    # someone permitted to write about a subject may forget another's memory on it
    note = client.post("/v1/memory", json={"subject": "Customer::7", "text": "Call first"},
                       headers=clerk).json()
    gone = client.request("DELETE", f"/v1/memory/{note['id']}",
                          json={"reason": "wrong customer"}, headers=buyer)
    assert gone.status_code == 200 and gone.json()["by"] == "buyer-bot-1"
    verifies(client, acme, clerk)


def test_memory_pages_follow_the_cursor(client, as_member):
    bot = as_member("buyer-bot-1")
    made = [client.post("/v1/memory", json={"subject": "Sku::sku-9", "text": f"note {n}"},
                        headers=bot).json() for n in range(5)]
    seen = every_page(client, "/v1/memory", bot, {"limit": 2, "subject": "Sku::sku-9"})
    assert [kept["id"] for kept in seen] == [kept["id"] for kept in reversed(made)]
    refused(client.get("/v1/memory", params={"subject": "Sku::sku-9",
                                             "cursor": crafted_cursor(["x"])},
                       headers=bot), 422)
    refused(client.get("/v1/memory", params={"subject": "Nope::1"}, headers=bot), 422)
