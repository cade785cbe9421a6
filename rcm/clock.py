"""The platform's clock: one function, so that tests can move time instead of sleeping (the
engine, batches, memory and the seed all read it)."""

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()
