"""Web actions and screenshots in the admin: an operator sees how each action went and the
pictures (each picture shown is audited), a viewer sees neither, cancelling is an action."""

import pytest
from django.test import Client
from django.urls import reverse

from rcm.context import org_context
from rcm.lookups import UserRole
from tenants import services as tenant_services
from tenants.models import AuditEvent
from tests.webactions.test_web_kind import SEARCH, _endpoint_and_credential
from webactions.browse import Capture
from webactions.models import WebAction
from webactions.services import attempts


def _staff_client(tenant, role) -> Client:
    with org_context(tenant.id):
        user = tenant_services.user_update(user=tenant[role], actor=None, is_staff=True)
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_an_operator_sees_the_actions_and_pictures_and_each_picture_is_audited(org_a, org_b):
    pictures = {}
    for tenant in (org_a, org_b):
        endpoint, credential = _endpoint_and_credential(tenant, "https://portal.example/")
        with org_context(tenant.id):
            action = WebAction.objects.create(
                org_id=tenant.id, endpoint=endpoint, credential=credential, actions=SEARCH,
                status="failed", error_kind="target_not_found", results=[{
                    "phase": "actions", "action": 1, "tool": "click", "target": 'the button "Go"',
                    "resolved": 'role button "Go"', "duration_ms": 12, "success": False,
                    "tier": None, "tier_reason": "direct", "error_kind": "target_not_found",
                    "error": "no element",
                }],
            )  # fmt: skip
            [shot] = attempts.screenshots_store(
                org_id=tenant.id, captures=[Capture("failure", "failure", "p/", b"\x89PNG", "<p>")],
                attempt=1, declared={}, web_action=action,
            )  # fmt: skip
        pictures[tenant.id] = (action, shot)
    action, shot = pictures[org_a.id]
    operator = _staff_client(org_a, UserRole.OPERATOR)
    page = operator.get(reverse("admin:webactions_webaction_change", args=[action.pk]))
    assert page.status_code == 200
    image_url = reverse("admin:webactions_webscreenshot_image", args=[shot.pk])
    assert image_url in page.text and "role button &quot;Go&quot;" in page.text
    image = operator.get(image_url)
    assert image.status_code == 200 and image.content == b"\x89PNG"
    with org_context(org_a.id):
        assert AuditEvent.objects.filter(action="screenshot.viewed", object_id=str(shot.pk)).count()
    # Another organization's picture is not found; a viewer may not look at all.
    _, other = pictures[org_b.id]
    other_url = reverse("admin:webactions_webscreenshot_image", args=[other.pk])
    assert operator.get(other_url).status_code == 404
    assert _staff_client(org_a, UserRole.VIEWER).get(image_url).status_code == 403


@pytest.mark.django_db
def test_cancelling_from_the_list(org_a):
    endpoint, credential = _endpoint_and_credential(org_a, "https://portal.example/")
    with org_context(org_a.id):
        pending = WebAction.objects.create(
            org_id=org_a.id, endpoint=endpoint, credential=credential, actions=SEARCH
        )
    operator = _staff_client(org_a, UserRole.OPERATOR)
    answer = operator.post(
        reverse("admin:webactions_webaction_changelist"),
        {"action": "cancel", "_selected_action": [pending.pk]},
    )
    assert answer.status_code == 302
    with org_context(org_a.id):
        pending.refresh_from_db()
    assert pending.status == "cancelled"
