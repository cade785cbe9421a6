"""Riding out a database that cannot be reached (a restart, a fail-over, a network cut).

A worker that meets such an error must not treat it as the task's failure: the message would
be acknowledged and its work dropped until something re-sends it. It waits for the database
instead, retrying with a backoff capped at ``BACKOFF_CAP_S``, so that work resumes within
that long of the database answering again. Only connection-level errors are waited out; a
query the database refused (a constraint, a deadlock, a lock timeout) is the caller's error.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import DatabaseError, InterfaceError, OperationalError, connections

logger = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_BACKOFF_S = 0.1
# The longest pause between two tries: work resumes at most this long after the database is
# back.
BACKOFF_CAP_S = 2.0
# SQLSTATEs of a server going away: admin_shutdown (a restart, pg_terminate_backend),
# crash_shutdown, cannot_connect_now (starting up or shutting down). Class 08 is the
# connection-exception class. An error without a SQLSTATE was raised by the client library
# itself: connection refused, reset, closed.
_SERVER_GONE = {"57P01", "57P02", "57P03"}


class DatabaseUnreachable(Exception):
    """The database stayed unreachable for as long as the caller was prepared to wait."""


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached (rather than refused a query)."""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in _SERVER_GONE


def retry_while_unreachable(
    call: Callable[[], T], *, until: Callable[[], bool], what: str = "database work"
) -> T:
    """``call()``, tried again after every connection-level error until it gets through.

    ``until()`` is asked after each failure: once it is true the waiting stops and
    ``DatabaseUnreachable`` is raised. Other errors propagate at once.
    """
    backoff = FIRST_BACKOFF_S
    while True:
        try:
            return call()
        except DatabaseError as exc:
            if not is_unreachable(exc):
                raise
            # A connection that failed is not always marked unusable (the engine's claim
            # talks to the driver directly): dropped, so that the next try connects anew.
            _close_connections()
            if until():
                raise DatabaseUnreachable(str(exc)) from exc
            logger.warning("%s: database unreachable (%s); again in %.1fs", what, exc, backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_CAP_S)


def _close_connections() -> None:
    for connection in connections.all(initialized_only=True):
        with contextlib.suppress(DatabaseError):
            connection.close()
