"""rows_copy: many rows through COPY, still bound by row-level security."""

import pytest
from django.db import DatabaseError, transaction
from django.utils import timezone

from rcm.context import org_context
from rcm.db.bulk import rows_copy
from tenants.models import ChannelType, Endpoint

FIELDS = ("org_id", "name", "channel_type_id", "base_url", "config", "created_at", "updated_at")


def endpoint_row(org_id, name: str, channel_type: ChannelType, created_at) -> tuple:
    return (org_id, name, channel_type.pk, "", {"max_concurrency": 2}, created_at, created_at)


@pytest.mark.django_db
def test_rows_are_inserted_with_their_own_times_and_json(org_a):
    channels = list(ChannelType.objects.order_by("code")[:2])
    long_ago = timezone.now().replace(year=2020)

    with org_context(org_a.id), transaction.atomic():
        inserted = rows_copy(
            Endpoint,
            FIELDS,
            [endpoint_row(org_a.id, f"Portal {n}", ch, long_ago) for n, ch in enumerate(channels)],
            returning=("name", "id"),
        )
        stored = list(Endpoint.objects.order_by("name").values_list("name", "config", "created_at"))

    assert sorted(name for name, _ in inserted) == ["Portal 0", "Portal 1"]
    assert stored == [
        ("Portal 0", {"max_concurrency": 2}, long_ago),
        ("Portal 1", {"max_concurrency": 2}, long_ago),
    ]


@pytest.mark.django_db
def test_a_row_of_another_organization_is_refused_by_row_level_security(org_a, org_b):
    channel = ChannelType.objects.first()
    row = endpoint_row(org_b.id, "Elsewhere", channel, timezone.now())

    refused = pytest.raises(DatabaseError, match="row-level security")
    with org_context(org_a.id), refused, transaction.atomic():
        rows_copy(Endpoint, FIELDS, [row])


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_it_refuses_before_touching_anything(org_a):
    with org_context(org_a.id), pytest.raises(RuntimeError, match="inside transaction.atomic"):
        rows_copy(Endpoint, FIELDS, [])
