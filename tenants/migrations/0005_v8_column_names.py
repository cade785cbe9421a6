"""The V8 names of the portal tables' keys (V8_CONTRACT.md): channel_type.channel_type_id and
endpoint.endpoint_id, renamed in place (every row, the identity sequences, the foreign keys
pointing here and the policies follow the column). The ORM still calls both ``id``.

The feeder's function batch_endpoint_room() names endpoint's key in its body; workflows 0014
writes it again with the new name.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0004_plural_names"),
    ]

    operations = [
        migrations.AlterField(
            model_name="channeltype",
            name="id",
            field=models.BigAutoField(
                db_column="channel_type_id", primary_key=True, serialize=False
            ),
        ),
        migrations.AlterField(
            model_name="endpoint",
            name="id",
            field=models.BigAutoField(db_column="endpoint_id", primary_key=True, serialize=False),
        ),
    ]
