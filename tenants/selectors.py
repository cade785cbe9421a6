"""Reads for organizations, users, memberships, portals, keys and audit events.

The ``auth_*`` readers run before any organization context exists (log-in, token and key
checks). They go through narrow SECURITY DEFINER functions (see migration 0002), never by
exempting identity tables from row-level security.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import connection
from django.db.models import OuterRef, Subquery

from tenants.models import (
    ApiKey,
    AuditEvent,
    ChannelType,
    Endpoint,
    Membership,
    Organization,
    User,
)


@dataclass(frozen=True)
class MembershipInfo:
    org_id: uuid.UUID
    org_name: str
    role: str
    is_primary: bool


@dataclass(frozen=True)
class ApiKeyInfo:
    id: int
    org_id: uuid.UUID
    user_id: uuid.UUID
    key_hash: str
    revoked: bool


def auth_user_by_email(*, email: str) -> User | None:
    return next(
        iter(User.objects.unscoped().raw("SELECT * FROM auth_user_by_email(%s)", [email])), None
    )


def auth_user_by_id(*, user_id: uuid.UUID) -> User | None:
    return next(
        iter(User.objects.unscoped().raw("SELECT * FROM auth_user_by_id(%s)", [user_id])), None
    )


def auth_memberships(*, user_id: uuid.UUID) -> list[MembershipInfo]:
    """A user's active memberships of active organizations, primary first."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM auth_memberships(%s)", [user_id])
        return [MembershipInfo(*row) for row in cursor.fetchall()]


def auth_home_membership_is_live(*, user: User) -> bool:
    """Whether the user's membership of their home organization, and that organization, are
    active: what staff need to enter the admin (tenants/middleware.py, tenants/admin_login.py)."""
    return any(membership.org_id == user.org_id for membership in auth_memberships(user_id=user.pk))


def auth_org_is_active(*, org_id: uuid.UUID) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT auth_org_is_active(%s)", [org_id])
        return bool(cursor.fetchone()[0])


def auth_api_key(*, prefix: str) -> ApiKeyInfo | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM auth_api_key(%s)", [prefix])
        row = cursor.fetchone()
    return ApiKeyInfo(*row) if row else None


def membership_active(*, user_id: uuid.UUID, org_id: uuid.UUID) -> Membership | None:
    """The live membership behind a request (call inside the organization's context)."""
    return (
        Membership.objects.filter(user_id=user_id, org_id=org_id, is_active=True)
        .select_related("user")
        .first()
    )


def organization_list():
    """The organization in context (scoped on its own key): one row, or none."""
    return Organization.objects.select_related("org_type")


def user_list(*, org_id: uuid.UUID):
    """Users visible in the organization, each with the role of their membership there."""
    membership = Membership.objects.unscoped().filter(user_id=OuterRef("pk"), org_id=org_id)
    return User.objects.annotate(
        member_role=Subquery(membership.values("role_id")[:1]),
        member_active=Subquery(membership.values("is_active")[:1]),
    )


def membership_list():
    return Membership.objects.select_related("user")


def channel_type_list():
    return ChannelType.objects.all()


def endpoint_list():
    return Endpoint.objects.select_related("channel_type")


def api_key_list():
    return ApiKey.objects.select_related("user")


def audit_event_list():
    return AuditEvent.objects.all()
