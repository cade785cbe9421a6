"""An index for the search's exact read (memory.selectors.exact_settings): it runs when the
HNSW walk found fewer than k states, and reads the organization's live states of one embedder.
Without it the read went through the organization's btree to every state it has, so a search
with an embedder the organization has no states of (a caller's own vector where the server
embeds, or the reverse) read the whole organization."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("memory", "0004_v8_column_names"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX micro_state_live_embedder ON micro_state (org_id, embedder) "
            "WHERE is_retired = false",
            "DROP INDEX micro_state_live_embedder",
        ),
    ]
