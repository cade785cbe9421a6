"""The demo organizations: found again by their users' emails, or created with one login per
role whose random password is shown once.

``seed_demo`` makes the first of them, "Demo Billing Co", with its UHC endpoint;
``rcm_seed --profile demo`` (what ``make run`` runs) makes it the same way, and others beside
it. What exists is left alone, so both can run on every start: passwords are printed only when
their user is created, and stored nowhere but as hashes.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

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
LOGINS_HEADER = "Demo logins, shown this once (the passwords are kept nowhere):"
NO_DEMO_USERS = (
    "An organization named {name!r} or with the email domain {domain} exists but has none of "
    "the demo users; rename it first."
)


@dataclass(frozen=True)
class DemoOrganization:
    """Who a demo organization is: its name, type and email domain, and the roles it has a
    user for, each ``<role>@<domain>``."""

    name: str
    org_type: str
    email_domain: str
    roles: tuple[str, ...] = field(default_factory=lambda: tuple(UserRole.ordered()))

    def email(self, role: str) -> str:
        return f"{role}@{self.email_domain}"


DEMO_BILLING = DemoOrganization(DEMO_ORG_NAME, OrgType.BILLING_FIRM, DEMO_EMAIL_DOMAIN)


def demo_email(role: str) -> str:
    """The login of Demo Billing Co's user with ``role``."""
    return DEMO_BILLING.email(role)


@dataclass
class DemoSeeded:
    org_id: uuid.UUID
    org_created: bool
    logins: list[tuple[User, str]]  # the users created now, with their one-time passwords


@transaction.atomic
def demo_organization_ensure(
    *, demo: DemoOrganization, full_names: Mapping[str, str] | None = None
) -> DemoSeeded:
    """The organization and whichever of its users are missing (``full_names``: role -> the
    user's name, else "Demo <role>"). Raises Conflict when its name or domain is taken by an
    organization without any of its users."""
    org_id, org_created = _organization(demo)
    full_names = full_names or {}
    logins = []
    with org_context(org_id):
        for role in demo.roles:
            email = demo.email(role)
            if selectors.auth_user_by_email(email=email) is not None:
                continue
            password = secrets.token_urlsafe(12)
            user = services.user_create(
                org_id=org_id,
                email=email,
                role=role,
                full_name=full_names.get(role, f"Demo {role.replace('_', ' ')}"),
                password=password,
                is_staff=role in STAFF_ROLES,
            )
            logins.append((user, password))
    return DemoSeeded(org_id=org_id, org_created=org_created, logins=logins)


def _organization(demo: DemoOrganization) -> tuple[uuid.UUID, bool]:
    """The organization's id, found through any of its users (it is invisible without its own
    id as the context), or a new organization."""
    for role in demo.roles:
        user = selectors.auth_user_by_email(email=demo.email(role))
        if user is not None:
            return user.org_id, False
    try:
        org = services.organization_create(
            name=demo.name, org_type=demo.org_type, email_domain=demo.email_domain
        )
    except Conflict as exc:
        message = NO_DEMO_USERS.format(name=demo.name, domain=demo.email_domain)
        raise Conflict("demo_organization_taken", message) from exc
    return org.id, True


@transaction.atomic
def demo_endpoint_ensure(*, org_id: uuid.UUID) -> bool:
    """Demo Billing Co's UHC endpoint; whether it was created now."""
    with org_context(org_id):
        channel_type = ChannelType.objects.get(code=DEMO_CHANNEL_CODE)
        if Endpoint.objects.filter(channel_type=channel_type).exists():
            return False
        services.endpoint_create(org_id=org_id, name=DEMO_ENDPOINT_NAME, channel_type=channel_type)
    return True


def login_lines(logins: list[tuple[User, str]]) -> list[str]:
    """One line per new login: the email, the password, the role and where it logs in."""
    width = max((len(user.email) for user, _ in logins), default=0)
    return [
        f"  {user.email:<{width}}  {password}  "
        f"({user.role_id}; {'admin UI and API' if user.is_staff else 'API'})"
        for user, password in logins
    ]
