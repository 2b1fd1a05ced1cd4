"""The ledger and stats over HTTP: verify, checkpoint, events (a member's own, or all for
an admin), export and redact (admins only), and the counts."""

from __future__ import annotations

import json

from charter.api.routes import ledger
from tests.api.errors import refused

PURCHASE = {"type": "purchase_order", "subject": "vendor:globex",
            "payload": {"vendor": "Vendor::globex", "amount": 100}}






def test_verify_and_checkpoint(client, as_member, acme):
    bot = as_member("buyer-bot-1")
    client.post("/v1/tasks", json=PURCHASE, headers=bot)
    report = client.get("/v1/ledger/verify", headers=bot).json()
    head = client.get("/v1/ledger/checkpoint", headers=bot).json()
    assert report["ok"] and report["first_bad_seq"] is None and report["redacted"] == []
    assert report["head"] == head and head["seq"] == report["events"] > 0
    assert len(head["hash"]) == 64 and head["mac"]
    refused(client.get("/v1/ledger/verify"), 401)


def test_a_member_reads_its_own_events_and_an_admin_all(client, as_member, admin, acme):
    bot, other = as_member("buyer-bot-1"), as_member("support-bot")
    for _ in range(3):
        client.post("/v1/tasks", json=PURCHASE, headers=bot)
    client.post("/v1/memory", json={"subject": "Customer::42", "private": True,
                                    "text": "secret of the bot"}, headers=bot)

    mine = client.get("/v1/ledger/events", headers=bot).json()
    assert [e["kind"] for e in mine["items"]] == ["task.submitted"] * 3 + [
        "memory.remembered"]
    assert {e["actor"] for e in mine["items"]} == {"buyer-bot-1"}
    assert client.get("/v1/ledger/events", headers=other).json()["items"] == []
    refused(client.get("/v1/ledger/events", params={"actor": "buyer-bot-1"},
                       headers=other), 403)

    everything = client.get("/v1/ledger/events", params={"limit": 500}, headers=admin).json()
    assert [e["seq"] for e in everything["items"]] == list(
        range(1, acme.checkpoint().seq + 1))
    assert everything["next_after"] is None
    paged: list[int] = []
    after = 0
    while after is not None:
        found = client.get("/v1/ledger/events", params={"after": after, "limit": 2},
                           headers=admin).json()
        assert len(found["items"]) <= 2
        paged += [e["seq"] for e in found["items"]]
        after = found["next_after"]
    assert paged == [e["seq"] for e in everything["items"]]
    submitted = client.get("/v1/ledger/events", params={"kind": "task.submitted",
                                                        "actor": "buyer-bot-1"},
                           headers=admin).json()["items"]
    assert len(submitted) == 3
    refused(client.get("/v1/ledger/events", params={"limit": 501}, headers=admin), 422)
    refused(client.get("/v1/ledger/events", params={"after": -1}, headers=admin), 422)


def test_only_an_admin_exports(client, as_member, admin, acme):
    bot = as_member("buyer-bot-1")
    client.post("/v1/tasks", json=PURCHASE, headers=bot)
    refused(client.get("/v1/ledger/export", headers=bot), 403)
    exported = client.get("/v1/ledger/export", headers=admin)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, acme.checkpoint().seq + 1))
    assert lines == [e.to_json() for e in acme.events()]
    tail = client.get("/v1/ledger/export", params={"after": len(lines) - 1}, headers=admin)
    assert [json.loads(line)["seq"] for line in tail.text.splitlines()] == [len(lines)]


def test_export_reads_past_one_batch(client, as_member, admin, acme, monkeypatch):
    for _ in range(5):
        client.post("/v1/tasks", json=PURCHASE, headers=as_member("buyer-bot-1"))
    monkeypatch.setattr(ledger, "EXPORT_BATCH", 3)
    count = acme.checkpoint().seq
    assert count > 6
    exported = client.get("/v1/ledger/export", headers=admin).text.splitlines()
    assert [json.loads(line)["seq"] for line in exported] == list(range(1, count + 1))


def test_only_an_admin_redacts_and_the_chain_still_verifies(client, as_member, admin, acme):
    bot = as_member("buyer-bot-1")
    client.post("/v1/tasks", json=PURCHASE, headers=bot)
    [submitted] = acme.events(kind="task.submitted")
    redaction = {"seq": submitted.seq, "reason": "erasure request 118"}
    refused(client.post("/v1/ledger/redact", json=redaction, headers=bot), 403)
    assert acme.events(kind="task.submitted")[0].payload is not None

    done = client.post("/v1/ledger/redact", json=redaction, headers=admin)
    assert done.status_code == 200, done.text
    assert done.json()["kind"] == "ledger.redacted"
    assert done.json()["actor"] == "dana.whitfield"
    assert done.json()["payload"]["seq"] == submitted.seq
    assert acme.events(kind="task.submitted")[0].payload is None
    report = client.get("/v1/ledger/verify", headers=bot).json()
    assert report["ok"] and report["redacted"] == [submitted.seq]
    refused(client.post("/v1/ledger/redact", json=redaction, headers=admin), 409)
    refused(client.post("/v1/ledger/redact", json={**redaction, "seq": 10**9},
                        headers=admin), 404)
    refused(client.post("/v1/ledger/redact", json={**redaction, "reason": ""},
                        headers=admin), 422)


def test_stats_count_what_happened(client, as_member, acme):
    bot = as_member("buyer-bot-1")
    for _ in range(2):
        client.post("/v1/tasks", json=PURCHASE, headers=bot)
    client.post("/v1/leases", json={"resource": "Customer::42"}, headers=bot)
    acme.authorize("buyer-bot-1", "purchase.create", "Vendor::globex", {"amount": 800})
    acme.authorize("buyer-bot-1", "purchase.create", "Vendor::globex", {"amount": 8000})
    acme.flush_decisions()

    counted = client.get("/v1/stats", headers=bot)
    assert counted.status_code == 200, counted.text
    stats = counted.json()
    assert stats["tasks"]["queued"] == 2 and stats["tasks"]["done"] == 0
    assert stats["leases_held"] == 1
    kinds = [member.kind for member in acme.org.spec.members]
    assert stats["members"] == {"ai": kinds.count("ai"), "human": kinds.count("human")}
    assert stats["ledger_events"] == acme.checkpoint().seq
    assert stats["decisions_recorded"] == len(acme.events(kind="decision.made")) >= 2
    assert stats["approvals_pending"] == len(acme.approvals(status="pending")) >= 1
    refused(client.get("/v1/stats"), 401)
