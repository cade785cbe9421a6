"""Writes for organizations, users, memberships, portals, API keys and the audit trail."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, connection, connections, transaction
from django.urls import reverse
from django.utils import timezone

from rcm.context import org_context
from rcm.errors import ApplicationError, Conflict, NotFound
from rcm.lookups import UserRole
from rcm.middleware import current_request_id
from rcm.permissions import role_grantable
from tenants import selectors, throttling
from tenants.models import (
    ApiKey,
    ChannelType,
    Endpoint,
    Invitation,
    InvitationStatus,
    Membership,
    Organization,
    User,
)

logger = logging.getLogger(__name__)

API_KEY_PREFIX = "rcm"
ROLE_ABOVE_OWN = "You cannot give a role above your own, nor change a member whose role is."
NOT_API_USER = "API keys are issued only to active api_user members of this organization."
EMAIL_DOMAIN_CLAIMED = (
    "This email's domain belongs to another organization: its accounts are created there."
)
DOMAIN_STAFF_ONLY = (
    "Only platform staff set an organization's email domain, once they have verified that the "
    "organization owns it (for example by a DNS TXT record)."
)
ALREADY_MEMBER = "This person is already an active member of this organization."
INVITATION_NOT_PENDING = "This invitation is no longer open (accepted, declined or revoked)."
INVITATION_EXPIRED = "This invitation has expired; ask the organization to send it again."
INVITATION_NOT_FOUND = "No such invitation."
INVITATION_INVALID = "This invitation link is invalid, expired or already used."
ACCOUNT_EXISTS = "An account with this email exists: log in to it and accept the invitation there."


class AuditAction:
    LOGIN = "auth.login"
    LOGIN_FAILED = "auth.login_failed"
    ORG_SWITCH = "auth.switch_org"
    MEMBER_ADDED = "membership.added"
    MEMBER_ROLE_CHANGED = "membership.role_changed"
    MEMBER_DEACTIVATED = "membership.deactivated"
    MEMBER_REACTIVATED = "membership.reactivated"
    API_KEY_CREATED = "api_key.created"
    API_KEY_REVOKED = "api_key.revoked"
    INVITATION_CREATED = "invitation.created"
    INVITATION_RESENT = "invitation.resent"
    INVITATION_REVOKED = "invitation.revoked"
    INVITATION_DECLINED = "invitation.declined"
    PLATFORM_ACT = "platform.act"
    ENDPOINT_CHANGED = "endpoint.changed"
    ORG_CHANGED = "organization.changed"
    USER_CHANGED = "user.changed"


# -- audit ---------------------------------------------------------------------------------


def audit_event_record(
    *,
    action: str,
    org_id: uuid.UUID | None,
    actor: User | None = None,
    actor_email: str = "",
    object_type: str = "",
    object_id: str | int | uuid.UUID = "",
    ip_address: str | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Append one event to the hash chain (through ``audit_event_append``, which locks).

    ``details`` carries identifiers and changed field names, never patient data.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT audit_event_append(%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
            [
                org_id,
                actor.pk if actor else None,
                (actor.email if actor else actor_email)[:254],
                action,
                object_type,
                str(object_id)[:64],
                ip_address,
                current_request_id(),
                json.dumps(details or {}, sort_keys=True, default=str),
            ],
        )
        return cursor.fetchone()[0]


def login_success_record(
    *, user: User, org_id: uuid.UUID, role: str | None, ip_address: str | None, via: str
) -> None:
    """A log-in at either door (``via``: "api", the token endpoint; "admin", its form), audited
    in the organization it entered with the role it holds there."""
    audit_event_record(
        action=AuditAction.LOGIN,
        org_id=org_id,
        actor=user,
        object_type="user",
        object_id=user.pk,
        ip_address=ip_address,
        details={"role": role, "via": via},
    )


def login_failure_record(
    *, email: str, ip_address: str | None, user: User | None, reason: str, via: str
) -> None:
    """A refused log-in at either door (``via``: "api", the token endpoint; "admin", its form).

    It counts toward the same per-email and per-IP throttle whichever door it came through
    (tenants/throttling.py), and is audited with the email and address, never the password.
    """
    throttling.login_failure_record(ip=ip_address, email=email)
    audit_event_record(
        action=AuditAction.LOGIN_FAILED,
        org_id=None,
        actor=user,
        actor_email=email,
        ip_address=ip_address,
        details={"reason": reason, "via": via},
    )


def platform_act_record(
    *,
    org_id: uuid.UUID,
    actor: User,
    ip_address: str | None,
    via: str,
    method: str = "",
    path: str = "",
    status: int | None = None,
) -> None:
    """Platform staff acting in an organization that is not their home, audited there: one
    event per act, whose shape this decides for every door (``via``).

    * "admin": a page of the admin, by method and path; recorded before the page is made, so
      without its status (tenants/middleware.py).
    * "admin_switch": the admin's switch into the organization (tenants/admin.py).
    * "api": an API request, by method and path, with its answer's status; recorded after the
      request's transaction (tenants/authentication.py).
    """
    details: dict[str, Any]
    match via:
        case "admin":
            object_type, details = "admin", {"path": path[:200]}
        case "admin_switch":
            object_type, details = "admin", {"switch": True}
        case "api":
            object_type, details = "request", {"path": path[:200], "status": status}
        case _:
            raise ValueError(f"Unknown door of a platform act: {via!r}")
    audit_event_record(
        action=AuditAction.PLATFORM_ACT,
        org_id=org_id,
        actor=actor,
        object_type=object_type,
        object_id=method,
        ip_address=ip_address,
        details=details,
    )


def audit_chain_verify(*, using: str = "default") -> tuple[int, int | None]:
    """(rows checked, id of the first row whose hash does not match, or None).

    ``using`` names the connection: rcm_validate also checks databases other than the
    configured one (a restored copy).
    """
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT checked, first_bad_id FROM audit_event_verify()")
        checked, first_bad = cursor.fetchone()
    return checked, first_bad


def audit_event_purge(*, now=None) -> int:
    """Delete events older than the retention period (AUDIT_RETENTION_DAYS, ≥ six years)."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    with connection.cursor() as cursor:
        cursor.execute("SELECT audit_event_purge(%s)", [cutoff])
        return cursor.fetchone()[0]


# -- organizations and users ---------------------------------------------------------------


@transaction.atomic
def organization_update(
    *, org: Organization, actor: User, ip_address: str | None = None, **fields
) -> Organization:
    """Rename an organization or change its email domain (both unique across the platform).

    The domain is verified ownership: accounts under it can be created only here, so only
    platform staff, who check it out of band, set it.
    """
    changed = sorted(name for name, value in fields.items() if getattr(org, name) != value)
    if not changed:
        return org
    if "email_domain" in changed and not actor.is_superuser:
        raise ApplicationError(
            "email_domain_staff_only",
            DOMAIN_STAFF_ONLY,
            {"email_domain": [DOMAIN_STAFF_ONLY]},
            status=403,
        )
    for name in changed:
        setattr(org, name, fields[name])
    try:
        with transaction.atomic():
            org.save(update_fields=[*changed, "updated_at"])
    except IntegrityError as exc:
        # RLS hides every other organization, so a clash can only show at the unique index.
        raise Conflict(
            "organization_exists",
            "Another organization already has this name or email domain.",
            {name: [str(fields[name])] for name in changed},
        ) from exc
    audit_event_record(
        action=AuditAction.ORG_CHANGED,
        org_id=org.pk,
        actor=actor,
        object_type="organization",
        object_id=org.pk,
        ip_address=ip_address,
        details={"fields": changed},
    )
    return org


USER_EDITABLE_FIELDS = {"email", "full_name", "is_active", "is_staff"}


@transaction.atomic
def user_update(
    *,
    user: User,
    actor: User | None,
    password: str | None = None,
    ip_address: str | None = None,
    **fields,
) -> User:
    """Change a user's profile, flags or password; audited with the names of what changed.

    ``actor`` None: an administrator at the command line (``manage.py set_password``).
    """
    unknown = set(fields) - USER_EDITABLE_FIELDS
    if unknown:
        raise ApplicationError("invalid", f"Not editable: {', '.join(sorted(unknown))}.")
    # Compared with the stored row, not the instance: a ModelForm has already copied the new
    # values onto it.
    stored = User.objects.filter(pk=user.pk).values(*fields).get() if fields else {}
    changed = sorted(name for name, value in fields.items() if stored[name] != value)
    if "email" in changed:
        _refuse_claimed_domain(email=fields["email"], org_id=user.org_id)
    for name in changed:
        setattr(user, name, fields[name])
    if password:
        user.set_password(password)
        changed.append("password")
    if not changed:
        return user
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:
        raise Conflict(
            "email_taken", "A user with this email already exists.", {"email": [user.email]}
        ) from exc
    audit_event_record(
        action=AuditAction.USER_CHANGED,
        org_id=user.org_id,
        actor=actor,
        actor_email="" if actor else "manage.py",
        object_type="user",
        object_id=user.pk,
        ip_address=ip_address,
        details={"fields": changed},
    )
    return user


@transaction.atomic
def user_record_login(*, user: User, org_id: uuid.UUID) -> None:
    with org_context(org_id):
        User.objects.filter(pk=user.pk).update(last_login=timezone.now())


@transaction.atomic
def organization_create(
    *,
    name: str,
    org_type: str,
    email_domain: str | None = None,
    org_id: uuid.UUID | None = None,
) -> Organization:
    """A new organization; ``org_id`` keeps an id it had elsewhere (the legacy import)."""
    org_id = org_id or uuid.uuid4()
    # The row is its own tenant: inserting it needs its own id as the context (WITH CHECK).
    # RLS hides every other organization, so a duplicate shows only at the unique index.
    with org_context(org_id):
        try:
            with transaction.atomic():
                return Organization.objects.create(
                    id=org_id, name=name, org_type_id=org_type, email_domain=email_domain or None
                )
        except IntegrityError as exc:
            raise Conflict(
                "organization_exists",
                "An organization with this name or email domain exists.",
                {"name": [name]},
            ) from exc


@transaction.atomic
def user_create(
    *,
    org_id: uuid.UUID,
    email: str,
    role: str,
    full_name: str = "",
    password: str | None = None,
    is_staff: bool = False,
) -> User:
    """A new user whose home is ``org_id``, with their (primary) membership there."""
    _refuse_claimed_domain(email=email, org_id=org_id)
    with org_context(org_id):
        user = User(
            email=email.strip(),
            full_name=full_name,
            org_id=org_id,
            role_id=role,
            is_staff=is_staff,
            password=make_password(password),
        )
        try:
            with transaction.atomic():
                user.save(force_insert=True)
        except IntegrityError as exc:
            raise Conflict(
                "email_taken", "A user with this email already exists.", {"email": [email]}
            ) from exc
        Membership.objects.create(
            user=user, org_id=org_id, role_id=role, is_primary=True, is_active=True
        )
    return user


def _refuse_claimed_domain(*, email: str, org_id: uuid.UUID) -> None:
    """An organization's email domain is verified as its own (platform staff set it), so an
    account under it belongs there: no other organization may create one or rename into it."""
    owner = selectors.email_domain_owner(email=email)
    if owner is not None and owner != org_id:
        raise ApplicationError(
            "email_domain_claimed",
            EMAIL_DOMAIN_CLAIMED,
            {"email": [EMAIL_DOMAIN_CLAIMED]},
            status=403,
        )


@transaction.atomic
def membership_update(
    *,
    membership: Membership,
    actor: User,
    actor_role: str,
    role: str | None = None,
    is_active: bool | None = None,
    ip_address: str | None = None,
) -> Membership:
    """Change a member's role or (de)activate them. ``actor_role`` is the actor's role in
    this organization: nobody grants a role above their own, or changes a member above it."""
    touched = [membership.role_id] if role is None else [membership.role_id, role]
    if not all(role_grantable(granter_role=actor_role, role=one) for one in touched):
        raise _role_above_own()
    if membership.user_id == actor.pk and (
        (is_active is False) or (role is not None and role != membership.role_id)
    ):
        raise ApplicationError(
            "self_change_forbidden",
            "You cannot change your own role or deactivate yourself; ask another admin.",
            status=403,
        )
    events = []
    if role is not None and role != membership.role_id:
        events.append((AuditAction.MEMBER_ROLE_CHANGED, {"from": membership.role_id, "to": role}))
        membership.role_id = role
    if is_active is not None and is_active != membership.is_active:
        action = AuditAction.MEMBER_REACTIVATED if is_active else AuditAction.MEMBER_DEACTIVATED
        events.append((action, {}))
        membership.is_active = is_active
    if not events:
        return membership
    membership.save(update_fields=["role", "is_active", "updated_at"])
    for action, details in events:
        audit_event_record(
            action=action,
            org_id=membership.org_id,
            actor=actor,
            object_type="membership",
            object_id=membership.pk,
            ip_address=ip_address,
            details={"user_id": str(membership.user_id), **details},
        )
    return membership


# -- invitations ---------------------------------------------------------------------------


def secret_token_hash(token: str) -> str:
    """How a secret token is stored (an API key, an invitation's link). The tokens are 256
    random bits, so a fast hash is enough (no dictionary to attack)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _role_above_own() -> ApplicationError:
    """The refusal when someone grants a role above their own or changes a member whose
    role is (rcm.permissions.role_grantable decides)."""
    return ApplicationError(
        "role_above_own", ROLE_ABOVE_OWN, {"role": [ROLE_ABOVE_OWN]}, status=403
    )


def invitable_roles(*, own_role: str | None) -> list[str]:
    """Roles an inviter may offer: a role never grants a role above its own, and platform
    staff are never made by invitation."""
    return [
        role
        for role in UserRole.ordered()
        if role != UserRole.SYS_ADMIN and role_grantable(granter_role=own_role, role=role)
    ]


def _new_token(invitation: Invitation) -> str:
    token = secrets.token_urlsafe(32)
    invitation.token_hash = secret_token_hash(token)
    invitation.expires_at = timezone.now() + timedelta(days=settings.INVITATION_TTL_DAYS)
    return token


def _audit_invitation(invitation: Invitation, action: str, actor: User, ip_address) -> None:
    audit_event_record(
        action=action,
        org_id=invitation.org_id,
        actor=actor,
        object_type="invitation",
        object_id=invitation.pk,
        ip_address=ip_address,
        details={"role": invitation.role_id},
    )


def _mail_after_commit(invitation: Invitation, token: str) -> None:
    """The mail goes after the commit, best effort: the invitation is saved either way, and a
    mail that failed is sent again with ``invitation_resend``."""
    org_name = Organization.objects.get(pk=invitation.org_id).name
    inviter = invitation.invited_by.full_name or invitation.invited_by.email
    link = settings.PUBLIC_BASE_URL + reverse("invitation-accept-page", args=[token])
    subject = f"{inviter} invites you to {org_name}"
    message = (
        f"{inviter} invites you to join {org_name} on the RCM platform as {invitation.role_id}.\n\n"
        f"Accept the invitation here (the link works until "
        f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC):\n{link}\n\n"
        'If you already have an account, log in and accept it under "My invitations".\n'
        "If you did not expect this mail, ignore it.\n"
    )
    invitation_id, email = invitation.pk, invitation.email

    def send() -> None:
        try:
            send_mail(subject, message, None, [email])
        except Exception:  # noqa: BLE001 - any mail failure: logged, the saved write stands
            logger.exception("invitation %s: the mail could not be sent", invitation_id)

    transaction.on_commit(send)


@transaction.atomic
def invitation_create(
    *,
    org_id: uuid.UUID,
    actor: User,
    actor_role: str,
    email: str,
    role: str,
    ip_address: str | None = None,
) -> Invitation:
    """Invite an email to a role here; the same answer whether or not an account exists.
    ``actor_role`` is the inviter's role here: nobody offers a role above it, and platform
    staff are never made by invitation.

    A pending invitation of the same email is renewed (new token, new expiry, the new role).
    """
    email = email.strip().lower()
    if role not in invitable_roles(own_role=actor_role):
        raise _role_above_own()
    # The organization sees its members already, so refusing one reveals nothing new.
    if Membership.objects.filter(org_id=org_id, user__email__iexact=email, is_active=True).exists():
        raise Conflict("already_member", ALREADY_MEMBER, {"email": [ALREADY_MEMBER]})
    invitation = (
        Invitation.objects.select_for_update()
        .filter(org_id=org_id, email=email, status=InvitationStatus.PENDING)
        .first()
    )
    renewed = invitation is not None
    if invitation is None:
        invitation = Invitation(org_id=org_id, email=email)
    invitation.role_id = role
    invitation.invited_by = actor
    token = _new_token(invitation)
    try:
        with transaction.atomic():
            invitation.save()
    except IntegrityError as exc:
        # Two admins inviting the same email at once: the partial unique index lets one win.
        raise Conflict("invitation_exists", "This email was invited just now.") from exc
    action = AuditAction.INVITATION_RESENT if renewed else AuditAction.INVITATION_CREATED
    _audit_invitation(invitation, action, actor, ip_address)
    _mail_after_commit(invitation, token)
    return invitation


def _refuse_closed(invitation: Invitation) -> None:
    if invitation.status != InvitationStatus.PENDING:
        raise Conflict("invitation_not_pending", INVITATION_NOT_PENDING)
    if invitation.expires_at <= timezone.now():
        raise Conflict("invitation_expired", INVITATION_EXPIRED)


def _pending_locked(invitation: Invitation) -> Invitation:
    """The invitation's row, locked, or a refusal (409) once it is no longer open."""
    row = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if row.status != InvitationStatus.PENDING:
        raise Conflict("invitation_not_pending", INVITATION_NOT_PENDING)
    return row


def _invitation_answer(row: Invitation, status: str, *, accepted_by: User | None = None) -> None:
    """The invitation closed with ``status`` now (and who joined, when it was accepted)."""
    row.status = status
    row.responded_at = timezone.now()
    fields = ["status", "responded_at"]
    if accepted_by is not None:
        row.accepted_by = accepted_by
        fields.append("accepted_by")
    row.save(update_fields=fields)


@transaction.atomic
def invitation_resend(
    *, invitation: Invitation, actor: User, ip_address: str | None = None
) -> Invitation:
    """A new token and expiry (the old link stops working), mailed again."""
    invitation = _pending_locked(invitation)
    token = _new_token(invitation)
    invitation.save(update_fields=["token_hash", "expires_at"])
    _audit_invitation(invitation, AuditAction.INVITATION_RESENT, actor, ip_address)
    _mail_after_commit(invitation, token)
    return invitation


@transaction.atomic
def invitation_revoke(
    *, invitation: Invitation, actor: User, ip_address: str | None = None
) -> Invitation:
    invitation = _pending_locked(invitation)
    _invitation_answer(invitation, InvitationStatus.REVOKED)
    _audit_invitation(invitation, AuditAction.INVITATION_REVOKED, actor, ip_address)
    return invitation


def _invitee_row(invitation: selectors.InvitationInfo, user: User) -> Invitation:
    """The invitation's row, locked, once it is proven to be the user's own and still open.
    Call inside the inviting organization's context."""
    if invitation.email != user.email.lower():
        raise NotFound("not_found", INVITATION_NOT_FOUND)
    row = Invitation.objects.select_for_update().get(pk=invitation.id)
    _refuse_closed(row)
    return row


@transaction.atomic
def invitation_accept(
    *, invitation: selectors.InvitationInfo, user: User, ip_address: str | None = None
) -> Membership:
    """The logged-in invitee joins the inviting organization with the invited role."""
    # The invitee acts in the inviting organization: its context lets the writes pass RLS.
    with org_context(invitation.org_id):
        row = _invitee_row(invitation, user)
        membership = Membership.objects.filter(user=user, org_id=row.org_id).first()
        if membership is not None and membership.is_active:
            raise Conflict("already_member", ALREADY_MEMBER)
        if membership is None:
            membership = Membership(user=user, org_id=row.org_id, is_primary=False)
        membership.role_id = row.role_id
        membership.is_active = True
        membership.save()
        _invitation_answer(row, InvitationStatus.ACCEPTED, accepted_by=user)
        _audit_member_added(row, membership, user, ip_address)
    return membership


def _audit_member_added(row: Invitation, membership: Membership, user: User, ip_address) -> None:
    audit_event_record(
        action=AuditAction.MEMBER_ADDED,
        org_id=row.org_id,
        actor=user,
        object_type="membership",
        object_id=membership.pk,
        ip_address=ip_address,
        details={"user_id": str(user.pk), "role": row.role_id, "invitation_id": row.pk},
    )


@transaction.atomic
def invitation_decline(
    *, invitation: selectors.InvitationInfo, user: User, ip_address: str | None = None
) -> None:
    with org_context(invitation.org_id):
        row = _invitee_row(invitation, user)
        _invitation_answer(row, InvitationStatus.DECLINED)
        _audit_invitation(row, AuditAction.INVITATION_DECLINED, user, ip_address)


@transaction.atomic
def invitation_redeem(
    *, token: str, full_name: str, password: str, ip_address: str | None = None
) -> User:
    """A person without an account follows the mailed link: their account, homed in the
    inviting organization, with the password they chose, and the invited membership."""
    found = selectors.invitation_by_token_hash(token_hash=secret_token_hash(token))
    if found is None:
        raise NotFound("invitation_invalid", INVITATION_INVALID)
    invitation_id, org_id = found
    with org_context(org_id):
        row = Invitation.objects.select_for_update().get(pk=invitation_id)
        if row.status != InvitationStatus.PENDING or row.expires_at <= timezone.now():
            raise NotFound("invitation_invalid", INVITATION_INVALID)
        # Only the token holder (the email's owner) learns this.
        if selectors.auth_user_by_email(email=row.email) is not None:
            raise Conflict("account_exists", ACCOUNT_EXISTS)
        try:
            validate_password(password, User(email=row.email, full_name=full_name))
        except ValidationError as exc:
            raise ApplicationError("invalid", exc.messages[0], {"password": exc.messages}) from exc
        user = user_create(
            org_id=org_id,
            email=row.email,
            role=row.role_id,
            full_name=full_name,
            password=password,
        )
        _invitation_answer(row, InvitationStatus.ACCEPTED, accepted_by=user)
        membership = Membership.objects.get(user=user, org_id=org_id)
        _audit_member_added(row, membership, user, ip_address)
    return user


# -- portals -------------------------------------------------------------------------------


@transaction.atomic
def channel_type_create(**fields) -> ChannelType:
    return ChannelType.objects.create(**fields)


@transaction.atomic
def channel_type_update(*, channel_type: ChannelType, **fields) -> ChannelType:
    for name, value in fields.items():
        setattr(channel_type, name, value)
    channel_type.save()
    return channel_type


ENDPOINT_DEFAULTS = {"max_concurrency": 4}


@transaction.atomic
def endpoint_create(
    *,
    org_id: uuid.UUID,
    name: str,
    channel_type: ChannelType,
    base_url: str = "",
    config: dict | None = None,
    actor: User | None = None,
) -> Endpoint:
    config = {**ENDPOINT_DEFAULTS, **(config or {})}
    _refuse_duplicate_endpoint(org_id=org_id, name=name, channel_type=channel_type)
    endpoint = Endpoint.objects.create(
        org_id=org_id, name=name, channel_type=channel_type, base_url=base_url, config=config
    )
    _audit_endpoint(endpoint, actor, "created")
    return endpoint


@transaction.atomic
def endpoint_update(*, endpoint: Endpoint, actor: User | None = None, **fields) -> Endpoint:
    if "config" in fields:
        fields["config"] = {**ENDPOINT_DEFAULTS, **fields["config"]}
    _refuse_duplicate_endpoint(
        org_id=endpoint.org_id,
        name=fields.get("name", endpoint.name),
        channel_type=fields.get("channel_type", endpoint.channel_type),
        exclude=endpoint.pk,
    )
    for name, value in fields.items():
        setattr(endpoint, name, value)
    endpoint.save()
    _audit_endpoint(endpoint, actor, "updated", sorted(fields))
    return endpoint


@transaction.atomic
def endpoint_delete(*, endpoint: Endpoint, actor: User | None = None) -> None:
    endpoint_id = endpoint.pk
    endpoint.delete()
    endpoint.pk = endpoint_id
    _audit_endpoint(endpoint, actor, "deleted")


def _audit_endpoint(endpoint: Endpoint, actor: User | None, change: str, fields=()) -> None:
    audit_event_record(
        action=AuditAction.ENDPOINT_CHANGED,
        org_id=endpoint.org_id,
        actor=actor,
        object_type="endpoint",
        object_id=endpoint.pk,
        details={"change": change, "fields": list(fields)},
    )


def _refuse_duplicate_endpoint(*, org_id, name, channel_type, exclude=None) -> None:
    others = Endpoint.objects.filter(org_id=org_id).exclude(pk=exclude)
    if others.filter(name=name).exists():
        raise Conflict("endpoint_exists", "An endpoint with this name exists.", {"name": [name]})
    if others.filter(channel_type=channel_type).exists():
        raise Conflict(
            "endpoint_exists",
            "This organization already has an endpoint for this channel type.",
            {"channel_type": [channel_type.code]},
        )


# -- API keys ------------------------------------------------------------------------------


def api_key_matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(secret_token_hash(key), stored_hash)


@transaction.atomic
def api_key_create(
    *,
    org_id: uuid.UUID,
    user: User,
    name: str,
    created_by: User,
    ip_address: str | None = None,
) -> tuple[ApiKey, str]:
    """A new key for an api_user member; returns the key row and the key, shown only once."""
    membership = Membership.objects.filter(user=user, org_id=org_id, is_active=True).first()
    if membership is None or membership.role_id != UserRole.API_USER:
        raise ApplicationError("not_api_user", NOT_API_USER, {"user_id": [NOT_API_USER]})
    prefix = secrets.token_hex(6)
    key = f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        org_id=org_id,
        user=user,
        name=name,
        prefix=prefix,
        key_hash=secret_token_hash(key),
        created_by=created_by,
    )
    audit_event_record(
        action=AuditAction.API_KEY_CREATED,
        org_id=org_id,
        actor=created_by,
        object_type="api_key",
        object_id=api_key.pk,
        ip_address=ip_address,
        details={"prefix": prefix, "user_id": str(user.pk)},
    )
    return api_key, key


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: User, ip_address: str | None = None) -> ApiKey:
    if api_key.revoked_at is not None:
        raise Conflict("already_revoked", "This key is already revoked.")
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["revoked_at"])
    audit_event_record(
        action=AuditAction.API_KEY_REVOKED,
        org_id=api_key.org_id,
        actor=actor,
        object_type="api_key",
        object_id=api_key.pk,
        ip_address=ip_address,
        details={"prefix": api_key.prefix},
    )
    return api_key


def api_key_touch(*, api_key_id: int) -> None:
    """Record use, at most once a minute per key (a write per request would be wasteful)."""
    cutoff = timezone.now() - timedelta(minutes=1)
    ApiKey.objects.filter(pk=api_key_id).exclude(last_used_at__gt=cutoff).update(
        last_used_at=timezone.now()
    )
