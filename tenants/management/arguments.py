"""Arguments the management commands of every app share."""

import uuid

from django.core.management.base import CommandError

from tenants import selectors

NOT_A_UUID = "--org must be an organization id (a UUID); got {value!r}."
UNKNOWN_ORG = "No active organization has the id {org_id}."


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
