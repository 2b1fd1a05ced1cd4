"""What a token may and may not do: a member acts only as itself, admin verbs need an
admin, expired and revoked tokens are refused, and no token is ever stored in clear."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import String, Text, select

from charter import ManualClock
from charter.store.schema import metadata
from charter.system import Charter
from tests.api.errors import refused

PURCHASE = {"type": "purchase_order", "subject": "vendor:globex",
            "payload": {"vendor": "Vendor::globex", "amount": 100}}




def test_a_member_cannot_claim_or_complete_as_another(client: TestClient, as_member, admin):
    bot1, bot2 = as_member("buyer-bot-1"), as_member("buyer-bot-2")
    task = client.post("/v1/tasks", json=PURCHASE, headers=bot1).json()
    client.post(f"/v1/tasks/{task['id']}/assign", json={"member": "buyer-bot-2"},
                headers=admin)
    assert client.post("/v1/claims", headers=bot1).status_code == 204  # not its task
    claim = client.post("/v1/claims", headers=bot2).json()
    refused(client.post(f"/v1/tasks/{task['id']}/complete",
                        json={"fencing": claim["fencing"]}, headers=bot1), 403)
    refused(client.post(f"/v1/tasks/{task['id']}/fail",
                        json={"fencing": claim["fencing"], "reason": "x"}, headers=bot1), 403)
    # the body cannot name another member
    refused(client.post("/v1/tasks", json={**PURCHASE, "requester": "james.liu"},
                        headers=bot1), 422)
    assert client.get(f"/v1/tasks/{task['id']}", headers=bot1).json()["state"] == "running"


def test_approvals_only_by_their_approvers_never_by_the_requester(client: TestClient,
                                                                   as_member):
    bot = as_member("buyer-bot-1")
    decision = client.post("/v1/authorize", json={
        "action": "purchase.create", "resource": "Vendor::globex",
        "context": {"amount": 8000}}, headers=bot).json()
    assert decision["outcome"] == "escalate"
    approval = decision["approval_id"]
    refused(client.post(f"/v1/approvals/{approval}/approve", json={"comment": "me"},
                        headers=bot), 403)  # its own escalation
    refused(client.post(f"/v1/approvals/{approval}/approve", json={"comment": "ok"},
                        headers=as_member("buyer-bot-2")), 403)  # not an approver
    refused(client.post("/v1/authorize", json={
        "member": "james.liu", "action": "purchase.create", "resource": "Vendor::globex",
        "context": {"amount": 100}}, headers=bot), 403)  # asking as someone else
    approved = client.post(f"/v1/approvals/{approval}/approve", json={"comment": "ok"},
                           headers=as_member("james.liu"))
    assert approved.status_code == 200, approved.text


def test_proposals_and_memory_only_as_oneself(client: TestClient, as_member):
    bot1, bot2 = as_member("refund-bot"), as_member("support-bot")
    proposed = client.post("/v1/proposals", json={
        "task_type": "refund", "subject": "Customer::42", "key": "refund",
        "value": 20, "rationale": "damaged", "context": {"amount": 20}}, headers=bot1)
    assert proposed.status_code in (200, 201), proposed.text
    assert proposed.json()["member"] == "refund-bot"
    refused(client.post("/v1/proposals", json={
        "task_type": "refund", "subject": "Customer::42", "key": "refund", "value": 20,
        "rationale": "x", "member": "ben.kowalski"}, headers=bot1), 422)
    kept = client.post("/v1/memory", json={"subject": "Customer::42", "text": "prefers email",
                                           "private": True}, headers=bot1)
    assert kept.status_code in (200, 201), kept.text
    memory_id = kept.json()["id"]
    seen = client.get("/v1/memory/recall", params={"subject": "Customer::42",
                                                   "query": "email"}, headers=bot2)
    assert seen.status_code == 200, seen.text
    assert memory_id not in str(seen.json())
    # a private memory exists only for its author: nobody else may forget it either
    refused(client.request("DELETE", f"/v1/memory/{memory_id}",
                           params={"reason": "erasure request"}, headers=bot2), 404)
    forgot = client.request("DELETE", f"/v1/memory/{memory_id}",
                            params={"reason": "erasure request"}, headers=bot1)
    assert forgot.status_code == 200, forgot.text
    assert forgot.json()["by"] == "refund-bot"


def test_expired_and_revoked_tokens_are_refused(client: TestClient, acme: Charter,
                                                clock: ManualClock, admin):
    short = acme.create_token("buyer-bot-1", expires=clock.now() + timedelta(minutes=5))
    headers = {"Authorization": f"Bearer {short.secret}"}
    assert client.get("/v1/tasks", headers=headers).status_code == 200
    clock.advance(timedelta(minutes=6))
    refused(client.get("/v1/tasks", headers=headers), 401)
    kept = acme.create_token("buyer-bot-1")
    headers = {"Authorization": f"Bearer {kept.secret}"}
    assert client.get("/v1/tasks", headers=headers).status_code == 200
    assert client.delete(f"/v1/tokens/{kept.token.id}", headers=admin).status_code == 200
    refused(client.get("/v1/tasks", headers=headers), 401)
    refused(client.get("/v1/tasks", headers={"Authorization": "Bearer ch_x_y"}), 401)
    refused(client.get("/v1/tasks"), 401)


def test_admin_verbs_need_an_admin_token(client: TestClient, as_member):
    person = as_member("james.liu")
    refused(client.post("/v1/tokens", json={"member": "james.liu", "admin": True},
                        headers=person), 403)
    refused(client.post("/v1/policies", json={"files": {"p.cedar": "permit (principal, "
                                                        "action, resource);"}},
                        headers=person), 403)
    refused(client.post("/v1/tasks/dispatch", headers=person), 403)


def test_the_database_holds_no_token_in_clear(client: TestClient, acme: Charter, admin):
    made = client.post("/v1/tokens", json={"member": "buyer-bot-1"}, headers=admin).json()
    secrets = [made["token"], acme.create_token("ap-bot-1", admin=True).secret,
               admin["Authorization"].removeprefix("Bearer ")]
    with acme.store.reading() as conn:
        for table in metadata.sorted_tables:
            text_columns = [c for c in table.columns if isinstance(c.type, String | Text)]
            for row in conn.execute(select(*text_columns)) if text_columns else ():
                for value in row:
                    assert not any(secret in str(value) for secret in secrets), table.name
