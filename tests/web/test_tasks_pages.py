"""The tasks pages: the filterable list in cursor pages, a task's page (fields, timeline
from the ledger, the allocator's explanation, the hand-off packet) and cancelling, on
SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from charter import ManualClock
from charter.system import Charter
from charter.web import timeline
from charter.web.pages import tasks as tasks_pages

SignIn = Callable[..., str]


def listed(page: str) -> list[str]:
    """The task ids of the list's rows, in order."""
    return re.findall(r'<tr data-task="([^"]+)"', page)


def kinds(page: str) -> list[str]:
    """The kinds of the timeline's entries, in order."""
    timeline = page[page.index('id="timeline"'):]
    timeline = timeline[:timeline.index("</ol>")]
    return re.findall(r'<li data-kind="([^"]+)"', timeline)


def next_link(page: str) -> str | None:
    found = re.search(r'<a href="([^"]+)"[^>]*rel="next"', page)
    return None if found is None else html.unescape(found.group(1))


def section(page: str, marker: str) -> str:
    """The HTML from the element carrying `marker` to the end of its section."""
    start = page.index(marker)
    return page[start:page.index("</section>", start)]


def submit(acme: Charter, clock: ManualClock, count: int, *, task_type: str = "ticket_triage",
           subject: str = "Customer::1", requester: str = "ben.kowalski",
           step: timedelta = timedelta(seconds=1)) -> list[str]:
    """Submit `count` tasks `step` apart; their ids, oldest first."""
    ids = []
    for _ in range(count):
        clock.advance(step)
        ids.append(acme.submit_task(task_type, subject, requester=requester).id)
    return ids


def test_the_list_shows_the_newest_task_first_with_its_columns(
        acme: Charter, web: TestClient, sign_in: SignIn, clock: ManualClock) -> None:
    ids = submit(acme, clock, 3)
    acme.assign_task(ids[0], "triage-bot", actor="ben.kowalski")
    sign_in("james.liu")
    page = web.get("/tasks")
    assert page.status_code == 200
    assert listed(page.text) == ids[::-1]
    row = page.text[page.text.index(f'data-task="{ids[0]}"'):]
    row = row[:row.index("</tr>")]
    assert f'href="/tasks/{ids[0]}"' in row and "ticket_triage" in row
    assert "Customer::1" in row and "state-assigned" in row and "triage-bot" in row
    assert 'id="task-list"' in page.text and 'id="task-filters"' in page.text


def test_filters_narrow_the_list_and_stay_on_its_pages(
        acme: Charter, web: TestClient, sign_in: SignIn, clock: ManualClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    triage = submit(acme, clock, 5, subject="Customer::7")
    refunds = submit(acme, clock, 2, task_type="refund", subject="Customer::7",
                     requester="aisha.mensah")
    other = submit(acme, clock, 1, subject="Customer::8")
    acme.assign_task(triage[1], "triage-bot", actor="ben.kowalski")
    acme.cancel_task(triage[2], actor="ben.kowalski")
    sign_in("james.liu")

    def ids(query: str) -> list[str]:
        response = web.get(f"/tasks?{query}")
        assert response.status_code == 200, response.text
        return listed(response.text)

    assert ids("type=refund") == refunds[::-1]
    assert ids("state=cancelled") == [triage[2]]
    assert ids("assignee=triage-bot") == [triage[1]]
    assert ids("requester=aisha.mensah") == refunds[::-1]
    assert ids("subject=Customer%3A%3A8") == other
    assert ids("subject=Customer%3A%3A7&type=ticket_triage&state=queued") == [
        triage[4], triage[3], triage[0]]
    assert ids("state=&type=&assignee=&requester=&subject=") == [
        *other, *refunds[::-1], *triage[::-1]]  # a plain form's empty fields filter nothing
    assert "No task matches these filters" in web.get("/tasks?subject=Customer%3A%3A9").text

    monkeypatch.setattr(tasks_pages, "PAGE_SIZE", 2)
    first = web.get("/tasks?subject=Customer%3A%3A7&type=ticket_triage")
    assert listed(first.text) == triage[:2:-1]
    link = next_link(first.text)
    assert link is not None and "subject=Customer%3A%3A7" in link and "type=ticket_triage" in link
    second = web.get(link)
    assert listed(second.text) == triage[2:0:-1]
    assert '<option value="ticket_triage" selected>' in second.text  # the form keeps them


def test_pages_follow_each_other_without_gaps_or_repeats_at_one_instant(
        acme: Charter, web: TestClient, sign_in: SignIn, clock: ManualClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ids = submit(acme, clock, 7, step=timedelta(0))  # one created_at: the id breaks ties
    monkeypatch.setattr(tasks_pages, "PAGE_SIZE", 3)
    sign_in("james.liu")
    seen: list[str] = []
    link: str | None = "/tasks"
    pages = 0
    while link is not None:
        page = web.get(link)
        assert page.status_code == 200
        seen += listed(page.text)
        link = next_link(page.text)
        pages += 1
    assert pages == 3 and seen == sorted(ids, reverse=True)


@pytest.mark.parametrize(("query", "says"), [
    ("state=stuck", "unknown task state 'stuck'"),
    ("type=teleport", "unknown task type 'teleport'"),
    ("cursor=not-a-cursor", "page link is broken"),
    ("cursor=WyJ4Il0", "page link is broken"),  # a cursor of the wrong shape
    ("subject=" + "x" * 257, "at most 256 characters"),
    ("requester=a%00b", "no NUL"),
], ids=["state", "type", "cursor", "cursor-shape", "subject-length", "nul"])
def test_bad_filters_get_a_clear_422_page_and_change_nothing(
        acme: Charter, web: TestClient, sign_in: SignIn, clock: ManualClock, query: str,
        says: str) -> None:
    submit(acme, clock, 1)
    sign_in("james.liu")
    before = acme.checkpoint().seq
    response = web.get(f"/tasks?{query}")
    assert response.status_code == 422
    assert says in html.unescape(response.text)
    assert "<html" in response.text and 'id="task-list"' not in response.text
    assert acme.checkpoint().seq == before


def test_the_enhanced_filter_form_gets_the_results_alone(
        acme: Charter, web: TestClient, sign_in: SignIn, clock: ManualClock) -> None:
    ids = submit(acme, clock, 2)
    sign_in("james.liu")
    fragment = web.get("/tasks?state=queued",
                       headers={"HX-Request": "true", "HX-Target": "task-results"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and listed(fragment.text) == ids[::-1]
    refused = web.get("/tasks?state=stuck",
                      headers={"HX-Request": "true", "HX-Target": "task-results"})
    assert refused.headers["HX-Retarget"] == "#flash" and "unknown task state" in refused.text
    restored = web.get("/tasks?state=queued", headers={
        "HX-Request": "true", "HX-Target": "task-results", "HX-History-Restore-Request": "true"})
    assert "<html" in restored.text  # history restore needs the whole page


def test_signed_out_visitors_are_sent_to_sign_in(web: TestClient) -> None:
    response = web.get("/tasks?state=queued", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/signin?next=/tasks")


def escalated_purchase(acme: Charter, clock: ManualClock) -> tuple[str, str]:
    """A purchase over buyer-bot-1's limit: approved by james.liu, then done, with a
    verified outcome. Returns the task and approval ids."""
    task = acme.submit_task("purchase_order", "Vendor::globex",
                            {"vendor": "Vendor::globex", "amount": 8000},
                            requester="sofia.alvarez")
    clock.advance(timedelta(seconds=1))
    acme.assign_task(task.id, "buyer-bot-1", actor="sofia.alvarez")
    claim = acme.claim_next("buyer-bot-1")
    assert claim is not None
    acme.heartbeat(task.id, member="buyer-bot-1", fencing=claim.fencing)
    acme.heartbeat(task.id, member="buyer-bot-1", fencing=claim.fencing)
    decision = acme.authorize("buyer-bot-1", "purchase.create", "Vendor::globex",
                              {"amount": 8000}, task_type="purchase_order", task_id=task.id)
    assert decision.approval_id is not None
    acme.await_approval(task.id, member="buyer-bot-1", fencing=claim.fencing,
                        approval_ids=[decision.approval_id], resume={})
    clock.advance(timedelta(minutes=5))
    acme.approve(decision.approval_id, approver="james.liu", comment="within budget")
    again = acme.claim_next("buyer-bot-1")
    assert again is not None
    acme.complete_task(task.id, member="buyer-bot-1", fencing=again.fencing,
                       result={"order": "PO-1"}, cost=1)
    acme.record_outcome(task.id, success=True, reported_by="james.liu", verified=True)
    return task.id, decision.approval_id


def test_the_task_page_shows_its_fields_timeline_and_packet(
        acme: Charter, web: TestClient, sign_in: SignIn, clock: ManualClock) -> None:
    task_id, approval_id = escalated_purchase(acme, clock)
    other = submit(acme, clock, 1)[0]  # another task's events stay off this timeline
    sign_in("james.liu")
    page = web.get(f"/tasks/{task_id}")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert re.search(r'id="task-state"[^>]*>done<', page.text)
    fields = section(text, 'id="task-fields"')
    for shown in ("purchase_order", "Vendor::globex", "sofia.alvarez", "buyer-bot-1",
                  "verified", task_id):
        assert shown in fields
    assert '"order": "PO-1"' in text and '"amount": 8000' in text
    assert kinds(page.text) == [
        "task.submitted", "task.assigned", "task.claimed", "task.heartbeat",
        "approval.requested", "task.awaiting_approval", "approval.voted", "approval.granted",
        "task.resumed", "task.claimed", "task.completed", "outcome.recorded",
        "outcome.recorded"]
    timeline = section(text, 'id="timeline"')
    assert "2 heartbeats" in timeline and "attempt 2: started by buyer-bot-1" in timeline
    assert f'href="/approvals/{approval_id}"' in timeline
    assert "james.liu voted approve: “within budget”" in timeline
    assert "success of buyer-bot-1, verified by james.liu" in timeline
    assert other not in timeline
    explanation = re.search(r'id="explanation">([^<]*)</pre>', text)
    assert explanation is not None
    assert explanation.group(1) == acme.explain_task(task_id) == (
        "assigned by hand to buyer-bot-1")
    packet = section(text, 'id="handoff"')
    assert 'data-attempt="1"' in packet and 'data-attempt="2"' in packet
    assert "paused for approval" in packet and "completed" in packet
    assert f'data-approval="{approval_id}"' in packet and "status-approved" in packet
    assert "Cancel task" not in text  # done: nothing to cancel


def test_a_long_history_is_cut_short_with_a_way_to_the_rest(
        acme: Charter, web: TestClient, sign_in: SignIn,
        monkeypatch: pytest.MonkeyPatch) -> None:
    task = acme.submit_task("ticket_triage", "Customer::1", requester="ben.kowalski")
    acme.assign_task(task.id, "triage-bot", actor="ben.kowalski")
    claim = acme.claim_next("triage-bot")
    assert claim is not None
    for _ in range(4):
        acme.heartbeat(task.id, member="triage-bot", fencing=claim.fencing)
    monkeypatch.setattr(timeline, "LIMIT", 6)
    sign_in("james.liu")
    page = web.get(f"/tasks/{task.id}").text
    assert kinds(page) == ["task.submitted", "task.assigned", "task.claimed",
                           "task.heartbeat"]
    assert "3 heartbeats" in page and 'id="timeline-truncated"' in page
    assert f'href="/ledger?subject=task:{task.id}"' in page


def test_an_allocated_task_shows_the_allocators_explanation_on_its_assignment(
        acme: Charter, web: TestClient, sign_in: SignIn) -> None:
    task = acme.submit_task("purchase_order", "Vendor::globex", {"amount": 300},
                            requester="james.liu", dispatch=True)
    assert task.assignee is not None
    sign_in("james.liu")
    page = html.unescape(web.get(f"/tasks/{task.id}").text)
    assigned = page[page.index('data-kind="task.assigned"'):]
    assigned = assigned[:assigned.index("</details>")]
    assert 'id="explanation"' in assigned  # on the assignment it explains
    assert acme.explain_task(task.id) in assigned
    assert re.search(rf'data-candidate="{re.escape(task.assignee)}" class="picked"', assigned)
    assert "Not eligible, lacks skill purchasing" in assigned and "triage-bot" in assigned


def test_a_queued_task_says_who_would_get_it_now_once_the_page_shows(
        acme: Charter, web: TestClient, sign_in: SignIn, clock: ManualClock) -> None:
    task_id = submit(acme, clock, 1)[0]
    sign_in("james.liu")
    page = web.get(f"/tasks/{task_id}").text
    assert f'hx-get="/tasks/{task_id}/explanation" hx-trigger="load"' in page
    assert kinds(page) == ["task.submitted"]
    assert "Nobody has tried it yet" in section(page, 'id="handoff"')
    fragment = web.get(f"/tasks/{task_id}/explanation", headers={"HX-Request": "true"}).text
    explanation = re.search(r'^<pre class="explanation" id="explanation">([^<]*)</pre>',
                            fragment)
    assert explanation is not None
    assert html.unescape(explanation.group(1)) == acme.explain_task(task_id)
    assert explanation.group(1).startswith("if dispatched now: ")
    whole = web.get(f"/tasks/{task_id}/explanation").text  # without script: a page
    assert "<html" in whole and 'id="explanation">if dispatched now: ' in whole


def test_the_packet_shows_memories_only_as_far_as_the_viewer_may_read_them(
        acme: Charter, web: TestClient, sign_in: SignIn) -> None:
    acme.remember("Payroll::2026-11", "November payroll runs on the 25th",
                  by="marcus.okafor")
    task = acme.submit_task("ticket_triage", "Payroll::2026-11", requester="ben.kowalski")
    acme.assign_task(task.id, "triage-bot", actor="ben.kowalski")
    sign_in("elena.petrova")  # finance may read payroll memory
    packet = section(web.get(f"/tasks/{task.id}").text, 'id="handoff"')
    assert "November payroll runs on the 25th" in packet
    sign_in("ben.kowalski")  # the requester, but not in finance
    packet = html.unescape(section(web.get(f"/tasks/{task.id}").text, 'id="handoff"'))
    assert "November payroll" not in packet
    assert "ben.kowalski may not read memory about Payroll::2026-11" in packet


def test_the_requester_cancels_an_open_task(
        acme: Charter, web: TestClient, sign_in: SignIn, clock: ManualClock) -> None:
    task_id = submit(acme, clock, 1, requester="james.liu")[0]
    csrf = sign_in("james.liu")
    assert 'id="task-cancel"' in web.get(f"/tasks/{task_id}").text
    response = web.post(f"/tasks/{task_id}/cancel",
                        data={"csrf": csrf, "reason": "ordered elsewhere"},
                        follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/tasks/{task_id}?cancelled=1"
    page = web.get(response.headers["location"]).text
    assert re.search(r'id="task-state"[^>]*>cancelled<', page)
    assert "You cancelled this task." in page and 'id="task-cancel"' not in page
    assert kinds(page)[-1] == "task.cancelled"
    assert "cancelled by james.liu: ordered elsewhere" in section(page, 'id="timeline"')
    again = web.post(f"/tasks/{task_id}/cancel", data={"csrf": csrf})
    assert again.status_code == 409 and "already cancelled" in again.text


def test_an_htmx_cancel_asks_the_page_to_reload_itself(
        acme: Charter, web: TestClient, sign_in: SignIn, clock: ManualClock) -> None:
    task_id = submit(acme, clock, 1)[0]
    csrf = sign_in("dana.whitfield", admin=True)  # an admin may cancel anyone's task
    assert 'id="task-cancel"' in web.get(f"/tasks/{task_id}").text
    response = web.post(f"/tasks/{task_id}/cancel",
                        headers={"HX-Request": "true", "X-CSRF-Token": csrf})
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == f"/tasks/{task_id}?cancelled=1"
    assert acme.task(task_id).state == "cancelled"


def test_others_see_no_cancel_button_and_their_cancel_changes_nothing(
        acme: Charter, web: TestClient, sign_in: SignIn, clock: ManualClock) -> None:
    task_id = submit(acme, clock, 1, requester="james.liu")[0]
    csrf = sign_in("sofia.alvarez")  # james.liu's manager, but not an admin
    assert 'id="task-cancel"' not in web.get(f"/tasks/{task_id}").text
    history = acme.events(subject=f"task:{task_id}")
    refused = web.post(f"/tasks/{task_id}/cancel", data={"csrf": csrf})
    assert refused.status_code == 403
    assert "only james.liu (who asked for it) or an admin" in refused.text
    sign_in("james.liu")
    forged = web.post(f"/tasks/{task_id}/cancel", data={"reason": "no token"})
    assert forged.status_code == 403 and "CSRF" in forged.text
    assert acme.task(task_id).state == "queued"
    assert acme.events(subject=f"task:{task_id}") == history


def test_an_unknown_task_is_a_404_page(web: TestClient, sign_in: SignIn) -> None:
    sign_in("james.liu")
    response = web.get("/tasks/0b7e2c1a-0000-4000-8000-000000000000")
    assert response.status_code == 404
    assert "no task 0b7e2c1a-0000-4000-8000-000000000000" in response.text
    assert web.post("/tasks/0b7e2c1a-0000-4000-8000-000000000000/cancel",
                    data={"csrf": sign_in("james.liu")}).status_code == 404


def test_task_page_reads_newest_first_by_requester_and_subject(
        acme: Charter, clock: ManualClock) -> None:
    mine = submit(acme, clock, 3, requester="james.liu", subject="Customer::1")
    theirs = submit(acme, clock, 2, requester="ben.kowalski", subject="Customer::2")
    everything = mine + theirs
    assert [t.id for t in acme.task_page()] == everything  # oldest first, as before
    newest = [t.id for t in acme.task_page(newest_first=True)]
    assert newest == everything[::-1]
    first = acme.task_page(newest_first=True, limit=2)
    after = (first[-1].created_at, first[-1].id)
    assert [t.id for t in acme.task_page(newest_first=True, after=after)] == newest[2:]
    assert [t.id for t in acme.task_page(requester="james.liu", newest_first=True)] == \
        mine[::-1]
    assert [t.id for t in acme.task_page(subject="Customer::2")] == theirs
    assert acme.task_page(subject="Customer::2", requester="james.liu") == []
