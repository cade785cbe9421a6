"""Every admin page and action, per role, against the permission table (STYLE §16, §17).

Built from the admin registry: each registered model admin names a resource of the table, and
for viewer, operator, org_admin and sys_admin staff its list, add, change and delete pages and
its actions answer as the table says. A page may offer less than the table allows (history
is read-only), never more. Then the escalations found by the attack on the admin, each as the
request the attacker sent, refused with nothing written.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import Client, RequestFactory
from django.urls import reverse

from rcm import permissions
from rcm.admin import PLATFORM_SECTION, PlatformCatalogueAdmin, ServiceAdmin
from rcm.context import org_context
from rcm.lookups import UserRole
from rcm.permissions import PERMISSIONS
from tenants import services
from tenants.models import Endpoint, Invitation, Membership, Organization, User
from tests.conftest import PASSWORD
from tests.helpers import logged_in as _client
from tests.helpers import membership_end as _membership_end
from tests.rcm.test_route_security import _populate

STAFF_ROLES = (UserRole.VIEWER, UserRole.OPERATOR, UserRole.ORG_ADMIN, UserRole.SYS_ADMIN)
REGISTRY = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def _page(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def staff(org_a, sys_admin):
    """role -> a staff user of org A holding it (platform staff for sys_admin)."""
    found = {UserRole.SYS_ADMIN: sys_admin}
    for role in (UserRole.VIEWER, UserRole.OPERATOR, UserRole.ORG_ADMIN):
        with org_context(org_a.id):
            found[role] = services.user_update(user=org_a[role], actor=None, is_staff=True)
    return found


def test_every_admin_page_names_a_resource_of_the_table():
    problems = [
        f"{model._meta.label}: {type(model_admin).__name__} is not a ServiceAdmin"
        if not isinstance(model_admin, ServiceAdmin)
        else f"{model._meta.label}: resource {model_admin.resource!r} is not in the table"
        for model, model_admin in REGISTRY
        if not isinstance(model_admin, ServiceAdmin) or model_admin.resource not in PERMISSIONS
    ]
    assert not problems, "\n".join(problems)


def _page_failures(client, role: str, model, model_admin, obj) -> list[str]:
    """How one role's view of one admin page differs from the table."""

    def may(action):
        return permissions.allowed(role, model_admin.resource, action)

    label, failures = f"{role} on {model._meta.label}", []
    listing = client.get(_page(model, "changelist"))
    if listing.status_code != (200 if may(permissions.VIEW) else 403):
        failures.append(f"{label}: list {listing.status_code}")
    adding = client.get(_page(model, "add"))
    if not may(permissions.ADD) and adding.status_code != 403:
        failures.append(f"{label}: add page {adding.status_code}")
    if obj is not None:
        change = client.get(_page(model, "change", obj.pk))
        if change.status_code != (200 if may(permissions.VIEW) else 403):
            failures.append(f"{label}: change page {change.status_code}")
        # Without the table's change, the page is read-only: no form that could be posted.
        if change.status_code == 200 and not may(permissions.CHANGE) and "_save" in change.text:
            failures.append(f"{label}: may save")
        delete = client.get(_page(model, "delete", obj.pk))
        if not may(permissions.DELETE) and delete.status_code != 403:
            failures.append(f"{label}: delete page {delete.status_code}")
    action_form = listing.context["action_form"] if listing.status_code == 200 else None
    offered = (
        {name for name, _ in action_form.fields["action"].choices if name} if action_form else set()
    )
    for name in offered:
        needed = permissions.DELETE if name == "delete_selected" else permissions.RUN
        if not may(needed):
            failures.append(f"{label}: offered the action {name}")
    return failures


@pytest.mark.django_db
def test_every_page_and_action_answers_as_the_table_says_for_every_role(org_a, staff):
    _populate(org_a)
    failures, request = [], RequestFactory().get("/")
    with org_context(org_a.id):
        objects = {
            model: model_admin.get_queryset(request).order_by("pk").first()
            for model, model_admin in REGISTRY
        }
    for role, user in staff.items():
        client = _client(user)
        for model, model_admin in REGISTRY:
            failures += _page_failures(client, role, model, model_admin, objects[model])
    assert not failures, "\n".join(failures)


# -- the escalations found by the attack --------------------------------------------------------


@pytest.mark.django_db
def test_an_operator_cannot_make_an_org_admin_in_the_admin(org_a, staff):
    client = _client(staff[UserRole.OPERATOR])
    with org_context(org_a.id):
        members, users = Membership.objects.count(), User.objects.count()
    attempts = [
        (
            _page(Membership, "add"),
            {"email": "mole@evil.test", "role": "org_admin", "password1": "x" * 12},
        ),
        (_page(User, "add"), {"email": "mole@evil.test", "role": "org_admin"}),
    ]
    for url, body in attempts:
        body = {**body, "password2": body.get("password1", "")}
        assert client.post(url, body).status_code == 403, url
    with org_context(org_a.id):
        assert (Membership.objects.count(), User.objects.count()) == (members, users)
    assert not Client().login(email="mole@evil.test", password="x" * 12)


@pytest.mark.django_db
def test_an_operator_cannot_manage_what_the_api_keeps_for_org_admins(org_a, staff):
    _populate(org_a)
    client = _client(staff[UserRole.OPERATOR])
    with org_context(org_a.id):
        endpoint = Endpoint.objects.order_by("pk").first()
        name = endpoint.name
    refused = [
        client.post(_page(Endpoint, "change", endpoint.pk), {"name": "hijacked"}),
        client.post(_page(Endpoint, "delete", endpoint.pk), {"post": "yes"}),
        client.get(reverse("admin:tenants_apikey_changelist")),
        client.get(reverse("admin:tenants_auditevent_changelist")),
        client.post(_page(Organization, "change", org_a.id), {"name": "Renamed"}),
    ]
    assert [response.status_code for response in refused] == [403] * len(refused)
    with org_context(org_a.id):
        assert Endpoint.objects.get(pk=endpoint.pk).name == name
        assert Organization.objects.get().name == org_a.org.name


@pytest.mark.django_db
def test_an_org_admin_cannot_hand_out_or_touch_a_role_above_their_own(org_a, staff):
    client = _client(staff[UserRole.ORG_ADMIN])
    add = client.get(_page(Invitation, "add"))
    roles = {value for value, _ in add.context["adminform"].form.fields["role"].choices if value}
    assert UserRole.SYS_ADMIN not in roles and UserRole.ORG_ADMIN in roles
    with org_context(org_a.id):
        platform = Membership.objects.get(user=staff[UserRole.SYS_ADMIN])
    response = client.post(
        _page(Membership, "change", platform.pk), {"role": "viewer", "is_active": ""}
    )
    assert response.status_code == 403
    with org_context(org_a.id):
        platform.refresh_from_db()
        assert platform.role_id == UserRole.SYS_ADMIN and platform.is_active


@pytest.mark.django_db
def test_staff_without_a_live_home_membership_cannot_open_the_admin(org_a, staff):
    viewer = staff[UserRole.VIEWER]
    _membership_end(org_a, viewer, staff[UserRole.ORG_ADMIN])
    client = Client()
    assert client.login(email=viewer.email, password=PASSWORD) is True  # the password is right
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_the_index_groups_the_shared_catalogues_under_platform_for_platform_staff(org_a, staff):
    """Lookup tables and catalogues are every organization's: platform staff find them in one
    "Platform" section; an organization's own members see their apps' pages only."""
    shared = {
        model._meta.verbose_name_plural
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, PlatformCatalogueAdmin)
    }
    assert {"job statuses", "workflow statuses", "task types", "channel types"} <= shared
    for role, user in staff.items():
        page = _client(user).get("/admin/")
        apps = {app["name"]: app for app in page.context["app_list"]}
        listed = {e["name"].lower() for app in apps.values() for e in app["models"]}
        if role == UserRole.SYS_ADMIN:
            platform = {e["name"].lower() for e in apps[PLATFORM_SECTION]["models"]}
            assert platform == shared
            assert not (listed - platform) & shared  # only there
        else:
            assert PLATFORM_SECTION not in apps and not listed & shared, role
        assert not [name for name in listed if name.endswith(("statuss", "policys"))]


def test_home_is_the_console():
    response = Client().get("/")
    assert response.status_code == 302 and response["Location"] == reverse("console:home")
