"""Optional list filters: the lookups a caller gave, and none of the ones it left out."""

from django.db.models import QuerySet


def filter_given(queryset: QuerySet, **lookups) -> QuerySet:
    """``queryset`` filtered by every lookup whose value is not None or empty."""
    given = {name: value for name, value in lookups.items() if value not in (None, "")}
    return queryset.filter(**given) if given else queryset
