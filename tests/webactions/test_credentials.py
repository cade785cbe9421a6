"""Portal credentials: secrets go in and never come out, are encrypted at rest under rotating
keys, and every access is logged; bad input is refused by field, naming no secret."""

import json

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import ProgrammingError, connection, transaction

from rcm.context import org_context
from tenants import services as tenant_services
from tenants.models import ChannelType, Endpoint
from webactions import crypto
from webactions.models import CredentialAccessLog, PortalCredential
from webactions.services import credentials as credential_services
from webactions.totp import totp_now

URL = "/api/v2/credentials/"
PASSWORD = "Tr0ub4dor&3-portal"
SEED = "JBSWY3DPEHPK3PXPJBSWY3DP"
SECRETS = {"username": "clerk.ada", "password": PASSWORD, "totp_seed": SEED}


def _endpoint(tenant, name: str = "UHC") -> Endpoint:
    channel = ChannelType.objects.get(code="uhc-portal")
    with org_context(tenant.id):
        return tenant_services.endpoint_create(org_id=tenant.id, name=name, channel_type=channel)


def _body(endpoint, **overrides) -> dict:
    return {
        "endpoint_id": endpoint.pk,
        "name": "Front desk",
        "account_id": "NPI 1234567893",
        "credential_type": "user_pass",
        "secrets": SECRETS,
        **overrides,
    }


def _accesses(tenant, credential_id) -> list[tuple[str, bool]]:
    with org_context(tenant.id):
        rows = CredentialAccessLog.objects.filter(credential_id=credential_id).order_by("id")
        return [(row.access_type, row.success) for row in rows]


@pytest.mark.django_db
def test_secrets_go_in_and_never_come_out(api, org_a):
    endpoint = _endpoint(org_a)
    admin = api(org_a, "org_admin")
    created = admin.post(URL, _body(endpoint), "json")
    assert created.status_code == 201, created.json()
    credential_id = created.json()["id"]
    answers = [
        created,
        admin.get(URL),
        admin.get(f"{URL}{credential_id}/"),
        admin.patch(f"{URL}{credential_id}/", {"name": "Billing desk"}, "json"),
        admin.get(f"{URL}{credential_id}/accesses/"),
    ]
    for answer in answers:
        text = answer.content.decode()
        assert answer.status_code in (200, 201), text
        assert "secrets" not in text and "clerk.ada" not in text
        assert PASSWORD not in text and SEED not in text
    assert created.json()["rotation_status"] == "none"
    # At rest: a Fernet token, nothing of the secrets in clear.
    with org_context(org_a.id):
        stored = PortalCredential.objects.get(pk=credential_id)
    assert stored.encrypted_credential.startswith("gAAAAA")
    assert PASSWORD not in stored.encrypted_credential
    assert _accesses(org_a, credential_id) == [("store", True)]
    with org_context(org_a.id):
        assert credential_services.credential_secrets(credential=stored, run_id=42) == SECRETS
        retrieval = CredentialAccessLog.objects.get(access_type="retrieve")
    assert retrieval.actor_run_id == 42 and retrieval.success


@pytest.mark.django_db
def test_rotation_replaces_the_secrets_and_waits_for_validation(api, org_a):
    endpoint = _endpoint(org_a)
    admin = api(org_a, "org_admin")
    credential_id = admin.post(URL, _body(endpoint), "json").json()["id"]
    new = {"username": "clerk.ada", "password": "n3w-Passw0rd!"}
    rotated = admin.post(f"{URL}{credential_id}/rotate/", {"secrets": new}, "json")
    assert rotated.status_code == 200, rotated.json()
    assert rotated.json()["rotation_status"] == "pending_validation"
    assert rotated.json()["last_rotation_at"] is not None
    assert "n3w-Passw0rd!" not in rotated.content.decode()
    with org_context(org_a.id):
        credential = PortalCredential.objects.get(pk=credential_id)
        assert credential_services.credential_secrets(credential=credential) == new
    assert _accesses(org_a, credential_id) == [
        ("store", True),
        ("rotate", True),
        ("retrieve", True),
    ]
    assert admin.delete(f"{URL}{credential_id}/").status_code == 204
    # The log outlives the credential.
    assert _accesses(org_a, credential_id)[-1] == ("delete", True)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"secrets": {"username": "clerk"}}, "password"),
        ({"secrets": {**SECRETS, "pin": "1234"}}, "pin"),
        ({"secrets": {**SECRETS, "totp_seed": "not base32!"}}, "totp_seed"),
        ({"secrets": {**SECRETS, "password": ""}}, "password"),
        ({"secrets": {**SECRETS, "extra": {"answer": 42}}}, "extra"),
        (
            {
                "credential_type": "oauth2",
                "secrets": {"client_id": "c", "client_secret": "s", "token_url": "http://x.test"},
            },
            "token_url",
        ),
        ({"credential_type": "token", "secrets": {}}, "token"),
    ],
)
def test_bad_secrets_are_refused_by_field_naming_no_value(api, org_a, overrides, field):
    endpoint = _endpoint(org_a)
    refused = api(org_a, "org_admin").post(URL, _body(endpoint, **overrides), "json")
    assert refused.status_code == 400, refused.json()
    assert field in refused.json()["error"]["details"]["secrets"]
    assert (
        PASSWORD not in refused.content.decode() and "not base32!" not in refused.content.decode()
    )
    with org_context(org_a.id):
        assert not PortalCredential.objects.exists() and not CredentialAccessLog.objects.exists()


@pytest.mark.django_db
def test_another_organizations_endpoint_and_credential_are_not_found(api, org_a, org_b):
    endpoint_b = _endpoint(org_b)
    admin_a, admin_b = api(org_a, "org_admin"), api(org_b, "org_admin")
    refused = admin_a.post(URL, _body(endpoint_b), "json")
    assert refused.status_code == 400
    assert refused.json()["error"]["details"] == {
        "endpoint_id": [credential_services.UNKNOWN_ENDPOINT]
    }
    credential_b = admin_b.post(URL, _body(endpoint_b), "json").json()["id"]
    for answer in (
        admin_a.get(f"{URL}{credential_b}/"),
        admin_a.patch(f"{URL}{credential_b}/", {"is_active": False}, "json"),
        admin_a.post(f"{URL}{credential_b}/rotate/", {"secrets": SECRETS}, "json"),
        admin_a.get(f"{URL}{credential_b}/accesses/"),
        admin_a.delete(f"{URL}{credential_b}/"),
    ):
        assert answer.status_code == 404
    assert admin_a.get(URL).json()["results"] == []
    with org_context(org_b.id):
        assert PortalCredential.objects.get(pk=credential_b).is_active


@pytest.mark.django_db
def test_operators_see_credentials_and_only_org_admins_change_them(api, org_a):
    endpoint = _endpoint(org_a)
    credential_id = api(org_a, "org_admin").post(URL, _body(endpoint), "json").json()["id"]
    operator, viewer = api(org_a, "operator"), api(org_a, "viewer")
    assert operator.get(f"{URL}{credential_id}/").status_code == 200
    assert viewer.get(f"{URL}{credential_id}/").status_code == 403
    assert operator.post(URL, _body(endpoint, name="Mine"), "json").status_code == 403
    assert (
        operator.post(f"{URL}{credential_id}/rotate/", {"secrets": SECRETS}, "json").status_code
        == 403
    )
    assert operator.get(f"{URL}{credential_id}/accesses/").status_code == 403
    assert operator.delete(f"{URL}{credential_id}/").status_code == 403


@pytest.mark.django_db
def test_a_duplicate_name_on_one_endpoint_is_a_conflict(api, org_a):
    endpoint = _endpoint(org_a)
    admin = api(org_a, "org_admin")
    assert admin.post(URL, _body(endpoint), "json").status_code == 201
    duplicate = admin.post(URL, _body(endpoint), "json")
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "credential_exists"


@pytest.mark.django_db
def test_the_access_log_is_append_only_for_the_runtime_role(api, org_a):
    endpoint = _endpoint(org_a)
    api(org_a, "org_admin").post(URL, _body(endpoint), "json")
    for statement in (
        "UPDATE credential_access_log SET success = false",
        "DELETE FROM credential_access_log",
    ):
        with (
            org_context(org_a.id),
            pytest.raises(ProgrammingError, match="permission denied"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)


@pytest.mark.django_db(transaction=True)
def test_key_rotation_re_encrypts_every_organization_under_the_new_key(
    api, org_a, org_b, settings, capsys
):
    old_key = settings.CREDENTIAL_KEYS[0]
    ids = {}
    for tenant in (org_a, org_b):
        endpoint = _endpoint(tenant)
        ids[tenant.id] = api(tenant, "org_admin").post(URL, _body(endpoint), "json").json()["id"]
    new_key = Fernet.generate_key().decode()
    settings.CREDENTIAL_KEYS = [new_key, old_key]
    call_command("rotate_credential_keys")
    assert "Re-encrypted 2 credential(s)" in capsys.readouterr().out
    # Only the new key is needed now; the old alone opens nothing.
    settings.CREDENTIAL_KEYS = [new_key]
    for tenant in (org_a, org_b):
        with org_context(tenant.id):
            credential = PortalCredential.objects.get(pk=ids[tenant.id])
            assert credential_services.credential_secrets(credential=credential) == SECRETS
        assert ("rotate", True) in _accesses(tenant, ids[tenant.id])
    settings.CREDENTIAL_KEYS = [old_key]
    with org_context(org_a.id):
        credential = PortalCredential.objects.get(pk=ids[org_a.id])
        with pytest.raises(crypto.CredentialUnreadable) as unreadable:
            credential_services.credential_secrets(credential=credential)
    assert str(unreadable.value) == crypto.UNREADABLE.format(id=credential.pk)
    assert _accesses(org_a, credential.pk)[-1] == ("retrieve", False)


def test_a_totp_code_near_the_end_of_its_window_waits_for_the_next():
    waited = []
    # 27 s into a 30 s window: 3 s left, fewer than the 5 a portal form needs.
    code = totp_now(SEED, clock=lambda: 1_000_000_017.0, sleep=waited.append)
    assert waited == [3.0]
    import pyotp

    assert code == pyotp.TOTP(SEED).at(1_000_000_020)
    assert totp_now(SEED, clock=lambda: 1_000_000_010.0, sleep=waited.append) == pyotp.TOTP(
        SEED
    ).at(1_000_000_010)
    assert waited == [3.0]


def test_an_unreadable_token_names_the_credential_and_no_secret(settings):
    token = crypto.seal({"password": PASSWORD})
    settings.CREDENTIAL_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.CredentialUnreadable) as unreadable:
        crypto.unseal(token, credential_id=7)
    assert PASSWORD not in str(unreadable.value) and "credential 7" in str(unreadable.value)
    assert json.dumps(SECRETS) not in repr(unreadable.value)
