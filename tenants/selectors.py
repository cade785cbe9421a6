"""Reads for organizations, users, memberships, portals, keys and audit events.

The ``auth_*`` readers run before any organization context exists (log-in, token and key
checks). They go through narrow SECURITY DEFINER functions (see migration 0002), never by
exempting identity tables from row-level security.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from rcm.context import org_context
from tenants.models import (
    ApiKey,
    AuditEvent,
    ChannelType,
    Endpoint,
    Invitation,
    InvitationStatus,
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


@dataclass(frozen=True)
class InvitationInfo:
    """An invitation as its invitee sees it (they are not yet a member of its organization)."""

    id: int
    org_id: uuid.UUID
    org_name: str
    email: str
    role: str
    status: str
    invited_by_name: str
    created_at: datetime
    expires_at: datetime

    @property
    def is_open(self) -> bool:
        return self.status == InvitationStatus.PENDING and self.expires_at > timezone.now()


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


def auth_home_role(*, user: User) -> str | None:
    """The user's role in their home organization, or None when that membership or the
    organization is not active: staff need one to enter the admin, and it is the role the
    admin acts with (tenants/middleware.py, tenants/admin_login.py)."""
    return next(
        (m.role for m in auth_memberships(user_id=user.pk) if m.org_id == user.org_id), None
    )


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


def invitation_list():
    return Invitation.objects.select_related("invited_by")


def invitations_of_user(*, user: User) -> list[InvitationInfo]:
    """Every invitation ever sent to the user's email, by any organization, newest first.

    Through a SECURITY DEFINER function: the invitee is not a member of the inviting
    organization. The email is the logged-in user's own, so nothing else can be asked for.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM invitations_for_email(%s)", [user.email])
        return [InvitationInfo(*row) for row in cursor.fetchall()]


def invitations_open_for_user(*, user: User) -> list[InvitationInfo]:
    return [invitation for invitation in invitations_of_user(user=user) if invitation.is_open]


def invitation_of_user(*, user: User, invitation_id: int) -> InvitationInfo | None:
    """The user's own invitation with this id; another person's is as unknown as none."""
    return next((item for item in invitations_of_user(user=user) if item.id == invitation_id), None)


def invitation_by_token_hash(*, token_hash: str) -> tuple[int, uuid.UUID] | None:
    """(id, org_id) of the invitation with this token hash, whatever its status."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, org_id FROM invitation_by_token_hash(%s)", [token_hash])
        return cursor.fetchone()


def email_domain_owner(*, email: str) -> uuid.UUID | None:
    """The organization that has claimed the email's domain, whichever it is (RLS hides the
    others, so the question goes through a SECURITY DEFINER function)."""
    domain = email.rpartition("@")[2].strip().lower()
    with connection.cursor() as cursor:
        cursor.execute("SELECT email_domain_owner(%s)", [domain])
        return cursor.fetchone()[0]


def invitation_open_by_token(*, token_hash: str) -> Invitation | None:
    """The pending, unexpired invitation with this token hash, read in its organization."""
    found = invitation_by_token_hash(token_hash=token_hash)
    if found is None:
        return None
    invitation_id, org_id = found
    with org_context(org_id):
        return (
            Invitation.objects.filter(
                pk=invitation_id, status=InvitationStatus.PENDING, expires_at__gt=timezone.now()
            )
            .select_related("org")
            .first()
        )
