"""``audit_verify``: recompute the audit hash chain and name the first event that breaks it.

The check runs inside the database (``audit_event_verify``, a SECURITY DEFINER function), so
it covers every organization's events while the runtime role itself still sees none of them.
"""

from django.core.management.base import BaseCommand, CommandError

from tenants.services import audit_chain_verify


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain; exits non-zero at the first tampered event."

    def handle(self, *args, **options):
        checked, first_bad_id = audit_chain_verify()
        if first_bad_id is not None:
            # An id past the last good row (or 0 for an emptied trail) means rows were removed
            # from the end: the chain stops short of the head the database recorded.
            raise CommandError(
                f"Audit chain broken at event id {first_bad_id} "
                f"(events verified before it: {checked})."
            )
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {checked} events verified."))
