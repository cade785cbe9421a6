"""The two-organization security checks, on every v2 endpoint (STYLE §11).

Anonymous: 401. Another organization's object: 404 with the standard body, and a PATCH or
DELETE of it changes nothing. A role too low: 403. A member: 200 with only their rows. Lists:
a query count that does not grow with the page size.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from rcm.context import org_context
from tenants import services
from tenants.models import ChannelType, Endpoint, Membership

LISTS = [
    # url, minimum role to read
    ("/api/v2/organizations/current/", "viewer"),
    ("/api/v2/users/", "viewer"),
    ("/api/v2/memberships/", "viewer"),
    ("/api/v2/channel-types/", "viewer"),
    ("/api/v2/endpoints/", "viewer"),
    ("/api/v2/api-keys/", "org_admin"),
    ("/api/v2/audit-events/", "org_admin"),
    ("/api/v2/invitations/", "org_admin"),
]


@pytest.fixture
def objects(org_a, org_b):
    """One object of each kind in each organization: {tenant id: {kind: url}}."""
    channel = ChannelType.objects.get(code="uhc-portal")
    urls = {}
    for tenant in (org_a, org_b):
        with org_context(tenant.id):
            endpoint = services.endpoint_create(
                org_id=tenant.id, name="UHC", channel_type=channel, actor=tenant["org_admin"]
            )
            key, _ = services.api_key_create(
                org_id=tenant.id,
                user=tenant["api_user"],
                name="robot",
                created_by=tenant["org_admin"],
            )
            membership = Membership.objects.get(user=tenant["operator"])
            invitation = services.invitation_create(
                org_id=tenant.id,
                actor=tenant["org_admin"],
                email=f"invitee@{tenant.org.name.split()[0].lower()}.test",
                role="viewer",
            )
        urls[tenant.id] = {
            "endpoint": f"/api/v2/endpoints/{endpoint.pk}/",
            "membership": f"/api/v2/memberships/{membership.pk}/",
            "user": f"/api/v2/users/{tenant['operator'].pk}/",
            "api_key_revoke": f"/api/v2/api-keys/{key.pk}/revoke/",
            "invitation": f"/api/v2/invitations/{invitation.pk}/",
            "invitation_resend": f"/api/v2/invitations/{invitation.pk}/resend/",
            "invitation_revoke": f"/api/v2/invitations/{invitation.pk}/revoke/",
            "my_invitation_accept": f"/api/v2/me/invitations/{invitation.pk}/accept/",
            "my_invitation_decline": f"/api/v2/me/invitations/{invitation.pk}/decline/",
        }
    return urls


def _assert_not_found(response):
    assert response.status_code == 404, response.content
    assert response.json() == {
        "error": {"code": "not_found", "message": "Not found.", "details": {}}
    }


@pytest.mark.django_db
def test_anonymous_is_401_everywhere(objects, org_a):
    client = APIClient()
    urls = [url for url, _ in LISTS] + list(objects[org_a.id].values())
    for url in urls:
        response = client.get(url)
        assert response.status_code == 401, url
        assert response.json()["error"]["code"] == "not_authenticated", url
    for url in (
        "/api/v2/endpoints/",
        "/api/v2/invitations/",
        "/api/v2/api-keys/",
        "/api/v2/me/invitations/1/accept/",
    ):
        assert client.post(url, {}, "json").status_code == 401


@pytest.mark.django_db
def test_another_orgs_objects_are_404_for_read_and_write(api, objects, org_a, org_b):
    admin_a = api(org_a, "org_admin")
    theirs = objects[org_b.id]
    for kind in ("endpoint", "membership", "user", "invitation"):
        _assert_not_found(admin_a.get(theirs[kind]))
    for kind in (
        "invitation_resend",
        "invitation_revoke",
        "my_invitation_accept",
        "my_invitation_decline",
    ):
        _assert_not_found(admin_a.post(theirs[kind]))
    _assert_not_found(admin_a.patch(theirs["endpoint"], {"name": "stolen"}, "json"))
    _assert_not_found(admin_a.delete(theirs["endpoint"]))
    _assert_not_found(admin_a.patch(theirs["membership"], {"role": "viewer"}, "json"))
    _assert_not_found(admin_a.delete(theirs["membership"]))
    _assert_not_found(admin_a.post(theirs["api_key_revoke"]))
    with org_context(org_b.id):
        assert Endpoint.objects.get().name == "UHC"
        membership = Membership.objects.get(user=org_b["operator"])
        assert membership.role_id == "operator" and membership.is_active
        from tenants.models import ApiKey

        assert ApiKey.objects.get().revoked_at is None
        from tenants.models import Invitation

        assert Invitation.objects.get().status == "pending"


@pytest.mark.django_db
def test_unknown_ids_are_404_in_the_same_shape(api, org_a):
    client = api(org_a, "org_admin")
    _assert_not_found(client.get("/api/v2/endpoints/999999/"))
    _assert_not_found(client.get("/api/v2/users/not-a-uuid/"))
    _assert_not_found(client.get("/api/v2/no-such-thing/"))


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "read_role"), LISTS)
def test_lists_hold_only_the_members_rows(api, objects, org_a, org_b, url, read_role):
    response = api(org_a, read_role).get(url)
    assert response.status_code == 200
    body = response.json()
    rows = body.get("results", [body])
    assert rows
    text = response.content.decode()
    assert str(org_b.id) not in text
    for user in org_b.users.values():
        assert user.email not in text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "url", "role"),
    [
        ("get", "/api/v2/api-keys/", "operator"),
        ("get", "/api/v2/audit-events/", "viewer"),
        ("post", "/api/v2/endpoints/", "operator"),
        ("post", "/api/v2/invitations/", "operator"),
        ("get", "/api/v2/invitations/", "operator"),
        ("patch", "/api/v2/organizations/current/", "operator"),
        ("post", "/api/v2/channel-types/", "org_admin"),
        ("post", "/api/v2/api-keys/", "viewer"),
    ],
)
def test_a_role_too_low_is_403(api, org_a, method, url, role):
    response = getattr(api(org_a, role), method)(url, {}, "json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "read_role"), LISTS)
def test_list_query_count_does_not_grow_with_page_size(api, objects, org_a, url, read_role):
    with org_context(org_a.id):
        for number in range(6):
            services.user_create(org_id=org_a.id, email=f"extra{number}@acme.test", role="viewer")
            services.invitation_create(
                org_id=org_a.id,
                actor=org_a["org_admin"],
                email=f"invitee{number}@elsewhere.test",
                role="viewer",
            )
    client = api(org_a, "org_admin" if read_role == "org_admin" else read_role)
    counts = []
    for size in (1, 10):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url, {"page_size": size}).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], (url, counts)
