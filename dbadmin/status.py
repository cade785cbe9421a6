"""Where a database stands: its migrations per app and the last run of each migration command.

Read by ``rcm_migration_status``. Everything here reads; nothing writes. It answers on a
database at any stage, an empty one included: a missing ``django_migrations`` table means
nothing is applied, a missing ``migration_run`` table means no command has run yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from django.db import DatabaseError, connection, transaction
from django.db.migrations.loader import MigrationLoader

from dbadmin.models import MigrationRun


@dataclass
class AppMigrations:
    app: str
    applied: int = 0
    pending: list[str] = field(default_factory=list)
    # Recorded as applied here but absent from this code: the database is newer than the code
    # (restored from a later release, or the code was rolled back without it).
    unknown: list[str] = field(default_factory=list)
    last_applied: str | None = None  # the newest applied migration's name
    last_applied_at: str | None = None


def migrations_per_app() -> list[AppMigrations]:
    """Each app's migrations on disk against those recorded as applied in this database (none,
    when it has no django_migrations table yet)."""
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    applied = loader.applied_migrations  # (app, name) -> its django_migrations row
    apps: dict[str, AppMigrations] = {}
    for app_label, name in _plan(loader):
        row = apps.setdefault(app_label, AppMigrations(app=app_label))
        if (app_label, name) in applied:
            row.applied += 1
            row.last_applied = name
            row.last_applied_at = applied[(app_label, name)].applied.isoformat()
        else:
            row.pending.append(name)
    for app_label, name in sorted(set(applied) - set(loader.graph.nodes)):
        apps.setdefault(app_label, AppMigrations(app=app_label)).unknown.append(name)
    return sorted(apps.values(), key=lambda row: row.app)


def _plan(loader: MigrationLoader) -> list[tuple[str, str]]:
    """Every migration on disk once, in the order ``migrate`` applies them (so an app's last
    applied one is its newest)."""
    plan: dict[tuple[str, str], None] = {}
    for leaf in sorted(loader.graph.leaf_nodes()):
        plan.update(dict.fromkeys(loader.graph.forwards_plan(leaf)))
    return list(plan)


def last_runs() -> dict[str, MigrationRun | None]:
    """The newest run of each migration command (None: never run, or no migration_run table).

    A backup is reported by its newest successful run: a failed backup made no file to go
    back to, which is what the administrator asks about. The others by their newest run,
    whatever its outcome: a failed validation is exactly what must be seen.
    """
    runs: dict[str, MigrationRun | None] = {}
    for kind in MigrationRun.Kind.values:
        rows = MigrationRun.objects.filter(kind=kind)
        if kind == MigrationRun.Kind.BACKUP:
            rows = rows.filter(outcome=MigrationRun.Outcome.OK)
        try:
            with transaction.atomic():
                runs[kind] = rows.order_by("-started_at", "-pk").first()
        except DatabaseError:  # no migration_run table yet
            runs[kind] = None
    return runs


def backup_file_state(details: dict) -> str:
    """Whether the backup a run made is still where it wrote it (a run's record outlives the
    file: backups get moved off the machine, or purged)."""
    path = details.get("file")
    if not path:
        return "unknown"
    return "present" if Path(path).is_file() else "missing"
