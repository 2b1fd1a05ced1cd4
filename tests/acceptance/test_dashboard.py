"""The dashboard in a real browser against `charter serve` on a populated database: a
person signs in, approves an escalated purchase and sees its task proceed, rejects
another with a comment, reads a task's timeline, finds a member's chart points and
verifies the ledger. Every page is screenshot; any console error fails the test."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from charter import ManualClock, Settings
from charter.store import open_store
from charter.system import Charter
from tests.acceptance.browser import chromium, require_browser
from tests.conftest import EXAMPLE_ORG, ROOT
from tests.engines.servers import free_port, wait_ready
from tests.engines.shop import order, work
from tests.web.scenes import buying_org, escalated_purchases

SECRET = "dashboard-test-secret"
HISTORY_DAYS = 6


@dataclass
class Dashboard:
    system: Charter
    base: str
    escalated: list[str]
    tokens: dict[str, str]


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[Dashboard]:
    require_browser()
    url = f"sqlite:///{tmp_path / 'charter.db'}"
    settings = Settings(secret=SECRET, org=EXAMPLE_ORG)
    clock = ManualClock(datetime.now(UTC) - timedelta(days=HISTORY_DAYS))
    system = Charter(open_store(url, settings), settings, clock)
    workspace = tmp_path / "org"
    workspace.mkdir()
    for item in EXAMPLE_ORG.parent.rglob("*"):
        target = workspace / item.relative_to(EXAMPLE_ORG.parent)
        if item.is_dir():
            target.mkdir(exist_ok=True)
        else:
            target.write_bytes(item.read_bytes())
    buying_org(system, workspace)
    shop = tmp_path / "shop.jsonl"
    for day in range(HISTORY_DAYS):  # a history of allowed purchases, two a day
        for amount in (400 + 10 * day, 700 + 10 * day):
            order(system, shop, "globex", amount, cost=amount // 100)
            work(system, max_tasks=1)
        clock.advance(timedelta(days=1))
    clock.set(datetime.now(UTC))
    escalated = escalated_purchases(system, shop, 8000, 9000)
    tokens = {member: system.create_token(member).secret
              for member in ("james.liu", "sofia.alvarez")}
    system.flush_decisions()
    port = free_port()
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")},
                   "CHARTER_SECRET": SECRET}
    server = subprocess.Popen([sys.executable, "-m", "charter", "serve", "--db", url,
                               "--port", str(port)], cwd=ROOT, env=environment)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base)
        yield Dashboard(system, base, escalated, tokens)
    finally:
        server.terminate()
        server.wait(timeout=30)
        system.close()


def test_a_person_approves_rejects_and_inspects(dashboard: Dashboard) -> None:
    system = dashboard.system
    approved_task, rejected_task = dashboard.escalated
    approval = system.approvals(task_id=approved_task)[0]
    rejection = system.approvals(task_id=rejected_task)[0]
    with chromium(dashboard.base) as browser:
        browser.sign_in(dashboard.tokens["james.liu"])
        page = browser.snap("overview")
        assert page.locator("h1").inner_text() == "Overview"

        page = browser.visit("/approvals", "approvals-inbox")
        card = page.locator(f"#approval-{approval.id}")
        assert "8000" in card.locator(".arguments").inner_text()
        card.locator("form.vote button.approve").click()
        page.locator(f"#approval-{approval.id} .flash.ok").wait_for()
        assert "is now assigned" in page.locator(f"#approval-{approval.id}").inner_text()
        browser.snap("approved")
        with ThreadPoolExecutor(1) as worker:  # Playwright holds this thread's event loop
            worker.submit(work, system, max_tasks=1).result()
        assert system.task(approved_task).state == "done"

        card = page.locator(f"#approval-{rejection.id}")
        card.locator("textarea[name=comment][required]").fill("Vendor is under review")
        card.locator("form.vote button.reject").click()
        page.locator(f"#approval-{rejection.id} .flash.ok").wait_for()
        browser.snap("rejected")
        assert system.approval(rejection.id).status == "rejected"
        assert system.approval(rejection.id).votes[0].comment == "Vendor is under review"

        page = browser.visit(f"/tasks/{approved_task}", "task-timeline")
        assert page.locator("#task-state").get_attribute("data-state") == "done"
        kinds = page.locator("#timeline [data-kind]").evaluate_all(
            "items => items.map(item => item.dataset.kind)")
        assert "task.submitted" in kinds
        assert "task.completed" in kinds
        assert any(kind.startswith("approval.") for kind in kinds)
        assert page.locator("#explanation").count() == 1
        assert page.locator("#handoff").count() == 1

        page = browser.visit("/members/buyer-bot-1", "member")
        page.locator("#member-chart[data-points]").wait_for()
        points = int(page.locator("#member-chart").get_attribute("data-points") or 0)
        assert points >= 2
        assert page.locator("#chart-points tr[data-at]").count() == points
        browser.snap("member-chart")

        page = browser.visit("/ledger", "ledger")
        page.locator("#verify").click()
        page.locator("#verify-result[data-ok]").wait_for()
        assert page.locator("#verify-result").get_attribute("data-ok") == "true"
        browser.snap("ledger-verified")

        first_seq = page.locator("#events [data-seq]").first.get_attribute("data-seq")
        browser.visit(f"/ledger/{first_seq}", "ledger-event")
        for path in ("/tasks", "/tasks?state=done&assignee=buyer-bot-1", "/members",
                     "/org", f"/approvals/{approval.id}"):
            browser.visit(path, re.sub(r"\W+", "-", path.strip("/")) or "home")


def test_a_person_without_authority_cannot_approve(dashboard: Dashboard) -> None:
    approval = dashboard.system.approvals(task_id=dashboard.escalated[0])[0]
    with chromium(dashboard.base) as browser:
        browser.sign_in(dashboard.tokens["sofia.alvarez"])
        page = browser.visit("/approvals", "approvals-without-authority")
        card = page.locator(f"#approval-{approval.id}")
        assert card.count() == 1
        assert card.locator("button.approve").count() == 0
        assert "you are not one of its approvers" in card.inner_text()
        csrf = page.locator("input[name=csrf]").first.get_attribute("value")
        forged = page.request.post(f"{dashboard.base}/approvals/{approval.id}/approve",
                                   form={"csrf": csrf or ""})
        assert forged.status == 403
        no_token = page.request.post(f"{dashboard.base}/approvals/{approval.id}/approve",
                                     form={"comment": "sneaky"})
        assert no_token.status == 403
    assert dashboard.system.approval(approval.id).status == "pending"
