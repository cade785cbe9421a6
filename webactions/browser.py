"""The Chromium the web agent drives: where it is, how it is started, and whether it starts.

Playwright cannot download its own browser builds on these machines, so it drives the
system's Chromium (Debian's `chromium`, installed by `scripts/ensure-chromium`), or the one
``RCM_CHROMIUM_PATH`` names.
"""

from __future__ import annotations

import functools
import shutil
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from webactions.executor import guard_addresses

# Debian's /usr/bin/chromium is a shell wrapper (flags, a memory probe): the binary behind it
# is what Playwright should start.
CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")
NOT_FOUND = (
    "No Chromium found: install Debian's 'chromium' package (make run and make test do), or set "
    "RCM_CHROMIUM_PATH to a Chromium executable."
)
# Root (containers, CI) cannot use Chromium's sandbox; the pages are the portals we were given
# credentials for, each in a context of its own.
LAUNCH_ARGS = ("--no-sandbox", "--disable-dev-shm-usage")
# Readiness asks at most this often per process: starting a browser and rendering a page costs
# a few tenths of a second of CPU.
READY_CACHE_S = 60


def chromium_path() -> str:
    configured = settings.RCM_CHROMIUM_PATH
    if configured:
        if not Path(configured).is_file():
            raise ImproperlyConfigured(f"RCM_CHROMIUM_PATH={configured} is not a file.")
        return configured
    for candidate in CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise ImproperlyConfigured(NOT_FOUND)
    return found


def launch(playwright):
    """A headless Chromium from a started ``sync_playwright()``."""
    return playwright.chromium.launch(
        executable_path=chromium_path(), headless=True, args=list(LAUNCH_ARGS)
    )


def new_context(started, *, storage_state: dict | None = None, trusted: tuple[str, ...] = ()):
    """A browser context of ``started`` (a launched browser) for portal work: ``storage_state``
    (a stored log-in's cookies) loaded, and every request its pages make, but those to the
    ``trusted`` prefixes, through the private address guard (webactions/executor.py),
    installed once for the context's life."""
    context = started.new_context(storage_state=storage_state)
    guard_addresses(context, trusted)
    return context


_ready_lock = threading.Lock()
_ready: tuple[float, str] | None = None  # (when checked, what it said)


def browser_check() -> str:
    """/health/ready's check: a browser starts and renders a page (cached for a minute)."""
    global _ready
    with _ready_lock:
        if _ready is not None and time.monotonic() - _ready[0] < READY_CACHE_S:
            return _ready[1]
        said = _start_once()
        _ready = (time.monotonic(), said)
        return said


def _start_once() -> str:
    from playwright.sync_api import sync_playwright

    started = time.perf_counter()
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page()
            page.set_content("<p>ready</p>")
            page.get_by_text("ready").wait_for(timeout=5000)
            version = browser.version
        finally:
            browser.close()
    return f"chromium {version} started in {(time.perf_counter() - started) * 1000:.0f} ms"


@functools.cache
def _registered() -> None:
    from rcm import health

    health.register_check("browser", browser_check)


def register_health_check() -> None:
    """Once per process (AppConfig.ready may run twice under some test runners)."""
    _registered()
