"""Memberships by invitation: nobody joins an organization without accepting from their own
account (or creating one with the mailed token), inviting reveals nothing about accounts, and
an organization's claimed email domain is its own."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from rcm.context import org_context
from rcm.lookups import UserRole
from tenants import selectors, services, throttling
from tenants.models import AuditEvent, Invitation, InvitationStatus, Membership
from tests.conftest import PASSWORD, client_for
from tests.helpers import logged_in as _staff_client
from tests.helpers import messages_of, staff_user

INVITATIONS = "/api/v2/invitations/"
MINE = "/api/v2/me/invitations/"
REDEEM = "/api/v2/invitations/redeem/"
TOKEN_URL = "/api/v2/auth/token/"
NEW_PASSWORD = "a-chosen-passphrase-42"


def _token_from(mail) -> str:
    return re.search(r"/invitations/accept/([^/\s]+)/", mail.body).group(1)


@pytest.fixture
def invite(api, mailoutbox, django_capture_on_commit_callbacks):
    """``invite(tenant, email, role)`` through the API as its org_admin: (response, token)."""

    def send(tenant, email: str, role: str = "viewer"):
        before = len(mailoutbox)
        with django_capture_on_commit_callbacks(execute=True):
            response = api(tenant, "org_admin").post(
                INVITATIONS, {"email": email, "role": role}, "json"
            )
        mails = mailoutbox[before:]
        return response, (_token_from(mails[-1]) if mails else None)

    return send


@pytest.fixture
def beta_domain(org_b, sys_admin):
    """Org B has claimed beta.test (platform staff verified it)."""
    with org_context(org_b.id):
        services.organization_update(org=org_b.org, actor=sys_admin, email_domain="beta.test")


def _login(email: str, password: str = PASSWORD, org_id=None):
    body = {"email": email, "password": password}
    if org_id is not None:
        body["org_id"] = str(org_id)
    return APIClient().post(TOKEN_URL, body, "json")


def _jwt(user, tenant) -> APIClient:
    return client_for(user, tenant.id)


# -- the pre-provisioned account -----------------------------------------------------------


@pytest.mark.django_db
def test_a_pre_provisioned_account_never_walks_into_the_domains_organization(
    invite, org_a, org_b, beta_domain
):
    # A cannot create an account under B's domain: refused, nothing written.
    with pytest.raises(services.ApplicationError) as refused:
        services.user_create(
            org_id=org_a.id, email="new.hire@beta.test", role="viewer", password="chosen-by-a-1"
        )
    assert (refused.value.code, refused.value.status) == ("email_domain_claimed", 403)
    assert refused.value.message == services.EMAIL_DOMAIN_CLAIMED
    assert selectors.auth_user_by_email(email="new.hire@beta.test") is None
    # Nor through an invitation of its own: the invitee's redeem is refused the same way.
    response, token = invite(org_a, "new.hire@beta.test")
    assert response.status_code == 202
    response = APIClient().post(
        REDEEM, {"token": token, "full_name": "A's pick", "password": "chosen-by-a-1"}, "json"
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "email_domain_claimed"
    assert selectors.auth_user_by_email(email="new.hire@beta.test") is None


@pytest.mark.django_db
def test_an_existing_account_is_invited_never_added_and_its_password_never_opens_b(
    invite, org_a, org_b
):
    # Created in A before anyone claimed a domain: A chose its password.
    hire = services.user_create(
        org_id=org_a.id, email="new.hire@beta.test", role="viewer", password=PASSWORD
    )
    response, _ = invite(org_b, "New.Hire@beta.test", "operator")
    assert response.status_code == 202
    assert response.json()["email"] == "new.hire@beta.test"
    # Not a member of B until they accept: A's password opens nothing there.
    assert _login(hire.email, org_id=org_b.id).status_code == 401
    users_of_b = _jwt(org_b["org_admin"], org_b).get("/api/v2/users/").text
    assert hire.email not in users_of_b
    client = _jwt(hire, org_a)
    (offered,) = client.get(MINE).json()["results"]
    assert client.post(f"{MINE}{offered['id']}/accept/").status_code == 200
    response = _login(hire.email, org_id=org_b.id)
    assert response.status_code == 200 and response.json()["role"] == "operator"
    assert hire.email in _jwt(org_b["org_admin"], org_b).get("/api/v2/users/").text


# -- inviting reveals nothing --------------------------------------------------------------


@pytest.mark.django_db
def test_inviting_an_existing_and_an_unknown_email_answers_alike(invite, org_a, org_b):
    existing, _ = invite(org_a, org_b["operator"].email)
    unknown, _ = invite(org_a, "nobody@nowhere.test")
    assert existing.status_code == unknown.status_code == 202

    def shape(response):
        body = response.json()
        return {
            key: value
            for key, value in body.items()
            if key not in {"id", "email", "created_at", "expires_at"}
        }

    assert shape(existing) == shape(unknown)
    assert set(existing.json()) == set(unknown.json())
    for response in (existing, unknown):
        assert org_b["operator"].full_name not in response.text
        assert str(org_b.id) not in response.text
        assert "token" not in response.text


@pytest.mark.django_db
def test_the_token_is_mailed_after_commit_and_only_its_hash_is_stored(invite, org_a, mailoutbox):
    response, token = invite(org_a, "Fresh@Example.test", "operator")
    (mail,) = mailoutbox
    assert mail.to == ["fresh@example.test"]
    assert "Acme Billing" in mail.body and "Org_Admin of Acme Billing" in mail.body
    with org_context(org_a.id):
        invitation = Invitation.objects.get(pk=response.json()["id"])
    assert invitation.token_hash == services.secret_token_hash(token)
    assert token not in response.text
    listed = _jwt(org_a["org_admin"], org_a).get(INVITATIONS).text
    assert token not in listed and invitation.token_hash not in listed


@pytest.mark.django_db
def test_a_failed_mail_is_logged_and_the_invitation_stands(
    api, org_a, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    def broken(*args, **kwargs):
        raise ConnectionRefusedError("no mail server")

    monkeypatch.setattr(services, "send_mail", broken)
    with django_capture_on_commit_callbacks(execute=True):
        response = api(org_a, "org_admin").post(
            INVITATIONS, {"email": "x@example.test", "role": "viewer"}, "json"
        )
    assert response.status_code == 202
    assert "could not be sent" in caplog.text
    with org_context(org_a.id):
        assert Invitation.objects.filter(email="x@example.test").exists()


@pytest.mark.django_db
def test_inviting_again_renews_the_pending_invitation(invite, org_a):
    first, first_token = invite(org_a, "twice@example.test", "viewer")
    again, second_token = invite(org_a, "twice@example.test", "operator")
    assert again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again.json()["role"] == "operator"
    assert first_token != second_token
    response = APIClient().post(
        REDEEM, {"token": first_token, "full_name": "Old link", "password": NEW_PASSWORD}, "json"
    )
    assert response.status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"email": "x@example.test", "role": "sys_admin"},
        {"email": "x@example.test", "role": "emperor"},
        {"email": "not-an-email", "role": "viewer"},
        {"role": "viewer"},
        {"email": "x@example.test", "role": "viewer", "password": "smuggled-in-1"},
        {"email": "x@example.test", "role": "viewer", "org_id": "anything"},
    ],
)
def test_bad_invitation_input_is_400_and_writes_nothing(api, org_a, body, mailoutbox):
    response = api(org_a, "org_admin").post(INVITATIONS, body, "json")
    assert response.status_code == 400
    with org_context(org_a.id):
        assert not Invitation.objects.exists()
    assert mailoutbox == []


@pytest.mark.django_db
def test_a_member_already_here_is_409_and_a_role_above_ones_own_is_refused(api, org_a):
    response = api(org_a, "org_admin").post(
        INVITATIONS, {"email": org_a["viewer"].email.upper(), "role": "viewer"}, "json"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_member"
    with org_context(org_a.id), pytest.raises(services.ApplicationError) as refused:
        services.invitation_create(
            org_id=org_a.id,
            actor=org_a["operator"],
            actor_role="operator",
            email="y@example.test",
            role="org_admin",
        )
    assert (refused.value.code, refused.value.message) == (
        "role_above_own",
        services.ROLE_ABOVE_OWN,
    )
    assert services.invitable_roles(own_role=UserRole.SYS_ADMIN).count(UserRole.SYS_ADMIN) == 0


# -- the invitee ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_invitee_lists_accepts_and_declines(invite, org_a, org_b, sys_admin):
    guest = org_b["viewer"]
    invite(org_a, guest.email, "operator")
    third = services.organization_create(name="Cobalt", org_type="credentialer")
    with org_context(third.id):
        boss = services.user_create(org_id=third.id, email="boss@cobalt.test", role="org_admin")
        services.invitation_create(
            org_id=third.id, actor=boss, actor_role="org_admin", email=guest.email, role="viewer"
        )
    client = _jwt(guest, org_b)
    listed = client.get(MINE).json()["results"]
    assert {(row["org_name"], row["role"]) for row in listed} == {
        ("Acme Billing", "operator"),
        ("Cobalt", "viewer"),
    }
    assert {row["invited_by_name"] for row in listed} == {
        "Org_Admin of Acme Billing",
        "boss@cobalt.test",
    }
    by_org = {row["org_name"]: row["id"] for row in listed}
    response = client.post(f"{MINE}{by_org['Acme Billing']}/accept/")
    assert response.status_code == 200
    assert (response.json()["org_id"], response.json()["role"]) == (str(org_a.id), "operator")
    assert client.post(f"{MINE}{by_org['Cobalt']}/decline/").status_code == 204
    assert client.get(MINE).json()["results"] == []
    with org_context(org_a.id):
        added = AuditEvent.objects.get(action=services.AuditAction.MEMBER_ADDED)
    assert added.details["invitation_id"] == by_org["Acme Billing"]
    with org_context(third.id):
        assert Invitation.objects.get().status == "declined"
        assert not Membership.objects.filter(user=guest).exists()
    # Accepting twice is refused: it is no longer open.
    response = client.post(f"{MINE}{by_org['Acme Billing']}/accept/")
    assert response.status_code == 409


@pytest.mark.django_db
def test_nobody_accepts_someone_elses_invitation(invite, org_a, org_b):
    response, _ = invite(org_a, org_b["viewer"].email)
    invitation_id = response.json()["id"]
    intruder = _jwt(org_b["operator"], org_b)
    assert intruder.get(MINE).json()["results"] == []
    for answer in ("accept", "decline"):
        response = intruder.post(f"{MINE}{invitation_id}/{answer}/")
        assert response.status_code == 404
    with org_context(org_a.id):
        assert Invitation.objects.get().status == "pending"
        assert not Membership.objects.filter(user=org_b["operator"]).exists()


@pytest.mark.django_db
def test_expired_and_revoked_invitations_are_refused(invite, api, org_a, org_b):
    guest = org_b["viewer"]
    expired, _ = invite(org_a, guest.email)
    with org_context(org_a.id):
        Invitation.objects.filter(pk=expired.json()["id"]).update(
            expires_at=timezone.now() - timedelta(minutes=1)
        )
    client = _jwt(guest, org_b)
    assert client.get(MINE).json()["results"] == []
    response = client.post(f"{MINE}{expired.json()['id']}/accept/")
    assert response.status_code == 409
    assert response.json()["error"]["message"] == services.INVITATION_EXPIRED

    other = org_b["operator"]
    revoked, _ = invite(org_a, other.email)
    url = f"{INVITATIONS}{revoked.json()['id']}/revoke/"
    assert api(org_a, "org_admin").post(url).json()["status"] == "revoked"
    assert api(org_a, "org_admin").post(url).status_code == 409
    response = _jwt(other, org_b).post(f"{MINE}{revoked.json()['id']}/accept/")
    assert response.status_code == 409
    assert response.json()["error"]["message"] == services.INVITATION_NOT_PENDING
    with org_context(org_a.id):
        assert not Membership.objects.filter(user__in=[guest, other]).exists()


@pytest.mark.django_db
def test_resend_mails_a_new_link_and_the_old_one_stops(
    invite, api, org_a, mailoutbox, django_capture_on_commit_callbacks
):
    response, old_token = invite(org_a, "late@example.test")
    with django_capture_on_commit_callbacks(execute=True):
        resent = api(org_a, "org_admin").post(f"{INVITATIONS}{response.json()['id']}/resend/")
    assert resent.status_code == 202
    new_token = _token_from(mailoutbox[-1])
    assert new_token != old_token
    body = {"full_name": "Late Comer", "password": NEW_PASSWORD}
    assert APIClient().post(REDEEM, {**body, "token": old_token}, "json").status_code == 404
    assert APIClient().post(REDEEM, {**body, "token": new_token}, "json").status_code == 201


# -- redeeming -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_redeem_creates_the_account_with_the_invitees_own_password(invite, org_a):
    _, token = invite(org_a, "newbie@example.test", "operator")
    response = APIClient().post(
        REDEEM, {"token": token, "full_name": "New Bie", "password": NEW_PASSWORD}, "json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["email"] == "newbie@example.test" and body["org_id"] == str(org_a.id)
    login = _login("newbie@example.test", NEW_PASSWORD)
    assert login.status_code == 200 and login.json()["role"] == "operator"
    again = APIClient().post(
        REDEEM, {"token": token, "full_name": "Again", "password": NEW_PASSWORD}, "json"
    )
    assert again.status_code == 404
    assert again.json()["error"]["message"] == services.INVITATION_INVALID


@pytest.mark.django_db
def test_redeem_for_an_existing_account_is_409_and_changes_nothing(invite, org_a, org_b):
    guest = org_b["viewer"]
    _, token = invite(org_a, guest.email)
    response = APIClient().post(
        REDEEM, {"token": token, "full_name": "Hijack", "password": NEW_PASSWORD}, "json"
    )
    assert response.status_code == 409
    assert response.json()["error"]["message"] == services.ACCOUNT_EXISTS
    assert _login(guest.email, NEW_PASSWORD).status_code == 401
    with org_context(org_a.id):
        assert Invitation.objects.get().status == "pending"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"token": "x", "full_name": "A"},
        {"token": "x", "full_name": "A", "password": NEW_PASSWORD, "role": "org_admin"},
        {"full_name": "A", "password": NEW_PASSWORD},
    ],
)
def test_bad_redeem_input_is_400(anon, body):
    assert anon.post(REDEEM, body, "json").status_code == 400


@pytest.mark.django_db
def test_a_weak_password_is_refused_and_nothing_is_written(invite, org_a):
    _, token = invite(org_a, "weak@example.test")
    response = APIClient().post(
        REDEEM, {"token": token, "full_name": "W", "password": "password"}, "json"
    )
    assert response.status_code == 400
    assert "password" in response.json()["error"]["details"]
    assert selectors.auth_user_by_email(email="weak@example.test") is None


@pytest.mark.django_db
def test_wrong_tokens_are_throttled(anon, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "redeem_ip": "2/min",
        },
    }
    body = {"token": "guess", "full_name": "G", "password": NEW_PASSWORD}
    assert [anon.post(REDEEM, body, "json").status_code for _ in range(3)] == [404, 404, 429]
    page = Client().get(reverse("invitation-accept-page", args=["guess"]))
    assert page.status_code == 429 and throttling.REDEEM_THROTTLED in page.text


# -- email domains -------------------------------------------------------------------------


@pytest.mark.django_db
def test_only_platform_staff_set_the_email_domain(api, org_a, sys_admin):
    url = "/api/v2/organizations/current/"
    response = api(org_a, "org_admin").patch(url, {"email_domain": "acme.example"}, "json")
    assert response.status_code == 403
    assert response.json()["error"]["message"] == services.DOMAIN_STAFF_ONLY
    staff = client_for(sys_admin, org_a.id, role="sys_admin")
    response = staff.patch(url, {"email_domain": "acme.example"}, "json")
    assert response.status_code == 200 and response.json()["email_domain"] == "acme.example"


@pytest.mark.django_db
def test_an_email_change_into_a_claimed_domain_is_refused(org_a, org_b, beta_domain):
    viewer = org_a["viewer"]
    with org_context(org_a.id), pytest.raises(services.ApplicationError) as refused:
        services.user_update(user=viewer, actor=org_a["org_admin"], email="viewer@beta.test")
    assert refused.value.code == "email_domain_claimed"
    # The domain's own organization may.
    with org_context(org_b.id):
        services.user_update(
            user=org_b["viewer"], actor=org_b["org_admin"], email="viewer@beta.test"
        )


# -- the admin and the public page ---------------------------------------------------------


@pytest.mark.django_db
def test_staff_invite_in_the_admin_and_the_invitee_accepts_under_my_invitations(
    org_a, org_b, mailoutbox, django_capture_on_commit_callbacks
):
    admin_a = staff_user(org_a, "ops@acme.test")
    guest = staff_user(org_b, "ops@bayside.test", role="viewer")
    client = _staff_client(admin_a)
    add = reverse("admin:tenants_invitation_add")
    roles = {
        choice[0] for choice in client.get(add).context["adminform"].form.fields["role"].choices
    }
    assert "sys_admin" not in roles and "org_admin" in roles
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(add, {"email": guest.email, "role": "operator"})
    assert response.status_code == 302, response.text
    (mail,) = mailoutbox
    token = _token_from(mail)
    page = client.get(reverse("admin:tenants_invitation_changelist")).text
    assert guest.email in page and token not in page

    invitee = _staff_client(guest)
    mine = reverse("admin:my_invitations")
    assert "Acme Billing" in invitee.get(mine).text
    (offered,) = selectors.invitations_open_for_user(user=guest)
    response = invitee.post(mine, {"invitation_id": offered.id, "answer": "accept"})
    assert response.status_code == 302
    with org_context(org_a.id):
        membership = Membership.objects.get(user=guest)
    assert membership.role_id == "operator" and membership.is_active
    # Someone else posting the id is told it does not exist and changes nothing.
    response = _staff_client(admin_a).post(mine, {"invitation_id": offered.id, "answer": "decline"})
    assert response.status_code == 302


@pytest.mark.django_db
def test_the_admin_page_csrf_protects_answers(org_b):
    guest = services.user_create(
        org_id=org_b.id, email="ops@bayside.test", role="viewer", password=PASSWORD, is_staff=True
    )
    client = Client(enforce_csrf_checks=True)
    client.force_login(guest)
    response = client.post(reverse("admin:my_invitations"), {"invitation_id": 1})
    assert response.status_code == 403


@pytest.mark.django_db
def test_the_public_page_creates_an_account_or_sends_to_log_in(invite, org_a, org_b):
    _, token = invite(org_a, "page@example.test", "viewer")
    url = reverse("invitation-accept-page", args=[token])
    assert Client().get(url).status_code == 200
    response = Client().post(
        url, {"full_name": "Page Person", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    assert response.status_code == 200 and "Your account is ready" in response.text
    assert _login("page@example.test", NEW_PASSWORD).status_code == 200
    # Spent: a clear message, 404, nothing written.
    response = Client().get(url)
    assert response.status_code == 404 and services.INVITATION_INVALID in response.text
    assert Client().get(reverse("invitation-accept-page", args=["junk"])).status_code == 404

    _, token = invite(org_a, org_b["viewer"].email, "viewer")
    response = Client().get(reverse("invitation-accept-page", args=[token]))
    assert "log in to it and accept" in response.text


@pytest.mark.django_db
def test_api_keys_answer_no_invitations(api, org_a):
    with org_context(org_a.id):
        _, key = services.api_key_create(
            org_id=org_a.id, user=org_a["api_user"], name="robot", created_by=org_a["org_admin"]
        )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    response = client.get(MINE)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "jwt_required"


def _two_invitations(org_a, admin_a) -> tuple[Invitation, Invitation]:
    """Open invitations of one@ and two@example.test into ``org_a``, from ``admin_a``."""
    with org_context(org_a.id):
        return tuple(
            services.invitation_create(
                org_id=org_a.id, actor=admin_a, actor_role="org_admin", email=email, role="viewer"
            )
            for email in ("one@example.test", "two@example.test")
        )


@pytest.mark.django_db
def test_admin_actions_revoke_and_resend(org_a, mailoutbox, django_capture_on_commit_callbacks):
    admin_a = staff_user(org_a, "ops@acme.test")
    first, second = _two_invitations(org_a, admin_a)
    client = _staff_client(admin_a)
    changelist = reverse("admin:tenants_invitation_changelist")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(changelist, {"action": "resend", "_selected_action": [second.pk]})
    assert response.status_code == 302
    assert [mail.to for mail in mailoutbox] == [["two@example.test"]]
    client.post(changelist, {"action": "revoke", "_selected_action": [first.pk]})
    with org_context(org_a.id):
        statuses = dict(Invitation.objects.values_list("email", "status"))
    assert statuses == {"one@example.test": "revoked", "two@example.test": "pending"}


@pytest.mark.django_db
def test_an_invitation_answered_after_the_page_is_refused_alone(org_a, monkeypatch):
    """Revoking what was accepted meanwhile is one refusal on the page, not an error page, and
    the other selected invitations are still revoked."""
    admin_a = staff_user(org_a, "ops@acme.test")
    first, second = _two_invitations(org_a, admin_a)
    revoke = services.invitation_revoke

    def accepted_meanwhile(*, invitation, **kwargs):
        if invitation.pk == first.pk:
            Invitation.objects.filter(pk=first.pk).update(status=InvitationStatus.ACCEPTED)
        return revoke(invitation=invitation, **kwargs)

    monkeypatch.setattr(services, "invitation_revoke", accepted_meanwhile)
    response = _staff_client(admin_a).post(
        reverse("admin:tenants_invitation_changelist"),
        {"action": "revoke", "_selected_action": [first.pk, second.pk]},
    )
    assert response.status_code == 302
    assert messages_of(response) == [
        f"Invitation {first.pk}: {services.INVITATION_NOT_PENDING}",
        "Revoked 1 invitation.",
    ]
    with org_context(org_a.id):
        statuses = dict(Invitation.objects.values_list("email", "status"))
    assert statuses == {"one@example.test": "accepted", "two@example.test": "revoked"}
