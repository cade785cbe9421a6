"""The reaper's cross-organization scans, as SECURITY DEFINER functions.

The reaper (beat) looks for work that stalled in any organization: attempts whose lease ran
out (their worker died), ready node runs whose message never arrived, runs past their deadline.
It finds them here, then handles each inside that organization's own context.
"""

from django.db import migrations

from rcm.db.definer import definer_functions

FUNCTIONS = """
CREATE FUNCTION engine_stalled_work(p_now timestamptz, p_ready_before timestamptz,
                                    p_limit integer)
    RETURNS TABLE (what text, org_id uuid, item_id bigint)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        (SELECT 'lease', n.org_id, n.id FROM node_run n
          WHERE n.status = 'running' AND n.lease_until < p_now
          ORDER BY n.lease_until LIMIT p_limit)
        UNION ALL
        (SELECT 'ready', n.org_id, n.id FROM node_run n
          WHERE n.status = 'ready' AND coalesce(n.not_before, n.updated_at) < p_ready_before
          ORDER BY coalesce(n.not_before, n.updated_at) LIMIT p_limit)
        UNION ALL
        (SELECT 'deadline', r.org_id, r.id FROM workflow_run r
          WHERE r.status IN ('pending', 'running') AND r.deadline_at < p_now
          ORDER BY r.deadline_at LIMIT p_limit)
    $$;
"""


class Migration(migrations.Migration):
    dependencies = [("workflows", "0004_seed_catalog")]

    operations = [
        definer_functions(
            sql=FUNCTIONS,
            signatures=["engine_stalled_work(timestamptz, timestamptz, integer)"],
            grants=["SELECT ON node_run, workflow_run"],
        )
    ]
