"""Calls from the browser thread into the task's thread.

The browser runs in a thread of its own (webactions/pool.py) and touches no database: the
organization's context, the open transaction rules and the connection's recovery all live in
the task's thread, which waits for the browser meanwhile. What the web agent needs from memory
while it acts (a search before an action, a state stored after one) is handed over here and
carried out by the waiting task thread (``serve``), in order. Writes that need no answer
(``post``) wait for the end of the browser's job (``drain``): run meanwhile, they would take
the interpreter from the browser thread in the middle of its actions.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

# How long the browser thread waits for an answer: past it, the task has stopped serving (its
# attempt timed out) and the browser gives up on memory too.
CALL_TIMEOUT_S = 10.0


class Relay:
    """A queue of calls the task thread carries out while it waits for the browser."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._posted: queue.SimpleQueue = queue.SimpleQueue()

    def call(self, function: Callable[..., Any], /, **kwargs) -> Any:
        """Run ``function`` in the task thread and return its answer (or raise its error)."""
        answer: concurrent.futures.Future = concurrent.futures.Future()
        self._calls.put((answer, function, kwargs))
        return answer.result(timeout=CALL_TIMEOUT_S)

    def post(self, function: Callable[..., Any], /, **kwargs) -> None:
        """Run ``function`` in the task thread once the browser's job is done, without
        waiting: a write whose failure must not fail the action that prompted it (logged)."""
        self._posted.put((None, function, kwargs))

    def wake(self) -> None:
        """End the task thread's current wait (the browser's job is done)."""
        self._calls.put(None)

    def serve(self, timeout: float) -> None:
        """Carry out the waiting calls, waiting up to ``timeout`` for the first one."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                item = self._calls.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return
            if item is None:
                return
            self._run(*item)

    def drain(self) -> None:
        """Carry out every call still queued, then the posted writes, in order (the browser's
        job has ended)."""
        for calls in (self._calls, self._posted):
            while True:
                try:
                    item = calls.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    self._run(*item)

    @staticmethod
    def _run(answer, function, kwargs) -> None:
        try:
            result = function(**kwargs)
        except Exception as exc:  # handed to the caller, or logged for a posted write
            if answer is not None:
                answer.set_exception(exc)
            else:
                logger.warning("web agent memory write failed: %s", type(exc).__name__)
        else:
            if answer is not None:
                answer.set_result(result)
