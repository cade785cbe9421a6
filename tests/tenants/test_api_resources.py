"""Endpoints, memberships, the organization, users and channel types through the API,
with the bad input each must refuse without writing anything."""

import pytest

from rcm.context import org_context
from tenants.models import AuditEvent, ChannelType, Endpoint, Membership, Organization, User
from tests.helpers import NEW_CHANNEL_TYPE

ENDPOINTS = "/api/v2/endpoints/"


def _endpoint_count(tenant) -> int:
    with org_context(tenant.id):
        return Endpoint.objects.count()


@pytest.mark.django_db
def test_org_admin_creates_updates_and_deletes_an_endpoint(api, org_a):
    client = api(org_a, "org_admin")
    response = client.post(
        ENDPOINTS,
        {"name": "UHC", "channel_type": "uhc-portal", "config": {"max_concurrency": 3, "x": 1}},
        "json",
    )
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["config"] == {"max_concurrency": 3, "x": 1}
    assert created["effective_base_url"] == "https://www.uhcprovider.com"
    url = f"{ENDPOINTS}{created['id']}/"
    response = client.patch(url, {"base_url": "https://uhc.example.org"}, "json")
    assert response.status_code == 200
    assert response.json()["effective_base_url"] == "https://uhc.example.org"
    assert api(org_a, "viewer").get(url).status_code == 200
    assert client.delete(url).status_code == 204
    assert _endpoint_count(org_a) == 0
    with org_context(org_a.id):
        changes = AuditEvent.objects.filter(action="endpoint.changed").count()
    assert changes == 3


@pytest.mark.django_db
def test_endpoint_gets_a_default_max_concurrency(api, org_a):
    response = api(org_a, "org_admin").post(
        ENDPOINTS, {"name": "Aetna", "channel_type": "aetna-provider"}, "json"
    )
    assert response.json()["config"] == {"max_concurrency": 4}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channel_type": "uhc-portal"}, "name"),
        ({"name": "x" * 201, "channel_type": "uhc-portal"}, "name"),
        ({"name": "X", "channel_type": "no-such-portal"}, "channel_type"),
        ({"name": "X", "channel_type": "uhc-portal", "base_url": "not a url"}, "base_url"),
        ({"name": "X", "channel_type": "uhc-portal", "config": []}, "config"),
        ({"name": "X", "channel_type": "uhc-portal", "config": {"max_concurrency": 0}}, "config"),
        ({"name": "X", "channel_type": "uhc-portal", "config": {"max_concurrency": "a"}}, "config"),
        ({"name": "X", "channel_type": "uhc-portal", "org_id": "x"}, "org_id"),
        ({"name": 12, "channel_type": ["uhc-portal"]}, "channel_type"),
    ],
)
def test_bad_endpoint_input_is_400_naming_the_field_and_writes_nothing(api, org_a, body, field):
    response = api(org_a, "org_admin").post(ENDPOINTS, body, "json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["details"]
    assert _endpoint_count(org_a) == 0


@pytest.mark.django_db
def test_duplicate_endpoints_are_409(api, org_a, org_b):
    client = api(org_a, "org_admin")
    body = {"name": "UHC", "channel_type": "uhc-portal"}
    assert client.post(ENDPOINTS, body, "json").status_code == 201
    assert client.post(ENDPOINTS, body, "json").status_code == 409
    other = {"name": "UHC again", "channel_type": "uhc-portal"}
    assert client.post(ENDPOINTS, other, "json").json()["error"]["code"] == "endpoint_exists"
    # Another organization may use the same name and portal.
    assert api(org_b, "org_admin").post(ENDPOINTS, body, "json").status_code == 201


@pytest.mark.django_db
def test_method_not_allowed_has_the_standard_shape(api, org_a):
    response = api(org_a, "org_admin").put(ENDPOINTS, {}, "json")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.django_db
def test_cursor_pagination_walks_every_row_once(api, org_a):
    with org_context(org_a.id):
        from tenants import services

        for number in range(7):
            services.user_create(org_id=org_a.id, email=f"m{number}@a.test", role="viewer")
    client = api(org_a, "viewer")
    seen, url = [], "/api/v2/memberships/?page_size=3"
    while url:
        body = client.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
    with org_context(org_a.id):
        assert sorted(seen) == sorted(Membership.objects.values_list("id", flat=True))
    assert len(seen) == len(set(seen)) == 11


# -- memberships -------------------------------------------------------------------------


@pytest.mark.django_db
def test_org_admin_changes_and_deactivates_a_member_and_cannot_create_one(api, org_a):
    client = api(org_a, "org_admin")
    body = {"email": "new@acme.test", "role": "operator", "password": "a-long-password-1"}
    response = client.post("/api/v2/memberships/", body, "json")
    assert response.status_code == 405  # members come through invitations
    with org_context(org_a.id):
        membership = Membership.objects.get(user=org_a["operator"])
        assert not User.objects.filter(email="new@acme.test").exists()
    url = f"/api/v2/memberships/{membership.pk}/"
    assert client.patch(url, {"role": "viewer"}, "json").json()["role"] == "viewer"
    assert client.delete(url).status_code == 204
    assert client.get(url).json()["is_active"] is False
    actions = {row["action"] for row in client.get("/api/v2/audit-events/").json()["results"]}
    assert {"membership.role_changed", "membership.deactivated"} <= actions


@pytest.mark.django_db
def test_an_admin_cannot_demote_or_deactivate_themselves(api, org_a):
    client = api(org_a, "org_admin")
    with org_context(org_a.id):
        own = Membership.objects.get(user=org_a["org_admin"])
    response = client.patch(f"/api/v2/memberships/{own.pk}/", {"role": "viewer"}, "json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "self_change_forbidden"


# -- organization, users, channel types -----------------------------------------------------


@pytest.mark.django_db
def test_org_admin_renames_the_organization(api, org_a, org_b):
    client = api(org_a, "org_admin")
    url = "/api/v2/organizations/current/"
    response = client.patch(url, {"name": "Acme RCM"}, "json")
    assert response.status_code == 200 and response.json()["name"] == "Acme RCM"
    clash = client.patch(url, {"name": org_b.org.name}, "json")
    assert clash.status_code == 409
    assert client.patch(url, {"email_domain": "not a domain"}, "json").status_code == 400
    with org_context(org_a.id):
        assert Organization.objects.get().name == "Acme RCM"


@pytest.mark.django_db
def test_users_list_shows_role_and_never_passwords(api, org_a):
    body = api(org_a, "viewer").get("/api/v2/users/").json()
    assert {row["role"] for row in body["results"]} == {
        "viewer",
        "operator",
        "org_admin",
        "api_user",
    }
    assert "password" not in body["results"][0]


@pytest.mark.django_db
def test_channel_types_are_read_by_members_and_written_by_sys_admin(api, org_a, sys_admin):
    from tests.conftest import client_for

    listed = api(org_a, "viewer").get("/api/v2/channel-types/").json()["results"]
    assert {row["code"] for row in listed} >= {"anthem-availity", "uhc-portal"}
    staff = client_for(sys_admin, org_a.id, role="sys_admin")
    body = NEW_CHANNEL_TYPE
    response = staff.post("/api/v2/channel-types/", body, "json")
    assert response.status_code == 201, response.json()
    assert staff.post("/api/v2/channel-types/", body, "json").status_code == 409
    bad = {**body, "code": "x y", "endpoint_kind": "pharmacy"}
    response = staff.post("/api/v2/channel-types/", bad, "json")
    assert set(response.json()["error"]["details"]) == {"code", "endpoint_kind"}
    assert ChannelType.objects.filter(code="cigna-portal").count() == 1
