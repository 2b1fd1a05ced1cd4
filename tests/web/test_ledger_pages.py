"""The ledger pages: search by kind, subject and actor in newest-first cursor pages, one
event whole, and verifying the chain; a member reads only its own events."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import update

from charter.ledger import EventDraft
from charter.store.schema import events
from charter.system import Charter
from charter.web.pages.ledger import PAGE_SIZE, subject_page


def append(system: Charter, count: int, *, kind: str = "test.happened",
           actor: str = "tester", subject: str = "thing:1") -> list[int]:
    """`count` events in one transaction; their seqs."""
    drafts = [EventDraft(kind, actor, subject, {"n": n}) for n in range(count)]
    with system.store.transaction() as conn:
        return [event.seq for event in system.ledger.append_many(conn, drafts)]


def seqs(html: str) -> list[int]:
    """The seqs of the rows of the events table, in the order shown."""
    return [int(seq) for seq in re.findall(r'<tr data-seq="(\d+)"', html)]


def link(html: str, element_id: str) -> str:
    found = re.search(rf'href="([^"]+)" rel="\w+" id="{element_id}"', html)
    assert found, f"the page has no #{element_id} link"
    return found.group(1).replace("&amp;", "&")


def test_events_are_listed_newest_first_with_links(acme, sign_in, web):
    task = acme.submit_task("purchase_order", "vendor:globex",
                            {"vendor": "Vendor::globex", "amount": 300},
                            requester="james.liu")
    sign_in("dana.whitfield", admin=True)
    page = web.get("/ledger")
    assert page.status_code == 200
    shown = seqs(page.text)
    assert shown == sorted(shown, reverse=True) and shown[0] == acme.checkpoint().seq
    assert 'id="ledger-search"' in page.text and 'id="events"' in page.text
    assert f'href="/tasks/{task.id}"' in page.text
    assert '<option value="org.loaded">' in page.text
    assert '<option value="task.submitted">' in page.text
    assert 'href="/ledger/1"' in page.text


def test_searching_matches_kind_subject_and_actor_exactly(acme, sign_in, web):
    append(acme, 3, kind="test.one", actor="robot", subject="thing:a")
    append(acme, 2, kind="test.two", actor="robot", subject="thing:b")
    append(acme, 4, kind="test.one", actor="other", subject="thing:b")
    sign_in("dana.whitfield", admin=True)
    by_kind = seqs(web.get("/ledger", params={"kind": "test.one"}).text)
    assert len(by_kind) == 7
    assert len(seqs(web.get("/ledger", params={"subject": "thing:b"}).text)) == 6
    assert len(seqs(web.get("/ledger", params={"actor": "robot"}).text)) == 5
    both = web.get("/ledger", params={"kind": "test.one", "subject": "thing:b",
                                      "actor": "other"}).text
    assert len(seqs(both)) == 4
    assert seqs(web.get("/ledger", params={"kind": "test.on"}).text) == []
    assert 'id="no-events"' in web.get("/ledger", params={"subject": "thing"}).text


def test_pages_go_older_and_back_newer(acme, sign_in, web):
    made = append(acme, PAGE_SIZE * 2 + 5, kind="test.paged")
    sign_in("dana.whitfield", admin=True)
    first = web.get("/ledger", params={"kind": "test.paged"}).text
    assert seqs(first) == made[::-1][:PAGE_SIZE]
    assert 'id="newer"' not in first
    second = web.get(link(first, "older")).text
    assert seqs(second) == made[::-1][PAGE_SIZE:2 * PAGE_SIZE]
    third = web.get(link(second, "older")).text
    assert seqs(third) == made[::-1][2 * PAGE_SIZE:]
    assert 'id="older"' not in third
    back = web.get(link(third, "newer")).text
    assert seqs(back) == seqs(second)
    assert seqs(web.get(link(back, "newer")).text) == seqs(first)


def test_combined_filters_search_a_window_at_a_time(acme, sign_in, web, monkeypatch):
    monkeypatch.setattr("charter.web.pages.ledger.SCAN_WINDOW", 20)
    early = append(acme, 3, kind="test.rare", actor="robot")
    append(acme, 45, kind="test.rare", actor="someone-else")
    late = append(acme, 2, kind="test.rare", actor="robot")
    sign_in("dana.whitfield", admin=True)
    query = {"kind": "test.rare", "actor": "robot"}
    first = web.get("/ledger", params=query).text
    assert seqs(first) == late[::-1]
    assert 'id="searched"' in first
    pages, url = [first], link(first, "older")
    while 'id="older"' in pages[-1]:
        pages.append(web.get(url).text)
        url = link(pages[-1], "older") if 'id="older"' in pages[-1] else url
    assert [seq for page in pages for seq in seqs(page)] == late[::-1] + early[::-1]
    assert len(pages) > 2  # the events in between were searched a window at a time
    newest = pages[-1]
    while 'id="newer"' in newest:
        newest = web.get(link(newest, "newer")).text
    assert seqs(newest)[0] == late[-1]
    single = web.get("/ledger", params={"kind": "test.rare"}).text
    assert len(seqs(single)) == PAGE_SIZE and 'id="searched"' not in single


@pytest.mark.parametrize("params, says", [
    ({"before": "abc"}, "before: Input should be a valid integer"),
    ({"after": "-3"}, "after: Input should be greater than or equal to 1"),
    ({"kind": "k" * 65}, "kind: String should have at most 64 characters"),
    ({"subject": "s" * 257}, "subject: String should have at most 256 characters"),
    ({"before": "9", "after": "3"}, "not both"),
])
def test_bad_search_input_is_a_clear_422_page(acme, sign_in, web, params, says):
    sign_in("dana.whitfield", admin=True)
    page = web.get("/ledger", params=params)
    assert page.status_code == 422
    assert says in page.text
    assert "<!doctype html>" in page.text


def test_a_member_reads_only_its_own_events(acme, sign_in, web):
    mine = append(acme, 2, actor="james.liu", subject="thing:j")
    theirs = append(acme, 2, actor="sofia.alvarez", subject="thing:j")
    sign_in("james.liu")
    page = web.get("/ledger", params={"subject": "thing:j"}).text
    assert seqs(page) == mine[::-1]
    assert 'id="search-actor" value="james.liu" disabled' in page
    refused = web.get("/ledger", params={"actor": "sofia.alvarez"})
    assert refused.status_code == 403
    assert "needs an admin" in refused.text
    assert web.get(f"/ledger/{mine[0]}").status_code == 200
    other = web.get(f"/ledger/{theirs[0]}")
    assert other.status_code == 403
    assert "is not one of yours" in other.text and "sofia.alvarez" not in other.text
    # The member's neighbours are its own events, not the chain's.
    detail = web.get(f"/ledger/{mine[1]}").text
    assert f'href="/ledger/{mine[0]}" rel="prev"' in detail
    assert 'rel="next"' not in detail


def test_an_event_shows_its_header_payload_and_chain(acme, sign_in, web):
    seq = append(acme, 3, subject="task:abc")[1]
    event = acme.events(after=seq - 1, limit=1)[0]
    sign_in("dana.whitfield", admin=True)
    page = web.get(f"/ledger/{seq}")
    assert page.status_code == 200
    for value in (event.id, event.kind, event.actor, event.payload_digest, event.hash,
                  event.prev_hash):
        assert value in page.text
    assert "&#34;n&#34;: 1" in page.text
    assert 'href="/tasks/abc"' in page.text
    assert f'href="/ledger/{seq - 1}" rel="prev"' in page.text
    assert f'href="/ledger/{seq + 1}" rel="next"' in page.text


def test_a_redacted_event_names_its_redaction(acme, sign_in, web):
    seq = append(acme, 1, actor="james.liu")[0]
    redaction = acme.redact(seq, actor="dana.whitfield", reason="erasure request 118")
    sign_in("dana.whitfield", admin=True)
    page = web.get(f"/ledger/{seq}").text
    assert "Redacted." in page and "erasure request 118" in page
    assert f'href="/ledger/{redaction.seq}"' in page
    assert "payload-digest" in page
    redacting = web.get(f"/ledger/{redaction.seq}").text
    assert f'the payload of <a href="/ledger/{seq}">' in redacting
    sign_in("james.liu")  # its own event, erased by an admin: not the admin's event
    own = web.get(f"/ledger/{seq}").text
    assert f"Erased by event {redaction.seq}" in own
    assert "erasure request 118" not in own and "dana.whitfield" not in own.split("<main>")[1]


@pytest.mark.parametrize("seq, status", [("999999", 404), ("x", 422), ("0", 422)])
def test_an_unknown_event_is_a_clear_error_page(acme, sign_in, web, seq, status):
    sign_in("dana.whitfield", admin=True)
    page = web.get(f"/ledger/{seq}")
    assert page.status_code == status
    if status == 404:
        assert "no ledger event with seq 999999" in page.text


def test_any_member_may_verify_the_ledger(acme, sign_in, web):
    csrf = sign_in("james.liu")
    assert 'id="verify"' in web.get("/ledger").text
    fragment = web.post("/ledger/verify", headers={"HX-Request": "true",
                                                   "X-CSRF-Token": csrf})
    assert fragment.status_code == 200
    assert 'id="verify-result"' in fragment.text and 'data-ok="true"' in fragment.text
    assert "<!doctype html>" not in fragment.text
    checked = re.search(r'id="events-checked">([\d,]+)<', fragment.text)
    assert checked and int(checked.group(1).replace(",", "")) == acme.checkpoint().seq
    page = web.post("/ledger/verify", data={"csrf": csrf})
    assert page.status_code == 200
    assert "<!doctype html>" in page.text and 'data-ok="true"' in page.text


def test_verify_names_the_first_bad_event(acme, sign_in, web):
    seq = append(acme, 3)[1]
    with acme.store.transaction() as conn:
        conn.execute(update(events).where(events.c.seq == seq).values(actor="forger"))
    csrf = sign_in("dana.whitfield", admin=True)
    fragment = web.post("/ledger/verify", headers={"HX-Request": "true",
                                                   "X-CSRF-Token": csrf}).text
    assert 'data-ok="false"' in fragment
    assert f'<a href="/ledger/{seq}" id="first-bad">event {seq}</a>' in fragment


def test_verify_needs_the_csrf_token(acme, sign_in, web):
    sign_in("james.liu")
    refused = web.post("/ledger/verify", headers={"HX-Request": "true"})
    assert 'id="verify-result"' not in refused.text
    assert web.post("/ledger/verify").status_code == 403


def test_subjects_link_to_their_pages():
    assert subject_page("task:1b2c") == "/tasks/1b2c"
    assert subject_page("approval:a/b") == "/approvals/a%2Fb"
    assert subject_page("member:james.liu") == "/members/james.liu"
    assert subject_page("Vendor::globex") is None
    assert subject_page("task:") is None
