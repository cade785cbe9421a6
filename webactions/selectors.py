"""Reads of the web-actions app."""

from webactions.models import CredentialAccessLog, PortalCredential


def credential_list():
    return PortalCredential.objects.all()


def credential_access_list(*, credential_id: int):
    return CredentialAccessLog.objects.filter(credential_id=credential_id)
