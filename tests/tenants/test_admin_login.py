"""The admin's log-in door: throttled and audited like the API's, with one set of counters for
both, and refusals that tell the truth only to whoever proved the password."""

import pytest
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from rcm.context import org_context
from rcm.db.roles import as_owner
from rcm.lookups import UserRole
from tenants import services
from tenants.admin_login import NO_ADMIN_ACCESS, TOO_MANY_FAILURES
from tenants.authentication import INVALID_CREDENTIALS
from tenants.models import AuditEvent
from tests.conftest import PASSWORD
from tests.helpers import membership_end as _membership_end
from tests.helpers import staff_user

LOGIN_URL = reverse("admin:login")
TOKEN_URL = "/api/v2/auth/token/"
THROTTLED_PREFIX = TOO_MANY_FAILURES.split("{")[0]


@pytest.fixture
def staff(org_a):
    return staff_user(org_a, "ops@acme.test")


@pytest.fixture
def rates(settings):
    def set_rates(*, per_ip: str, per_email: str) -> None:
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {"login_ip": per_ip, "login_email": per_email},
        }

    return set_rates


def admin_login(email: str, password: str, ip: str = "127.0.0.1"):
    """(the form's errors, whether the client is now logged in)."""
    client = Client(REMOTE_ADDR=ip)
    response = client.post(LOGIN_URL, {"username": email, "password": password})
    if response.status_code == 302:
        return [], True
    return list(response.context["form"].non_field_errors()), False


def api_login(email: str, password: str, ip: str = "127.0.0.1"):
    client = APIClient(REMOTE_ADDR=ip)
    return client.post(TOKEN_URL, {"email": email, "password": password}, "json")


def _orgless_events() -> list[tuple]:
    """Audit rows of no organization (failed log-ins). No organization's context shows them,
    by design: they are read as the owner with row-level security lifted in a transaction
    that is rolled back."""
    with as_owner(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_event NO FORCE ROW LEVEL SECURITY")
        cursor.execute(
            "SELECT action, actor_email, ip_address, details::text FROM audit_event "
            "WHERE org_id IS NULL ORDER BY id"
        )
        rows = cursor.fetchall()
        transaction.set_rollback(True)
    return rows


# -- throttling ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_31_wrong_passwords_then_the_right_one_is_refused(staff):
    for _ in range(31):
        errors, logged_in = admin_login(staff.email, "guess")
        assert not logged_in
    errors, logged_in = admin_login(staff.email, PASSWORD)
    assert not logged_in
    assert len(errors) == 1 and errors[0].startswith(THROTTLED_PREFIX)


@pytest.mark.django_db
def test_failures_at_the_api_count_at_the_admin_and_back(staff, org_a, rates):
    rates(per_ip="100/min", per_email="3/min")
    for _ in range(3):
        assert api_login(staff.email, "guess").status_code == 401
    errors, logged_in = admin_login(staff.email, PASSWORD)
    assert not logged_in and errors[0].startswith(THROTTLED_PREFIX)

    other = org_a["viewer"].email
    for _ in range(3):
        assert admin_login(other, "guess") == ([INVALID_CREDENTIALS], False)
    assert api_login(other, PASSWORD).status_code == 429


@pytest.mark.django_db
def test_the_throttle_spares_other_emails_from_other_addresses(staff, org_a, rates):
    rates(per_ip="5/min", per_email="3/min")
    for _ in range(3):
        admin_login(staff.email, "guess", ip="10.0.0.66")
    for number in range(2):
        admin_login(f"guess{number}@acme.test", "guess", ip="10.0.0.66")
    # The guessing address is locked for every account...
    assert admin_login(org_a["viewer"].email, "guess", ip="10.0.0.66")[0][0].startswith(
        THROTTLED_PREFIX
    )
    # ...the guessed account from every address...
    assert admin_login(staff.email, PASSWORD, ip="10.0.0.7")[0][0].startswith(THROTTLED_PREFIX)
    # ...but another account from another address gets in.
    other = services.user_create(
        org_id=org_a.id, email="ops2@acme.test", role="org_admin", password=PASSWORD, is_staff=True
    )
    assert admin_login(other.email, PASSWORD, ip="10.0.0.7") == ([], True)


@pytest.mark.django_db
def test_successful_admin_logins_are_not_throttled(staff, rates):
    rates(per_ip="2/min", per_email="2/min")
    for _ in range(4):
        assert admin_login(staff.email, PASSWORD) == ([], True)


# -- what a refusal says ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_wrong_password_or_unknown_email_gets_the_generic_message(staff, org_a):
    assert admin_login(staff.email, "guess") == ([INVALID_CREDENTIALS], False)
    assert admin_login("nobody@nowhere.test", "guess") == ([INVALID_CREDENTIALS], False)
    # A member without admin access learns nothing without their password either.
    assert admin_login(org_a["viewer"].email, "guess") == ([INVALID_CREDENTIALS], False)


@pytest.mark.django_db
def test_a_non_staff_user_with_the_right_password_is_told_the_truth(org_a):
    assert admin_login(org_a["org_admin"].email, PASSWORD) == ([NO_ADMIN_ACCESS], False)


@pytest.mark.django_db
def test_staff_whose_home_membership_ended_are_told_the_truth(staff, org_a):
    _membership_end(org_a, staff, org_a["org_admin"])
    assert admin_login(staff.email, PASSWORD) == ([NO_ADMIN_ACCESS], False)


@pytest.mark.django_db
def test_a_sys_admin_logs_in(sys_admin):
    assert admin_login(sys_admin.email, PASSWORD) == ([], True)


# -- audit -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_every_failed_admin_login_is_audited_without_the_password(staff, org_a):
    admin_login(staff.email, "guess-one", ip="10.0.0.5")
    admin_login("nobody@nowhere.test", "guess-two", ip="10.0.0.5")
    admin_login(org_a["viewer"].email, PASSWORD, ip="10.0.0.5")
    admin_login(staff.email, PASSWORD, ip="10.0.0.5")  # succeeds: no failure event
    events = _orgless_events()
    assert [(action, email, ip) for action, email, ip, _ in events] == [
        ("auth.login_failed", staff.email, "10.0.0.5"),
        ("auth.login_failed", "nobody@nowhere.test", "10.0.0.5"),
        ("auth.login_failed", org_a["viewer"].email, "10.0.0.5"),
    ]
    details = [detail for *_, detail in events]
    assert all('"via": "admin"' in detail for detail in details)
    assert '"reason": "no_admin_access"' in details[2]
    assert not any(secret in detail for detail in details for secret in ("guess", PASSWORD))
    assert services.audit_chain_verify()[1] is None


@pytest.mark.django_db
def test_a_successful_admin_login_is_audited_in_the_home_organization(staff, org_a, sys_admin):
    assert admin_login(staff.email, PASSWORD, ip="10.0.0.6") == ([], True)
    assert admin_login(sys_admin.email, PASSWORD, ip="10.0.0.7") == ([], True)
    with org_context(org_a.id):
        events = AuditEvent.objects.filter(action="auth.login").order_by("id")
        seen = [(e.actor_id, e.object_id, e.ip_address, e.details) for e in events]
    assert seen == [
        (staff.pk, str(staff.pk), "10.0.0.6", {"role": UserRole.ORG_ADMIN, "via": "admin"}),
        (sys_admin.pk, str(sys_admin.pk), "10.0.0.7", {"role": UserRole.SYS_ADMIN, "via": "admin"}),
    ]
