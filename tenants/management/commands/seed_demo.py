"""``seed_demo``: the demo organization with one login per role and one portal endpoint.

Idempotent: what exists is left alone. Passwords are random and printed once, when their user
is created; they are stored nowhere else, so a second run has nothing secret to show.
``make run`` seeds through ``rcm_seed --profile demo``, which makes this organization the same
way (tenants/demo.py) and fills the demo with more.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from rcm.errors import Conflict
from tenants.demo import (
    DEMO_BILLING,
    DEMO_CHANNEL_CODE,
    DEMO_ENDPOINT_NAME,
    DEMO_ORG_NAME,
    LOGINS_HEADER,
    demo_endpoint_ensure,
    demo_organization_ensure,
    login_lines,
)


class Command(BaseCommand):
    help = "Create the demo organization, one user per role and a UHC endpoint (idempotent)."

    def handle(self, *args, **options):
        try:
            with transaction.atomic():
                seeded = demo_organization_ensure(demo=DEMO_BILLING)
                endpoint_created = demo_endpoint_ensure(org_id=seeded.org_id)
        except Conflict as exc:
            raise CommandError(exc.message) from exc
        if not (seeded.org_created or seeded.logins or endpoint_created):
            self.stdout.write(f"Demo data present ({DEMO_ORG_NAME}); nothing created.")
            return
        if seeded.org_created:
            self.stdout.write(self.style.SUCCESS(f"Created the organization {DEMO_ORG_NAME!r}."))
        if endpoint_created:
            self.stdout.write(f"Created its endpoint {DEMO_ENDPOINT_NAME!r} ({DEMO_CHANNEL_CODE}).")
        if seeded.logins:
            self.stdout.write(self.style.WARNING(LOGINS_HEADER))
            for line in login_lines(seeded.logins):
                self.stdout.write(line)
