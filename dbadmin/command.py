"""The base of the administrator's migration commands (``rcm_backup``, ``rcm_validate``, …).

They share one contract, because scripts drive them:

- exit code 0 when all went well, 1 when the command ran and found something wrong (a failed
  check, a refused backup), 2 when it could not run at all (no database, a missing tool, bad
  arguments);
- ``--json`` prints one JSON object on stdout and nothing else there (progress bars and
  messages go to stderr), with the same facts the human report shows;
- each run is recorded in ``migration_run`` (kind, started, finished, outcome, details, who),
  which ``rcm_migration_status`` reads.

A subclass implements ``perform(**options)`` and returns a :class:`Result`; it raises
:class:`CannotRun` for exit 2 (or :class:`Failed`, from deep in its work, for exit 1), and
writes its human report through ``self.say``.
"""

from __future__ import annotations

import getpass
import json
import socket
import sys
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, transaction
from django.utils import timezone

from dbadmin.models import MigrationRun

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CANNOT_RUN = 2


class CannotRun(Exception):
    """The command could not do its work (exit 2); the message says why, in words."""


class Failed(Exception):
    """The command ran and found something wrong (exit 1), raised where it was found: the same
    as returning ``Result(ok=False, summary=message, details=details)``."""

    def __init__(self, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.details = details or {}


@dataclass
class Result:
    """What a run found. ``ok`` False means exit 1; ``summary`` is its one-line verdict."""

    ok: bool
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


def _could_not_run(exc: Exception) -> str:
    """Why a command stopped, in words safe to store and print."""
    if isinstance(exc, CommandError):  # a refusal in words already
        return str(exc)
    return database_refusal(exc) or f"Stopped by {type(exc).__name__}: {exc}"


def database_refusal(exc: Exception) -> str | None:
    """A database error in words safe to store and print (None if ``exc`` is none).

    Its full text carries PostgreSQL's DETAIL line, which quotes the row at fault ("Failing
    row contains (…)", "Key (email)=(…) already exists"): patient data. Only its primary
    message, its SQLSTATE and the constraint or table it names are kept.
    """
    # Django wraps the driver's error; the importer and the backups also meet psycopg's own.
    cause = (exc.__cause__ or exc) if isinstance(exc, DatabaseError) else exc
    diag = getattr(cause, "diag", None)
    if diag is not None and diag.message_primary:
        where = diag.constraint_name or diag.table_name
        return (
            f"The database refused: {diag.message_primary} (SQLSTATE {diag.sqlstate}"
            + (f", {where}" if where else "")
            + ")"
        )
    if isinstance(exc, DatabaseError | psycopg.Error):
        return f"The database refused: {str(exc).strip().splitlines()[0]}"
    return None


def run_by() -> str:
    """Who ran the command, as the operating system knows them: ``user@host``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


class MigrationCommand(BaseCommand):
    kind: str  # a MigrationRun.Kind value
    # A command whose work replaces the whole database (a restore) records its run only at the
    # end: a row written at the start would be swept away with the old contents.
    records_at_start = True
    # A command that only reads (rcm_migration_status) leaves no record: it would bury the runs
    # it reports on.
    records_run = True

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print one JSON object on stdout (messages and progress go to stderr).",
        )
        self.add_command_arguments(parser)

    def add_command_arguments(self, parser) -> None:
        """Subclasses add their own options here."""

    def perform(self, **options) -> Result:
        raise NotImplementedError

    # -- output --------------------------------------------------------------------------------

    def say(self, text: str = "", style=None) -> None:
        """A line of the human report: stdout, or stderr under ``--json`` (stdout is the JSON)."""
        stream = self.stderr if self.json_output else self.stdout
        stream.write(style(text) if style else text)

    # -- the run -------------------------------------------------------------------------------

    def handle(self, *args, **options) -> None:
        self.json_output = options["json"]
        started = timezone.now()
        record = self._record_start(started) if self.records_run and self.records_at_start else None
        try:
            result = self.perform(**options)
        except Failed as exc:
            result = Result(ok=False, summary=str(exc), details=exc.details)
        except CannotRun as exc:
            self._finish(record, started, MigrationRun.Outcome.ERROR, str(exc), {})
            self._emit(EXIT_CANNOT_RUN, str(exc), {"error": str(exc)})
            raise CommandError(str(exc), returncode=EXIT_CANNOT_RUN) from exc
        except Exception as exc:  # noqa: BLE001 - whatever stopped it, the contract is exit 2
            if options.get("traceback"):
                raise
            message = _could_not_run(exc)
            self._finish(record, started, MigrationRun.Outcome.ERROR, message, {})
            self._emit(EXIT_CANNOT_RUN, message, {"error": message})
            raise CommandError(message, returncode=EXIT_CANNOT_RUN) from exc
        outcome = MigrationRun.Outcome.OK if result.ok else MigrationRun.Outcome.FAILED
        run_id = self._finish(record, started, outcome, result.summary, result.details)
        exit_code = EXIT_OK if result.ok else EXIT_FAILED
        self._emit(exit_code, result.summary, result.details, run_id=run_id)
        if not result.ok:
            raise CommandError(result.summary, returncode=EXIT_FAILED)

    def _emit(self, exit_code: int, summary: str, details: dict, run_id: int | None = None):
        if self.json_output:
            document = {
                "command": self.kind,
                "outcome": {EXIT_OK: "ok", EXIT_FAILED: "failed"}.get(exit_code, "error"),
                "exit_code": exit_code,
                "summary": summary,
                "run_id": run_id,
                "details": details,
            }
            self.stdout.write(json.dumps(document, cls=DjangoJSONEncoder, sort_keys=True))
        elif exit_code == EXIT_OK:
            self.stdout.write(self.style.SUCCESS(summary))

    # -- the record ----------------------------------------------------------------------------
    # Best-effort on purpose: an empty or half-built database has no migration_run table, and
    # rcm_validate must still be able to say so. A record that cannot be written is reported
    # on stderr and never changes the command's own outcome.

    def _record_start(self, started) -> MigrationRun | None:
        try:
            with transaction.atomic():  # a savepoint: a missing table must not poison the rest
                return MigrationRun.objects.create(
                    kind=self.kind, started_at=started, run_by=run_by()
                )
        except DatabaseError as exc:
            self._unrecorded(exc)
            return None

    def _finish(self, record, started, outcome: str, summary: str, details: dict) -> int | None:
        if not self.records_run:
            return None
        fields = {
            "finished_at": timezone.now(),
            "outcome": outcome,
            "summary": summary,
            "details": details,
        }
        try:
            with transaction.atomic():
                rows = MigrationRun.objects.filter(pk=getattr(record, "pk", None))
                if record is not None and rows.update(**fields):
                    return record.pk
                # Not recorded at the start, or the row went with the database's old contents.
                created = MigrationRun.objects.create(
                    kind=self.kind, started_at=started, run_by=run_by(), **fields
                )
                return created.pk
        except DatabaseError as exc:
            self._unrecorded(exc)
            return None

    def _unrecorded(self, exc: DatabaseError) -> None:
        sys.stderr.write(f"(this run is not recorded in migration_run: {str(exc).strip()})\n")
