"""``seed_demo``: a demo organization with one login per role and one portal endpoint.

Idempotent: what exists is left alone, so ``make run`` can call it on every start. Passwords
are random and printed once, when their user is created; they are stored nowhere else, so a
second run has nothing secret to show.
"""

import secrets
import uuid

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from rcm.context import org_context
from rcm.errors import Conflict
from rcm.lookups import OrgType, UserRole
from tenants import selectors, services
from tenants.models import ChannelType, Endpoint, User

DEMO_ORG_NAME = "Demo Billing Co"
DEMO_EMAIL_DOMAIN = "demo.rcm.test"
DEMO_CHANNEL_CODE = "uhc-portal"
DEMO_ENDPOINT_NAME = "UHC Provider Portal"
# Roles whose demo user may log in to the admin UI; the others use the API only.
STAFF_ROLES = {UserRole.ADMIN, UserRole.ORG_ADMIN, UserRole.OPERATOR, UserRole.SYS_ADMIN}


def demo_email(role: str) -> str:
    return f"{role}@{DEMO_EMAIL_DOMAIN}"


class Command(BaseCommand):
    help = "Create the demo organization, one user per role and a UHC endpoint (idempotent)."

    def handle(self, *args, **options):
        with transaction.atomic():
            org_id, org_created = self._organization()
            with org_context(org_id):
                logins = self._users(org_id)
                endpoint_created = self._endpoint(org_id)
        if not (org_created or logins or endpoint_created):
            self.stdout.write(f"Demo data present ({DEMO_ORG_NAME}); nothing created.")
            return
        if org_created:
            self.stdout.write(self.style.SUCCESS(f"Created the organization {DEMO_ORG_NAME!r}."))
        if endpoint_created:
            self.stdout.write(f"Created its endpoint {DEMO_ENDPOINT_NAME!r} ({DEMO_CHANNEL_CODE}).")
        if logins:
            self._print_logins(logins)

    def _organization(self) -> tuple[uuid.UUID, bool]:
        """The demo organization's id, found through any demo user (it is invisible without
        its own id as the context), or a new organization."""
        for role in UserRole.ordered():
            user = selectors.auth_user_by_email(email=demo_email(role))
            if user is not None:
                return user.org_id, False
        try:
            org = services.organization_create(
                name=DEMO_ORG_NAME, org_type=OrgType.BILLING_FIRM, email_domain=DEMO_EMAIL_DOMAIN
            )
        except Conflict as exc:
            raise CommandError(
                f"An organization named {DEMO_ORG_NAME!r} or with the email domain "
                f"{DEMO_EMAIL_DOMAIN} exists but has none of the demo users; rename it first."
            ) from exc
        return org.id, True

    def _users(self, org_id: uuid.UUID) -> list[tuple[User, str]]:
        created = []
        for role in UserRole.ordered():
            email = demo_email(role)
            if selectors.auth_user_by_email(email=email) is not None:
                continue
            password = secrets.token_urlsafe(12)
            user = services.user_create(
                org_id=org_id,
                email=email,
                role=role,
                full_name=f"Demo {role.replace('_', ' ')}",
                password=password,
                is_staff=role in STAFF_ROLES,
            )
            created.append((user, password))
        return created

    def _endpoint(self, org_id: uuid.UUID) -> bool:
        channel_type = ChannelType.objects.get(code=DEMO_CHANNEL_CODE)
        if Endpoint.objects.filter(channel_type=channel_type).exists():
            return False
        services.endpoint_create(org_id=org_id, name=DEMO_ENDPOINT_NAME, channel_type=channel_type)
        return True

    def _print_logins(self, logins: list[tuple[User, str]]) -> None:
        self.stdout.write(
            self.style.WARNING("Demo logins, shown this once (the passwords are kept nowhere):")
        )
        width = max(len(user.email) for user, _ in logins)
        for user, password in logins:
            where = "admin UI and API" if user.is_staff else "API"
            self.stdout.write(f"  {user.email:<{width}}  {password}  ({user.role_id}; {where})")
