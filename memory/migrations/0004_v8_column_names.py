"""The V8 names of micro_state's key and alias: micro_state_id and aliased_to (the ORM's ``id``
and ``aliased_to`` unchanged). Renamed on the partitioned parent, which renames them in every
partition; the composite primary key, the alias's composite foreign key, the indexes and the
self-alias check follow the columns.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("memory", "0003_plural_names"),
    ]

    operations = [
        migrations.AlterField(
            model_name="microstate",
            name="aliased_to",
            field=models.ForeignKey(
                blank=True,
                db_column="aliased_to",
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="memory.microstate",
            ),
        ),
        migrations.AlterField(
            model_name="microstate",
            name="id",
            field=models.BigAutoField(
                db_column="micro_state_id", primary_key=True, serialize=False
            ),
        ),
    ]
