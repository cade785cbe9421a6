"""The migration commands' shared contract: exit codes, ``--json`` and the migration_run record."""

import contextlib
import json

import pytest
from django.db import connection, transaction
from django.db.utils import ProgrammingError

from dbadmin import backups
from dbadmin.command import CannotRun, Failed, MigrationCommand, Result
from dbadmin.models import MigrationRun
from tests.dbadmin.helpers import command_run


class Probe(MigrationCommand):
    kind = MigrationRun.Kind.VALIDATE

    def add_command_arguments(self, parser):
        parser.add_argument(
            "--end",
            choices=["ok", "failed", "raised", "cannot", "refused", "refused_driver", "crashed"],
            default="ok",
        )

    def perform(self, *, end, **options):
        self.say("checking the probe")
        if end == "cannot":
            raise CannotRun("no database answers at db.example:5432")
        if end == "raised":
            raise Failed("probe raised", {"checks": 3})
        if end == "refused":  # a constraint whose DETAIL quotes the row: patient data
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("CREATE TEMPORARY TABLE probe (email text UNIQUE)")
                cursor.execute("INSERT INTO probe VALUES ('ada.lovelace@clinic.org')")
                cursor.execute("INSERT INTO probe VALUES ('ada.lovelace@clinic.org')")
        if end == "refused_driver":  # the same, met on a plain psycopg connection
            with backups.owner_server().connect() as conn:
                conn.execute("CREATE TEMPORARY TABLE probe (email text UNIQUE)")
                conn.execute("INSERT INTO probe VALUES ('ada.lovelace@clinic.org')")
                conn.execute("INSERT INTO probe VALUES ('ada.lovelace@clinic.org')")
        if end == "crashed":
            raise PermissionError(13, "Permission denied", "/srv/backups")
        return Result(ok=end == "ok", summary=f"probe {end}", details={"checks": 3})


def probe(*args):
    return command_run(Probe(), *args)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("end", "code", "outcome"),
    [("ok", 0, "ok"), ("failed", 1, "failed"), ("raised", 1, "failed"), ("cannot", 2, "error")],
)
def test_the_exit_code_the_json_and_the_record_agree(end, code, outcome):
    exit_code, out, err = probe("--end", end, "--json")

    assert exit_code == code
    document = json.loads(out)  # stdout is the JSON object alone
    assert (document["exit_code"], document["outcome"]) == (code, outcome)
    assert "checking the probe" in err
    run = MigrationRun.objects.get()
    assert (run.kind, run.outcome) == ("validate", outcome)
    assert run.finished_at >= run.started_at
    assert "@" in run.run_by
    if end == "cannot":
        assert run.summary == "no database answers at db.example:5432"
        assert run.details == {}
    else:
        assert (run.summary, run.details) == (f"probe {end}", {"checks": 3})
        assert document["run_id"] == run.pk


@pytest.mark.django_db
def test_the_human_report_goes_to_stdout_without_json():
    exit_code, out, _ = probe()

    assert exit_code == 0
    assert "checking the probe" in out and "probe ok" in out


@pytest.mark.django_db(transaction=True)  # as_owner reconnects: no test transaction across it
def test_the_maintenance_role_reads_every_organization_and_writes_nothing(org_a, org_b):
    from django.db import connection
    from django.db.utils import ProgrammingError

    from rcm.db.roles import as_maintenance

    with as_maintenance(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(DISTINCT org_id) FROM app_user WHERE org_id IN (%s, %s)",
            [org_a.id, org_b.id],
        )
        assert cursor.fetchone() == (2,)
        with pytest.raises(ProgrammingError, match="permission denied"):
            cursor.execute("DELETE FROM app_user")


@pytest.mark.django_db
@pytest.mark.parametrize("end", ["refused", "refused_driver"])
def test_a_database_refusal_is_exit_2_without_the_row_it_quotes(end):
    exit_code, out, err = probe("--end", end, "--json")

    document = json.loads(out)
    assert exit_code == 2 and document["outcome"] == "error"
    assert "The database refused: duplicate key value" in document["summary"]
    assert "SQLSTATE 23505, probe_email_key" in document["summary"]
    run = MigrationRun.objects.get()
    for said in (out, err, run.summary, json.dumps(run.details)):
        assert "ada.lovelace" not in said


@pytest.mark.django_db
def test_anything_else_that_stops_a_command_is_exit_2_and_recorded():
    exit_code, out, _ = probe("--end", "crashed", "--json")

    document = json.loads(out)
    assert exit_code == 2 and document["outcome"] == "error"
    assert document["summary"] == (
        "Stopped by PermissionError: [Errno 13] Permission denied: '/srv/backups'"
    )
    assert MigrationRun.objects.get().outcome == "error"


@contextlib.contextmanager
def refused(message: str):
    """The statement in the block is refused with ``message``; the test's transaction goes on."""
    with pytest.raises(ProgrammingError, match=message), transaction.atomic():
        yield


@pytest.mark.django_db
def test_the_runtime_role_finishes_a_run_once_and_never_rewrites_or_removes_one():
    """The commands record their runs as the runtime role; a finished run is history."""
    assert probe()[0] == 0
    finished = MigrationRun.objects.get()
    running = MigrationRun.objects.create(kind="backup", started_at=finished.started_at, run_by="x")

    refusals = [
        (MigrationRun.objects.filter(pk=finished.pk), {"outcome": "failed"}),
        (MigrationRun.objects.filter(pk=finished.pk), {"summary": "all fine"}),
        (MigrationRun.objects.filter(pk=running.pk), {"run_by": "someone@else"}),
        (MigrationRun.objects.filter(pk=running.pk), {"kind": "restore"}),
    ]
    for rows, change in refusals:
        with refused("migration_run keeps its history"):
            rows.update(**change)
    for statement in ("DELETE FROM migration_run", "TRUNCATE migration_run"):
        with refused("permission denied"), connection.cursor() as cursor:
            cursor.execute(statement)

    # A running one is finished, once.
    assert MigrationRun.objects.filter(pk=running.pk).update(outcome="ok", summary="done") == 1
    with refused("migration_run keeps its history"):
        MigrationRun.objects.filter(pk=running.pk).update(outcome="failed")
    assert [run.outcome for run in MigrationRun.objects.order_by("pk")] == ["ok", "ok"]
