"""The V8 column names (V8_CONTRACT.md): primary keys and a few foreign keys renamed in place,
the ORM's field names unchanged (``db_column``). Renames keep every row; the sequences of the
identity keys belong to their columns and follow them, as do indexes, constraints, policies
and generated columns (PostgreSQL keeps those by column number).

The feeder's SECURITY DEFINER functions (0007) are different: a function body is text, read
when it is called, so they are written again here with the new names (``CREATE OR REPLACE``
keeps their owner, the definer role, and their grants). ``batch_endpoint_room`` reads
``endpoint``, renamed by tenants 0005, hence the dependency.

Django drops and re-adds the foreign-key constraints of the renamed foreign keys (created_by,
alias_of, from_node, to_node), which validates them again: a scan of batch_job, task_signature
and workflow_transition, all small (a row per job, per signature, per edge).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

FEEDER_FUNCTIONS = """
CREATE OR REPLACE FUNCTION batch_feed_candidates()
    RETURNS TABLE (org_id uuid, job_id bigint, endpoint_id bigint, free_in_job integer,
                   last_fed_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT j.org_id, j.{batch_job_id}, j.endpoint_id,
               (j.max_concurrency - j.running_rows)::integer, j.last_fed_at
          FROM batch_job j
         WHERE j.pending_rows > 0 AND NOT j.cancel_requested
           AND j.running_rows < j.max_concurrency
    $$;

CREATE OR REPLACE FUNCTION batch_endpoint_room() RETURNS TABLE (endpoint_id bigint, room integer)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT e.{endpoint_id},
               greatest(coalesce((e.config->>'max_concurrency')::integer, 4)
                        - coalesce(sum(j.running_rows), 0), 0)::integer
          FROM endpoint e JOIN batch_job j ON j.endpoint_id = e.{endpoint_id}
         WHERE j.pending_rows > 0 OR j.running_rows > 0
         GROUP BY e.{endpoint_id}, e.config
    $$;
"""
# Undone, the old bodies are written before their columns get the old names back (endpoint's
# only when tenants 0005 is undone, after this), so they are not checked against the tables.
OLD_FEEDER_FUNCTIONS = "SET LOCAL check_function_bodies = off;" + FEEDER_FUNCTIONS.format(
    batch_job_id="id", endpoint_id="id"
)


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0005_v8_column_names"),
        ("workflows", "0013_batch_job_speed"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="batchjob",
            name="created_by",
            field=models.ForeignKey(
                db_column="created_by",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="batchjob",
            name="id",
            field=models.BigAutoField(db_column="batch_job_id", primary_key=True, serialize=False),
        ),
        migrations.AlterField(
            model_name="batchjobitem",
            name="id",
            field=models.BigAutoField(
                db_column="batch_job_item_id", primary_key=True, serialize=False
            ),
        ),
        migrations.AlterField(
            model_name="fieldrequirement",
            name="validation",
            field=models.JSONField(blank=True, db_column="validation_rules", default=dict),
        ),
        migrations.AlterField(
            model_name="tasksignature",
            name="alias_of",
            field=models.ForeignKey(
                blank=True,
                db_column="alias_of",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="aliases",
                to="workflows.tasksignature",
            ),
        ),
        migrations.AlterField(
            model_name="tasksignature",
            name="id",
            field=models.BigAutoField(db_column="signature_id", primary_key=True, serialize=False),
        ),
        migrations.AlterField(
            model_name="workflownode",
            name="id",
            field=models.BigAutoField(db_column="node_id", primary_key=True, serialize=False),
        ),
        migrations.AlterField(
            model_name="workflowtrace",
            name="id",
            field=models.BigAutoField(db_column="trace_id", primary_key=True, serialize=False),
        ),
        migrations.AlterField(
            model_name="workflowtransition",
            name="from_node",
            field=models.ForeignKey(
                db_column="from_node",
                on_delete=django.db.models.deletion.CASCADE,
                related_name="outgoing",
                to="workflows.workflownode",
            ),
        ),
        migrations.AlterField(
            model_name="workflowtransition",
            name="to_node",
            field=models.ForeignKey(
                db_column="to_node",
                on_delete=django.db.models.deletion.CASCADE,
                related_name="incoming",
                to="workflows.workflownode",
            ),
        ),
        migrations.RunSQL(
            FEEDER_FUNCTIONS.format(batch_job_id="batch_job_id", endpoint_id="endpoint_id"),
            OLD_FEEDER_FUNCTIONS,
        ),
    ]
