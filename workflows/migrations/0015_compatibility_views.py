"""The v3-era shapes over the new tables (V8_CONTRACT.md): ``rcm_user`` over app_user and
``rcm_trace`` over workflow_trace, with their columns in the contract's order.

``security_invoker``: the tables' privileges and row-level security are checked as the role
reading the view, not as the view's owner, so a view shows no more than its tables would
(DESIGN §4). A trace's ``portal_id`` is the channel type code of its first
endpoint, first as recorded (the lowest workflow_trace_endpoint id); NULL when it has none.

The runtime role reads them through the grants every migrate gives (rcm/db/roles.py), and
may not write through them: rcm_user would otherwise be an updatable view of app_user.
"""

from django.db import migrations

VIEWS = """
CREATE VIEW rcm_user WITH (security_invoker = true) AS
SELECT u.user_id AS id, u.email, u.full_name, u.role, u.is_active,
       NULL::text AS api_key_ssm_parameter_name, u.created_at, u.updated_at, u.last_login_at
  FROM app_user u;

CREATE VIEW rcm_trace WITH (security_invoker = true) AS
SELECT t.trace_id AS id, t.batch_job_item_id,
       (SELECT c.code
          FROM workflow_trace_endpoint te
          JOIN endpoint e ON e.endpoint_id = te.endpoint_id
          JOIN channel_type c ON c.channel_type_id = e.channel_type_id
         WHERE te.trace_id = t.trace_id
         ORDER BY te.id
         LIMIT 1) AS portal_id,
       t.action_type, t.action_detail, t.success, t.duration_ms, t.error_detail, t.llm_prompt,
       t.llm_response, t.llm_model, t.llm_tokens_used, t.created_at, t.user_id, t.session_id
  FROM workflow_trace t;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0005_v8_column_names"),
        ("workflows", "0014_v8_column_names"),
    ]

    operations = [
        migrations.RunSQL(VIEWS, "DROP VIEW rcm_trace; DROP VIEW rcm_user;"),
    ]
