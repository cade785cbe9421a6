"""Reads of the web-actions app."""

from webactions.models import CredentialAccessLog, PortalCredential, WebAction, WebScreenshot


def credential_list():
    return PortalCredential.objects.all()


def credential_access_list(*, credential_id: int):
    return CredentialAccessLog.objects.filter(credential_id=credential_id)


def web_action_list():
    return WebAction.objects.all()


def screenshot_list():
    """Screenshots without their picture (the list never carries PHI pixels; each picture is
    fetched, and audited, on its own)."""
    return WebScreenshot.objects.defer("image", "masked_dom")


def web_action_screenshots(*, web_action: WebAction):
    return screenshot_list().filter(web_action=web_action).order_by("attempt", "id")
