"""``rcm_restore --backup FILE [--yes] [--force]``: the platform database replaced by a backup."""

import time
from pathlib import Path

from dbadmin import backups
from dbadmin.command import MigrationCommand, Result
from dbadmin.models import MigrationRun


class Command(MigrationCommand):
    help = (
        "Replace the platform database with a backup made by rcm_backup, in one transaction: "
        "the file is checked against its manifest first (size, sha256, pg_restore's listing), "
        "and a restore that fails or restores other row counts than the manifest's changes "
        "nothing. Stop the web server, workers and beat first."
    )
    kind = MigrationRun.Kind.RESTORE
    records_at_start = False  # the restore replaces migration_run with the backup's

    def add_command_arguments(self, parser) -> None:
        parser.add_argument("--backup", type=Path, required=True, help="The backup file.")
        backups.refusal_arguments(parser)

    def perform(self, *, backup: Path, yes: bool, force: bool, **options) -> Result:
        started = time.monotonic()
        restore = backups.Restore.prepare(backup, force=force, yes=yes)
        manifest = restore.archive.manifest
        self.say(
            f"{backup} matches its manifest: {manifest.database} as of {manifest.created_at}, "
            f"{manifest.contents}. Restoring."
        )
        result = restore.run()
        result.details.update(
            manifest.summary(backup), seconds=round(time.monotonic() - started, 2)
        )
        return result
