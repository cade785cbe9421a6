"""The step of an action list a state was met at (``step_key``), and the index the web agent's
search of one step's states reads: a step holds a handful of live states (its page, and that
page after a redesign), found exactly by their scope rather than through the HNSW graph."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("memory", "0001_micro_state"),
    ]

    operations = [
        migrations.AddField(
            model_name="microstate",
            name="step_key",
            field=models.CharField(blank=True, default="", max_length=200),
        ),
        migrations.RunSQL(
            "CREATE INDEX micro_state_scope_step ON micro_state "
            "(org_id, endpoint_id, step_key, workflow_id, node_id) WHERE is_retired = false",
            "DROP INDEX micro_state_scope_step",
        ),
    ]
