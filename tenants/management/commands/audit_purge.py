"""``audit_purge``: delete audit events older than AUDIT_RETENTION_DAYS.

The purge runs through ``audit_event_purge`` in the database, which moves the chain's anchor to
the last deleted event so that ``audit_verify`` still passes on what remains. Safe to repeat:
a no-op when nothing is old enough.
"""

from django.conf import settings
from django.core.management.base import BaseCommand

from tenants.services import audit_event_purge


class Command(BaseCommand):
    help = "Delete audit events older than the retention period (AUDIT_RETENTION_DAYS)."

    def handle(self, *args, **options):
        deleted = audit_event_purge()
        self.stdout.write(
            f"Purged {deleted} audit events older than {settings.AUDIT_RETENTION_DAYS} days."
        )
