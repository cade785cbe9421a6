"""rcm_backup, rcm_restore and rcm_rollback on the test database itself.

The commands connect as the owner on connections of their own, and a restore replaces every
table, so every test is transactional: its rows are committed where the commands see them, and
the tables are emptied after it as usual. Every restore here restores a backup of this same
database, so the schema the other tests run on stays as it was.
"""

import hashlib
import json
import shutil
import stat
from pathlib import Path

import pytest
from django.db import connection

from dbadmin import backups
from dbadmin.models import MigrationRun
from rcm import embedded
from rcm.context import org_context
from rcm.db.roles import as_maintenance, as_owner
from rcm.lookups import OrgType, UserRole
from tenants import services
from tenants.models import Membership, User
from tests.dbadmin.helpers import command_run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def empty_backup(django_db_setup, django_db_blocker, tmp_path_factory) -> Path:
    """A backup of the migrated test database with no organization in it, made once for the
    module through the backups module (a command would leave its migration_run row behind)."""
    path = tmp_path_factory.mktemp("backups") / "empty.dump"
    with django_db_blocker.unblock():
        server = backups.owner_server()
        tools = backups.tools_find(server)
        manifest = backups.backup_make(path=path, server=server, tools=tools, verify=False)
    assert manifest.tables["organization"] == 0
    return path


def backup_copy(backup: Path, folder: Path) -> Path:
    """A copy of the backup and its manifest in ``folder``, to damage."""
    for source in (backup, backups.manifest_path(backup)):
        shutil.copy(source, folder / source.name)
    return folder / backup.name


def manifest_of(backup: Path) -> dict:
    return json.loads(backups.manifest_path(backup).read_text())


def manifest_edit(backup: Path, **changes) -> None:
    backups.manifest_path(backup).write_text(json.dumps({**manifest_of(backup), **changes}))


def manifest_forged(backup: Path) -> None:
    """The manifest made to describe the file as it is now: size and checksum match."""
    content = backup.read_bytes()
    manifest_edit(backup, size_bytes=len(content), sha256=hashlib.sha256(content).hexdigest())


def read_all(query: str) -> list[tuple]:
    """Rows of every organization, read as the maintenance role."""
    with as_maintenance(), connection.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchall()


def people() -> dict[str, tuple]:
    """Every user: their name and the organizations they are a member of."""
    return {
        email: (full_name, sorted(orgs))
        for email, full_name, orgs in read_all(
            "SELECT u.email, u.full_name, array_remove(array_agg(m.org_id::text), NULL) "
            "FROM app_user u LEFT JOIN user_organization m ON m.user_id = u.user_id "
            "GROUP BY u.email, u.full_name"
        )
    }


def organizations() -> set[str]:
    return {name for (name,) in read_all("SELECT name FROM organization")}


def security() -> tuple[int, int]:
    """Tables under enforced row-level security, and policies: a restore must keep both."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace "
            "AND relrowsecurity AND relforcerowsecurity), (SELECT count(*) FROM pg_policies)"
        )
        return cursor.fetchone()


def scratch_databases() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT datname FROM pg_database WHERE datname LIKE '%%\\_verify\\_%%'")
        return [name for (name,) in cursor.fetchall()]


def summary(out: str) -> str:
    return json.loads(out)["summary"]


# -- backing up ----------------------------------------------------------------------------------


def test_a_backup_is_proven_and_its_manifest_describes_the_database(org_a, org_b, tmp_path):
    path = tmp_path / "proven.dump"

    code, out, err = command_run("rcm_backup", "--output", str(path), "--verify-restore", "--json")

    assert code == 0, err
    document = json.loads(out)
    details, manifest = document["details"], manifest_of(path)
    content = path.read_bytes()
    assert details["sha256"] == manifest["sha256"] == hashlib.sha256(content).hexdigest()
    assert details["size_bytes"] == manifest["size_bytes"] == len(content)
    assert (manifest["listed"], manifest["verified"]) == (True, True)
    assert (details["listed"], details["verified"]) == (True, True)
    assert manifest["tables"]["organization"] == 2
    assert manifest["tables"]["app_user"] == len(people()) == 8
    assert details["rows"] == sum(manifest["tables"].values())
    assert details["tables"] == len(manifest["tables"]) and details["seconds"] > 0
    with as_owner(), connection.cursor() as cursor:
        cursor.execute("SELECT app, name FROM django_migrations ORDER BY id")
        assert manifest["migrations"] == [list(row) for row in cursor.fetchall()]
        cursor.execute("SHOW server_version")
        assert manifest["server_version"] == cursor.fetchone()[0]
    assert manifest["database"] == connection.settings_dict["NAME"]
    assert manifest["pg_dump_version"].startswith("pg_dump (PostgreSQL) 18.")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # every organization's PHI
    assert scratch_databases() == []
    # The dump carries what a restore must bring back besides rows: the grants, and row-level
    # security with its policies.
    server = backups.owner_server()
    listing = backups.archive_listing(path, backups.tools_find(server))
    entries = {entry for _, entry in listing.lines}
    for entry in ("ACL public TABLE app_user", "ROW SECURITY public app_user", "POLICY public"):
        assert any(listed.startswith(entry) for listed in entries), entry
    assert f"TABLE DATA public organization {server.params['user']}" in entries
    run = MigrationRun.objects.get()
    assert (run.kind, run.outcome, run.details["sha256"]) == ("backup", "ok", manifest["sha256"])
    assert document["run_id"] == run.pk


def fake_pg_dump(folder: Path, script: str) -> Path:
    """A tool directory whose pg_dump is ``script`` (sh) beside the real pg_restore and psql."""
    real = embedded.postgres_bin_dir()
    folder.mkdir()
    for name in ("pg_restore", "psql"):
        (folder / name).symlink_to(real / name)
    (folder / "pg_dump").write_text(f"#!/bin/sh\nREAL={real}/pg_dump\n{script}")
    (folder / "pg_dump").chmod(0o755)
    return folder


def test_a_pg_dump_that_writes_nothing_and_exits_0_is_no_backup(settings, tmp_path):
    """The system we replace reported an empty file as a backup."""
    settings.PG_BIN_DIR = str(
        fake_pg_dump(tmp_path / "bin", 'if [ "$1" = --version ]; then exec "$REAL" "$1"; fi\n')
    )
    path = tmp_path / "empty.dump"

    code, out, _ = command_run("rcm_backup", "--output", str(path), "--json")

    assert code == 1
    assert "is not a usable backup: pg_restore cannot read empty.dump" in summary(out)
    manifest = manifest_of(path)
    assert (manifest["size_bytes"], manifest["listed"], manifest["verified"]) == (0, False, None)
    assert MigrationRun.objects.get().outcome == "failed"


def test_tools_of_another_major_version_than_the_server_are_refused(settings, tmp_path):
    settings.PG_BIN_DIR = str(fake_pg_dump(tmp_path / "bin", 'echo "pg_dump (PostgreSQL) 15.18"\n'))
    path = tmp_path / "never.dump"

    code, out, _ = command_run("rcm_backup", "--output", str(path), "--json")

    assert code == 2
    assert "of PostgreSQL 18, the server's version (found: pg_dump (PostgreSQL) 15.18" in (
        summary(out)
    )
    assert not path.exists()
    assert MigrationRun.objects.get().outcome == "error"


def test_a_backup_never_overwrites_a_file(tmp_path):
    path = tmp_path / "taken.dump"
    path.write_text("someone else's file")

    code, out, _ = command_run("rcm_backup", "--output", str(path), "--json")

    assert code == 2 and "exists: a backup never overwrites a file" in summary(out)
    assert path.read_text() == "someone else's file"


# -- restoring -----------------------------------------------------------------------------------


def test_a_restore_brings_back_what_changed_since_the_backup(org_a, org_b, tmp_path):
    before = people()
    backup = tmp_path / "before.dump"
    assert command_run("rcm_backup", "--output", str(backup))[0] == 0
    with org_context(org_a.id):
        User.objects.filter(email="viewer@acme-billing.test").update(full_name="Renamed later")
    with org_context(org_b.id):
        Membership.objects.filter(user=org_b[UserRole.OPERATOR]).delete()
    services.organization_create(name="Cedar Clinic", org_type=OrgType.HOSPITAL)
    changed = people()

    code, out, _ = command_run("rcm_restore", "--backup", str(backup), "--json")

    assert code == 1
    assert "holds the data of 3 organizations" in summary(out) and "--yes" in summary(out)
    assert people() == changed  # refused: nothing touched

    code, out, err = command_run("rcm_restore", "--backup", str(backup), "--yes", "--json")

    assert code == 0, err
    assert people() == before
    assert organizations() == {"Acme Billing", "Bayside Hospital"}
    details = json.loads(out)["details"]
    assert (details["organizations_replaced"], details["newer_migrations"]) == (3, [])
    # The runtime role works on the restored tables, and row-level security holds it as before.
    with org_context(org_b.id):
        assert Membership.objects.filter(user=org_b[UserRole.OPERATOR]).exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM app_user")  # no organization set: no rows
        assert cursor.fetchone() == (0,)
    # migration_run is the backup's (the backup recorded itself after its dump) plus this run.
    assert [(run.kind, run.outcome) for run in MigrationRun.objects.all()] == [("restore", "ok")]


def cut_short(backup: Path) -> None:
    backup.write_bytes(backup.read_bytes()[: backup.stat().st_size // 2])


def checksum_edited(backup: Path) -> None:
    manifest_edit(backup, sha256="0" * 64)


def not_a_dump(backup: Path) -> None:
    backup.write_text("org_id,name\n1,Acme Billing\n")
    manifest_forged(backup)


def emptied(backup: Path) -> None:
    backup.write_bytes(b"")
    manifest_forged(backup)


def manifest_removed(backup: Path) -> None:
    backups.manifest_path(backup).unlink()


def table_added(backup: Path) -> None:
    manifest_edit(backup, tables={**manifest_of(backup)["tables"], "patient_ledger": 12})


def data_cut_off(backup: Path) -> None:
    """The last table's rows gone, the table of contents whole: pg_restore lists the file,
    and stops only when the restore is well under way."""
    backup.write_bytes(backup.read_bytes()[:-100])
    manifest_forged(backup)


def counts_edited(backup: Path) -> None:
    manifest_edit(backup, tables={**manifest_of(backup)["tables"], "app_user": 1})


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        # Refused before anything is touched.
        (cut_short, "the file was cut short or replaced"),
        (checksum_edited, "does not match its manifest's checksum"),
        (not_a_dump, "pg_restore cannot read empty.dump"),
        (emptied, "input file is too short"),
        (manifest_removed, "has no manifest beside it"),
        (table_added, "holds no data for 1 of the"),
        # Failed halfway through the restore's transaction, so rolled back whole.
        (data_cut_off, "could not read from input file: end of file); the restore was rolled"),
        (counts_edited, "row counts differ from the manifest: app_user: 1 in the manifest, 0 "),
    ],
)
def test_a_backup_that_is_not_whole_changes_nothing(empty_backup, org_a, tmp_path, damage, reason):
    backup = backup_copy(empty_backup, tmp_path)
    damage(backup)
    before = people(), security()

    code, out, _ = command_run("rcm_restore", "--backup", str(backup), "--yes", "--json")

    assert code == 1
    assert reason in summary(out)
    assert (people(), security()) == before
    with org_context(org_a.id):  # the runtime role's privileges are as they were too
        assert User.objects.count() == 4
    run = MigrationRun.objects.get()
    assert (run.kind, run.outcome, run.details["file"]) == ("restore", "failed", str(backup))


def test_newer_migrations_than_the_backup_are_restored_over_only_with_force(empty_backup, tmp_path):
    backup = backup_copy(empty_backup, tmp_path)

    def newer_table_exists() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass('public.after_the_backup') IS NOT NULL")
            return cursor.fetchone()[0]

    # What a migration released after the backup would have done.
    with as_owner(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO django_migrations (app, name, applied) "
            "VALUES ('dbadmin', '9999_after_the_backup', now())"
        )
        cursor.execute("CREATE TABLE after_the_backup (id int)")
    try:
        code, out, _ = command_run("rcm_restore", "--backup", str(backup), "--json")

        assert code == 1
        assert "has 1 newer migration than the backup (dbadmin.9999_after_the_backup)" in (
            summary(out)
        )
        assert newer_table_exists()

        code, out, err = command_run("rcm_restore", "--backup", str(backup), "--force", "--json")

        assert code == 0, err
        details = json.loads(out)["details"]
        assert details["newer_migrations"] == ["dbadmin.9999_after_the_backup"]
        assert details["dropped_tables_not_in_backup"] == ["after_the_backup"]
        assert "run migrate" in summary(out)
        assert not newer_table_exists()
        with as_owner(), connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM django_migrations WHERE name LIKE '9999_%%'")
            assert cursor.fetchone() == (0,)
    finally:  # the other tests need the migrations as they are
        with as_owner(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM django_migrations WHERE name = '9999_after_the_backup'")
            cursor.execute("DROP TABLE IF EXISTS after_the_backup")


# -- rolling back --------------------------------------------------------------------------------


def test_a_rollback_proves_a_safety_backup_of_the_present_before_it_restores(
    empty_backup, org_a, settings, tmp_path
):
    settings.BACKUP_DIR = tmp_path / "backups"
    target = backup_copy(empty_backup, tmp_path)

    code, out, _ = command_run("rcm_rollback", "--to-backup", str(target), "--json")

    assert code == 1 and "holds the data of 1 organization," in summary(out)
    assert not settings.BACKUP_DIR.exists()  # refused before any backup

    code, out, err = command_run("rcm_rollback", "--to-backup", str(target), "--yes", "--json")

    assert code == 0, err
    details = json.loads(out)["details"]
    safety = Path(details["safety_backup"]["file"])
    assert safety.parent == settings.BACKUP_DIR
    assert stat.S_IMODE(settings.BACKUP_DIR.stat().st_mode) == 0o700
    assert safety.name.endswith("-before-rollback.dump") and str(safety) in summary(out)
    manifest = manifest_of(safety)
    assert (manifest["listed"], manifest["verified"]) == (True, True)
    assert (manifest["tables"]["organization"], manifest["tables"]["app_user"]) == (1, 4)
    assert details["target"]["file"] == str(target)
    assert organizations() == set()  # the target's state
    assert scratch_databases() == []
    assert [(run.kind, run.outcome) for run in MigrationRun.objects.all()] == [("rollback", "ok")]


def test_a_rollback_to_a_backup_that_does_not_restore_changes_nothing(
    empty_backup, org_a, settings, tmp_path
):
    settings.BACKUP_DIR = tmp_path / "backups"
    target = backup_copy(empty_backup, tmp_path)
    data_cut_off(target)  # passes the checksum and the listing; fails to restore
    before = people(), security()

    code, out, _ = command_run("rcm_rollback", "--to-backup", str(target), "--yes", "--json")

    assert code == 1
    assert "empty.dump did not restore into a scratch database" in summary(out)
    assert "Nothing was changed: no safety backup was taken" in summary(out)
    assert (people(), security()) == before
    assert not settings.BACKUP_DIR.exists()
    assert scratch_databases() == []
    run = MigrationRun.objects.get()
    assert (run.kind, run.outcome, run.details["file"]) == ("rollback", "failed", str(target))
