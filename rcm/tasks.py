"""Periodic jobs of the kernel (thin: they call a service)."""

from rcm.api.idempotency import idempotency_key_purge
from rcm.celery import app


@app.task(name="rcm.idempotency_key_purge")
def idempotency_key_purge_task() -> int:
    return idempotency_key_purge()
