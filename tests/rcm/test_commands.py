"""Management commands: the demo seed, and the audit chain's verify and purge."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from rcm.context import org_context
from rcm.db.roles import as_owner
from rcm.lookups import OrgType, UserRole
from tenants import selectors, services
from tenants.demo import DEMO_ORG_NAME, demo_email
from tenants.models import Endpoint, Membership, Organization, User

# "  operator@demo.rcm.test  <password>  (operator; ...)": one line per login seed_demo prints.
LOGIN_LINE = re.compile(r"^\s+(\S+@demo\.rcm\.test)\s+(\S+)\s+\(", re.MULTILINE)


def run(command: str) -> str:
    out = StringIO()
    call_command(command, stdout=out)
    return out.getvalue()


def demo_user_ids() -> dict[str, object]:
    users = {
        role: selectors.auth_user_by_email(email=demo_email(role)) for role in UserRole.ordered()
    }
    return {role: user.pk if user else None for role, user in users.items()}


def demo_org_id():
    return selectors.auth_user_by_email(email=demo_email(UserRole.ADMIN)).org_id


# -- seed_demo -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_seed_demo_creates_one_working_login_per_role():
    logins = dict(LOGIN_LINE.findall(run("seed_demo")))

    assert set(logins) == {demo_email(role) for role in UserRole.ordered()}
    for email, password in logins.items():
        assert authenticate(None, email=email, password=password) is not None, email
    with org_context(demo_org_id()):
        org = Organization.objects.get()
        roles = dict(User.objects.values_list("email", "role"))
        staff = set(User.objects.filter(is_staff=True).values_list("role", flat=True))
        member_roles = set(Membership.objects.values_list("role", flat=True))
        endpoints = [endpoint.channel_type.code for endpoint in Endpoint.objects.all()]
    assert (org.name, org.org_type_id) == (DEMO_ORG_NAME, OrgType.BILLING_FIRM)
    assert roles == {demo_email(role): role for role in UserRole.ordered()}
    assert member_roles == set(UserRole.ordered())
    assert staff == {UserRole.ADMIN, UserRole.ORG_ADMIN, UserRole.OPERATOR, UserRole.SYS_ADMIN}
    assert endpoints == ["uhc-portal"]


@pytest.mark.django_db
def test_seed_demo_a_second_time_creates_nothing_and_prints_no_password():
    first = run("seed_demo")
    passwords = [password for _, password in LOGIN_LINE.findall(first)]
    users_before = demo_user_ids()

    second = run("seed_demo")

    assert "nothing created" in second
    assert LOGIN_LINE.findall(second) == []
    assert not [password for password in passwords if password in second]
    assert demo_user_ids() == users_before
    with org_context(demo_org_id()):
        assert Endpoint.objects.count() == 1
        assert Membership.objects.count() == len(UserRole.ordered())


@pytest.mark.django_db
def test_seed_demo_refuses_a_foreign_organization_with_the_demo_name():
    services.organization_create(name=DEMO_ORG_NAME, org_type=OrgType.HOSPITAL)

    with pytest.raises(CommandError, match="has none of the demo users"):
        run("seed_demo")


# -- audit_verify and audit_purge ------------------------------------------------------------


def record_events(org_id, count: int) -> list[int]:
    return [
        services.audit_event_record(
            action="test.event", org_id=org_id, actor_email="t@x.test", object_id=str(number)
        )
        for number in range(count)
    ]


@pytest.mark.django_db
def test_audit_verify_passes_on_a_fresh_chain(org_a, org_b):
    before, _ = services.audit_chain_verify()
    record_events(org_a.id, 3)
    record_events(org_b.id, 2)

    out = run("audit_verify")

    assert f"Audit chain intact: {before + 5} events verified." in out


@pytest.mark.django_db(transaction=True)
def test_audit_verify_exits_non_zero_at_the_first_tampered_event(org_a):
    before, _ = services.audit_chain_verify()
    ids = record_events(org_a.id, 4)
    # What a rogue owner could do: switch the append-only trigger off and rewrite a row.
    with as_owner(), org_context(org_a.id), connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
        try:
            cursor.execute("UPDATE audit_event SET action = 'x' WHERE id = %s", [ids[1]])
            assert cursor.rowcount == 1
        finally:
            cursor.execute("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only")

    expected = rf"broken at event id {ids[1]} \(events verified before it: {before + 1}\)"
    with pytest.raises(CommandError, match=expected) as raised:
        run("audit_verify")
    assert raised.value.returncode == 1


@pytest.mark.django_db
def test_audit_purge_keeps_what_retention_requires_and_the_chain_verifiable(org_a, monkeypatch):
    before, _ = services.audit_chain_verify()
    record_events(org_a.id, 3)
    assert "Purged 0 audit events" in run("audit_purge")

    later = timezone.now() + timedelta(days=settings.AUDIT_RETENTION_DAYS + 1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    out = run("audit_purge")

    assert f"Purged {before + 3} audit events older than {settings.AUDIT_RETENTION_DAYS}" in out
    assert "Audit chain intact: 0 events verified." in run("audit_verify")


@pytest.mark.django_db
def test_set_password_random_prints_once_and_is_audited(org_a):
    from tenants.authentication import credentials_check
    from tenants.models import AuditEvent

    out = StringIO()
    call_command("set_password", org_a["viewer"].email, "--random", stdout=out)
    password = out.getvalue().rsplit(": ", 1)[1].strip()
    assert credentials_check(email=org_a["viewer"].email, password=password) is not None
    with org_context(org_a.id):
        event = AuditEvent.objects.get(action="user.changed")
    assert event.details == {"fields": ["password"]} and event.actor_email == "manage.py"


@pytest.mark.django_db
def test_set_password_refuses_an_unknown_email_and_a_weak_password(org_a, monkeypatch):
    with pytest.raises(CommandError, match="No user"):
        call_command("set_password", "ghost@nowhere.test", "--random")
    monkeypatch.setattr("getpass.getpass", lambda prompt: "password")
    with pytest.raises(CommandError, match="too common"):
        call_command("set_password", org_a["viewer"].email)
