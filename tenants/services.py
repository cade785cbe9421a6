"""Writes for organizations, users, memberships, portals, API keys and the audit trail."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from rcm.context import org_context
from rcm.errors import ApplicationError, Conflict
from rcm.lookups import UserRole
from rcm.middleware import current_request_id
from rcm.permissions import role_grantable
from tenants import throttling
from tenants.models import ApiKey, ChannelType, Endpoint, Membership, Organization, User

API_KEY_PREFIX = "rcm"
ROLE_ABOVE_OWN = "You cannot give a role above your own, nor change a member whose role is."
NOT_API_USER = "API keys are issued only to active api_user members of this organization."


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
    object_id: str = "",
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


def audit_chain_verify() -> tuple[int, int | None]:
    """(rows checked, id of the first row whose hash does not match, or None)."""
    with connection.cursor() as cursor:
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
    """Rename an organization or change its email domain (both unique across the platform)."""
    changed = sorted(name for name, value in fields.items() if getattr(org, name) != value)
    if not changed:
        return org
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
    *, name: str, org_type: str, email_domain: str | None = None
) -> Organization:
    org_id = uuid.uuid4()
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


@transaction.atomic
def membership_add(
    *,
    org_id: uuid.UUID,
    actor: User,
    email: str,
    role: str,
    full_name: str = "",
    password: str | None = None,
    ip_address: str | None = None,
) -> Membership:
    """Add a member: an existing user (any home organization) or a new one homed here."""
    existing = _user_by_email_any_org(email)
    if existing is None:
        user = user_create(
            org_id=org_id, email=email, role=role, full_name=full_name, password=password
        )
        membership = Membership.objects.get(user=user, org_id=org_id)
    else:
        if Membership.objects.filter(user=existing, org_id=org_id).exists():
            raise Conflict("already_member", "This user is already a member.", {"email": [email]})
        membership = Membership.objects.create(
            user=existing, org_id=org_id, role_id=role, is_active=True
        )
    audit_event_record(
        action=AuditAction.MEMBER_ADDED,
        org_id=org_id,
        actor=actor,
        object_type="membership",
        object_id=membership.pk,
        ip_address=ip_address,
        details={"user_id": str(membership.user_id), "role": role},
    )
    return membership


def _user_by_email_any_org(email: str) -> User | None:
    from tenants.selectors import auth_user_by_email

    return auth_user_by_email(email=email)


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
    if not role_grantable(granter_role=actor_role, role=membership.role_id) or (
        role is not None and not role_grantable(granter_role=actor_role, role=role)
    ):
        raise ApplicationError(
            "role_above_own", ROLE_ABOVE_OWN, {"role": [ROLE_ABOVE_OWN]}, status=403
        )
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


def api_key_hash(key: str) -> str:
    # The key is 256 random bits, so a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(api_key_hash(key), stored_hash)


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
        key_hash=api_key_hash(key),
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
