"""``rcm_migration_status``: where this database stands.

Applied and pending migrations per app, migrations the database has and this code does not,
the last backup (file, size, checksum, verified, still on disk), the last validation and what
failed, the last import and its counts, and the last restore, rollback and seed.

Exit 0 when the database is at this code's schema, 1 when migrations are pending or the
database holds migrations this code does not know (``migrate`` or a matching release first),
2 when the database cannot be reached.
"""

from django.db import OperationalError, connection
from django.utils.dateparse import parse_datetime

from dbadmin.command import CannotRun, MigrationCommand, Result
from dbadmin.legacy.report import OUTCOMES
from dbadmin.models import MigrationRun
from dbadmin.status import AppMigrations, backup_file_state, last_runs, migrations_per_app

IMPORT_COUNTS = ("read", *OUTCOMES)


class Command(MigrationCommand):
    help = (
        "Say where this database stands: migrations per app, the last backup, validation, "
        "import, restore, rollback and seed. Exit 1 when it is not at this code's schema."
    )
    kind = "status"
    records_run = False

    def perform(self, **options) -> Result:
        try:
            connection.ensure_connection()
        except OperationalError as exc:
            raise CannotRun(f"The database does not answer: {str(exc).strip()}") from exc
        apps = migrations_per_app()
        runs = last_runs()
        pending = sum(len(app.pending) for app in apps)
        unknown = sum(len(app.unknown) for app in apps)
        self._say_migrations(apps)
        self._say_runs(runs)
        details = {
            "database": connection.settings_dict["NAME"],
            "migrations": [vars(app) for app in apps],
            "pending": pending,
            "unknown": unknown,
            "last_runs": {kind: _run_facts(run) for kind, run in runs.items()},
        }
        if unknown:
            summary = (
                f"The database has {unknown} migration(s) this code does not know: it is newer "
                "than this release."
            )
        elif pending:
            summary = f"{pending} migration(s) pending: run `manage.py migrate`."
        else:
            summary = "The database is at this code's schema: no migration pending."
        return Result(ok=not (pending or unknown), summary=summary, details=details)

    def _say_migrations(self, apps: list[AppMigrations]) -> None:
        self.say("Migrations")
        width = max((len(app.app) for app in apps), default=0)
        for app in apps:
            state = "up to date" if not app.pending else f"{len(app.pending)} pending"
            last = f"last {app.last_applied} ({_when(app.last_applied_at)})"
            if app.last_applied is None:
                last = "none applied"
            self.say(f"  {app.app:<{width}}  {app.applied:>3} applied, {state:<11} {last}")
            for name in app.pending:
                self.say(f"  {'':<{width}}    pending: {name}")
            for name in app.unknown:
                self.say(self.style.WARNING(f"  {'':<{width}}    not in this code: {name}"))

    def _say_runs(self, runs: dict[str, MigrationRun | None]) -> None:
        self.say("")
        self.say("Last runs")
        for kind, run in runs.items():
            label = MigrationRun.Kind(kind).label
            if run is None:
                self.say(f"  {label:<14} never")
                continue
            self.say(
                f"  {label:<14} {_when(run.started_at.isoformat())}  {run.outcome:<7} "
                f"by {run.run_by}: {run.summary or '(no summary)'}"
            )
            for line in _run_lines(kind, run):
                self.say(f"  {'':<14}   {line}")


def _run_facts(run: MigrationRun | None) -> dict | None:
    if run is None:
        return None
    facts = {
        "id": run.pk,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "outcome": run.outcome,
        "run_by": run.run_by,
        "summary": run.summary,
        "details": run.details,
    }
    if run.kind == MigrationRun.Kind.BACKUP:
        facts["file_state"] = backup_file_state(run.details)
    return facts


def _run_lines(kind: str, run: MigrationRun) -> list[str]:
    """The facts worth a line under a run: the backup's file, the failed checks, the counts."""
    details = run.details or {}
    if kind == MigrationRun.Kind.BACKUP:
        size = details.get("size_bytes")
        return [
            f"file {details.get('file', '?')} ({backup_file_state(details)})",
            f"{size:,} bytes, sha256 {details.get('sha256', '?')}"
            if isinstance(size, int)
            else f"sha256 {details.get('sha256', '?')}",
            "verified by a restore" if details.get("verified") else "not verified by a restore",
        ]
    if kind == MigrationRun.Kind.VALIDATE:
        failed = [check for check in details.get("checks", []) if not check.get("ok")]
        return [f"failed: {check.get('id')}" for check in failed]
    if kind == MigrationRun.Kind.IMPORT_LEGACY:
        # rcm_import_legacy's report: one entry per v3 table -> V8 table, and the totals.
        totals = details.get("totals", {})
        lines = [f"{row['path']}: " + _counts(row) for row in details.get("tables", [])]
        return lines + ([f"in all: {_counts(totals)}"] if totals else [])
    return []


def _counts(counts: dict) -> str:
    return ", ".join(f"{key} {counts[key]:,}" for key in IMPORT_COUNTS if counts.get(key))


def _when(stamp: str | None) -> str:
    moment = parse_datetime(stamp) if stamp else None
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "?"
