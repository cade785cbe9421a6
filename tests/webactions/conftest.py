"""Fixtures of the web-actions suites."""

import os
import subprocess
import urllib.request

import pytest
from django.conf import settings

from rcm import webserver
from tests.conftest import wait_for
from tests.helpers import free_port as _free_port
from tests.webactions.llm_stub import API_KEY, ChatProvider


@pytest.fixture(scope="session")
def portal():
    """The sandbox, served by gunicorn in a process of its own (as `make run` serves it): not
    Django's live server, whose per-test database set-up Django refuses while Playwright's
    sync API runs its event loop in this thread."""
    port = _free_port()
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "rcm.settings.test",
        "DATABASE_URL": settings.DATABASE_URL,
        "DATABASE_OWNER_URL": settings.DATABASE_OWNER_URL,
        "REDIS_URL": settings.REDIS_URL,
        "WEB_CONCURRENCY": "2",
    }
    server = subprocess.Popen(
        webserver.gunicorn_argv(port), cwd=settings.BASE_DIR, env=environment,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{url}/sandbox/v1/login/"), timeout=60, interval=0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def provider(settings):
    """The tier-3 model switched on, answered by a local stub that records every request."""
    provider = ChatProvider()
    settings.WEB_LLM_URL = provider.url
    settings.WEB_LLM_MODEL = "stub-model"
    settings.WEB_LLM_API_KEY = API_KEY
    settings.WEB_LLM_TIMEOUT_S = 2.0
    yield provider
    provider.close()
