"""Celery tasks act for the organization they carry, and leave nothing for the next task."""

import pytest
from django.core.cache import cache
from django.db import connection

from rcm.celery import OrgTask, app
from rcm.context import current_org_id
from tests.conftest import wait_for


@app.task(base=OrgTask, name="tests.visible_orgs")
def visible_orgs(*, org_id: str, probe: str, fail: bool = False) -> None:
    """Record which organizations' memberships this task can see, through raw SQL."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT org_id::text FROM user_organization")
        seen = sorted(row[0] for row in cursor.fetchall())
    cache.set(probe, {"seen": seen, "context": str(current_org_id())}, 60)
    if fail:
        raise RuntimeError("a task that fails half-way")


@app.task(name="tests.context_after")
def context_after(*, probe: str) -> None:
    """A task without an organization: what does it inherit from the task before it?"""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM user_organization")
        count = cursor.fetchone()[0]
    cache.set(probe, {"context": current_org_id(), "rows": count}, 60)


@pytest.mark.celery_worker
def test_interleaved_tasks_for_two_orgs_see_only_their_own_rows(celery_worker, org_a, org_b):
    sequence = [org_a, org_b] * 5
    for number, tenant in enumerate(sequence):
        visible_orgs.delay(org_id=str(tenant.id), probe=f"probe:{number}", fail=number == 3)
        if number % 2:
            context_after.delay(probe=f"after:{number}")
    results = wait_for(lambda: _all([f"probe:{n}" for n in range(10)]))
    for number, tenant in enumerate(sequence):
        assert results[number] == {"seen": [str(tenant.id)], "context": str(tenant.id)}
    leftovers = wait_for(lambda: _all([f"after:{n}" for n in range(1, 10, 2)]))
    assert all(item == {"context": None, "rows": 0} for item in leftovers)


def _all(keys):
    values = cache.get_many(keys)
    return [values[key] for key in keys] if len(values) == len(keys) else None


def test_a_tenant_task_refuses_to_run_without_org_id():
    with pytest.raises(TypeError, match="org_id"):
        visible_orgs(probe="x")
