"""The audit trail is append-only and hash-chained: any edit or deletion breaks the chain."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.db.utils import ProgrammingError
from django.utils import timezone

from rcm.context import org_context
from rcm.db.roles import as_owner
from tenants import services
from tenants.models import AuditEvent


def _record(org_id, number: int) -> int:
    return services.audit_event_record(
        action="test.event", org_id=org_id, actor_email="t@x.test", object_id=str(number)
    )


@pytest.fixture
def chain(org_a):
    return [_record(org_a.id, number) for number in range(5)]


@pytest.mark.django_db
def test_a_fresh_chain_verifies(chain):
    checked, first_bad = services.audit_chain_verify()
    assert checked == 5 and first_bad is None


@pytest.mark.django_db
def test_each_row_links_to_the_previous_hash(org_a, chain):
    with org_context(org_a.id):
        rows = list(AuditEvent.objects.order_by("id"))
    assert rows[0].prev_hash == "0" * 64
    for previous, row in zip(rows, rows[1:], strict=False):
        assert row.prev_hash == previous.hash


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement", ["UPDATE audit_event SET action = 'x'", "DELETE FROM audit_event"]
)
def test_the_runtime_role_cannot_edit_or_delete(org_a, chain, statement):
    refused = pytest.raises(ProgrammingError, match="permission denied")
    with org_context(org_a.id), refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)


ORG_OF_CHAIN: list = []


def _tamper(sql: str, params=()) -> None:
    """As the owner, with the append-only trigger off: what a rogue DBA could do."""
    with as_owner(), org_context(ORG_OF_CHAIN[0]), connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only")


@pytest.mark.django_db(transaction=True)
def test_the_trigger_refuses_even_the_owner(org_a, chain):
    refused = pytest.raises(Exception, match="append-only")
    with as_owner(), org_context(org_a.id), connection.cursor() as cursor, refused:
        cursor.execute("UPDATE audit_event SET action = 'x'")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("sql", "bad_index"),
    [
        ('UPDATE audit_event SET details = \'{"role": "admin"}\' WHERE id = %s', 2),
        ("DELETE FROM audit_event WHERE id = %s", 3),
        ("DELETE FROM audit_event WHERE id = %s", 4),  # the newest row
    ],
)
def test_editing_or_deleting_any_row_breaks_the_chain(org_a, chain, sql, bad_index):
    ORG_OF_CHAIN[:] = [org_a.id]
    _tamper(sql, [chain[bad_index]])
    checked, first_bad = services.audit_chain_verify()
    assert first_bad is not None
    assert checked <= bad_index


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain(org_a):
    errors = []

    def write(start: int) -> None:
        try:
            for number in range(start, start + 15):
                with transaction.atomic():
                    _record(org_a.id, number)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n * 100,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert services.audit_chain_verify() == (60, None)


@pytest.mark.django_db
def test_purge_keeps_six_years_and_the_chain_still_verifies(org_a, chain, settings):
    assert settings.AUDIT_RETENTION_DAYS >= 6 * 365
    assert services.audit_event_purge() == 0
    deleted = services.audit_event_purge(now=timezone.now() + timedelta(days=7 * 366))
    assert deleted == 5
    _record(org_a.id, 99)
    assert services.audit_chain_verify() == (1, None)


def test_a_retention_shorter_than_six_years_is_refused_at_start_up():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", "import rcm.settings.base"],
        env={
            "AUDIT_RETENTION_DAYS": "30",
            # Unreachable servers are fine: the settings module never connects on import.
            "DATABASE_URL": "postgres://u:p@127.0.0.1:1/x",
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "PATH": "",
        },
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "AUDIT_RETENTION_DAYS" in result.stderr


@pytest.mark.celery_worker
def test_the_retention_task_runs_on_a_real_worker(celery_worker, org_a, settings):
    from tenants.tasks import audit_event_purge_task
    from tests.conftest import wait_for

    _record(org_a.id, 1)
    _record(org_a.id, 2)
    assert services.audit_chain_verify() == (2, None)
    # The worker is a thread of this process and reads the same settings: a negative
    # retention puts the cut-off in the future, so the run must remove both rows.
    settings.AUDIT_RETENTION_DAYS = -1
    audit_event_purge_task.delay()
    wait_for(lambda: services.audit_chain_verify() == (0, None))
    _record(org_a.id, 3)
    assert services.audit_chain_verify() == (1, None)
    assert settings.CELERY_BEAT_SCHEDULE["audit-retention"]["task"] == audit_event_purge_task.name
