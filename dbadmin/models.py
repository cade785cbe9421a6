"""The record of the database administration commands' runs, and the legacy import's map."""

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q

from rcm.db.tenancy import TenantManager


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


class LegacyIdMapManager(TenantManager):
    """The current organization's entries and the platform's (org NULL), as the RLS policy
    says: the platform catalogue a legacy database brings (portal types, task types, field
    requirements for every portal) belongs to no organization."""

    def scope(self, queryset, org_id):
        return queryset.filter(Q(org_id=org_id) | Q(org_id__isnull=True))


class LegacyIdMap(models.Model):
    """One row of a legacy (v3) database and the V8 row ``rcm_import_legacy`` made of it.

    ``row_hash`` is a keyed digest of the source row and of what the import resolved for it
    (lookup values, the V8 rows it references): a second import skips a row whose digest is
    unchanged and updates one whose digest changed, so running it again changes nothing. The
    digest is keyed (dbadmin/legacy/idmap.py) because a source row may hold secrets in clear
    (credentials left in an endpoint's config), and a plain hash of it would let anyone who
    reads this table test guesses of them.

    ``legacy_id`` is the source's key as text (a UUID, a serial, or for rows keyed by several
    columns those columns joined); one legacy row may make rows in several tables (a state is
    a workflow node and a micro-state), hence ``target_table`` in the key.
    """

    org = models.ForeignKey(
        "tenants.Organization",
        on_delete=models.CASCADE,
        db_column="org_id",
        null=True,
        blank=True,
        related_name="+",
    )
    legacy_table = models.CharField(max_length=63)
    legacy_id = models.TextField()
    target_table = models.CharField(max_length=63)
    target_id = models.TextField()
    row_hash = models.CharField(max_length=32)
    imported_at = models.DateTimeField()

    objects = LegacyIdMapManager()

    class Meta:
        db_table = "legacy_id_map"
        verbose_name = "legacy id map entry"
        verbose_name_plural = "legacy id map entries"
        constraints = [
            models.UniqueConstraint(
                fields=["org", "legacy_table", "legacy_id", "target_table"],
                name="legacy_id_map_key",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.legacy_table} {self.legacy_id} -> {self.target_table} {self.target_id}"
