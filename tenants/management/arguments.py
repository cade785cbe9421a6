"""Arguments the management commands of every app share."""

import uuid

from django.core.management.base import CommandError

from rcm import permissions
from tenants import selectors

NOT_A_UUID = "--org must be an organization id (a UUID); got {value!r}."
UNKNOWN_ORG = "No active organization has the id {org_id}."
NOT_ALLOWED = (
    "{email} may not {action} {resource} in this organization (their role there: {role}); "
    "docs/security.md has the permission table."
)


def org_id_argument(value: str) -> uuid.UUID:
    """The id given with --org, of an active organization, or a CommandError saying why not."""
    try:
        org_id = uuid.UUID(value)
    except ValueError as exc:
        raise CommandError(NOT_A_UUID.format(value=value)) from exc
    # Through the authentication reader: with no organization in context yet, row-level
    # security would hide the organization's own row.
    if not selectors.auth_org_is_active(org_id=org_id):
        raise CommandError(UNKNOWN_ORG.format(org_id=org_id))
    return org_id


def acting_member(*, email: str, org_id: uuid.UUID, resource: str, action: str):
    """The user named by ``--as``, when the permission table lets their role in the
    organization take ``action`` on ``resource`` (the question the API and the admin ask);
    otherwise a CommandError saying why not. Without ``--as`` a command acts as the platform's
    administrator, who runs it on the host."""
    user = selectors.auth_user_by_email(email=email)
    live = selectors.auth_memberships(user_id=user.pk) if user and user.is_active else []
    role = next((m.role for m in live if m.org_id == org_id), None)
    if not permissions.allowed(role, resource, action):
        message = NOT_ALLOWED.format(
            email=email, action=action, resource=resource, role=role or "not a member"
        )
        raise CommandError(message)
    return user
