"""Retries against a real local HTTP server that answers as scripted: 503 and 429 with
Retry-After in both forms, a server that never recovers, one that cannot be reached, and the
requests that must not be sent twice."""

import email.utils
import time

import pytest
from rcm_client import (
    Client,
    NotFound,
    Organization,
    PermissionDenied,
    RateLimited,
    RcmConnectionError,
    RetryPolicy,
    ServerError,
)
from rcm_client.retry import retry_after_seconds

from tests.client.conftest import RecordingTransport

CURRENT = "/api/v2/organizations/current/"
ORG = {
    "id": "4f1c8a2e-0000-4000-8000-000000000001",
    "name": "Acme Billing",
    "org_type": "billing_firm",
    "email_domain": None,
    "is_active": True,
    "created_at": "2026-01-05T09:30:00.000001Z",
    "updated_at": "2026-01-05T09:30:00Z",
}
UNAVAILABLE = {"error": {"code": "database_unavailable", "message": "Try again.", "details": {}}}
THROTTLED = {
    "error": {"code": "throttled", "message": "Slow down.", "details": {"retry_after_seconds": 1}}
}
KEY = "rcm_abc_secret"
# Backoff short enough for a test; Retry-After is what these tests measure.
RETRY = RetryPolicy(attempts=4, backoff=0.01, max_backoff=0.05, max_wait=10)


@pytest.fixture
def client(http_server):
    with Client(http_server.url(""), api_key=KEY, retry=RETRY) as client:
        yield client


def test_503_and_429_are_retried_after_what_retry_after_says(http_server):
    until = int(time.time()) + 3
    http_server.respond(CURRENT, 503, UNAVAILABLE, headers={"Retry-After": "1"})
    http_server.respond(
        CURRENT, 429, THROTTLED, headers={"Retry-After": email.utils.formatdate(until, usegmt=True)}
    )
    http_server.respond(CURRENT, 200, ORG)
    recorder = RecordingTransport()
    with Client(http_server.url(""), api_key=KEY, retry=RETRY, transport=recorder) as client:
        org = client.current_organization()
    assert isinstance(org, Organization) and org.name == "Acme Billing"
    assert [item.status for item in recorder.log] == [503, 429, 200]
    first, second, third = (item.sent_at for item in recorder.log)
    assert 1.0 <= second - first < 1.5  # Retry-After: 1
    assert until <= third < until + 0.5  # Retry-After: <that date>


def test_a_server_that_stays_down_fails_after_the_bounded_attempts(client, http_server):
    http_server.respond(CURRENT, 503, UNAVAILABLE)
    with pytest.raises(ServerError) as failed:
        client.current_organization()
    assert (failed.value.status, failed.value.code) == (503, "database_unavailable")
    assert http_server.hits(CURRENT) == RETRY.attempts


def test_a_retry_after_longer_than_the_caller_waits_is_raised_at_once(client, http_server):
    http_server.respond(CURRENT, 429, THROTTLED, headers={"Retry-After": "3600"})
    with pytest.raises(RateLimited) as throttled:
        client.current_organization()
    assert throttled.value.retry_after == 3600 and http_server.hits(CURRENT) == 1


def test_a_post_is_retried_with_its_idempotency_key_and_one_without_is_not(client, http_server):
    runs = "/api/v2/workflows/wf-1/runs/"
    http_server.respond(runs, 502, "<html>Bad gateway</html>")
    http_server.respond(runs, 403, {"error": {"code": "permission_denied", "message": "No."}})
    with pytest.raises(PermissionDenied):
        client.run_workflow("wf-1", input={"member_id": "W1"})
    keys = [headers["Idempotency-Key"] for headers in http_server.headers(runs)]
    assert len(keys) == 2 and keys[0] == keys[1]  # the retry repeats the first's key

    # Switching organization carries no key (a replay would come back without the tokens):
    # a failure is not sent again.
    switch = "/api/v2/auth/switch-org/"
    http_server.respond(switch, 503, UNAVAILABLE, headers={"Retry-After": "0"})
    with pytest.raises(ServerError):
        client.switch_org("4f1c8a2e-0000-4000-8000-000000000002")
    assert http_server.hits(switch) == 1


def test_an_error_that_is_not_in_the_apis_shape_still_has_its_status(client, http_server):
    http_server.respond(CURRENT, 404, "<html>Not here</html>")
    with pytest.raises(NotFound) as missing:
        client.current_organization()
    assert (missing.value.status, missing.value.code) == (404, "http_404")


def test_no_connection_is_retried_then_a_connection_error():
    recorder = RecordingTransport()
    client = Client("http://127.0.0.1:9", api_key=KEY, retry=RETRY, transport=recorder)
    with client, pytest.raises(RcmConnectionError) as failed:
        client.current_organization()
    assert failed.value.status is None and failed.value.code == "connection_error"
    assert [item.status for item in recorder.log] == [None] * RETRY.attempts


def test_retry_after_reads_seconds_and_http_dates():
    now = 1_767_600_000.0
    assert retry_after_seconds("7", now=now) == 7.0
    assert retry_after_seconds(email.utils.formatdate(now + 30, usegmt=True), now=now) == 30.0
    assert retry_after_seconds(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
