"""Idempotency-Key on creating POSTs: one effect per key, whatever the timing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from rcm.api.idempotency import idempotency_key_purge
from rcm.context import org_context
from rcm.models import IdempotencyKey
from tenants.models import Endpoint
from tests.helpers import race_run as _race_run

URL = "/api/v2/endpoints/"
BODY = {"name": "UHC", "channel_type": "uhc-portal"}


def _post(client, body=BODY, key="key-1"):
    return client.post(URL, body, "json", HTTP_IDEMPOTENCY_KEY=key)


def _endpoints(tenant) -> int:
    with org_context(tenant.id):
        return Endpoint.objects.count()


@pytest.mark.django_db
def test_the_same_key_and_body_return_the_same_response_once(api, org_a):
    client = api(org_a, "org_admin")
    first = _post(client)
    second = _post(client)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true"
    assert _endpoints(org_a) == 1


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_422_and_writes_nothing(api, org_a):
    client = api(org_a, "org_admin")
    _post(client)
    response = _post(client, {"name": "Other", "channel_type": "aetna-provider"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert _endpoints(org_a) == 1


@pytest.mark.django_db
def test_a_failed_request_leaves_its_key_free(api, org_a):
    client = api(org_a, "org_admin")
    assert _post(client, {"name": "UHC"}).status_code == 400
    assert _post(client, {"name": "UHC"}, key="key-2").status_code == 400
    with org_context(org_a.id):
        assert not IdempotencyKey.objects.exists()
    # The same key, now with a different (valid) body, is a fresh request.
    assert _post(client, key="key-2").status_code == 201


@pytest.mark.django_db
def test_keys_are_per_caller_and_per_organization(api, org_a, org_b):
    assert _post(api(org_a, "org_admin")).status_code == 201
    assert _post(api(org_b, "org_admin")).status_code == 201
    assert _endpoints(org_a) == _endpoints(org_b) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "ünïcode"])
def test_a_malformed_key_is_400(api, org_a, key):
    response = api(org_a, "org_admin").post(URL, BODY, "json", headers={"Idempotency-Key": key})
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["details"]
    assert _endpoints(org_a) == 0


@pytest.mark.django_db(transaction=True)
def test_the_same_key_sent_twice_at_the_same_moment_makes_one_object(api, org_a):
    clients = [api(org_a, "org_admin") for _ in range(4)]
    statuses = []

    def send(client):
        statuses.append(_post(client, key="race").status_code)

    _race_run(send, clients)
    assert statuses == [201] * 4
    assert _endpoints(org_a) == 1


@pytest.mark.django_db
def test_expired_keys_are_purged_and_free_again(api, org_a):
    client = api(org_a, "org_admin")
    assert _post(client).status_code == 201
    later = timezone.now() + timedelta(hours=25)
    assert idempotency_key_purge(now=later) == 1
    with org_context(org_a.id):
        assert not IdempotencyKey.objects.exists()


@pytest.mark.django_db
def test_secrets_shown_once_are_never_stored_with_the_key(api, org_a):
    client = api(org_a, "org_admin")
    body = {"name": "robot", "user_id": str(org_a["api_user"].pk)}
    first = client.post("/api/v2/api-keys/", body, "json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post("/api/v2/api-keys/", body, "json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert "key" in first.json() and "key" not in again.json()
    assert again.json()["id"] == first.json()["id"]
    with org_context(org_a.id):
        stored = IdempotencyKey.objects.get(key="k-1")
    assert first.json()["key"] not in str(stored.response_body)


@pytest.mark.django_db
def test_an_oversized_body_with_a_key_is_413_before_it_is_read(api, org_a, settings):
    settings.BATCH_MAX_UPLOAD_BYTES = 10
    response = api(org_a, "org_admin").post(
        URL, {**BODY, "name": "x" * (2 * 1024 * 1024)}, "json", HTTP_IDEMPOTENCY_KEY="big"
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
