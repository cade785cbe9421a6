"""The record of the database administration commands' runs."""

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class MigrationRun(models.Model):
    """One run of an administrator's migration command (backup, restore, rollback, validate,
    import, seed): what it was, when, how it ended and what it found.

    Platform-wide, not a tenant table: it describes the database itself, which is why it carries
    no ``org_id``. ``details`` holds the command's whole report (the backup's file and checksum,
    the failed checks, the import counts), so ``rcm_migration_status`` can answer from it alone.
    """

    class Kind(models.TextChoices):
        BACKUP = "backup"
        RESTORE = "restore"
        ROLLBACK = "rollback"
        VALIDATE = "validate"
        IMPORT_LEGACY = "import_legacy"
        SEED = "seed"

    class Outcome(models.TextChoices):
        RUNNING = "running"  # started and not finished: still going, or its process died
        OK = "ok"
        FAILED = "failed"  # ran to the end and found something wrong (exit 1)
        ERROR = "error"  # could not run (exit 2)

    id = models.BigAutoField(primary_key=True, db_column="migration_run_id")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.RUNNING)
    summary = models.TextField(blank=True, help_text="The run's one-line verdict, as printed.")
    details = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    run_by = models.CharField(max_length=200, help_text="The operating-system user and host.")

    class Meta:
        db_table = "migration_run"
        indexes = [models.Index(fields=["kind", "-started_at"], name="migration_run_kind_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.started_at:%Y-%m-%d %H:%M} {self.outcome}"
