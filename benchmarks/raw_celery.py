"""The baseline of the engine benchmark: plain Celery tasks in chains, no engine at all.

Imported by the benchmark's worker (``--include benchmarks.raw_celery``). Each step counts
itself in Redis, so the benchmark knows when every chain has finished without a result backend.
"""

import redis
from django.conf import settings

from rcm.celery import app

_client = None


def counter():
    global _client  # noqa: PLW0603 - one connection per worker process
    if _client is None:
        _client = redis.Redis.from_url(settings.REDIS_URL)
    return _client


@app.task(name="bench.noop_step", ignore_result=True)
def noop_step(key: str) -> None:
    counter().incr(key)
