"""The kill switch over HTTP: admins stop members and actions; others only see it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.errors import refused

PURCHASE = {"action": "purchase.create", "resource": "Vendor::globex",
            "context": {"amount": 10}}


def test_admins_suspend_and_resume_members(client: TestClient, as_member, admin):
    bot = as_member("buyer-bot-1")
    refused(client.post("/v1/members/buyer-bot-1/suspend", json={"reason": "x"},
                        headers=as_member("james.liu")), 403)
    done = client.post("/v1/members/buyer-bot-1/suspend", json={"reason": "runaway"},
                       headers=admin)
    assert done.status_code == 200, done.text
    assert done.json()["member"] == "buyer-bot-1"
    assert client.post("/v1/authorize", json=PURCHASE, headers=bot).json()["outcome"] == "deny"
    assert client.post("/v1/claims", headers=bot).status_code == 204
    stopped = client.get("/v1/stops", headers=bot).json()
    assert [s["target"] for s in stopped["suspended"]] == ["buyer-bot-1"]
    refused(client.post("/v1/members/buyer-bot-1/suspend", json={"reason": "again"},
                        headers=admin), 409)
    assert client.post("/v1/members/buyer-bot-1/resume", headers=admin).status_code == 200
    assert client.post("/v1/authorize", json=PURCHASE, headers=bot).json()["outcome"] == "allow"


def test_admins_freeze_and_unfreeze_actions(client: TestClient, as_member, admin):
    bot = as_member("buyer-bot-1")
    refused(client.post("/v1/actions/purchase.create/freeze", json={"reason": "x"},
                        headers=bot), 403)
    refused(client.post("/v1/actions/no.such/freeze", json={"reason": "x"},
                        headers=admin), 422)
    assert client.post("/v1/actions/purchase.create/freeze", json={"reason": "audit"},
                       headers=admin).status_code == 200
    decision = client.post("/v1/authorize", json=PURCHASE, headers=bot).json()
    assert decision["reasons"][0]["kind"] == "frozen"
    assert client.post("/v1/actions/purchase.create/unfreeze",
                       headers=admin).status_code == 200
    assert client.post("/v1/authorize", json=PURCHASE, headers=bot).json()["outcome"] == "allow"
