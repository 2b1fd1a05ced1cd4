"""The org and policies page, and the authorize playground: the org in force with its
versions, task types, budgets, actions and policy files; questions decided for real and
recorded, a member asking only about itself, a bad question recording nothing."""

from __future__ import annotations

import re

import pytest

from charter.system import Charter
from charter.web.pages.org import policy_anchor
from tests.engines.orgs import edit_org

ASK = {"member": "buyer-bot-1", "action": "purchase.create", "resource": "Vendor::globex"}


def ask(web, csrf: str, *, htmx: bool = True, **fields: str):
    headers = {"HX-Request": "true"} if htmx else {}
    return web.post("/org/authorize", data={**ASK, **fields, "csrf": csrf}, headers=headers)


def outcome(html: str) -> str | None:
    found = re.search(r'id="decision"[^>]*data-outcome="(\w+)"', html)
    return None if found is None else found.group(1)


def recorded(system: Charter) -> int:
    """The ledger's length once every decision made so far is written."""
    system.flush_decisions()
    return system.checkpoint().seq


def test_the_org_in_force_is_shown_whole(acme, workspace, sign_in, web):
    acme.load_org(edit_org(workspace, extra={"skills": {"haggling": "Bargaining"}}))
    sign_in("james.liu")
    page = web.get("/org")
    assert page.status_code == 200
    html = page.text
    assert 'id="org-version">v2<' in html
    assert html.count("<tr data-version=") == 2
    assert f'id="members-count"><a href="/members">{len(acme.org.spec.members)}<' in html
    purchase = re.search(r'<tr data-task-type="purchase_order">.*?</tr>', html, re.S)
    assert purchase
    for shown in ("purchase.create", "autonomous",
                  "retry 1 time → reassign 2 times → escalate to supervisor"):
        assert shown in purchase.group(0)
    assert re.search(r'<tr data-task-type="payment_release">.*?<td class="num">2</td>',
                     html, re.S)
    assert '<tr data-budget="buyer-bot-1-spend">' in html and "60,000.00" in html
    assert 'data-action="refund.issue"' in html


def test_the_policy_set_shows_each_file_and_its_policies(acme, sign_in, web):
    policies = acme.current_policies()
    assert policies is not None
    sign_in("james.liu")
    html = web.get("/org").text
    assert f'id="policy-set" data-version="{policies.version}"' in html
    assert policies.digest in html
    for name in policies.files:
        assert f'<details class="policy-file" data-file="{name}">' in html
    assert f'id="{policy_anchor("buyers-purchase-within-limit")}"' in html
    assert "principal in Role::&#34;buyer&#34;" in html


def test_an_admin_asks_about_any_member_and_the_decision_is_recorded(acme, sign_in, web):
    csrf = sign_in("dana.whitfield", admin=True)
    page = web.get("/org").text
    assert '<select id="ask-member" name="member">' in page
    assert 'id="authorize-form"' in page and "recorded in the ledger" in page
    before = recorded(acme)
    allowed = ask(web, csrf, context='{"amount": 300}')
    assert allowed.status_code == 200 and outcome(allowed.text) == "allow"
    assert 'href="/org#policy-buyers-purchase-within-limit"' in allowed.text
    escalated = ask(web, csrf, context='{"amount": 8000}')
    assert outcome(escalated.text) == "escalate"
    assert re.search(r'id="approvers">Needs 1 of: james\.liu', escalated.text)
    denied = ask(web, csrf, resource="Vendor::initech", context='{"amount": 300}')
    assert outcome(denied.text) == "deny"
    assert "frozen-vendors-blocked" in denied.text
    assert recorded(acme) > before
    decisions = acme.events(after=before, kind="decision.made")
    assert [event.payload["outcome"] for event in decisions if event.payload] == [
        "allow", "escalate", "deny"]
    assert len(acme.approvals(status="pending")) == 1


def test_a_member_asks_only_about_itself(acme, sign_in, web):
    csrf = sign_in("james.liu")
    page = web.get("/org").text
    assert '<input id="ask-member" value="james.liu" disabled' in page
    assert '<select id="ask-member"' not in page
    before = recorded(acme)
    refused = ask(web, csrf)
    assert refused.status_code == 403
    assert "needs an admin" in refused.text
    assert recorded(acme) == before
    own = ask(web, csrf, member="james.liu", context='{"amount": 100}')
    assert outcome(own.text) in {"allow", "deny", "escalate"}
    assert recorded(acme) == before + 1


@pytest.mark.parametrize("fields, says", [
    ({"context": '{"amount": 300'}, "the context is not valid JSON"),
    ({"context": "[1, 2]"}, "the context must be a JSON object"),
    ({"context": '{"amount": NaN}'}, "numbers must be finite"),
    ({"action": "purchase.fly"}, "unknown action"),
    ({"context": "{}"}, "the request is not valid"),
    ({"context": '{"amount": "lots"}'}, "the request is not valid"),
    ({"resource": ""}, "name the resource as Type::id"),
    ({"resource": "Vendor::" + "x" * 600}, "resource is longer than 512 characters"),
    ({"context": "x" * 20_001}, "longer than 20,000 characters"),
])
def test_a_bad_question_says_what_is_wrong_and_records_nothing(acme, sign_in, web, fields,
                                                               says):
    csrf = sign_in("dana.whitfield", admin=True)
    before = recorded(acme)
    answered = ask(web, csrf, **{"context": '{"amount": 300}', **fields})
    assert answered.status_code == 200
    assert 'id="authorize-problem"' in answered.text and says in answered.text
    assert outcome(answered.text) is None
    assert recorded(acme) == before
    assert acme.approvals() == []


def test_without_javascript_the_answer_is_a_page(acme, sign_in, web):
    csrf = sign_in("dana.whitfield", admin=True)
    answered = ask(web, csrf, htmx=False, context='{"amount": 300}')
    assert answered.status_code == 200
    assert "<!doctype html>" in answered.text and outcome(answered.text) == "allow"
    assert '<option value="buyer-bot-1" selected>' in answered.text
    bad = ask(web, csrf, htmx=False, context="{")
    assert bad.status_code == 422
    assert 'id="authorize-problem"' in bad.text
    assert "{</textarea>" in bad.text  # the question is kept to be corrected
    assert web.get("/org/authorize").status_code == 200


def test_asking_needs_the_csrf_token(acme, sign_in, web):
    sign_in("dana.whitfield", admin=True)
    before = recorded(acme)
    refused = web.post("/org/authorize", data={**ASK, "context": '{"amount": 300}'})
    assert refused.status_code == 403
    assert recorded(acme) == before


def test_the_pages_need_a_signed_in_member(web):
    assert web.get("/org", follow_redirects=False).status_code == 303
    assert web.get("/ledger", follow_redirects=False).status_code == 303
