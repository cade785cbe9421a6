"""Celery messages sent after a commit, best-effort.

A message is sent once the transaction that made its work commits (DESIGN §6), so by then the
write is saved. A broker that is down must not turn that saved write into an error: the client
would retry, and the portal would be called twice for the same patient. A message that cannot
be sent is logged and dropped here; the work it carried is still in PostgreSQL, where the
recovery paths find it again: the engine's reaper re-sends ready node runs whose message is
overdue (beat, and every worker as it starts), and beat's feeder starts pending batch rows.
"""

from __future__ import annotations

import logging
from functools import partial

from django.db import transaction

logger = logging.getLogger(__name__)


def send(task, *, kwargs: dict | None = None, **options) -> bool:
    """Send ``task`` now; False (logged) when the broker cannot take it."""
    try:
        task.apply_async(kwargs=kwargs, **options)
    except Exception as exc:  # noqa: BLE001 - any broker failure: the saved work is recovered
        logger.warning(
            "could not send %s%s: %s: %s; the reaper or the feeder sends it again",
            task.name,
            f" {kwargs}" if kwargs else "",
            type(exc).__name__,
            exc,
        )
        return False
    return True


def send_after_commit(task, *, kwargs: dict | None = None, **options) -> None:
    """``send`` once the current transaction commits (at once outside one)."""
    transaction.on_commit(partial(send, task, kwargs=kwargs, **options))
