"""The approvals inbox: exact arguments, reasons, track record, quorum; votes only where
the viewer may vote, and a forged vote changes nothing."""

from __future__ import annotations

import pytest

from tests.web.conftest import csrf_of
from tests.web.scenes import buying_org, escalated_purchases


@pytest.fixture
def waiting(acme, workspace, tmp_path):
    buying_org(acme, workspace)
    task_ids = escalated_purchases(acme, tmp_path / "shop.jsonl", 8000, 9000)
    approvals = [acme.approvals(task_id=task_id)[0] for task_id in task_ids]
    return list(zip(task_ids, approvals, strict=True))


def test_the_inbox_shows_what_waits_for_the_person(waiting, sign_in, web):
    sign_in("james.liu")
    page = web.get("/approvals").text
    for _task_id, approval in waiting:
        assert f'id="approval-{approval.id}"' in page
        assert f'action="/approvals/{approval.id}/approve"' in page
    assert "&#34;amount&#34;: 8000" in page or '"amount": 8000' in page
    assert "purchase.create" in page
    assert "0 of 1 approval" in page
    assert "no outcomes yet on purchase_order" in page


def test_approving_resumes_the_task(acme, waiting, sign_in, web):
    task_id, approval = waiting[0]
    csrf = sign_in("james.liu")
    response = web.post(f"/approvals/{approval.id}/approve",
                        data={"comment": "ok for Q4"}, headers={"HX-Request": "true",
                                                                 "X-CSRF-Token": csrf})
    assert response.status_code == 200
    assert "You approved it." in response.text
    assert "is now assigned" in response.text
    assert acme.approval(approval.id).status == "approved"
    assert acme.task(task_id).state == "assigned"


def test_rejecting_needs_a_comment(acme, waiting, sign_in, web):
    _task_id, approval = waiting[1]
    csrf = sign_in("james.liu")
    refused = web.post(f"/approvals/{approval.id}/reject", data={"csrf": csrf})
    assert refused.status_code == 422
    assert "say why you reject it" in refused.text
    assert acme.approval(approval.id).status == "pending"
    done = web.post(f"/approvals/{approval.id}/reject",
                    data={"csrf": csrf, "comment": "vendor under review"},
                    follow_redirects=False)
    assert done.status_code == 303
    settled = acme.approval(approval.id)
    assert settled.status == "rejected"
    assert settled.votes[0].comment == "vendor under review"


def test_a_person_without_authority_sees_no_button_and_cannot_vote(acme, waiting,
                                                                    sign_in, web):
    _task_id, approval = waiting[0]
    csrf = sign_in("sofia.alvarez")
    inbox = web.get("/approvals").text
    assert f'id="approval-{approval.id}"' in inbox  # listed under "waiting for others"
    assert f'action="/approvals/{approval.id}/approve"' not in inbox
    assert "you are not one of its approvers" in inbox
    page = web.get(f"/approvals/{approval.id}").text
    assert "/approve" not in page
    forged = web.post(f"/approvals/{approval.id}/approve", data={"csrf": csrf})
    assert forged.status_code == 403
    assert acme.approval(approval.id).status == "pending"


def test_a_vote_without_the_csrf_token_is_refused(acme, waiting, sign_in, web):
    _task_id, approval = waiting[0]
    sign_in("james.liu")
    for data in ({}, {"csrf": "0" * 64}):
        response = web.post(f"/approvals/{approval.id}/approve", data=data)
        assert response.status_code == 403
        assert "CSRF" in response.text
    assert acme.approval(approval.id).status == "pending"


def test_an_unknown_approval_is_a_not_found_page(waiting, sign_in, web):
    sign_in("james.liu")
    page = web.get("/approvals/00000000-0000-0000-0000-000000000000")
    assert page.status_code == 404
    assert "<h1>NotFound</h1>" in page.text


def test_an_htmx_error_comes_back_as_a_flash(waiting, sign_in, web):
    _task_id, approval = waiting[0]
    csrf = sign_in("james.liu")
    web.get("/approvals")
    response = web.post(f"/approvals/{approval.id}/reject",
                        headers={"HX-Request": "true", "X-CSRF-Token": csrf})
    assert response.status_code == 422
    assert response.headers["HX-Retarget"] == "#flash"
    assert 'class="flash error"' in response.text
    assert csrf_of(web.get("/approvals").text) == csrf
