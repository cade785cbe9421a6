"""``rcm_backup [--output FILE] [--verify-restore]``: a proven backup of the platform database."""

import time
from pathlib import Path

from dbadmin import backups
from dbadmin.command import MigrationCommand, Result
from dbadmin.models import MigrationRun


class Command(MigrationCommand):
    help = (
        "Dump the platform database (pg_dump custom format, every organization's rows), write "
        "FILE.manifest.json beside it, and prove the file: pg_restore must list every table's "
        "data; with --verify-restore it must also restore into a scratch database with the "
        "manifest's row counts. Exit 0 only for a proven backup."
    )
    kind = MigrationRun.Kind.BACKUP
    # Recorded at the end: a row written at the start would be in the dump, and every restore
    # of it would show a backup that never finished.
    records_at_start = False

    def add_command_arguments(self, parser) -> None:
        parser.add_argument(
            "--output",
            type=Path,
            help="The backup file to create (default: a new file in BACKUP_DIR named by the "
            "UTC time). An existing file is never overwritten.",
        )
        parser.add_argument(
            "--verify-restore",
            action="store_true",
            help="Also restore the backup into a scratch database, compare its row counts with "
            "the manifest's, and drop it.",
        )

    def perform(self, *, output: Path | None, verify_restore: bool, **options) -> Result:
        started = time.monotonic()
        server = backups.owner_server()
        tools = backups.tools_find(server)
        path = output or backups.default_path(server.database)
        self.say(f"Backing up {server.database} to {path} ({tools.version})")
        manifest = backups.backup_make(path=path, server=server, tools=tools, verify=verify_restore)
        details = {**manifest.summary(path), "seconds": round(time.monotonic() - started, 2)}
        self.say(
            f"{manifest.contents}, {manifest.size_bytes} bytes, sha256 {manifest.sha256}; "
            "pg_restore lists every table's data."
        )
        if verify_restore:
            self.say(
                "Restored into a scratch database (dropped since): row counts as in the manifest."
            )
        return Result(ok=True, summary=f"Backup written and proven: {path}", details=details)
