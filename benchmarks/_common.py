"""What every benchmark shares: Django set up (on import), a throw-away database to measure in,
a Celery queue of its own, the organization and operator it measures as, and the timing sums."""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rcm.settings.base")

import django  # noqa: E402

django.setup()


@contextlib.contextmanager
def bench_database(name: str = "bench_rcm"):
    """A fresh, migrated database on the configured server, dropped afterwards.

    Created and migrated as the owner role and used as the runtime role, like the real one,
    so row-level security costs what it costs in production.
    """
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    from rcm.db.roles import as_owner

    settings.DATABASES["default"]["TEST"]["NAME"] = name
    with as_owner():
        names = setup_databases(verbosity=0, interactive=False)
    try:
        yield
    finally:
        with as_owner():
            teardown_databases(names, verbosity=0)


@contextlib.contextmanager
def bench_queue():
    """A default Celery queue of the benchmark's own, so that its workers take only its tasks;
    dropped afterwards with whatever is left in it."""
    from django.conf import settings

    from rcm.celery import app
    from rcm.workers import queue_drop

    queue = f"bench-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    app.conf.task_default_queue = queue
    try:
        yield queue
    finally:
        queue_drop(queue)


def bench_operator():
    """(organization, user): the "Bench" billing firm and its operator, in the bench database."""
    from rcm.lookups import OrgType, UserRole
    from tenants import services

    org = services.organization_create(name="Bench", org_type=OrgType.BILLING_FIRM)
    user = services.user_create(org_id=org.id, email="bench@bench.test", role=UserRole.OPERATOR)
    return org, user


def timed_gets(client, urls: list[str], label: str) -> list[float]:
    """Milliseconds per GET of each of ``urls`` through a Django test client (the whole
    request stack in-process), with a progress bar; a page that does not answer 200 stops the
    benchmark, which must never time an error page."""
    import time

    from rcm.progress import ProgressBar

    timings = []
    with ProgressBar(len(urls), label) as bar:
        for url in urls:
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{url} answered {response.status_code}: {response.content!r}")
            bar.advance()
    return timings


def percentile(values: list[float], q: int) -> float:
    import statistics

    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]
