"""Failed-login throttling, per client IP and per email; failed invitation redemptions, per IP.

Only failures count: a user who logs in correctly many times is never locked out, while a
password-guessing run is stopped after a few tries whichever IP or account it rotates. The
counters live in the shared cache (Redis), so every web process sees the same totals.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

REDEEM_THROTTLED = "Too many invalid invitation links; try again later."

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


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
        counts = cache.get_many([key, f"{key}:started"])
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
        if cache.add(key, 0, timeout=rate.window_s):
            cache.set(f"{key}:started", now, timeout=rate.window_s)
        try:
            cache.incr(key)
        except ValueError:  # expired between add() and incr(): start a new window
            cache.set(key, 1, timeout=rate.window_s)
            cache.set(f"{key}:started", now, timeout=rate.window_s)
