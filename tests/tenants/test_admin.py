"""The admin UI: staff see and change only their organization's rows, platform catalogues are
sys_admin's to change, and a sys_admin acts in one organization at a time, audited."""

import uuid

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from rcm.context import org_context
from rcm.lookups import UserRole
from tenants import services
from tenants.admin import EMAIL_TAKEN, ORG_NOT_FOUND
from tenants.middleware import AdminOrgContextMiddleware
from tenants.models import (
    ApiKey,
    AuditEvent,
    ChannelType,
    Endpoint,
    Membership,
    Organization,
    User,
)
from tests.conftest import PASSWORD, invite_and_accept
from tests.helpers import NEW_CHANNEL_TYPE
from tests.helpers import logged_in as _logged_in
from tests.helpers import membership_end as _membership_end
from tests.helpers import messages_of as _messages
from tests.helpers import page_queries as _page_queries
from tests.helpers import staff_user as _staff

NEW_PASSWORD = "another-long-passphrase-9"


def _url(model: str, view: str = "changelist", *args, app: str = "tenants") -> str:
    return reverse(f"admin:{app}_{model}_{view}", args=args)


def _endpoint(tenant, name: str = "UHC") -> Endpoint:
    with org_context(tenant.id):
        return services.endpoint_create(
            org_id=tenant.id, name=name, channel_type=ChannelType.objects.get(code="uhc-portal")
        )


def _audit(tenant, **filters) -> list[AuditEvent]:
    with org_context(tenant.id):
        return list(AuditEvent.objects.filter(**filters))


@pytest.fixture
def staff_a(org_a):
    return _staff(org_a, "ops@acme.test")


@pytest.fixture
def staff_b(org_b):
    return _staff(org_b, "ops@bayside.test")


# -- who gets in ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_and_non_staff_are_sent_to_the_login_page(org_a):
    for client in (Client(), _logged_in(org_a["org_admin"])):
        response = client.get(_url("endpoint"))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.django_db
def test_staff_log_in_with_the_form_and_the_login_is_recorded_at_home(staff_a, org_a):
    client = Client()
    response = client.post(
        f"{reverse('admin:login')}?next=/admin/",
        {"username": staff_a.email.upper(), "password": PASSWORD},
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    page = client.get("/admin/")
    assert page.status_code == 200
    assert "Organization: <strong>Acme Billing</strong>" in page.text
    with org_context(org_a.id):
        assert User.objects.get(pk=staff_a.pk).last_login is not None


@pytest.mark.django_db
def test_staff_whose_home_membership_ended_see_nothing(staff_a, org_a):
    _membership_end(org_a, staff_a, org_a["org_admin"])
    client = _logged_in(staff_a)
    # The one access rule (rcm.admin.PlatformAdminSite): no live home membership, no admin.
    response = client.get(_url("endpoint"))
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert "not authorized to access this page" in client.get(response["Location"]).text


# -- one organization's rows ---------------------------------------------------------------


@pytest.mark.django_db
def test_staff_see_only_their_organizations_rows(staff_a, org_a, org_b):
    _endpoint(org_a, "Acme UHC")
    _endpoint(org_b, "Bayside UHC")
    client = _logged_in(staff_a)
    pages = {
        model: client.get(_url(model)).text
        for model in ("membership", "user", "endpoint", "organization")
    }
    assert org_a["viewer"].email in pages["membership"]
    assert org_a["viewer"].email in pages["user"]
    assert "Acme UHC" in pages["endpoint"]
    assert "Acme Billing" in pages["organization"]
    for page in pages.values():
        assert "bayside" not in page.lower()


@pytest.mark.django_db
def test_another_organizations_objects_are_not_found_and_not_changed(staff_a, org_b):
    endpoint = _endpoint(org_b)
    with org_context(org_b.id):
        membership = Membership.objects.get(user=org_b["viewer"])
    client = _logged_in(staff_a)
    for model, pk in [
        ("endpoint", endpoint.pk),
        ("membership", membership.pk),
        ("user", org_b["viewer"].pk),
        ("organization", org_b.id),
    ]:
        assert client.get(_url(model, "change", pk)).status_code == 404, model
    response = client.post(
        _url("endpoint", "change", endpoint.pk),
        {"name": "Hijacked", "channel_type": endpoint.channel_type_id, "config": "{}"},
    )
    assert response.status_code == 404
    assert client.post(_url("endpoint", "delete", endpoint.pk), {"post": "yes"}).status_code == 404
    with org_context(org_b.id):
        assert Endpoint.objects.get(pk=endpoint.pk).name == "UHC"


@pytest.mark.django_db
def test_an_endpoint_added_in_the_admin_belongs_to_the_org_in_context(staff_a, org_a, org_b):
    client = _logged_in(staff_a)
    uhc = ChannelType.objects.get(code="uhc-portal")
    response = client.post(
        _url("endpoint", "add"),
        {"name": "UHC", "channel_type": uhc.pk, "base_url": "", "config": "{}", "org": org_b.id},
    )
    assert response.status_code == 302, response.text
    with org_context(org_a.id):
        endpoint = Endpoint.objects.get(name="UHC")
    assert endpoint.org_id == org_a.id
    assert endpoint.config == {"max_concurrency": 4}
    assert len(_audit(org_a, action=services.AuditAction.ENDPOINT_CHANGED)) == 1
    assert not _audit(org_b)


@pytest.mark.django_db
@pytest.mark.parametrize("config", ['{"max_concurrency": 0}', "[]", '{"max_concurrency": "a"}'])
def test_an_endpoint_config_the_api_refuses_is_refused_here_too(staff_a, org_a, config):
    uhc = ChannelType.objects.get(code="uhc-portal")
    response = _logged_in(staff_a).post(
        _url("endpoint", "add"), {"name": "UHC", "channel_type": uhc.pk, "config": config}
    )
    assert response.status_code == 200
    assert "config" in response.context["adminform"].form.errors
    with org_context(org_a.id):
        assert not Endpoint.objects.exists()


# -- users and memberships -----------------------------------------------------------------


@pytest.mark.django_db
def test_users_and_members_are_never_added_in_the_admin(staff_a, sys_admin):
    # Accounts are created when an invitee redeems; members join by accepting.
    for user in (staff_a, sys_admin):
        client = _logged_in(user)
        for model in ("user", "membership"):
            assert client.get(_url(model, "add")).status_code == 403
            response = client.post(_url(model, "add"), {"email": "new@acme.test", "role": "viewer"})
            assert response.status_code == 403


@pytest.mark.django_db
def test_user_form_refuses_a_taken_email_and_mismatched_passwords(staff_a, org_a, org_b):
    viewer = org_a["viewer"]
    response = _logged_in(staff_a).post(
        _url("user", "change", viewer.pk),
        {
            "email": org_b["viewer"].email,
            "is_active": "on",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD + "x",
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["email"] == [EMAIL_TAKEN]
    assert "password2" in errors


@pytest.mark.django_db
def test_user_form_refuses_a_domain_another_organization_claimed(staff_a, sys_admin, org_a, org_b):
    with org_context(org_b.id):
        services.organization_update(org=org_b.org, actor=sys_admin, email_domain="beta.test")
    viewer = org_a["viewer"]
    response = _logged_in(staff_a).post(
        _url("user", "change", viewer.pk),
        {"email": "anyone@beta.test", "is_active": "on"},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["email"] == [services.EMAIL_DOMAIN_CLAIMED]
    with org_context(org_a.id):
        assert User.objects.get(pk=viewer.pk).email == viewer.email


@pytest.mark.django_db
def test_staff_change_the_password_of_a_user_homed_here(staff_a, org_a):
    viewer = org_a["viewer"]
    response = _logged_in(staff_a).post(
        _url("user", "change", viewer.pk),
        {
            "email": viewer.email,
            "full_name": "Renamed",
            "is_active": "on",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302, response.text
    with org_context(org_a.id):
        viewer = User.objects.get(pk=viewer.pk)
    assert viewer.full_name == "Renamed"
    assert viewer.check_password(NEW_PASSWORD)


@pytest.mark.django_db
def test_staff_cannot_make_or_touch_platform_staff(staff_a, sys_admin, org_a):
    client = _logged_in(staff_a)
    # The sys_admin is homed in org A: staff there may look, never reset the password.
    assert "View user" in client.get(_url("user", "change", sys_admin.pk)).text
    response = client.post(
        _url("user", "change", sys_admin.pk),
        {"email": sys_admin.email, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 403
    with org_context(org_a.id):
        assert User.objects.get(pk=sys_admin.pk).check_password(PASSWORD)


@pytest.mark.django_db
def test_members_homed_elsewhere_are_shown_but_not_editable(staff_a, org_a, org_b):
    guest = org_b["viewer"]
    invite_and_accept(org_a, guest, UserRole.VIEWER)
    client = _logged_in(staff_a)
    assert guest.email in client.get(_url("user")).text
    assert "View user" in client.get(_url("user", "change", guest.pk)).text
    response = client.post(_url("user", "change", guest.pk), {"email": "taken@over.test"})
    assert response.status_code == 403


@pytest.mark.django_db
def test_membership_changes_go_through_the_audited_services(staff_a, org_a, org_b):
    client = _logged_in(staff_a)
    with org_context(org_a.id):
        membership = Membership.objects.get(user=org_a["viewer"])
    response = client.post(_url("membership", "change", membership.pk), {"role": UserRole.OPERATOR})
    assert response.status_code == 302, response.text
    with org_context(org_a.id):
        membership.refresh_from_db()
    assert (membership.role_id, membership.is_active) == (UserRole.OPERATOR, False)
    actions = {event.action for event in _audit(org_a, object_id=str(membership.pk))}
    assert actions == {
        services.AuditAction.MEMBER_ROLE_CHANGED,
        services.AuditAction.MEMBER_DEACTIVATED,
    }


@pytest.mark.django_db
def test_a_refused_membership_change_is_a_message_and_changes_nothing(staff_a, org_a):
    with org_context(org_a.id):
        own = Membership.objects.get(user=staff_a)
    client = _logged_in(staff_a)
    url = _url("membership", "change", own.pk)
    response = client.post(url, {"role": UserRole.ORG_ADMIN})  # unticked: deactivate myself
    assert response.status_code == 302
    assert response["Location"] == url
    assert "cannot change your own role" in _messages(response)[0]
    with org_context(org_a.id):
        assert Membership.objects.get(pk=own.pk).is_active


# -- platform catalogues -------------------------------------------------------------------

CATALOGUE_ROWS = [
    ("tenants", "orgtypelu", "hospital"),
    ("tenants", "userrolelu", "viewer"),
    ("tenants", "channelauthtypelu", "oauth2"),
    ("workflows", "taskdomainlu", "claim"),
    ("workflows", "taskactionlu", "appeal"),
    ("workflows", "jobstatuslu", "failed"),
    ("workflows", "workflowstatuslu", "draft"),
    ("workflows", "requirementtypelu", "optional"),
    ("workflows", "tasksignaturesourcelu", "human"),
]
LOOKUP_CHANGE = {"description": "Changed", "sort_order": 99, "is_active": "on"}


@pytest.mark.django_db
@pytest.mark.parametrize(("app", "model", "pk"), CATALOGUE_ROWS)
def test_staff_read_lookups_and_sys_admin_changes_them(staff_a, sys_admin, app, model, pk):
    staff = _logged_in(staff_a)
    assert staff.get(_url(model, app=app)).status_code == 200
    change = _url(model, "change", pk, app=app)
    assert staff.get(change).context["title"].startswith("View")
    assert staff.post(change, LOOKUP_CHANGE).status_code == 403
    assert staff.get(_url(model, "add", app=app)).status_code == 403
    platform = _logged_in(sys_admin)
    response = platform.post(change, LOOKUP_CHANGE)
    assert response.status_code == 302, response.text
    assert apps.get_model(app, model).objects.get(pk=pk).description == "Changed"
    assert platform.post(_url(model, "delete", pk, app=app)).status_code == 403


@pytest.mark.django_db
def test_channel_types_are_read_only_to_staff_and_editable_by_sys_admin(staff_a, sys_admin):
    body = {**NEW_CHANNEL_TYPE, "auth_type": "username_password"}
    assert _logged_in(staff_a).post(_url("channeltype", "add"), body).status_code == 403
    uhc = ChannelType.objects.get(code="uhc-portal")
    change = _url("channeltype", "change", uhc.pk)
    assert _logged_in(staff_a).post(change, {**body, "code": "uhc-portal"}).status_code == 403
    response = _logged_in(sys_admin).post(_url("channeltype", "add"), body)
    assert response.status_code == 302, response.text
    assert ChannelType.objects.get(code="cigna-portal").name == "Cigna for HCP"


# -- keys and the audit trail --------------------------------------------------------------


@pytest.mark.django_db
def test_api_keys_are_listed_without_their_hash_and_revoked_by_action(staff_a, org_a):
    with org_context(org_a.id):
        api_key, key = services.api_key_create(
            org_id=org_a.id, user=org_a["api_user"], name="CI", created_by=org_a["org_admin"]
        )
    client = _logged_in(staff_a)
    for page in (client.get(_url("apikey")), client.get(_url("apikey", "change", api_key.pk))):
        assert api_key.prefix in page.text
        assert api_key.key_hash not in page.text
        assert key not in page.text
    assert client.get(_url("apikey", "add")).status_code == 403
    response = client.post(_url("apikey"), {"action": "revoke", "_selected_action": [api_key.pk]})
    assert response.status_code == 302
    with org_context(org_a.id):
        assert ApiKey.objects.get(pk=api_key.pk).revoked_at is not None
    assert _audit(org_a, action=services.AuditAction.API_KEY_REVOKED)


@pytest.mark.django_db
def test_audit_events_are_read_only_even_to_sys_admin(sys_admin, org_a):
    _endpoint(org_a)
    (event,) = _audit(org_a, action=services.AuditAction.ENDPOINT_CHANGED)
    client = _logged_in(sys_admin)
    assert services.AuditAction.ENDPOINT_CHANGED in client.get(_url("auditevent")).text
    assert client.get(_url("auditevent", "change", event.pk)).status_code == 200
    assert client.post(_url("auditevent", "change", event.pk), {}).status_code == 403
    assert client.get(_url("auditevent", "add")).status_code == 403
    assert client.post(_url("auditevent", "delete", event.pk), {"post": "yes"}).status_code == 403
    assert len(_audit(org_a)) == 1


# -- sys_admin acting in another organization ----------------------------------------------


@pytest.mark.django_db
def test_sys_admin_switches_into_another_organization_and_is_audited(sys_admin, org_a, org_b):
    client = _logged_in(sys_admin)
    assert org_a["viewer"].email in client.get(_url("membership")).text
    assert not _audit(org_a, action=services.AuditAction.PLATFORM_ACT)  # home: not audited

    response = client.post(reverse("admin:switch_org"), {"org_id": str(org_b.id)})
    assert response.status_code == 302
    assert client.session[AdminOrgContextMiddleware.SESSION_KEY] == str(org_b.id)
    (switch,) = _audit(org_b, action=services.AuditAction.PLATFORM_ACT)
    assert (switch.actor_id, switch.details) == (sys_admin.pk, {"switch": True})

    page = client.get(_url("membership"))
    assert org_b["viewer"].email in page.text
    assert org_a["viewer"].email not in page.text
    assert "Organization: <strong>Bayside Hospital</strong>" in page.text
    acts = _audit(org_b, action=services.AuditAction.PLATFORM_ACT, details__path=_url("membership"))
    assert len(acts) == 1  # once per request, however many queries it ran
    assert not _audit(org_a, action=services.AuditAction.PLATFORM_ACT)

    client.post(reverse("admin:switch_org"), {"org_id": str(org_a.id)})
    assert AdminOrgContextMiddleware.SESSION_KEY not in client.session
    assert org_a["viewer"].email in client.get(_url("membership")).text


@pytest.mark.django_db
def test_switching_needs_an_active_organization_and_a_sys_admin(sys_admin, staff_a, org_b):
    client = _logged_in(sys_admin)
    response = client.post(reverse("admin:switch_org"), {"org_id": str(uuid.uuid4())})
    assert response.status_code == 200
    assert response.context["form"].errors["org_id"] == [ORG_NOT_FOUND]
    assert AdminOrgContextMiddleware.SESSION_KEY not in client.session
    staff = _logged_in(staff_a)
    assert staff.get(reverse("admin:switch_org")).status_code == 403
    assert staff.post(reverse("admin:switch_org"), {"org_id": str(org_b.id)}).status_code == 403
    assert AdminOrgContextMiddleware.SESSION_KEY not in staff.session


@pytest.mark.django_db
def test_a_switch_into_an_organization_since_deactivated_falls_back_home(sys_admin, org_a, org_b):
    client = _logged_in(sys_admin)
    client.post(reverse("admin:switch_org"), {"org_id": str(org_b.id)})
    with org_context(org_b.id):
        services.organization_update(org=org_b.org, actor=sys_admin, is_active=False)
    page = client.get(_url("membership")).text
    assert org_a["viewer"].email in page
    assert org_b["viewer"].email not in page


@pytest.mark.django_db
def test_sys_admin_changes_their_own_password_from_another_organization(sys_admin, org_a, org_b):
    client = _logged_in(sys_admin)
    client.post(reverse("admin:switch_org"), {"org_id": str(org_b.id)})
    response = client.post(
        reverse("admin:password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.text
    with org_context(org_a.id):
        assert User.objects.get(pk=sys_admin.pk).check_password(NEW_PASSWORD)


# -- every page, and the organization itself -----------------------------------------------


@pytest.mark.django_db
def test_every_admin_page_renders_for_staff_and_sys_admin(staff_a, sys_admin, org_a):
    _endpoint(org_a)  # an endpoint and an audit event to show
    with org_context(org_a.id):
        services.api_key_create(
            org_id=org_a.id, user=org_a["api_user"], name="CI", created_by=staff_a
        )
        services.invitation_create(
            org_id=org_a.id,
            actor=staff_a,
            actor_role="org_admin",
            email="invitee@elsewhere.test",
            role="viewer",
        )
    for user in (staff_a, sys_admin):
        client = _logged_in(user)
        assert client.get("/admin/").status_code == 200
        for model, model_admin in admin.site._registry.items():
            opts = model._meta
            if opts.app_label != "tenants":
                continue  # tests/workflows/test_admin.py renders the workflows pages
            changelist = client.get(_url(opts.model_name, app=opts.app_label))
            assert changelist.status_code == 200, opts.label
            first = changelist.context["cl"].result_list[0]
            change = _url(opts.model_name, "change", first.pk, app=opts.app_label)
            assert client.get(change).status_code == 200, opts.label
            add = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
            with org_context(user.org_id):
                may_add = model_admin.has_add_permission(add.wsgi_request)
            expected = 200 if may_add else 403
            assert add.status_code == expected, (user.email, opts.label)


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["user", "membership"])
def test_member_lists_run_the_same_queries_for_more_rows(staff_a, org_a, model):
    client = _logged_in(staff_a)
    client.get(_url(model))  # warm the session and content-type caches

    before = _page_queries(client, _url(model))
    with org_context(org_a.id):
        for number in range(3):
            services.user_create(org_id=org_a.id, email=f"m{number}@acme.test", role="viewer")
    assert _page_queries(client, _url(model)) == before


@pytest.mark.django_db
def test_staff_rename_their_organization_and_only_sys_admin_creates_one(staff_a, sys_admin, org_a):
    client = _logged_in(staff_a)
    change = _url("organization", "change", org_a.id)
    response = client.post(change, {"name": "Acme Revenue", "email_domain": "acme.test"})
    assert response.status_code == 302, response.text
    (event,) = _audit(org_a, action=services.AuditAction.ORG_CHANGED)
    # The email domain is read-only to them: verified ownership, set by platform staff.
    assert event.details == {"fields": ["name"]}
    with org_context(org_a.id):
        assert Organization.objects.get().email_domain is None
    assert client.get(_url("organization", "add")).status_code == 403

    body = {"name": "Cobalt Credentialing", "org_type": "credentialer", "email_domain": ""}
    response = _logged_in(sys_admin).post(_url("organization", "add"), body)
    assert response.status_code == 302, response.text
    assert response["Location"].startswith(f"{reverse('admin:switch_org')}?org_id=")
    created = uuid.UUID(response["Location"].rsplit("=", 1)[1])
    with org_context(created):
        assert Organization.objects.get().name == "Cobalt Credentialing"


@pytest.mark.django_db
def test_user_edits_in_the_admin_are_audited_without_values(staff_a, org_a):
    from tenants.models import AuditEvent

    client = Client()
    client.force_login(staff_a)
    target = org_a["viewer"]
    url = f"/admin/tenants/user/{target.pk}/change/"
    response = client.post(
        url,
        {
            "email": target.email,
            "full_name": "Renamed Viewer",
            "is_active": "on",
            "password1": "a-brand-new-password-9",
            "password2": "a-brand-new-password-9",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    with org_context(org_a.id):
        event = AuditEvent.objects.get(action="user.changed")
        target.refresh_from_db()
    assert event.details == {"fields": ["full_name", "password"]}
    assert target.full_name == "Renamed Viewer"
    assert target.check_password("a-brand-new-password-9")
