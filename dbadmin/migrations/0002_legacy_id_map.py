# The legacy import's map (dbadmin.LegacyIdMap): an organization's rows are row-level secured
# like every tenant table; the platform catalogue's (org NULL) are seen by all, as in
# requirement_changelog, and written only by a session acting for no organization (the
# import's catalogue step), never from inside an organization's context.

import django.db.models.deletion
from django.db import migrations, models

from rcm.db.rls import CURRENT_ORG, ORG_RULE, EnableRowLevelSecurity

ORG_OR_PLATFORM = f"org_id IS NULL OR {ORG_RULE}"
ORG_OR_PLATFORM_WITHOUT_ORG = f"{ORG_RULE} OR (org_id IS NULL AND {CURRENT_ORG} IS NULL)"


class Migration(migrations.Migration):
    dependencies = [
        ("dbadmin", "0001_migration_run"),
        ("tenants", "0004_plural_names"),
    ]

    operations = [
        migrations.CreateModel(
            name="LegacyIdMap",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("legacy_table", models.CharField(max_length=63)),
                ("legacy_id", models.TextField()),
                ("target_table", models.CharField(max_length=63)),
                ("target_id", models.TextField()),
                ("row_hash", models.CharField(max_length=32)),
                ("imported_at", models.DateTimeField()),
                (
                    "org",
                    models.ForeignKey(
                        blank=True,
                        db_column="org_id",
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenants.organization",
                    ),
                ),
            ],
            options={
                "verbose_name": "legacy id map entry",
                "verbose_name_plural": "legacy id map entries",
                "db_table": "legacy_id_map",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("org", "legacy_table", "legacy_id", "target_table"),
                        name="legacy_id_map_key",
                        nulls_distinct=False,
                    )
                ],
            },
        ),
        EnableRowLevelSecurity(
            "legacy_id_map", using=ORG_OR_PLATFORM, check=ORG_OR_PLATFORM_WITHOUT_ORG
        ),
    ]
