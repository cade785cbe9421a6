"""Work that must wait for the end of a request's transaction (OrgScopedAPIView.dispatch).

Kept apart from rcm/api/views.py so that authentication classes, which DRF imports while the
views module loads, can use it without a circular import.
"""

from __future__ import annotations

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def after_request(request, callback) -> None:
    """Call ``callback(status_code)`` once the request's transaction has ended (committed or
    rolled back), in a short transaction of its own; at once on a request that has no such
    transaction (a view outside OrgScopedAPIView: ``status_code`` is then None).

    For records that must neither hold a lock for the whole request nor be rolled back with a
    refused one: a platform act's audit event (tenants/authentication.py).
    """
    callbacks = getattr(request, "after_transaction", None)
    if callbacks is None:
        callback(None)
    else:
        callbacks.append(callback)


def after_transaction_run(request, status: int) -> None:
    for callback in getattr(request, "after_transaction", ()):
        try:
            with transaction.atomic():
                callback(status)
        except Exception:  # noqa: BLE001 - the request's own answer stands; the failure is logged
            logger.exception("a step after the request's transaction failed (%s)", callback)
