"""rcm_migration_status: migrations per app and the last run of each migration command."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

from dbadmin.models import MigrationRun


def status(*args):
    out, err = StringIO(), StringIO()
    try:
        call_command("rcm_migration_status", *args, stdout=out, stderr=err)
        code = 0
    except CommandError as exc:
        code = exc.returncode
    return code, out.getvalue()


def record(kind, outcome="ok", minutes_ago=0, summary="", **details):
    started = timezone.now() - timedelta(minutes=minutes_ago)
    return MigrationRun.objects.create(
        kind=kind,
        started_at=started,
        finished_at=started + timedelta(seconds=3),
        outcome=outcome,
        run_by="admin@db1",
        summary=summary,
        details=details,
    )


@pytest.mark.django_db
def test_a_migrated_database_is_at_the_schema_and_has_never_been_backed_up():
    code, out = status("--json")

    document = json.loads(out)
    assert code == 0 and document["outcome"] == "ok"
    apps = {app["app"]: app for app in document["details"]["migrations"]}
    assert {"tenants", "workflows", "memory", "webactions", "dbadmin", "rcm"} <= set(apps)
    assert all(app["pending"] == [] and app["applied"] > 0 for app in apps.values())
    (newest,) = MigrationLoader(connection).graph.leaf_nodes("dbadmin")
    assert apps["dbadmin"]["last_applied"] == newest[1]
    assert document["details"]["last_runs"]["backup"] is None
    assert not MigrationRun.objects.exists()  # reading the status records nothing


@pytest.mark.django_db
def test_pending_and_unknown_migrations_exit_1_and_are_named():
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = 'dbadmin'")
        cursor.execute(
            "INSERT INTO django_migrations (app, name, applied) "
            "VALUES ('workflows', '9999_from_a_later_release', now())"
        )

    code, out = status()

    assert code == 1
    assert "pending: 0001_migration_run" in out
    assert "not in this code: 9999_from_a_later_release" in out


@pytest.mark.django_db
def test_the_last_backup_validation_and_import_are_reported(tmp_path):
    kept = tmp_path / "rcm-20261205.dump"
    kept.write_bytes(b"PGDMP")
    record("backup", minutes_ago=60, file=str(kept), size_bytes=5, sha256="ab12", verified=True)
    record("backup", outcome="failed", minutes_ago=1, summary="the dump is empty")
    record(
        "validate",
        outcome="failed",
        summary="2 checks failed",
        checks=[{"id": "rls", "ok": False}, {"id": "views", "ok": False}, {"id": "x", "ok": True}],
    )
    record(
        "import_legacy",
        tables=[{"path": "app_user -> app_user", "read": 12, "created": 11, "rejected": 1}],
        totals={"read": 12, "created": 11, "unchanged": 0, "rejected": 1},
    )

    code, out = status()
    _, as_json = status("--json")

    assert code == 0
    assert f"file {kept} (present)" in out
    assert "5 bytes, sha256 ab12" in out and "verified by a restore" in out
    assert "failed: rls" in out and "failed: views" in out and "failed: x" not in out
    assert "app_user -> app_user: read 12, created 11, rejected 1" in out
    assert "in all: read 12, created 11, rejected 1" in out
    runs = json.loads(as_json)["details"]["last_runs"]
    # The newest backup that made a file, not the newest attempt.
    assert runs["backup"]["details"]["sha256"] == "ab12"
    assert runs["backup"]["file_state"] == "present"
    kept.unlink()
    assert json.loads(status("--json")[1])["details"]["last_runs"]["backup"]["file_state"] == (
        "missing"
    )
