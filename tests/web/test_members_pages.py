"""The members pages: the list, a member's record per task type and engine version (the
same figures as `track_record`), its chart and the table under it, the autonomy it
earned with the evidence, and the kill switch only admins see and may press."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from charter import ManualClock
from charter.system import Charter
from charter.web.pages import members as members_page
from tests.engines.orgs import edit_org

V = "Vendor::globex"
SWAPPED = {"kind": "python", "target": "tests.engines.agents:buyer"}


def do_work(system: Charter, clock: ManualClock, member: str, verdicts: list[bool | None],
            *, cost: str = "0.50", every: timedelta = timedelta(hours=1)) -> list[str]:
    """A purchase order per verdict, done by `member` (a self-reported success costing
    `cost`), then verified with the verdict (None: left self-reported); time moves
    `every` after each."""
    task_ids = []
    for verdict in verdicts:
        task = system.submit_task("purchase_order", V, requester="james.liu")
        system.assign_task(task.id, member, actor="james.liu")
        claim = system.claim_next(member)
        assert claim is not None
        system.complete_task(task.id, member=member, fencing=claim.fencing, cost=cost,
                             duration_s=30.0)
        if verdict is not None:
            system.record_outcome(task.id, success=verdict, reported_by="james.liu",
                                  verified=True)
        clock.advance(every)
        task_ids.append(task.id)
    return task_ids


def quick_autonomy(workspace: Path, **engines: dict[str, str]) -> Path:
    """The example org, with purchase orders earning (and losing) autonomy after a few
    verified outcomes."""
    org = yaml.safe_load((workspace / "charter.yaml").read_text())
    purchase = next(t for t in org["task_types"] if t["id"] == "purchase_order")
    quick = {**purchase, "autonomy_threshold": 0.5, "autonomy_min_outcomes": 5,
             "autonomy_window": 10}
    return edit_org(workspace, engines=engines, extra={"task_types": [quick]})


def rows(page: str, table_id: str) -> list[str]:
    """The `<tr …>` opening tags of a table's body rows."""
    table = re.search(rf'<table id="{table_id}".*?</table>', page, re.S)
    assert table, f"no table {table_id}"
    body = table.group(0).split("<tbody>", 1)[1]
    return re.findall(r"<tr [^>]*>", body)


def attr(tag: str, name: str) -> str:
    found = re.search(rf'{name}="([^"]*)"', tag)
    assert found, f"{name} missing in {tag}"
    return found.group(1)


def row_of(page: str, table_id: str, task_type: str) -> str:
    return next(tag for tag in rows(page, table_id)
                if attr(tag, "data-task-type") == task_type)


def test_the_list_shows_every_member(acme, clock, sign_in, web):
    do_work(acme, clock, "buyer-bot-2", [True, False, None])
    acme.suspend_member("ap-bot-1", reason="duplicate payments", by="dana.whitfield")
    sign_in("sofia.alvarez")
    page = web.get("/members").text
    listed = [attr(tag, "data-member") for tag in rows(page, "member-list")]
    assert listed == sorted(member.id for member in acme.org.spec.members)
    by_id = {attr(tag, "data-member"): tag for tag in rows(page, "member-list")}
    assert attr(by_id["ap-bot-1"], "data-status") == "suspended"
    assert attr(by_id["buyer-bot-2"], "data-status") == "active"
    assert attr(by_id["dana.whitfield"], "data-kind") == "human"
    assert attr(by_id["buyer-bot-2"], "data-kind") == "ai"
    row = re.search(r'data-member="buyer-bot-2".*?</tr>', page, re.S)
    assert row
    # one outcome per task, as on the member's page: the two verdicts replace their
    # self-reports (success, failure), the third task's self-report stands: 2 of 3
    assert ">67%<" in row.group(0) and "of 3 tasks" in row.group(0)
    assert "Purchasing agent (trainee)" in row.group(0)
    assert 'href="/members/james.liu"' in row.group(0)
    assert "python" in row.group(0)
    assert "no outcomes" in re.search(r'data-member="vendor-bot".*?</tr>', page,
                                      re.S).group(0)  # type: ignore[union-attr]


def test_the_list_filters_and_pages(acme, sign_in, web, monkeypatch):
    acme.suspend_member("ap-bot-1", reason="duplicate payments", by="dana.whitfield")
    sign_in("sofia.alvarez")
    agents = [attr(t, "data-member") for t in rows(web.get("/members?kind=ai").text,
                                                   "member-list")]
    assert agents and all(acme.org.members[m].kind == "ai" for m in agents)
    assert len(agents) == sum(1 for m in acme.org.spec.members if m.kind == "ai")
    stopped = rows(web.get("/members?status=suspended").text, "member-list")
    assert [attr(t, "data-member") for t in stopped] == ["ap-bot-1"]
    people = web.get("/members?kind=human&status=suspended").text
    assert 'id="member-list-empty"' in people

    monkeypatch.setattr(members_page, "PAGE_SIZE", 5)
    seen: list[str] = []
    href: str | None = "/members?kind=ai"
    while href:
        page = web.get(href.replace("&amp;", "&")).text
        found = [attr(t, "data-member") for t in rows(page, "member-list")]
        assert 0 < len(found) <= 5
        seen += found
        following = re.search(r'href="([^"]+)" rel="next"', page)
        href = following.group(1) if following else None
    assert seen == agents


@pytest.mark.parametrize("query, words", [
    ("kind=robot", "kind 'robot' is not one of the choices"),
    ("status=gone", "status 'gone' is not one of the choices"),
    ("after=%20bad", "after"),
])
def test_a_bad_filter_is_a_clear_422_page(acme, sign_in, web, query, words):
    sign_in("sofia.alvarez")
    page = web.get(f"/members?{query}")
    assert page.status_code == 422
    assert "<h1>InvalidInput</h1>" in page.text
    assert words in page.text.replace("&#39;", "'")


def test_the_member_page_shows_the_record_per_task_type(acme, clock, sign_in, web):
    # Four verified (3 succeeded), one left self-reported, at 0.50 each.
    do_work(acme, clock, "buyer-bot-2", [True, True, False, True, None])
    sign_in("sofia.alvarez")
    page = web.get("/members/buyer-bot-2").text
    row = row_of(page, "track-record", "purchase_order")
    assert (attr(row, "data-n"), attr(row, "data-successes"), attr(row, "data-verified")) \
        == ("5", "4", "4")
    assert attr(row, "data-autonomy") == "supervised"
    (record,) = acme.track_record("buyer-bot-2")
    assert (record.n, record.successes, record.verified) == (5, 4, 4)
    cells = re.search(r'data-task-type="purchase_order".*?</tr>', page, re.S)
    assert cells
    assert "80.0%" in cells.group(0)
    low, high = record.low, record.high
    assert f"{100 * low:.1f}%\N{EN DASH}{100 * high:.1f}%" in cells.group(0)
    assert "0.50" in cells.group(0) and "30.0 s" in cells.group(0)
    # Its place in the org, and the chain of command to the top.
    chain = re.search(r'id="reports-chain">(.*?)</dd>', page, re.S)
    assert chain
    assert re.findall(r'href="/members/([^"]+)"', chain.group(1)) == \
        acme.org.chain_of_command("buyer-bot-2") == ["james.liu", "sofia.alvarez",
                                                     "priya.raman", "dana.whitfield"]
    assert "purchasing <span class=\"muted small\">0.6</span>" in page
    assert "15 tasks at once" in page


def test_engine_versions_are_side_by_side_with_the_same_figures(acme, clock, workspace,
                                                                sign_in, web):
    do_work(acme, clock, "buyer-bot-2", [True, None, True, False])
    old = acme.track_record("buyer-bot-2")[0].engine_version
    acme.load_org(edit_org(workspace, engines={"buyer-bot-2": SWAPPED}))
    do_work(acme, clock, "buyer-bot-2", [None, False], cost="1.25")
    records = {r.engine_version: r for r in acme.track_record("buyer-bot-2")}
    new = next(version for version in records if version != old)
    sign_in("sofia.alvarez")
    page = web.get("/members/buyer-bot-2").text
    table = re.search(r'<table id="engine-versions".*?</table>', page, re.S)
    assert table
    headers = re.findall(r'<th data-engine-version="([^"]+)"', table.group(0))
    assert headers == [old, new]  # in the order they first worked
    assert re.search(rf'data-engine-version="{new}">.*?current', table.group(0), re.S)
    for version, record in records.items():
        cell = re.search(rf'<td data-engine-version="{version}" data-n="(\d+)" '
                         r'data-successes="(\d+)"', table.group(0))
        assert cell and (int(cell.group(1)), int(cell.group(2))) == (record.n,
                                                                     record.successes)
        assert record.mean_cost is not None  # from the self-report no verdict replaced
        assert f"{record.mean_cost:,.2f}" in table.group(0)
    total = row_of(page, "track-record", "purchase_order")
    assert attr(total, "data-n") == str(sum(r.n for r in records.values()))


def test_the_chart_and_its_table_hold_the_same_points(acme, clock, sign_in, web):
    do_work(acme, clock, "buyer-bot-2", [True, False, True, True, None, True, False, True,
                                         True, True], every=timedelta(hours=1))
    sign_in("sofia.alvarez")
    page = web.get("/members/buyer-bot-2").text
    assert re.search(r'<div id="member-chart" class="chart" data-chart="member-chart-data"',
                     page)
    assert '<script src="/static/uPlot-1.6.32.iife.min.js" defer></script>' in page
    data = re.search(r'<script type="application/json" id="member-chart-data">(.*?)</script>',
                     page, re.S)
    assert data
    spec = json.loads(data.group(1))
    times, rates, costs = spec["data"]
    points = rows(page, "chart-points")
    assert len(points) == len(times) >= 8  # ten hours of work: hourly buckets
    assert times == sorted(times)
    assert sum(int(attr(tag, "data-n")) for tag in points) == 10
    assert all(rate is None or 0 <= rate <= 1 for rate in rates)
    assert all(cost == 0.5 for cost in costs if cost is not None)
    assert [s["scale"] for s in spec["series"]] == ["rate", "cost"]
    assert spec["axes"][0]["range"] == [0, 1]


def test_a_short_history_still_gets_several_points(acme, clock, sign_in, web):
    do_work(acme, clock, "buyer-bot-2", [True] * 9, every=timedelta(seconds=20))
    sign_in("sofia.alvarez")
    page = web.get("/members/buyer-bot-2").text
    assert len(rows(page, "chart-points")) >= 3
    assert "per 10 seconds" in page


def test_autonomy_in_force_and_its_history_cite_evidence(acme, clock, workspace, sign_in,
                                                         web):
    acme.load_org(quick_autonomy(workspace))
    do_work(acme, clock, "buyer-bot-2", [True] * 6 + [False] * 9)
    sign_in("sofia.alvarez")
    page = web.get("/members/buyer-bot-2").text
    history = re.search(r'<ol class="timeline" id="autonomy-history">.*?</ol>', page, re.S)
    assert history
    changes = re.findall(r'<li data-seq="(\d+)" data-kind="([a-z.]+)" '
                         r'data-task-type="purchase_order"', history.group(0))
    kinds = [kind for _, kind in changes]
    assert kinds == ["autonomy.demoted", "autonomy.promoted", "autonomy.promoted"]
    assert [int(seq) for seq, _ in changes] == sorted((int(s) for s, _ in changes),
                                                      reverse=True)
    assert "lower Wilson bound" in history.group(0)
    assert "upper Wilson bound" in history.group(0)
    assert "threshold 50.0%" in history.group(0)
    row = row_of(page, "track-record", "purchase_order")
    assert attr(row, "data-autonomy") == "notify"  # autonomous, then demoted a step
    assert "earned 2026-01-01" in page


def test_the_autonomy_history_pages_back(acme, clock, workspace, sign_in, web, monkeypatch):
    acme.load_org(quick_autonomy(workspace))
    do_work(acme, clock, "buyer-bot-2", [True] * 6 + [False] * 9)
    monkeypatch.setattr(members_page, "HISTORY_SIZE", 2)
    sign_in("sofia.alvarez")
    page = web.get("/members/buyer-bot-2").text
    first = re.findall(r'<li data-seq="(\d+)"', page)
    older = re.search(r'href="/members/buyer-bot-2\?history_before=(\d+)"', page)
    assert len(first) == 2 and older
    rest = re.findall(r'<li data-seq="(\d+)"',
                      web.get(f"/members/buyer-bot-2?history_before={older.group(1)}").text)
    assert len(rest) == 1 and int(rest[0]) < min(int(seq) for seq in first)
    bad = web.get("/members/buyer-bot-2?history_before=0")
    assert bad.status_code == 422 and "history_before" in bad.text


def test_a_person_acts_on_their_own_authority(acme, sign_in, web):
    sign_in("sofia.alvarez")
    page = web.get("/members/james.liu").text
    assert "own authority" in page
    assert "People act on their own authority" in page
    assert 'id="member-chart-empty"' in page
    assert 'href="/members/buyer-bot-1"' in page  # a direct report


def test_an_unknown_member_is_a_not_found_page(acme, sign_in, web):
    sign_in("sofia.alvarez")
    page = web.get("/members/nobody.here")
    assert page.status_code == 404
    assert "<h1>NotFound</h1>" in page.text and "nobody.here" in page.text
    assert web.get("/members/bad%20id").status_code == 422


def test_admins_suspend_with_a_reason_and_resume(acme, sign_in, web):
    csrf = sign_in("dana.whitfield", admin=True)
    page = web.get("/members/buyer-bot-1").text
    assert 'id="suspend"' in page and 'id="resume"' not in page
    refused = web.post("/members/buyer-bot-1/suspend", data={"csrf": csrf, "reason": "  "})
    assert refused.status_code == 422 and "say why you suspend" in refused.text
    assert acme.stops() == ([], [])
    done = web.post("/members/buyer-bot-1/suspend", data={"reason": "runaway spending"},
                    headers={"HX-Request": "true", "X-CSRF-Token": csrf})
    assert done.status_code == 200
    assert "Suspended buyer-bot-1" in done.text and 'id="resume"' in done.text
    (stop,), _ = acme.stops()
    assert (stop.target, stop.reason, stop.by) == ("buyer-bot-1", "runaway spending",
                                                   "dana.whitfield")
    page = web.get("/members/buyer-bot-1").text
    assert "runaway spending" in page and 'id="resume"' in page and 'id="suspend"' not in page
    again = web.post("/members/buyer-bot-1/suspend", data={"csrf": csrf, "reason": "x"})
    assert again.status_code == 409
    resumed = web.post("/members/buyer-bot-1/resume", data={"csrf": csrf},
                       follow_redirects=False)
    assert resumed.status_code == 303
    assert resumed.headers["location"] == "/members/buyer-bot-1"
    assert acme.stops() == ([], [])
    assert web.post("/members/nobody.here/resume", data={"csrf": csrf}).status_code == 404


def test_non_admins_see_no_kill_switch_and_cannot_press_it(acme, sign_in, web):
    acme.suspend_member("ap-bot-1", reason="audit", by="dana.whitfield")
    csrf = sign_in("james.liu")
    for member in ("buyer-bot-1", "ap-bot-1"):
        page = web.get(f"/members/{member}").text
        assert 'id="suspend"' not in page and 'id="resume"' not in page
        assert "/suspend" not in page and "/resume" not in page
    refused = web.post("/members/buyer-bot-1/suspend",
                       data={"csrf": csrf, "reason": "I say so"})
    assert refused.status_code == 403 and "needs an admin" in refused.text
    assert web.post("/members/ap-bot-1/resume", data={"csrf": csrf}).status_code == 403
    assert [stop.target for stop in acme.stops()[0]] == ["ap-bot-1"]


def test_a_kill_switch_post_without_the_csrf_token_is_refused(acme, sign_in, web):
    sign_in("dana.whitfield", admin=True)
    for data in ({"reason": "x"}, {"reason": "x", "csrf": "0" * 64}):
        response = web.post("/members/buyer-bot-1/suspend", data=data)
        assert response.status_code == 403 and "CSRF" in response.text
    assert acme.stops() == ([], [])


def test_self_reports_replaced_by_a_verdict_count_once(acme, clock, sign_in, web):
    """A reviewer's failure replaces the self-reported success of the same task."""
    do_work(acme, clock, "buyer-bot-2", [False, False, None])
    sign_in("sofia.alvarez")
    page = web.get("/members/buyer-bot-2").text
    row = row_of(page, "track-record", "purchase_order")
    assert (attr(row, "data-n"), attr(row, "data-successes"), attr(row, "data-verified")) \
        == ("3", "1", "2")
    (record,) = acme.track_record("buyer-bot-2")
    assert (record.n, record.successes, record.verified) == (3, 1, 2)
    assert record.mean_cost == Decimal("0.5")  # the one self-report left carries a cost
    assert "0.50" in re.search(r'data-task-type="purchase_order".*?</tr>', page,
                               re.S).group(0)  # type: ignore[union-attr]


def test_the_figures_follow_new_outcomes(acme, clock, sign_in, web):
    """Each new outcome shows at once, on the member's page and in the list."""
    do_work(acme, clock, "buyer-bot-2", [True])
    sign_in("sofia.alvarez")
    for tasks in (1, 2, 3):
        page = web.get("/members/buyer-bot-2").text
        assert attr(row_of(page, "track-record", "purchase_order"), "data-n") == str(tasks)
        listed = web.get("/members").text
        noun = "task" if tasks == 1 else "tasks"
        assert f"of {tasks} {noun}<" in re.search(
            r'data-member="buyer-bot-2".*?</tr>', listed, re.S).group(0)  # type: ignore[union-attr]
        do_work(acme, clock, "buyer-bot-2", [False])
