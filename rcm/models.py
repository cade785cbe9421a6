"""Kernel tables: the idempotency keys of creating POSTs."""

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from rcm.db.tenancy import TenantModel


class IdempotencyKey(TenantModel):
    """One ``Idempotency-Key`` a caller sent on a POST, with the response it got.

    Written in the same transaction as the request's own effect, so a key exists exactly when
    that effect was committed: a failed request leaves no key and can be retried as is.
    """

    key = models.CharField(max_length=255)
    user_id = models.UUIDField()
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    request_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "idempotency_key"
        constraints = [
            models.UniqueConstraint(
                fields=["org", "user_id", "key"], name="idempotency_key_unique_per_caller"
            )
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_key_created_idx")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}]"
