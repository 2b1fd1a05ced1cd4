"""Reviews and circuit breakers over HTTP: the evaluator sees its queue and records
verdicts as itself, once; anyone sees the breakers."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from charter.system import Charter
from tests.api.errors import refused
from tests.integration.test_breakers import breaker_org
from tests.integration.test_reviews import done_task, evaluation_org


def test_the_evaluator_reviews_its_queue_once(acme: Charter, workspace: Path,
                                              client: TestClient, as_member):
    acme.load_org(evaluation_org(workspace, {"evaluator": "james.liu", "sample": 1.0}))
    task_id = done_task(acme, "buyer-bot-1")
    james, bot = as_member("james.liu"), as_member("buyer-bot-1")
    queue = client.get("/v1/reviews", params={"evaluator": "james.liu",
                                              "status": "pending"}, headers=james)
    assert queue.status_code == 200, queue.text
    assert [r["task_id"] for r in queue.json()] == [task_id]
    refused(client.post(f"/v1/tasks/{task_id}/review", json={"success": True},
                        headers=bot), 403)
    refused(client.post(f"/v1/tasks/{task_id}/review", json={"success": True,
                                                             "quality": 2}, headers=james), 422)
    done = client.post(f"/v1/tasks/{task_id}/review", headers=james,
                       json={"success": False, "quality": 0.1, "comment": "wrong vendor"})
    assert done.status_code == 201, done.text
    assert (done.json()["status"], done.json()["agreed"]) == ("done", False)
    refused(client.post(f"/v1/tasks/{task_id}/review", json={"success": True},
                        headers=james), 409)
    stats = client.get("/v1/members/buyer-bot-1/stats", headers=james).json()
    [record] = [r for r in stats if r["task_type"] == "purchase_order"]
    assert record["reviewed"] == 1 and record["self_report_weight"] < 0.3


def test_anyone_sees_the_breakers(acme: Charter, workspace: Path, client: TestClient,
                                  as_member):
    bot = as_member("buyer-bot-1")
    assert client.get("/v1/breakers", headers=bot).json() == []
    acme.load_org(breaker_org(workspace, {"failures": 1}))
    task = acme.submit_task("purchase_order", "vendor:globex",
                            {"vendor": "Vendor::globex", "amount": 300}, requester="james.liu")
    acme.assign_task(task.id, "buyer-bot-1", actor="james.liu")
    claimed = client.post("/v1/claims", headers=bot).json()
    failed = client.post(f"/v1/tasks/{task.id}/fail", headers=bot,
                         json={"fencing": claimed["fencing"], "reason": "engine down"})
    assert failed.status_code == 200, failed.text
    assert failed.json()["state"] == "queued"  # its retry went back to the queue
    shown = client.get("/v1/breakers", params={"member": "buyer-bot-1"}, headers=bot)
    [breaker] = shown.json()
    assert (breaker["state"], breaker["evidence"]["failures"]) == ("open", 1)
