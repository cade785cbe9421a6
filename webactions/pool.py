"""One browser per worker process, in a thread of its own, and the browser contexts it keeps.

Playwright's sync API runs an event loop in the thread that starts it, and Django refuses
database work in a thread with a running loop; its objects must also stay in the thread that
made them. So the browser lives in one daemon thread per process, started on first use and
kept for the next tasks, and a task hands it a job (a callable taking a browser context) and
waits for the answer.

Which context a job gets (WEB_BROWSER_CONTEXT):

* ``credential`` (the default): one context per login (the job's ``key``: organization,
  credential and the version of its secrets), and one page in it, kept between attempts in
  this process, the way a clerk keeps one tab open on a portal. A context is a browser
  profile: cookies, storage and cache are the login's own, never another credential's or
  organization's. Between two rows of the same login the portal's cookies pass either way (a
  stored log-in is the point), so keeping the context and its page adds little to what is
  shared (the tab's session storage; every action list starts by loading a page), and saves
  what a new one costs: a renderer process, cold caches and a cold JIT, two thirds of a row's
  time (docs/benchmarks.md, web actions).
* ``attempt``: a new context and page for every attempt, closed after it (the stored
  log-in's cookies loaded into it): nothing but those cookies passes between attempts.

Kept contexts are closed when idle for WEB_SESSION_TTL, beyond WEB_BROWSER_CONTEXTS_KEPT per
process (the least recently used first), and when a log-in is refused (``forget``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TypeVar

from django.conf import settings

from webactions import browser as chromium

T = TypeVar("T")


@dataclass
class Slot:
    """What a job is handed: the page to work in, its context, and whether they come from an
    earlier attempt (so the portal may be logged in already)."""

    context: object
    page: object
    kept: bool


@dataclass
class _Kept:
    context: object
    page: object
    used_at: float


class BrowserThread:
    def __init__(self):
        self._jobs: queue.Queue = queue.Queue()
        self._kept: OrderedDict[Hashable, _Kept] = OrderedDict()
        self._thread = threading.Thread(target=self._serve, name="browser", daemon=True)
        self._thread.start()

    def run(
        self,
        job: Callable[[Slot], T],
        *,
        timeout: float,
        storage_state: dict | None = None,
        key: Hashable | None = None,
        trusted: tuple[str, ...] = (),
    ) -> T:
        """``job(slot)`` in the browser thread; its answer."""
        future = self.submit(job, storage_state=storage_state, key=key, trusted=trusted)
        return future.result(timeout=timeout)

    def submit(
        self,
        job: Callable[[Slot], T],
        *,
        storage_state: dict | None = None,
        key: Hashable | None = None,
        trusted: tuple[str, ...] = (),
    ) -> concurrent.futures.Future:
        """Like ``run``, without waiting: the future of the job's answer. Without a ``key``
        (or with WEB_BROWSER_CONTEXT=attempt) the job gets a new context holding
        ``storage_state``; with one, the context kept for that key (made with
        ``storage_state`` the first time). ``trusted``: the URL prefixes a new context's
        address guard need not check (webactions/executor.py)."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._jobs.put((job, (storage_state, trusted), key, future))
        return future

    def forget(self, key: Hashable) -> None:
        """Close the context kept for ``key`` (its log-in was refused, its secrets changed)."""
        self._jobs.put((None, ((), ()), key, None))

    def _serve(self) -> None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            started = None
            while True:
                job, (storage_state, trusted), key, future = self._jobs.get()
                if job is None:
                    self._close(key)
                    continue
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    if started is None or not started.is_connected():
                        self._kept.clear()  # they died with the browser
                        started = chromium.launch(playwright)
                    self._expire()
                    made = {"storage_state": storage_state, "trusted": trusted}
                    future.set_result(self._run(started, job, made, key))
                except BaseException as exc:  # noqa: BLE001 - handed to the waiting task
                    future.set_exception(exc)

    def _run(self, started, job, made: dict, key):
        if key is None or settings.WEB_BROWSER_CONTEXT != "credential":
            context = chromium.new_context(started, **made)
            try:
                return job(Slot(context, context.new_page(), kept=False))
            finally:
                context.close()
        kept = self._kept.get(key)
        if kept is None or kept.page.is_closed():
            self._close(key)
            context = chromium.new_context(started, **made)
            kept = self._kept[key] = _Kept(context, context.new_page(), 0.0)
            self._trim()
            slot = Slot(kept.context, kept.page, kept=False)
        else:
            slot = Slot(kept.context, kept.page, kept=True)
        self._kept.move_to_end(key)
        kept.used_at = time.monotonic()
        try:
            return job(slot)
        except BaseException:
            self._close(key)  # a context in an unknown state is not kept
            raise
        finally:
            if key in self._kept:
                # Pop-ups and new tabs the portal opened go; the working page stays.
                for page in list(kept.context.pages):
                    if page is not kept.page:
                        page.close()

    def _expire(self) -> None:
        idle = settings.WEB_SESSION_TTL.total_seconds()
        for key in [k for k, kept in self._kept.items() if time.monotonic() - kept.used_at > idle]:
            self._close(key)

    def _trim(self) -> None:
        while len(self._kept) > settings.WEB_BROWSER_CONTEXTS_KEPT:
            self._close(next(iter(self._kept)))

    def _close(self, key) -> None:
        kept = self._kept.pop(key, None)
        if kept is not None:
            # Its browser may be gone already: nothing left to close then.
            with contextlib.suppress(Exception):
                kept.context.close()


_lock = threading.Lock()
_thread: BrowserThread | None = None
_pid: int | None = None


def browser_thread() -> BrowserThread:
    """This process's browser thread (a forked pool process starts its own)."""
    global _thread, _pid
    with _lock:
        if _thread is None or _pid != os.getpid():
            _thread, _pid = BrowserThread(), os.getpid()
        return _thread
