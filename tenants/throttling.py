"""Failed-login throttling, per client IP and per email; failed invitation redemptions, per IP.

Only failures count: a user who logs in correctly many times is never locked out, while a
password-guessing run is stopped after a few tries whichever IP or account it rotates. The
counters live in the shared cache (Redis), so every web process sees the same totals.

Without Redis (an outage) the counters fail open to this process's own memory: logging in must
keep working while the broker is down, and a per-process count still stops a guessing run,
only each web process counts on its own. The log says so while it lasts.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

REDEEM_THROTTLED = "Too many invalid invitation links; try again later."

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# This process's counters while the shared cache is out of reach, and when the log last said so
# (once a minute at most: every login during an outage would otherwise add a line).
_local = LocMemCache("rcm-throttle-fallback", {"TIMEOUT": None, "OPTIONS": {"MAX_ENTRIES": 10000}})
_FALLBACK_LOG_EVERY_S = 60
_fallback_logged_at: float | None = None


@dataclass(frozen=True)
class Rate:
    limit: int
    window_s: int


def parse_rate(text: str) -> Rate:
    """'5/min' -> Rate(5, 60). The same notation as DRF's throttle rates."""
    count, _, period = text.partition("/")
    return Rate(int(count), _PERIODS[period.strip()[0]])


def _keys(ip: str | None, email: str) -> list[tuple[str, Rate]]:
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    # The email is hashed: cache keys must not carry a login name in clear text.
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    keys = [(f"login-fail:email:{digest}", parse_rate(rates["login_email"]))]
    if ip:
        keys.append((f"login-fail:ip:{ip}", parse_rate(rates["login_ip"])))
    return keys


def _redeem_keys(ip: str | None) -> list[tuple[str, Rate]]:
    rate = parse_rate(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["redeem_ip"])
    return [(f"redeem-fail:ip:{ip}", rate)] if ip else []


def login_retry_after(*, ip: str | None, email: str) -> int | None:
    """Seconds the caller must wait, or None when they may try now."""
    return _retry_after(_keys(ip, email))


def login_failure_record(*, ip: str | None, email: str) -> None:
    _failure_record(_keys(ip, email))


def redeem_retry_after(*, ip: str | None) -> int | None:
    """Like a log-in: guessing invitation tokens is stopped after a few wrong ones."""
    return _retry_after(_redeem_keys(ip))


def redeem_failure_record(*, ip: str | None) -> None:
    _failure_record(_redeem_keys(ip))


def _retry_after(keys: list[tuple[str, Rate]]) -> int | None:
    now = time.time()
    waits = []
    for key, rate in keys:
        counts = _counters("get_many", [key, f"{key}:started"])
        if counts.get(key, 0) >= rate.limit:
            started = counts.get(f"{key}:started", now)
            waits.append(max(1, int(started + rate.window_s - now) + 1))
    return max(waits) if waits else None


def _failure_record(keys: list[tuple[str, Rate]]) -> None:
    """Count one failure. add() then incr() are atomic in Redis: concurrent guesses all count.

    The window is fixed from the first failure: both keys expire together at its end.
    """
    now = time.time()
    for key, rate in keys:
        if _counters("add", key, 0, timeout=rate.window_s):
            _counters("set", f"{key}:started", now, timeout=rate.window_s)
        try:
            _counters("incr", key)
        except ValueError:  # expired between add() and incr(): start a new window
            _counters("set", key, 1, timeout=rate.window_s)
            _counters("set", f"{key}:started", now, timeout=rate.window_s)


def _counters(operation: str, *args, **kwargs):
    """``cache.<operation>(...)`` on the shared cache, or on this process's own counters when
    Redis cannot be reached."""
    global _fallback_logged_at
    try:
        return getattr(cache, operation)(*args, **kwargs)
    except RedisError as exc:
        now = time.monotonic()
        if _fallback_logged_at is None or now - _fallback_logged_at >= _FALLBACK_LOG_EVERY_S:
            _fallback_logged_at = now
            logger.warning(
                "the shared cache is unreachable (%s: %s); failed log-ins are counted per "
                "process until it is back",
                type(exc).__name__,
                exc,
            )
        return getattr(_local, operation)(*args, **kwargs)
