"""The client against a live platform: Django's live server (a thread of this process, on the
test database as the runtime role, so row-level security binds it as in production), and, for
the tests that need rows to run, the session's real Celery worker.

The live server's requests and the tests share the database through commits only
(``live_server`` takes ``transactional_db``), so what a test seeds through the services is
what the server sees, and what the server writes the test reads back the same way.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx
import pytest
from rcm_client import Client, RetryPolicy

from tests.conftest import PASSWORD
from tests.workflows.factories import entry, general, outcome, workflow_build

# Tests fail fast on a server that misbehaves instead of backing off for a minute.
QUICK_RETRY = RetryPolicy(attempts=3, backoff=0.05, max_backoff=0.2, max_wait=5)


@dataclass(frozen=True)
class Exchange:
    method: str
    url: str
    status: int | None  # None: the transport raised
    sent_at: float
    headers: dict

    @property
    def path(self) -> str:
        return httpx.URL(self.url).path


class RecordingTransport(httpx.HTTPTransport):
    """The real transport, keeping a log of what went over it (the server is untouched)."""

    def __init__(self):
        super().__init__()
        self.log: list[Exchange] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        sent_at = time.time()
        try:
            response = super().handle_request(request)
        except httpx.TransportError:
            self._record(request, None, sent_at)
            raise
        self._record(request, response.status_code, sent_at)
        return response

    def _record(self, request, status, sent_at) -> None:
        exchange = Exchange(
            request.method, str(request.url), status, sent_at, dict(request.headers)
        )
        with self._lock:
            self.log.append(exchange)

    def paths(self, method: str | None = None) -> list[str]:
        return [item.path for item in self.log if method in (None, item.method)]


@pytest.fixture
def server(live_server) -> str:
    return live_server.url


@pytest.fixture
def recorder() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
def connect(server):
    """``connect(tenant, role, **options)``: a Client logged in with that member's email and
    password; closed after the test."""
    opened = []

    def build(tenant, role: str = "operator", **options) -> Client:
        options.setdefault("retry", QUICK_RETRY)
        options.setdefault("poll_interval", 0.2)
        client = Client(server, email=tenant[role].email, password=PASSWORD, **options)
        opened.append(client)
        return client

    yield build
    for client in opened:
        client.close()


ECHO = {"outputs": {"echo": "{{ input.member_id }}", "greeting": "hi"}}


def echo_workflow(tenant, name: str | None = None):
    """A workflow published through the authoring services, whose one step echoes
    ``member_id``; every row needs ``member_id``."""
    workflow, _ = workflow_build(
        org_id=tenant.id,
        name=name,
        required_data=["member_id"],
        nodes=[entry("start"), general("shape", "transform", ECHO), outcome("done")],
        edges=["start -> shape -> done"],
    )
    return workflow
