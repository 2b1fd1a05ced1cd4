"""Headless Chromium for dashboard tests, driven by Playwright, against `charter serve`.

Chromium is Debian's (`/usr/bin/chromium`); Playwright comes from PyPI. Where either is
missing the browser tests are skipped, unless `CHARTER_REQUIRE_BROWSER=1` (CI sets it),
which makes a missing browser a failure. Every page a test visits is screenshot into
`test-artifacts/screenshots/`, and any browser console error or page error fails it."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CHARTER_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM_FLAGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def require_browser() -> None:
    """Skip (or, where a browser is required, fail) without Chromium and Playwright."""
    problem = None
    if shutil.which(CHROMIUM) is None:
        problem = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "Playwright is not installed (pip install -e '.[test]')"
    if problem is None:
        return
    if os.environ.get("CHARTER_REQUIRE_BROWSER") == "1":
        pytest.fail(problem)
    pytest.skip(problem)


class Browser:
    """One page in headless Chromium that records console errors and screenshots."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console error on {self.page.url}: {message.text}")

    def visit(self, path: str, shot: str) -> Any:
        self.page.goto(self.base + path)
        self.page.wait_for_load_state("networkidle")
        return self.snap(shot)

    def snap(self, shot: str) -> Any:
        """Screenshot the page as it is now; fail on any console error so far."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^a-z0-9_-]+", "-", shot.lower())
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        assert self.errors == [], self.errors
        return self.page

    def sign_in(self, token: str) -> None:
        self.visit("/signin", "sign-in")
        self.page.fill("#token", token)
        self.page.click("button[type=submit]")
        self.page.wait_for_load_state("networkidle")


@contextmanager
def chromium(base: str) -> Iterator[Browser]:
    """A fresh browser (no cookies) on the dashboard at `base`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(viewport={"width": 1366, "height": 900})
            yield Browser(context.new_page(), base)
        finally:
            browser.close()
