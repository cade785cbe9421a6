"""Logging in: a password (the access token renewed before it expires, a new log-in when the
refresh token is refused), an API key, and switching organization."""

import time
from datetime import timedelta

import pytest
from rcm_client import AuthenticationError, Client, PermissionDenied
from rcm_client.auth import jwt_claims
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from rcm.context import org_context
from tenants import services
from tenants.models import ApiKey
from tests.conftest import invite_and_accept

TOKEN, REFRESH = "/api/v2/auth/token/", "/api/v2/auth/token/refresh/"
CURRENT = "/api/v2/organizations/current/"


def bearer_claims(exchange) -> dict:
    return jwt_claims(exchange.headers["authorization"].removeprefix("Bearer "))


def test_a_password_logs_in_on_first_use_for_the_primary_organization(connect, org_a, recorder):
    client = connect(org_a, transport=recorder)
    assert client.org_id is None
    org = client.current_organization()
    assert org.id == str(org_a.id) and org.name == "Acme Billing"
    assert (client.org_id, client.role) == (str(org_a.id), "operator")
    assert recorder.paths() == [TOKEN, CURRENT]


def test_the_access_token_is_renewed_before_it_expires(connect, org_a, recorder, monkeypatch):
    # The live server runs in this process: its tokens live 4 s instead of 15 min.
    monkeypatch.setattr(AccessToken, "lifetime", timedelta(seconds=4))
    client = connect(org_a, transport=recorder)
    client.current_organization()
    first = bearer_claims(recorder.log[-1])
    assert first["exp"] - first["iat"] == 4
    client.current_organization()
    assert recorder.paths() == [TOKEN, CURRENT, CURRENT]  # still fresh: no renewal

    # Inside the last fifth of its lifetime, still valid: the client renews it first.
    time.sleep(max(0.0, first["exp"] - 0.4 - time.time()))
    client.current_organization()
    assert recorder.paths()[3:] == [REFRESH, CURRENT]
    renewal = recorder.log[3]
    assert renewal.sent_at < first["exp"]
    assert bearer_claims(recorder.log[4])["exp"] > first["exp"]
    assert all(exchange.status == 200 for exchange in recorder.log)  # never refused


def test_a_refused_refresh_token_means_logging_in_again(connect, org_a, recorder, monkeypatch):
    monkeypatch.setattr(AccessToken, "lifetime", timedelta(seconds=2))
    monkeypatch.setattr(RefreshToken, "lifetime", timedelta(seconds=2))
    client = connect(org_a, transport=recorder)
    client.current_organization()
    expired_at = bearer_claims(recorder.log[-1])["exp"]
    time.sleep(max(0.0, expired_at + 0.1 - time.time()))
    assert client.current_organization().id == str(org_a.id)
    assert [(item.path, item.status) for item in recorder.log[2:]] == [
        (REFRESH, 401),
        (TOKEN, 200),
        (CURRENT, 200),
    ]


def test_a_refresh_token_alone_resumes_a_session_and_a_refused_one_says_so(connect, server, org_a):
    first = connect(org_a)
    first.current_organization()
    with Client(server, refresh_token=first.refresh_token) as resumed:
        assert resumed.current_organization().id == str(org_a.id)
        assert resumed.role == "operator"
    with (
        Client(server, refresh_token="not.a-token.at-all") as stale,
        pytest.raises(AuthenticationError) as refused,
    ):
        stale.current_organization()
    assert (refused.value.status, refused.value.code) == (401, "token_not_valid")


def test_a_wrong_password_is_an_authentication_error_with_the_apis_code(server, org_a):
    client = Client(server, email=org_a["operator"].email, password="wrong")
    with client, pytest.raises(AuthenticationError) as refused:
        client.current_organization()
    assert refused.value.status == 401
    assert refused.value.code == "invalid_credentials"
    assert refused.value.message == "Invalid email or password."


@pytest.fixture
def api_key(org_a) -> str:
    with org_context(org_a.id):
        _, key = services.api_key_create(
            org_id=org_a.id, user=org_a["api_user"], name="nightly", created_by=org_a["org_admin"]
        )
    return key


def test_an_api_key_authenticates_every_request_without_a_log_in(server, org_a, api_key, recorder):
    with Client(server, api_key=api_key, transport=recorder) as client:
        assert client.current_organization().id == str(org_a.id)
        assert list(client.runs()) == []
    assert recorder.paths() == [CURRENT, "/api/v2/runs/"]
    assert {item.headers["authorization"] for item in recorder.log} == {f"Api-Key {api_key}"}


def test_a_revoked_api_key_is_refused_and_keys_cannot_switch_organization(
    server, org_a, org_b, api_key
):
    with Client(server, api_key=api_key) as client:
        with pytest.raises(PermissionDenied) as refused:
            client.switch_org(org_b.id)
        assert refused.value.code == "jwt_required"
        with org_context(org_a.id):
            key = ApiKey.objects.get()
            services.api_key_revoke(api_key=key, actor=org_a["org_admin"])
        with pytest.raises(AuthenticationError) as revoked:
            client.current_organization()
    assert revoked.value.code == "api_key_invalid"


def test_switching_organization_acts_there_and_logs_in_there_again(
    connect, org_a, org_b, monkeypatch, recorder
):
    monkeypatch.setattr(AccessToken, "lifetime", timedelta(seconds=2))
    monkeypatch.setattr(RefreshToken, "lifetime", timedelta(seconds=2))
    invite_and_accept(org_b, org_a["operator"], "viewer")
    client = connect(org_a, transport=recorder)
    assert client.current_organization().id == str(org_a.id)
    tokens = client.switch_org(org_b.id)
    assert (tokens.org_id, tokens.role) == (str(org_b.id), "viewer")
    assert client.current_organization().id == str(org_b.id)
    # Once both tokens have expired, the new log-in asks for the organization switched to,
    # not the primary one.
    time.sleep(max(0.0, tokens.access_expires_at + 0.1 - time.time()))
    assert client.current_organization().id == str(org_b.id)
    assert [(item.path, item.status) for item in recorder.log[-3:]] == [
        (REFRESH, 401),
        (TOKEN, 200),
        (CURRENT, 200),
    ]
    with pytest.raises(PermissionDenied) as refused:
        client.switch_org("00000000-0000-0000-0000-000000000000")
    assert refused.value.code == "not_a_member"
