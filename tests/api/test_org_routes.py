"""The org, its members and the policy set over HTTP: reading them, loading new versions
(admins), and refusing invalid ones as a whole while the versions in force keep
deciding."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from charter.system import Charter
from tests.api.errors import refused
from tests.integration.reviews import review_work

V = "Vendor::globex"
FREEZE_GLOBEX = ('@id("freeze-globex")\nforbid (principal, action == Action::"purchase.create",'
                 ' resource == Vendor::"globex");\n')




def policy_files(workspace: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(
        (workspace / "policies").glob("*.cedar"))}




# -- org ------------------------------------------------------------------------------

def test_the_org_in_force_and_its_versions(client: TestClient, as_member):
    bot = as_member("buyer-bot-1")
    org = client.get("/v1/org", headers=bot).json()
    assert (org["version"], org["id"], org["policy_version"]) == (1, "acme", 1)
    assert org["spec"]["org"]["name"] == "Acme Corporation"
    assert any(m["id"] == "buyer-bot-1" for m in org["spec"]["members"])
    versions = client.get("/v1/org/versions", headers=bot).json()
    assert [v["version"] for v in versions] == [1]
    assert client.get("/v1/org").status_code == 401


def test_an_admin_loads_an_org_from_text(client: TestClient, admin, acme: Charter,
                                         workspace: Path):
    assert acme.authorize("buyer-bot-1", "purchase.create", V,
                          {"amount": 8000}).outcome == "escalate"
    text = (workspace / "charter.yaml").read_text()
    raised = text.replace("limits: {purchase: 5000}", "limits: {purchase: 9000}", 1)
    assert raised != text
    loaded = client.post("/v1/org", json={"yaml": raised}, headers=admin)
    assert loaded.status_code == 201, loaded.text
    body = loaded.json()
    assert (body["version"], body["loaded_by"]) == (2, "dana.whitfield")
    assert body["policy_version"] == 1  # no policies sent: the set in force is kept
    assert isinstance(body["warnings"], list)
    assert acme.authorize("buyer-bot-1", "purchase.create", V,
                          {"amount": 8000}).outcome == "allow"
    files = {**policy_files(workspace), "freeze.cedar": FREEZE_GLOBEX}
    again = client.post("/v1/org", json={"yaml": raised, "policies": files}, headers=admin)
    assert again.status_code == 201, again.text
    assert (again.json()["version"], again.json()["policy_version"]) == (3, 2)
    assert acme.authorize("buyer-bot-1", "purchase.create", V,
                          {"amount": 800}).outcome == "deny"
    assert [v["version"] for v in client.get("/v1/org/versions",
                                              headers=admin).json()] == [1, 2, 3]


def test_an_invalid_org_is_refused_whole_and_nothing_changes(client: TestClient, admin,
                                                             as_member, workspace: Path):
    text = (workspace / "charter.yaml").read_text()
    broken = text.replace("reports_to: james.liu", "reports_to: nobody.here", 1)
    error = refused(client.post("/v1/org", json={"yaml": broken}, headers=admin), 422)
    assert error["type"] == "OrgInvalid"
    assert any("nobody.here" in p["message"] and p["line"] for p in error["details"])
    bad_policy = refused(client.post("/v1/org", json={
        "yaml": text, "policies": {"bad.cedar": "permit(principal, action, resource"}},
        headers=admin), 422)
    assert bad_policy["details"][0]["file"] == "bad.cedar"
    refused(client.post("/v1/org", json={"yaml": text},
                             headers=as_member("james.liu")), 403)
    assert client.get("/v1/org", headers=admin).json()["version"] == 1


@pytest.mark.parametrize("text", [
    "a: &a [*a]",
    "[" * 100_000,
    "org: " + "{a: " * 100 + "1" + "}" * 100,
    "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n"
              for p, c in zip("abcdefg", "bcdefgh", strict=True)),
    "org: {id: acme}\npolicies: /etc",
    "org: {id: acme}\npolicies: ../..",
    "\x00",
    "- just a list",
], ids=["recursive-alias", "deep", "deep-org", "billion-laughs", "policies-outside",
        "policies-above", "nul", "not-a-mapping"])
def test_org_text_that_cannot_be_read_is_refused(client: TestClient, admin, text: str):
    error = refused(client.post("/v1/org", json={"yaml": text}, headers=admin), 422)
    assert error["type"] == "OrgInvalid" and error["details"]
    assert client.get("/v1/org", headers=admin).json()["version"] == 1


# -- members --------------------------------------------------------------------------

def test_members_with_their_load(client: TestClient, as_member, admin):
    bot = as_member("buyer-bot-1")
    task = client.post("/v1/tasks", json={"type": "purchase_order", "subject": V,
                                          "payload": {"vendor": V, "amount": 100}},
                       headers=bot).json()
    client.post(f"/v1/tasks/{task['id']}/assign", json={"member": "buyer-bot-1"},
                headers=admin)
    members = {m["id"]: m for m in client.get("/v1/members", headers=bot).json()}
    assert members["buyer-bot-1"] == {
        "id": "buyer-bot-1", "name": "Buyer Agent 1", "kind": "ai",
        "title": "Purchasing agent", "department": "procurement", "roles": ["buyer"],
        "teams": ["purchasing"], "reports_to": "james.liu", "capacity": 25,
        "status": "active", "load": 1}
    assert members["james.liu"]["load"] == 0
    one = client.get("/v1/members/buyer-bot-1", headers=bot).json()
    assert one["chain_of_command"][0] == "james.liu"
    assert one["limits"] == {"purchase": "5000"}
    assert one["load"] == 1
    assert "buyer-bot-1" in client.get("/v1/members/james.liu",
                                       headers=bot).json()["direct_reports"]
    refused(client.get("/v1/members/nobody", headers=bot), 404)
    refused(client.get("/v1/members/bad%20id!", headers=bot), 422)


def test_member_stats_are_its_track_record(client: TestClient, acme: Charter, as_member):
    review_work(acme, "buyer-bot-1", [True, True, False], task_type="purchase_order",
                subject=V, reviewer="james.liu")
    stats = client.get("/v1/members/buyer-bot-1/stats",
                       headers=as_member("james.liu")).json()
    assert len(stats) == 1
    assert (stats[0]["task_type"], stats[0]["n"], stats[0]["successes"],
            stats[0]["verified"]) == ("purchase_order", 3, 2, 3)
    assert client.get("/v1/members/buyer-bot-2/stats",
                      headers=as_member("james.liu")).json() == []
    refused(client.get("/v1/members/nobody/stats", headers=as_member("james.liu")), 404)


# -- policies -------------------------------------------------------------------------

def test_the_policy_set_in_force(client: TestClient, as_member, workspace: Path):
    policies = client.get("/v1/policies", headers=as_member("buyer-bot-1")).json()
    assert policies["version"] == 1 and len(policies["digest"]) == 64
    assert policies["files"] == policy_files(workspace)
    found = {p["id"]: p for p in policies["policies"]}
    assert found["buyers-purchase-within-limit"]["file"] == "spending.cedar"
    assert found["buyers-purchase-within-limit"]["line"] > 0


def test_an_admin_loads_a_policy_set(client: TestClient, admin, acme: Charter,
                                     workspace: Path):
    assert acme.authorize("buyer-bot-1", "purchase.create", V,
                          {"amount": 800}).outcome == "allow"
    files = {**policy_files(workspace), "freeze.cedar": FREEZE_GLOBEX}
    loaded = client.post("/v1/policies", json={"files": files}, headers=admin)
    assert loaded.status_code == 201, loaded.text
    assert (loaded.json()["version"], loaded.json()["source"]) == (2, "api")
    assert "freeze-globex" in {p["id"] for p in loaded.json()["policies"]}
    decision = acme.authorize("buyer-bot-1", "purchase.create", V, {"amount": 800})
    assert decision.outcome == "deny"
    assert "freeze-globex" in decision.reasons[0].policies
    assert client.get("/v1/policies", headers=admin).json()["version"] == 2


def test_loading_policies_needs_an_admin(client: TestClient, as_member, workspace: Path):
    files = {**policy_files(workspace), "freeze.cedar": FREEZE_GLOBEX}
    refused(client.post("/v1/policies", json={"files": files},
                             headers=as_member("dana.whitfield")), 403)
    assert client.get("/v1/policies", headers=as_member("james.liu")).json()["version"] == 1


def test_an_invalid_policy_set_is_refused_and_the_previous_one_decides(
        client: TestClient, admin, acme: Charter, workspace: Path):
    files = {**policy_files(workspace), "freeze.cedar": FREEZE_GLOBEX,
             "typo.cedar": "// a typo\n\npermit (principal, action == Action::\"purchase.craete\","
                           " resource);\n"}
    error = refused(client.post("/v1/policies", json={"files": files}, headers=admin),
                         422)
    assert error["type"] == "PolicyInvalid"
    assert {(p["file"], p["line"]) for p in error["details"]} == {("typo.cedar", 3)}
    assert any(p["message"].startswith("Cedar:") and "purchase.craete" in p["message"]
               for p in error["details"])
    assert acme.authorize("buyer-bot-1", "purchase.create", V,
                          {"amount": 800}).outcome == "allow"
    assert client.get("/v1/policies", headers=admin).json()["version"] == 1


def test_any_member_validates_a_policy_set_without_loading_it(client: TestClient, as_member,
                                                              workspace: Path):
    bot = as_member("buyer-bot-1")
    files = {**policy_files(workspace), "freeze.cedar": FREEZE_GLOBEX}
    checked = client.post("/v1/policies/validate", json={"files": files}, headers=bot)
    assert checked.status_code == 200, checked.text
    assert checked.json()["valid"] is True
    assert "freeze-globex" in {p["id"] for p in checked.json()["policies"]}
    error = refused(client.post("/v1/policies/validate", json={"files": {
        "x.cedar": "permit (principal, action, resource) when { nope };"}}, headers=bot), 422)
    assert error["details"][0]["file"] == "x.cedar"
    assert client.get("/v1/policies", headers=bot).json()["version"] == 1


@pytest.mark.parametrize(("text", "problem"), [
    ("(" * 40 + "true" + ")" * 40, "brackets nest"),
    ("[" * 5000 + "]" * 5000, "tokens"),
    (" && ".join(["true"] * 30_000), "tokens"),
    (" && ".join(["true"] * 100), "nest too deeply"),
    ("principal has a" + ".b" * 20, "`has` path"),
], ids=["parentheses", "lists", "long-chain", "chain-past-cedar-nesting", "has-path"])
def test_policies_too_deep_for_cedar_are_refused_with_their_place(
        client: TestClient, as_member, text: str, problem: str):
    statement = f"\npermit (principal, action, resource) when {{ {text} }};"
    error = refused(client.post("/v1/policies/validate",
                                     json={"files": {"deep.cedar": statement}},
                                     headers=as_member("buyer-bot-1")), 422)
    (found,) = error["details"]
    assert (found["file"], found["line"]) == ("deep.cedar", 2)
    assert problem in found["message"]


@pytest.mark.parametrize("files", [
    {"../escape.cedar": "permit (principal, action, resource);"},
    {"notes.txt": "permit (principal, action, resource);"},
    {"x.cedar": "permit (principal, action, resource);\x00"},
    {},
], ids=["path", "not-cedar", "nul", "none"])
def test_odd_policy_files_are_invalid_input(client: TestClient, admin, files):
    refused(client.post("/v1/policies", json={"files": files}, headers=admin), 422)
