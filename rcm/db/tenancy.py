"""The fail-closed manager every tenant-owned model uses.

``Model.objects`` filters by the organization in ``rcm.context`` and raises
``NoOrganizationContext`` when none is set, so a forgotten context is a loud bug rather than an
empty page. ``Model.objects.unscoped()`` is the named way out, for the rare code that must look
across organizations; row-level security still applies underneath it.
"""

from django.db import models

from rcm.context import require_org_id


class TenantManager(models.Manager):
    def __init__(self, org_field: str = "org_id"):
        super().__init__()
        self.org_field = org_field

    def get_queryset(self):
        return self.scope(super().get_queryset(), require_org_id())

    def scope(self, queryset, org_id):
        return queryset.filter(**{self.org_field: org_id})

    def unscoped(self):
        return super().get_queryset()


class TenantModel(models.Model):
    """A row owned by one organization: carries ``org_id`` itself and is scoped by default."""

    org = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, db_column="org_id", related_name="+"
    )

    objects = TenantManager()

    class Meta:
        abstract = True
