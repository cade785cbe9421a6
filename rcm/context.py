"""The organization the current request, task or command acts for.

A context variable, so that threads and asyncio tasks each see their own value. The database
backend (rcm/db/backend) copies it into PostgreSQL's ``app.current_org_id`` for every
transaction, which is what the row-level security policies read.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextvars import ContextVar

_current_org: ContextVar[uuid.UUID | None] = ContextVar("rcm_current_org", default=None)


class NoOrganizationContext(RuntimeError):
    """A tenant-scoped query ran with no organization set: a bug, never a user error."""


def current_org_id() -> uuid.UUID | None:
    return _current_org.get()


def require_org_id() -> uuid.UUID:
    org_id = _current_org.get()
    if org_id is None:
        raise NoOrganizationContext(
            "No organization context is set. Wrap the code in `org_context(org_id)`, or use "
            "`.unscoped()` where crossing organizations is intended."
        )
    return org_id


@contextlib.contextmanager
def org_context(org_id: uuid.UUID | str | None) -> Iterator[None]:
    """Act for ``org_id`` inside the block (``None``: for no organization)."""
    value = uuid.UUID(str(org_id)) if org_id is not None else None
    token = _current_org.set(value)
    try:
        yield
    finally:
        _current_org.reset(token)


def set_org_id(org_id: uuid.UUID | str | None):
    """Set the context without a block; returns the token to reset it. For middleware only."""
    return _current_org.set(uuid.UUID(str(org_id)) if org_id is not None else None)


def reset_org_id(token) -> None:
    _current_org.reset(token)
