"""Liveness and readiness.

``/health``: the process answers. ``/health/ready``: PostgreSQL reachable, the ``vector``
extension present, the broker reachable and at least one Celery worker answering a ping within
two seconds, and the checks apps register (webactions: a browser starts); each check with its
latency; 503 when any fails.
"""

import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

WORKER_PING_TIMEOUT_S = 2.0


@require_GET
def liveness(request):
    return JsonResponse({"status": "ok"})


def _timed(check):
    started = time.perf_counter()
    try:
        detail = check()
        ok = True
    except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
        detail, ok = f"{type(exc).__name__}: {exc}", False
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    return {"ok": ok, "latency_ms": latency_ms, "detail": detail}


def _database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "reachable"


def _vector_extension():
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the vector extension is not installed")
    return f"vector {row[0]}"


def _broker():
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2)
    try:
        client.ping()
    finally:
        client.close()
    return "reachable"


def _workers():
    from rcm.celery import app

    # One connection attempt, not Celery's retry loop: readiness must answer within seconds.
    with app.connection(settings.CELERY_BROKER_URL, connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=1)
        # limit=1: return at the first reply instead of always waiting out the timeout.
        replies = app.control.ping(timeout=WORKER_PING_TIMEOUT_S, connection=conn, limit=1)
    if not replies:
        raise RuntimeError(f"no Celery worker answered within {WORKER_PING_TIMEOUT_S:.0f}s")
    return f"{next(iter(replies[0]))} answered"


CHECKS = {
    "database": _database,
    "vector_extension": _vector_extension,
    "broker": _broker,
    "workers": _workers,
}


def register_check(name: str, check) -> None:
    """A check of a higher layer (the web agent's browser), added from its AppConfig.ready():
    the kernel knows of it only through here."""
    CHECKS[name] = check


@require_GET
def readiness(request):
    results = {name: _timed(check) for name, check in CHECKS.items()}
    healthy = all(result["ok"] for result in results.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": results},
        status=200 if healthy else 503,
    )
