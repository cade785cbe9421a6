"""One-time codes for portals that ask for them (RFC 6238 TOTP, through pyotp)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pyotp

# A code typed with less than this left of its window may expire on the way to the portal
# (the page still has to be filled and submitted): wait for the next window instead.
MIN_REMAINING_S = 5


def totp_now(
    seed: str,
    *,
    interval: int = 30,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """The current code of ``seed`` with at least MIN_REMAINING_S of its window left."""
    totp = pyotp.TOTP(seed, interval=interval)
    now = clock()
    remaining = interval - (now % interval)
    if remaining < MIN_REMAINING_S:
        sleep(remaining)
        now += remaining
    return totp.at(now)


def seed_is_valid(seed: str) -> bool:
    """Whether ``seed`` is the base32 secret an authenticator app is given."""
    try:
        pyotp.TOTP(seed).now()
    except (ValueError, TypeError):  # binascii.Error is a ValueError
        return False
    return len(seed.replace(" ", "")) >= 16
