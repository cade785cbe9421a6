"""``rcm_rollback --to-backup FILE [--yes] [--force]``: back to a backup, the present kept."""

import time
from pathlib import Path

from dbadmin import backups
from dbadmin.command import Failed, MigrationCommand, Result
from dbadmin.models import MigrationRun


class Command(MigrationCommand):
    help = (
        "Return the platform database to a backup, keeping the present: the target is checked "
        "(manifest, sha256, pg_restore's listing) and restored into a scratch database first; "
        "then a safety backup of the current database is taken and proven the same way; only "
        "then is the target restored, in one transaction. Any failure before that leaves the "
        "database untouched. Stop the web server, workers and beat first."
    )
    kind = MigrationRun.Kind.ROLLBACK
    records_at_start = False  # the restore replaces migration_run with the backup's

    def add_command_arguments(self, parser) -> None:
        parser.add_argument(
            "--to-backup", type=Path, required=True, help="The backup to return to."
        )
        backups.refusal_arguments(parser)

    def perform(self, *, to_backup: Path, yes: bool, force: bool, **options) -> Result:
        started = time.monotonic()
        restore = backups.Restore.prepare(to_backup, force=force, yes=yes)
        server, tools = restore.server, restore.tools
        self.say(f"{to_backup} matches its manifest; restoring it into a scratch database.")
        try:
            backups.verify_restore(archive=restore.archive, server=server, tools=tools)
        except Failed as exc:
            raise Failed(
                f"{exc} Nothing was changed: no safety backup was taken and the database is "
                "as it was.",
                exc.details,
            ) from exc
        safety_path = backups.default_path(server.database, "-before-rollback")
        self.say(f"The target restores. Safety backup of {server.database}: {safety_path}")
        try:
            safety = backups.backup_make(path=safety_path, server=server, tools=tools, verify=True)
        except Failed as exc:
            raise Failed(
                "The safety backup failed its proof, so nothing was restored and the database "
                f"is as it was: {exc}",
                {"file": str(to_backup), "safety_backup": exc.details},
            ) from exc
        self.say("The safety backup is proven. Restoring the target.")
        both = {
            "target": restore.archive.manifest.summary(to_backup),
            "safety_backup": safety.summary(safety_path),
        }
        try:
            result = restore.run()
        except Failed as exc:
            raise Failed(str(exc), {**exc.details, **both}) from exc
        result.summary += f" The state before the rollback: {safety_path}"
        result.details.update(both, seconds=round(time.monotonic() - started, 2))
        return result
