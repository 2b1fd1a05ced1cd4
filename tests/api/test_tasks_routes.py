"""Tasks over HTTP: submit, claim, complete, fail; pages; the error shape."""

from __future__ import annotations

from fastapi.testclient import TestClient

PURCHASE = {"type": "purchase_order", "subject": "vendor:globex",
            "payload": {"vendor": "Vendor::globex", "amount": 100}}


def test_submit_claim_complete(client: TestClient, as_member, admin):
    bot = as_member("buyer-bot-1")
    submitted = client.post("/v1/tasks", json=PURCHASE, headers=bot)
    assert submitted.status_code == 201, submitted.text
    task = submitted.json()
    assert (task["requester"], task["state"]) == ("buyer-bot-1", "queued")
    assigned = client.post(f"/v1/tasks/{task['id']}/assign", json={"member": "buyer-bot-1"},
                           headers=admin)
    assert assigned.json()["assignee"] == "buyer-bot-1"
    claim = client.post("/v1/claims", headers=bot).json()
    assert claim["task"]["id"] == task["id"]
    done = client.post(f"/v1/tasks/{task['id']}/complete",
                       json={"fencing": claim["fencing"], "result": {"order": "PO-1"},
                             "cost": 0.03}, headers=bot)
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "done"
    assert client.post("/v1/claims", headers=bot).status_code == 204
    stale = client.post(f"/v1/tasks/{task['id']}/complete",
                        json={"fencing": claim["fencing"]}, headers=bot)
    assert stale.status_code == 409
    assert set(stale.json()["error"]) == {"type", "message", "details"}


def test_pages_follow_the_cursor(client: TestClient, as_member):
    bot = as_member("buyer-bot-1")
    made = {client.post("/v1/tasks", json=PURCHASE, headers=bot).json()["id"]
            for _ in range(5)}
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/tasks", params=params, headers=bot).json()
        seen += [task["id"] for task in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and set(seen) == made


def test_submit_and_dispatch_in_one_call(client: TestClient, as_member):
    task = client.post("/v1/tasks", json={**PURCHASE, "dispatch": True},
                       headers=as_member("james.liu")).json()
    assert task["state"] == "assigned"
    assert task["assignee"] in ("buyer-bot-1", "buyer-bot-2", "james.liu", "sofia.alvarez",
                                "priya.raman")


def test_errors_have_one_shape(client: TestClient, as_member):
    bot = as_member("buyer-bot-1")
    for response in (client.get("/v1/tasks"),
                     client.get("/v1/tasks/nope", headers=bot),
                     client.post("/v1/tasks", json={"type": 3}, headers=bot),
                     client.get("/v1/tasks", params={"cursor": "!!"}, headers=bot),
                     client.post("/v1/tasks/dispatch", headers=bot)):
        assert response.status_code in (401, 403, 404, 422), response.text
        assert set(response.json()) == {"error"}
        assert set(response.json()["error"]) == {"type", "message", "details"}
