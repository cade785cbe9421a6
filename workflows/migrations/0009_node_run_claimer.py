"""Who holds a node run's claim (the claiming task and worker node), and the scan a worker
runs at start-up for the attempts its predecessor of the same name left running."""

from django.db import migrations, models

from rcm.db.definer import definer_functions

FUNCTIONS = """
CREATE FUNCTION engine_claims_of_worker(p_worker text)
    RETURNS TABLE (org_id uuid, node_run_id bigint)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT n.org_id, n.id FROM node_run n
         WHERE n.status = 'running' AND n.claim_worker = p_worker AND p_worker <> ''
    $$;
"""


class Migration(migrations.Migration):
    dependencies = [("workflows", "0008_node_run_idempotency_key")]

    operations = [
        migrations.AddField(
            model_name="noderun",
            name="claim_task_id",
            field=models.CharField(blank=True, default="", max_length=255),
        ),
        migrations.AddField(
            model_name="noderun",
            name="claim_worker",
            field=models.CharField(blank=True, default="", max_length=255),
        ),
        definer_functions(
            sql=FUNCTIONS,
            signatures=["engine_claims_of_worker(text)"],
            grants=["SELECT ON node_run"],
        ),
    ]
