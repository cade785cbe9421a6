"""``rcm_validate``: check the live database against the code and the V8 contract.

    manage.py rcm_validate [--json] [--database-url postgres://owner:…@host/restored_copy]

Runs every check of dbadmin/validation.py and names each one that fails with its problems in
words. Exit 0 when all pass, 1 when any fails, 2 when the database cannot be reached.
"""

from django.db import OperationalError

from dbadmin import validation
from dbadmin.command import CannotRun, MigrationCommand, Result
from dbadmin.models import MigrationRun
from rcm.progress import ProgressBar


class Command(MigrationCommand):
    help = (
        "Check the database against what the code expects and the V8 contract (extensions, "
        "tables, columns, keys, indexes, lookups, views, row-level security, roles, orphans, "
        "embeddings, migrations, the audit chain)."
    )
    kind = MigrationRun.Kind.VALIDATE

    def add_command_arguments(self, parser) -> None:
        parser.add_argument(
            "--database-url",
            help="Validate the database at this URL instead of the configured one (a restored "
            "copy). Its role reads across organizations only if it may take the maintenance "
            "role (the owner's may); otherwise the report says what it could not see.",
        )

    def perform(self, *, database_url=None, **options) -> Result:
        try:
            target = validation.url_settings(database_url) if database_url else None
        except ValueError as exc:
            raise CannotRun(str(exc)) from exc
        with validation.database(target) as db:
            where = db.describe()
            try:
                db.connection.ensure_connection()
            except OperationalError as exc:
                raise CannotRun(f"Cannot connect to {where}: {str(exc).strip()}") from exc
            results = [
                validation.run_check(db, check)
                for check in ProgressBar.over(validation.CHECKS, "rcm_validate", stream=self.stderr)
            ]
        self._report(where, results)
        failed = [result.id for result in results if not result.ok]
        summary = (
            f"{len(results) - len(failed)} of {len(results)} checks passed; failed: "
            f"{', '.join(failed)}"
            if failed
            else f"All {len(results)} checks passed."
        )
        details = {
            "database": where,
            "failed": failed,
            "checks": [result.as_dict() for result in results],
        }
        return Result(ok=not failed, summary=summary, details=details)

    def _report(self, where: str, results: list[validation.CheckResult]) -> None:
        self.say(f"Validating {where}")
        for result in results:
            mark, style = ("✓", self.style.SUCCESS) if result.ok else ("✗", self.style.ERROR)
            self.say(f"{mark} {result.id}: {result.title}", style)
            for problem in result.problems:
                self.say(f"    {problem}")
            for note in result.notes:
                self.say(f"    note: {note}")
