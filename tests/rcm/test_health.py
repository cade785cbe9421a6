"""Liveness and readiness, with a real worker answering the ping."""

import pytest
from django.test import Client


def test_liveness_needs_nothing():
    response = Client().get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.celery_worker
def test_ready_when_database_extension_broker_and_worker_answer(celery_worker):
    response = Client().get("/health/ready")
    body = response.json()
    assert response.status_code == 200, body
    assert set(body["checks"]) == {"database", "vector_extension", "broker", "workers", "browser"}
    for check in body["checks"].values():
        assert check["ok"] is True and check["latency_ms"] >= 0
    assert body["checks"]["vector_extension"]["detail"].startswith("vector ")
    assert body["checks"]["browser"]["detail"].startswith("chromium ")


@pytest.mark.django_db
def test_not_ready_when_no_browser_starts(settings, tmp_path):
    from webactions import browser

    settings.RCM_CHROMIUM_PATH = str(tmp_path / "no-chromium-here")
    browser._ready = None  # the cached answer of an earlier test
    try:
        body = Client().get("/health/ready").json()
    finally:
        browser._ready = None
    assert body["checks"]["browser"]["ok"] is False
    assert "RCM_CHROMIUM_PATH=" in body["checks"]["browser"]["detail"]


@pytest.mark.django_db
def test_not_ready_when_the_broker_is_unreachable(settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = Client().get("/health/ready")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
