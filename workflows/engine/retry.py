"""Retry policies, shaped like Temporal's, and the delay before each retry.

{"initial_interval_s": 1, "backoff_coefficient": 2.0, "maximum_interval_s": 100,
 "maximum_attempts": 3, "non_retryable_error_kinds": ["http_400"], "jitter": 0.1}

Attempt n (n >= 1) failed: the next one waits min(initial * coefficient^(n-1), maximum),
stretched by up to ``jitter`` of itself at random so that many runs failing together do not
retry in lock-step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# A retry waits on the broker (a countdown), so it must stay well inside the broker's
# visibility timeout (settings.CELERY_BROKER_TRANSPORT_OPTIONS): longer waits are capped.
MAX_INTERVAL_S = 3600
MAX_ATTEMPTS = 50
KEYS = {
    "initial_interval_s",
    "backoff_coefficient",
    "maximum_interval_s",
    "maximum_attempts",
    "non_retryable_error_kinds",
    "jitter",
}


@dataclass(frozen=True)
class RetryPolicy:
    initial_interval_s: float = 1.0
    backoff_coefficient: float = 2.0
    maximum_interval_s: float = 100.0
    maximum_attempts: int = 3
    non_retryable_error_kinds: frozenset[str] = field(default_factory=frozenset)
    jitter: float = 0.1

    @classmethod
    def from_config(cls, config: dict | None) -> RetryPolicy:
        config = config or {}
        initial = float(config.get("initial_interval_s", 1.0))
        return cls(
            initial_interval_s=initial,
            backoff_coefficient=float(config.get("backoff_coefficient", 2.0)),
            maximum_interval_s=float(config.get("maximum_interval_s", min(100 * initial, 3600))),
            maximum_attempts=int(config.get("maximum_attempts", 3)),
            non_retryable_error_kinds=frozenset(config.get("non_retryable_error_kinds", [])),
            jitter=float(config.get("jitter", 0.1)),
        )

    def retries(self, *, attempt: int, error_kind: str) -> bool:
        """Whether attempt ``attempt`` (1-based) failing with ``error_kind`` gets another."""
        return attempt < self.maximum_attempts and error_kind not in self.non_retryable_error_kinds

    def delay_s(self, *, attempt: int, rng: random.Random | None = None) -> float:
        base = min(
            self.initial_interval_s * self.backoff_coefficient ** (attempt - 1),
            self.maximum_interval_s,
        )
        return base * (1 + self.jitter * (rng or random).random())


def validate(config) -> list[str]:
    """Problems with a node's retry policy (empty: valid)."""
    if config in (None, {}):
        return []
    if not isinstance(config, dict):
        return ["retry_policy must be an object"]
    problems = [f"unknown retry_policy key {key!r}" for key in sorted(set(config) - KEYS)]

    def number(key, low, high):
        value = config.get(key)
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if value is not None and not (is_number and low <= value <= high):
            problems.append(f"retry_policy.{key} must be a number in [{low}, {high}]")

    number("initial_interval_s", 0, MAX_INTERVAL_S)
    number("backoff_coefficient", 1, 10)
    number("maximum_interval_s", 0, MAX_INTERVAL_S)
    number("jitter", 0, 1)
    attempts = config.get("maximum_attempts")
    if attempts is not None and (
        not isinstance(attempts, int)
        or isinstance(attempts, bool)
        or not 1 <= attempts <= MAX_ATTEMPTS
    ):
        problems.append(f"retry_policy.maximum_attempts must be an integer in [1, {MAX_ATTEMPTS}]")
    kinds = config.get("non_retryable_error_kinds")
    if kinds is not None and (
        not isinstance(kinds, list) or not all(isinstance(k, str) and k for k in kinds)
    ):
        problems.append("retry_policy.non_retryable_error_kinds must be a list of strings")
    if (
        not problems
        and config.get("maximum_interval_s") is not None
        and config["maximum_interval_s"] < config.get("initial_interval_s", 1.0)
    ):
        problems.append("retry_policy.maximum_interval_s must be at least initial_interval_s")
    return problems
