"""One browser per worker process, in a thread of its own.

Playwright's sync API runs an event loop in the thread that starts it, and Django refuses
database work in a thread with a running loop; its objects must also stay in the thread that
made them. So the browser lives in one daemon thread per process, started on first use and
kept for the next tasks (a start costs half a second), and a task hands it a job (a callable
taking the browser) and waits for the answer. Each job gets a fresh browser context: no
cookie or storage passes from one attempt to the next.
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
import threading
from collections.abc import Callable
from typing import TypeVar

from webactions import browser as chromium

T = TypeVar("T")


class BrowserThread:
    def __init__(self):
        self._jobs: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name="browser", daemon=True)
        self._thread.start()

    def run(
        self, job: Callable[[object], T], *, timeout: float, storage_state: dict | None = None
    ) -> T:
        """``job(context)`` in the browser thread, with a new browser context (holding
        ``storage_state``: a stored log-in's cookies); its answer."""
        return self.submit(job, storage_state=storage_state).result(timeout=timeout)

    def submit(
        self, job: Callable[[object], T], *, storage_state: dict | None = None
    ) -> concurrent.futures.Future:
        """Like ``run``, without waiting: the future of the job's answer."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._jobs.put((job, storage_state, future))
        return future

    def _serve(self) -> None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            started = None
            while True:
                job, storage_state, future = self._jobs.get()
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    if started is None or not started.is_connected():
                        started = chromium.launch(playwright)
                    context = started.new_context(storage_state=storage_state)
                    try:
                        future.set_result(job(context))
                    finally:
                        context.close()
                except BaseException as exc:  # noqa: BLE001 - handed to the waiting task
                    future.set_exception(exc)


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
