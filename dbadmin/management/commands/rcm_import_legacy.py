"""rcm_import_legacy: bring a v3 database into the V8 tables.

The work is in dbadmin/legacy/; what maps to what, and why, in docs/legacy-import.md."""

from __future__ import annotations

import psycopg

from dbadmin.command import CannotRun, MigrationCommand, Result
from dbadmin.legacy.importer import DEFAULT_CHUNK_SIZE, LegacyImport
from dbadmin.legacy.source import LegacySource
from dbadmin.legacy.values import ValueMap, map_file_read
from dbadmin.models import MigrationRun


class Command(MigrationCommand):
    kind = MigrationRun.Kind.IMPORT_LEGACY
    help = (
        "Import a v3 database: organizations, users, portals, the task catalogue and "
        "requirements, page memory, batch jobs and traces. Safe to run again: rows imported "
        "before are skipped when unchanged and updated when changed, and an interrupted run "
        "is completed by the next. Rows that cannot be imported as they are (a duplicate "
        "email, an unknown value) are rejected and listed with the reason; they are expected "
        "in old data, so the exit code is 0 unless --strict is given (then 1). Exit 2: the "
        "source cannot be read, is not a v3 database, or an argument is wrong."
    )

    def add_command_arguments(self, parser) -> None:
        parser.add_argument(
            "--source", required=True, help="The v3 database's URL (postgresql://...)."
        )
        parser.add_argument(
            "--org",
            action="append",
            default=[],
            metavar="ORG_ID_OR_NAME",
            help="Import only this v3 organization (repeatable); default: all of them.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Do everything but keep nothing: the report says what the import would do.",
        )
        parser.add_argument(
            "--map",
            dest="map_file",
            metavar="FILE",
            help='JSON or YAML: what v3 values become, per vocabulary, e.g. {"task_action": '
            '{"status_check": "status_check_legacy"}, "job_status": {"retrying": "pending"}}.',
        )
        parser.add_argument(
            "--strict",
            action="store_true",
            help="Exit 1 when any row was rejected (the rest is imported all the same).",
        )
        parser.add_argument(
            "--chunk-size",
            type=int,
            default=DEFAULT_CHUNK_SIZE,
            help=f"Rows per transaction in the large tables (default {DEFAULT_CHUNK_SIZE}).",
        )

    def perform(self, *, source, org, dry_run, map_file, strict, chunk_size, **options) -> Result:
        if chunk_size < 1:
            raise CannotRun("--chunk-size must be 1 or more.")
        values = ValueMap(map_file_read(map_file) if map_file else {})
        with LegacySource(source) as legacy:
            legacy.check()
            self.say(
                f"Importing the v3 database at {legacy.where}{' (dry run)' if dry_run else ''}"
            )
            importer = LegacyImport(
                source=legacy, values=values, dry_run=dry_run, chunk_size=chunk_size, progress=True
            )
            try:
                report = importer.run(org)
            except psycopg.Error as exc:
                # What was committed stays, and the next run carries on from there.
                raise CannotRun(
                    f"Reading the v3 database at {legacy.where} failed: {str(exc).strip()}"
                ) from exc
        for line in report.lines():
            self.say(line)
        rejected = report.total("rejected")
        details = {"source": legacy.where, "organizations": org, **report.as_dict()}
        return Result(ok=not (strict and rejected), summary=report.summary(), details=details)
