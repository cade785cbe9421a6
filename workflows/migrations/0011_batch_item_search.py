"""Searching a batch's rows in the console: by status in row order, and by substrings of the
member ID and of the patient's name within one job.

pg_trgm gives the trigram operator classes, btree_gin lets the job's id share a GIN index
with them. Both ship with PostgreSQL (contrib) and are *trusted* extensions: the database's
owner role, which runs migrations, may create them without a superuser (unlike ``vector``).
"""

import django.contrib.postgres.indexes
import django.db.models.fields.json
import django.db.models.functions.comparison
import django.db.models.functions.text
from django.contrib.postgres.operations import BtreeGinExtension, TrigramExtension
from django.db import migrations, models

MEMBER_TRGM_SQL = """
CREATE INDEX batch_job_item_member_trgm ON batch_job_item USING gin
    (batch_job_id, (LOWER((input_data ->> 'member_id'))) gin_trgm_ops)
"""
PATIENT_TRGM_SQL = """
CREATE INDEX batch_job_item_patient_trgm ON batch_job_item USING gin
    (batch_job_id,
     (LOWER((COALESCE(COALESCE((input_data ->> 'patient_first_name'), ''), '')
             || COALESCE((COALESCE(' ', '') || COALESCE(COALESCE(
                    (input_data ->> 'patient_last_name'), ''), '')), '')))) gin_trgm_ops)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0003_invitations"),
        ("workflows", "0010_plural_names"),
    ]

    operations = [
        TrigramExtension(),
        BtreeGinExtension(),
        migrations.AddIndex(
            model_name="batchjobitem",
            index=models.Index(
                fields=["batch_job", "status", "row_number"], name="batch_job_item_status_row"
            ),
        ),
        # Django writes an operator class inside the expression's parentheses unless
        # django.contrib.postgres is installed, which the platform does not need otherwise:
        # the SQL is written here, the expressions the same as the queries' (BatchJobItem's
        # member_id_key and patient_name_key), so that the planner matches them.
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(MEMBER_TRGM_SQL, "DROP INDEX batch_job_item_member_trgm"),
                migrations.RunSQL(PATIENT_TRGM_SQL, "DROP INDEX batch_job_item_patient_trgm"),
            ],
            state_operations=[
                migrations.AddIndex(
                    model_name="batchjobitem",
                    index=django.contrib.postgres.indexes.GinIndex(
                        models.F("batch_job"),
                        django.contrib.postgres.indexes.OpClass(
                            django.db.models.functions.text.Lower(
                                django.db.models.fields.json.KeyTextTransform(
                                    "member_id", "input_data"
                                )
                            ),
                            name="gin_trgm_ops",
                        ),
                        name="batch_job_item_member_trgm",
                    ),
                ),
                migrations.AddIndex(
                    model_name="batchjobitem",
                    index=django.contrib.postgres.indexes.GinIndex(
                        models.F("batch_job"),
                        django.contrib.postgres.indexes.OpClass(
                            django.db.models.functions.text.Lower(
                                django.db.models.functions.text.Concat(
                                    django.db.models.functions.comparison.Coalesce(
                                        django.db.models.fields.json.KeyTextTransform(
                                            "patient_first_name", "input_data"
                                        ),
                                        models.Value(""),
                                        output_field=models.TextField(),
                                    ),
                                    models.Value(" "),
                                    django.db.models.functions.comparison.Coalesce(
                                        django.db.models.fields.json.KeyTextTransform(
                                            "patient_last_name", "input_data"
                                        ),
                                        models.Value(""),
                                        output_field=models.TextField(),
                                    ),
                                    output_field=models.TextField(),
                                )
                            ),
                            name="gin_trgm_ops",
                        ),
                        name="batch_job_item_patient_trgm",
                    ),
                ),
            ],
        ),
    ]
