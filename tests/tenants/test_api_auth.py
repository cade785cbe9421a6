"""Log-in, tokens, organization switching and API keys, including the attacks on them."""

import base64
import json
from datetime import timedelta

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from rcm.context import org_context
from tenants import services
from tenants.models import AuditEvent, Membership
from tests.conftest import PASSWORD, invite_and_accept

TOKEN_URL = "/api/v2/auth/token/"
ME_URL = "/api/v2/organizations/current/"


def login(email, password=PASSWORD, **extra):
    return APIClient().post(TOKEN_URL, {"email": email, "password": password, **extra}, "json")


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.mark.django_db
def test_login_returns_tokens_for_the_primary_org(org_a):
    response = login(org_a["operator"].email)
    assert response.status_code == 200
    body = response.json()
    assert body["org_id"] == str(org_a.id) and body["role"] == "operator"
    claims = AccessToken(body["access"])
    assert claims["org_id"] == str(org_a.id) and claims["role"] == "operator"
    assert bearer(body["access"]).get(ME_URL).json()["id"] == str(org_a.id)


@pytest.mark.django_db
def test_login_is_case_insensitive_on_email_and_audited(org_a):
    response = login(org_a["viewer"].email.upper())
    assert response.status_code == 200
    with org_context(org_a.id):
        assert AuditEvent.objects.filter(action="auth.login").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("case", ["wrong_password", "unknown_email"])
def test_failed_login_is_401_with_one_message_and_audited(org_a, case):
    email = org_a["viewer"].email if case == "wrong_password" else "nobody@nowhere.test"
    response = login(email, "not-the-password")
    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "invalid_credentials",
        "message": "Invalid email or password.",
        "details": {},
    }
    with org_context(None):
        assert AuditEvent.objects.unscoped().count() == 0  # org-less rows are not tenant rows
    from tenants.services import audit_chain_verify

    assert audit_chain_verify()[0] >= 1


@pytest.mark.django_db
def test_login_to_an_org_the_user_is_not_a_member_of_fails(org_a, org_b):
    assert login(org_a["viewer"].email, org_id=str(org_b.id)).status_code == 401


@pytest.mark.django_db
def test_inactive_user_cannot_log_in(org_a):
    user = org_a["viewer"]
    with org_context(org_a.id):
        type(user).objects.filter(pk=user.pk).update(is_active=False)
    assert login(user.email).status_code == 401


@pytest.mark.django_db
def test_failed_logins_are_throttled_per_email_with_retry_after(org_a, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"login_ip": "100/min", "login_email": "3/min"},
    }
    email = org_a["viewer"].email
    for _ in range(3):
        assert login(email, "guess").status_code == 401
    response = login(email, PASSWORD)  # even the right password waits
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert response.json()["error"]["code"] == "throttled"
    # Another account from the same IP is not locked by this one.
    assert login(org_a["operator"].email).status_code == 200


@pytest.mark.django_db
def test_failed_logins_are_throttled_per_ip(org_a, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"login_ip": "4/min", "login_email": "100/min"},
    }
    for number in range(4):
        assert login(f"guess{number}@x.test", "guess").status_code == 401
    assert login(org_a["operator"].email).status_code == 429


@pytest.mark.django_db
def test_without_redis_failed_logins_are_counted_per_process(org_a, settings, caplog):
    from tenants import throttling

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"login_ip": "100/min", "login_email": "3/min"},
    }
    # A cache on a port nothing listens on: every call fails as during an outage.
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}
    }
    throttling._local.clear()
    throttling._fallback_logged_at = None  # the warning is said once a minute per process
    email = org_a["viewer"].email
    assert login(email).status_code == 200
    for _ in range(3):
        assert login(email, "guess").status_code == 401
    assert login(email).status_code == 429  # the per-process count still stops the guesses
    assert "failed log-ins are counted per process" in caplog.text
    throttling._local.clear()


@pytest.mark.django_db
def test_successful_logins_are_not_throttled(org_a, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"login_ip": "2/min", "login_email": "2/min"},
    }
    for _ in range(5):
        assert login(org_a["viewer"].email).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "password": "x"},
        {"email": "a@b.test"},
        {"email": "a@b.test", "password": "x", "org_id": "not-a-uuid"},
        {"email": "a@b.test", "password": "x", "extra": 1},
        {"email": ["a@b.test"], "password": "x"},
        {"email": "a" * 300 + "@b.test", "password": "x"},
    ],
)
def test_bad_login_input_is_400_with_field_details(db, body):
    response = APIClient().post(TOKEN_URL, body, "json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["details"]


@pytest.mark.django_db
def test_malformed_json_is_400(db):
    response = APIClient().post(TOKEN_URL, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


# -- tokens under attack --------------------------------------------------------------------


def _forge(payload: dict, alg: str = "none", signature: str = "") -> str:
    def part(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': alg, 'typ': 'JWT'})}.{part(payload)}.{signature}"


@pytest.mark.django_db
def test_expired_forged_and_alg_none_tokens_are_401(org_a):
    good = AccessToken(login(org_a["org_admin"].email).json()["access"])
    expired = AccessToken(str(good))
    expired.set_exp(lifetime=-timedelta(seconds=1))
    payload = dict(good.payload)
    tampered = str(good).rsplit(".", 1)[0] + ".AAAA"
    for token in (
        str(expired),
        _forge(payload),  # alg: none
        _forge(payload, alg="HS256", signature="c2lnbmF0dXJl"),
        tampered,
        "garbage",
    ):
        response = bearer(token).get(ME_URL)
        assert response.status_code == 401, token
        assert response.json()["error"]["code"] in {"token_not_valid", "not_authenticated"}


@pytest.mark.django_db
def test_token_of_a_removed_member_stops_working_at_once(org_a):
    user = org_a["operator"]
    client = bearer(login(user.email).json()["access"])
    assert client.get(ME_URL).status_code == 200
    with org_context(org_a.id):
        Membership.objects.filter(user=user).update(is_active=False)
    response = client.get(ME_URL)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "membership_inactive"


@pytest.mark.django_db
def test_role_change_takes_effect_on_the_next_request(org_a):
    user = org_a["org_admin"]
    client = bearer(login(user.email).json()["access"])
    assert client.get("/api/v2/audit-events/").status_code == 200
    with org_context(org_a.id):
        Membership.objects.filter(user=user).update(role_id="viewer")
    assert client.get("/api/v2/audit-events/").status_code == 403


@pytest.mark.django_db
def test_refresh_issues_tokens_with_the_current_role_and_refuses_ex_members(org_a):
    user = org_a["operator"]
    refresh = login(user.email).json()["refresh"]
    with org_context(org_a.id):
        Membership.objects.filter(user=user).update(role_id="viewer")
    response = APIClient().post(f"{TOKEN_URL}refresh/", {"refresh": refresh}, "json")
    assert response.status_code == 200 and response.json()["role"] == "viewer"
    with org_context(org_a.id):
        Membership.objects.filter(user=user).update(is_active=False)
    response = APIClient().post(f"{TOKEN_URL}refresh/", {"refresh": refresh}, "json")
    assert response.status_code == 401
    response = APIClient().post(f"{TOKEN_URL}refresh/", {"refresh": "junk"}, "json")
    assert response.status_code == 401


@pytest.mark.django_db
def test_an_access_token_is_not_a_refresh_token(org_a):
    access = login(org_a["operator"].email).json()["access"]
    response = APIClient().post(f"{TOKEN_URL}refresh/", {"refresh": access}, "json")
    assert response.status_code == 401


@pytest.mark.django_db
def test_switch_org_to_a_membership_and_not_elsewhere(org_a, org_b):
    guest = org_b["operator"]
    invite_and_accept(org_a, guest, "viewer")
    client = bearer(login(guest.email).json()["access"])
    assert client.get(ME_URL).json()["id"] == str(org_b.id)
    response = client.post("/api/v2/auth/switch-org/", {"org_id": str(org_a.id)}, "json")
    assert response.status_code == 200
    assert response.json()["role"] == "viewer"
    assert bearer(response.json()["access"]).get(ME_URL).json()["id"] == str(org_a.id)

    stranger = bearer(login(org_a["operator"].email).json()["access"])
    response = stranger.post("/api/v2/auth/switch-org/", {"org_id": str(org_b.id)}, "json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_a_member"


@pytest.mark.django_db
def test_sys_admin_acts_in_a_chosen_org_and_every_act_is_audited(org_b, sys_admin):
    response = login(sys_admin.email, org_id=str(org_b.id))
    assert response.status_code == 200 and response.json()["role"] == "sys_admin"
    client = bearer(response.json()["access"])
    assert client.get(ME_URL).json()["id"] == str(org_b.id)
    assert client.get("/api/v2/endpoints/").status_code == 200
    refused = client.post("/api/v2/endpoints/", {"name": ""}, "json")
    assert refused.status_code == 400
    with org_context(org_b.id):
        acts = AuditEvent.objects.filter(action="platform.act", actor_id=sys_admin.pk)
        seen = sorted((act.object_id, act.details["path"], act.details["status"]) for act in acts)
    # Recorded after each request's transaction, in one of its own: the refused request rolled
    # back, its record stays (and the audit chain's lock was never held for a whole request).
    assert seen == [
        ("GET", "/api/v2/endpoints/", 200),
        ("GET", ME_URL, 200),
        ("POST", "/api/v2/endpoints/", 400),
    ]


# -- API keys ---------------------------------------------------------------------------------


def _issue_key(api, tenant) -> dict:
    response = api(tenant, "org_admin").post(
        "/api/v2/api-keys/", {"name": "robot", "user_id": str(tenant["api_user"].pk)}, "json"
    )
    assert response.status_code == 201, response.json()
    return response.json()


def key_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.mark.django_db
def test_api_key_is_shown_once_stored_hashed_and_works(api, org_a):
    created = _issue_key(api, org_a)
    key = created["key"]
    listed = api(org_a, "org_admin").get("/api/v2/api-keys/").json()["results"]
    assert "key" not in listed[0]
    from tenants.models import ApiKey

    with org_context(org_a.id):
        stored = ApiKey.objects.get(pk=created["id"])
    assert key not in stored.key_hash and stored.key_hash == services.secret_token_hash(key)
    response = key_client(key).get(ME_URL)
    assert response.status_code == 200 and response.json()["id"] == str(org_a.id)


@pytest.mark.django_db
def test_revoked_and_unknown_keys_are_401_at_once(api, org_a):
    created = _issue_key(api, org_a)
    client = key_client(created["key"])
    assert client.get(ME_URL).status_code == 200
    revoke = api(org_a, "org_admin").post(f"/api/v2/api-keys/{created['id']}/revoke/")
    assert revoke.status_code == 200 and revoke.json()["revoked_at"]
    assert client.get(ME_URL).status_code == 401
    prefix = created["prefix"]
    for bad in ("rcm_deadbeef0000_x", f"rcm_{prefix}_wrongsecret", "nonsense", ""):
        response = key_client(bad).get(ME_URL)
        assert response.status_code == 401, bad


@pytest.mark.django_db
def test_key_stops_working_when_the_member_is_removed(api, org_a):
    client = key_client(_issue_key(api, org_a)["key"])
    with org_context(org_a.id):
        Membership.objects.filter(user=org_a["api_user"]).update(is_active=False)
    assert client.get(ME_URL).status_code == 401


@pytest.mark.django_db
def test_keys_are_issued_only_to_api_users(api, org_a, org_b):
    admin = api(org_a, "org_admin")
    for user_id in (org_a["operator"].pk, org_b["api_user"].pk):
        response = admin.post("/api/v2/api-keys/", {"name": "x", "user_id": str(user_id)}, "json")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "not_api_user"


@pytest.mark.django_db
def test_key_creation_and_revocation_are_audited(api, org_a):
    created = _issue_key(api, org_a)
    api(org_a, "org_admin").post(f"/api/v2/api-keys/{created['id']}/revoke/")
    actions = [
        event["action"]
        for event in api(org_a, "org_admin").get("/api/v2/audit-events/").json()["results"]
    ]
    assert "api_key.created" in actions and "api_key.revoked" in actions


@pytest.mark.django_db
def test_an_api_key_cannot_switch_organization(api, org_a, org_b):
    client = key_client(_issue_key(api, org_a)["key"])
    response = client.post("/api/v2/auth/switch-org/", {"org_id": str(org_b.id)}, "json")
    assert response.status_code == 403, response.json()


@pytest.mark.django_db
def test_a_login_that_upgrades_the_password_hash_works(org_a, settings):
    """A hasher change re-hashes at the next log-in; the re-hash is saved under RLS."""
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    user = org_a["viewer"]
    assert login(user.email).status_code == 200
    with org_context(org_a.id):
        user.refresh_from_db()
    assert user.password.startswith("pbkdf2_sha256$")


@pytest.mark.django_db
def test_a_key_records_its_last_use_after_the_request(
    api, org_a, django_capture_on_commit_callbacks
):
    from tenants.models import ApiKey

    created = _issue_key(api, org_a)
    with django_capture_on_commit_callbacks(execute=True):
        assert key_client(created["key"]).get(ME_URL).status_code == 200
    with org_context(org_a.id):
        assert ApiKey.objects.get(pk=created["id"]).last_used_at is not None
