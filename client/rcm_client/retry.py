"""When a failed request is tried again, and after how long.

Exponential backoff with full jitter (AWS's "Exponential Backoff and Jitter"): clients that
failed together do not come back together. A ``Retry-After`` from the server wins over the
computed delay, up to ``max_wait``: past it the error is raised at once, since a caller
waiting an hour inside one call is worse off than one told to come back.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

import httpx

# 429: throttled; 502/503/504: a proxy or the platform says it could not serve the request
# now. 500 too: the platform's transaction rolled back (nothing was done), and a request that
# is safe to repeat may land on a healthy worker.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts``: tries in all (1: never retry). The n-th retry waits a random time up to
    ``min(max_backoff, backoff * 2**n)`` seconds, or what ``Retry-After`` asks, if at most
    ``max_wait``."""

    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_wait: float = 120.0

    def delay(self, retry: int, response: httpx.Response | None) -> float | None:
        """Seconds to wait before retry number ``retry`` (0-based); None: give up now."""
        if retry + 1 >= self.attempts:
            return None
        if response is not None:
            asked = retry_after_seconds(response.headers.get("Retry-After"))
            if asked is not None:
                return asked if asked <= self.max_wait else None
        ceiling = min(self.max_backoff, self.backoff * 2**retry)
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date (RFC 9110 §10.2.3);
    None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
