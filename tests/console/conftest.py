"""Browser fixtures for the console: a live server on the test database and the system's
Chromium driven by Playwright, each page's screenshot kept under artefacts/console/."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from rcm.context import org_context
from tenants import services
from tests.conftest import PASSWORD
from webactions import browser as chromium

ARTEFACTS = Path(__file__).resolve().parents[2] / "artefacts" / "console"


@pytest.fixture(scope="module")
def chromium_browser():
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # between browser steps are still synchronous, one at a time, so Django may allow them.
    # Module-scoped: while it runs, no other test may start Playwright in this thread (the
    # web agent's tests, the readiness check), so it stops with the console's module.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        launched = chromium.launch(playwright)
        yield launched
        launched.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


class Console:
    """One signed-in browser tab on the live server: ``open`` a path, ``shot`` the page."""

    def __init__(self, browser, base_url: str):
        self.base_url = base_url
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.page = self.context.new_page()

    def sign_in(self, email: str, password: str = PASSWORD) -> Console:
        self.open("/admin/login/")
        self.page.fill("#id_username", email)
        self.page.fill("#id_password", password)
        self.page.click("input[type=submit]")
        self.page.wait_for_load_state()
        return self

    def open(self, path: str):
        response = self.page.goto(self.base_url + path)
        self.page.wait_for_load_state()
        return response

    def shot(self, name: str) -> Path:
        """The page as the operator sees it, kept for people to look at."""
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTEFACTS / f"{re.sub(r'[^a-z0-9_-]+', '-', name.lower())}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def console_for(chromium_browser, live_server, transactional_db):
    """``console_for(user)``: a browser tab signed in as ``user`` (made staff) on a live
    server. Data the test writes is committed (transactional_db), so the server sees it."""
    opened: list[Console] = []

    def open_as(user, tenant) -> Console:
        if not user.is_staff:
            with org_context(tenant.id):
                services.user_update(user=user, actor=None, is_staff=True)
        tab = Console(chromium_browser, live_server.url).sign_in(user.email)
        opened.append(tab)
        return tab

    yield open_as
    for tab in opened:
        tab.close()
