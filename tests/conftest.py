"""Shared fixtures: the test database (created and migrated as the owner role, used as the
runtime role, so that row-level security binds the tests exactly as it binds production),
two organizations with one member per role, and API clients holding their tokens."""

from __future__ import annotations

import importlib
import uuid
from dataclasses import dataclass

import pytest
from django.test import TransactionTestCase
from django.test.utils import setup_databases, teardown_databases
from rest_framework.test import APIClient

from rcm.context import org_context
from rcm.db.roles import as_owner
from rcm.lookups import OrgType, UserRole
from tenants import services
from tenants.authentication import token_pair_for

# The shared helpers assert too: pytest explains their failures as it does a test's.
pytest.register_assert_rewrite("tests.helpers")

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker):
    with django_db_blocker.unblock():
        with as_owner():
            names = setup_databases(verbosity=0, interactive=False, keepdb=False)
        yield
        with as_owner():
            teardown_databases(names, verbosity=0)


# Tables whose rows come from data migrations: transactional tests keep them.
SEEDED_TABLES = {
    "django_migrations",
    "django_content_type",
    "auth_permission",
    "channel_type",
    "task_type",
    "field_requirement",
    "payer_requirement",
}


def _flush_as_owner(self) -> None:
    """Empty the tenant tables after a transactional test.

    Django's flush would TRUNCATE as the runtime role (which may not) and wipe the lookup rows
    the data migrations seeded. We truncate as the owner instead and keep the seeds; the audit
    chain head is reset with the events it anchors.
    """
    from django.db import connection

    _wait_for_idle_worker()
    with as_owner(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename NOT LIKE '%%\\_lu' AND tablename <> ALL(%s)",
            [sorted(SEEDED_TABLES | {"audit_chain_head"})],
        )
        tables = ", ".join(f'"{row[0]}"' for row in cursor.fetchall())
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        cursor.execute(
            "UPDATE audit_chain_head SET anchor_hash = repeat('0', 64), "
            "last_hash = repeat('0', 64), last_id = NULL"
        )
        seeded = importlib.import_module("tenants.migrations.0002_security").V8_CHANNEL_TYPES
        cursor.execute(
            "DELETE FROM channel_type WHERE code <> ALL(%s)", [[row[0] for row in seeded]]
        )


def _wait_for_idle_worker(timeout: float = 15.0) -> None:
    """Let the in-process worker finish the task it is running before the tables are emptied:
    TRUNCATE against a task mid-transaction deadlocks. Queued messages are purged; ones the
    worker already holds (retries waiting out a countdown) are harmless later: they carry
    this test's organization, which the next test's rows do not belong to."""
    import time

    from celery.worker import state

    from rcm.celery import app

    app.control.purge()
    deadline = time.monotonic() + timeout
    # Reserved too: a message taken off the queue just before the purge is reserved an instant
    # before it becomes active, and would start its transaction under the TRUNCATE.
    while (state.active_requests or state.reserved_requests) and time.monotonic() < deadline:
        time.sleep(0.01)


TransactionTestCase._fixture_teardown = _flush_as_owner


@pytest.fixture(autouse=True)
def _clear_cache():
    """Throttle counters live in Redis; each test starts with none.

    Only the cache's own keys go: the broker shares this Redis database, and FLUSHDB would
    take the running worker's queues with it.
    """
    from django.core.cache import cache

    client = cache._cache.get_client(write=True)
    keys = list(client.scan_iter(match=f"{cache.key_prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    yield


@dataclass
class Tenant:
    org: object
    users: dict  # role -> User

    @property
    def id(self) -> uuid.UUID:
        return self.org.id

    def __getitem__(self, role: str):
        return self.users[role]


def make_tenant(name: str, org_type: str = OrgType.BILLING_FIRM) -> Tenant:
    org = services.organization_create(name=name, org_type=org_type)
    users = {}
    slug = name.lower().replace(" ", "-")
    for role in (
        UserRole.VIEWER,
        UserRole.OPERATOR,
        UserRole.ORG_ADMIN,
        UserRole.API_USER,
    ):
        users[role] = services.user_create(
            org_id=org.id,
            email=f"{role}@{slug}.test",
            role=role,
            full_name=f"{role.title()} of {name}",
            password=PASSWORD,
        )
    return Tenant(org=org, users=users)


@pytest.fixture
def org_a(db) -> Tenant:
    return make_tenant("Acme Billing")


@pytest.fixture
def org_b(db) -> Tenant:
    return make_tenant("Bayside Hospital", OrgType.HOSPITAL)


@pytest.fixture
def sys_admin(db, org_a):
    """Platform staff, homed in org A but a member of nothing else."""
    return services.user_create(
        org_id=org_a.id,
        email="staff@platform.test",
        role=UserRole.SYS_ADMIN,
        password=PASSWORD,
        is_staff=True,
    )


def invite_and_accept(tenant: Tenant, user, role: str):
    """``user`` joins ``tenant`` with ``role`` the only way there is: invited by its org_admin,
    then accepting from their own account. Returns the membership."""
    from tenants import selectors

    with org_context(tenant.id):
        invitation = services.invitation_create(
            org_id=tenant.id,
            actor=tenant[UserRole.ORG_ADMIN],
            actor_role=UserRole.ORG_ADMIN,
            email=user.email,
            role=role,
        )
    info = selectors.invitation_of_user(user=user, invitation_id=invitation.pk)
    return services.invitation_accept(invitation=info, user=user)


def client_for(user, org_id, role: str | None = None) -> APIClient:
    client = APIClient()
    if role is None:
        with org_context(org_id):
            role = user.memberships.get(org_id=org_id).role_id
    tokens = token_pair_for(user=user, org_id=org_id, role=role)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    return client


@pytest.fixture
def api(org_a, org_b):
    """``api(tenant, role)``: a client authenticated as that tenant's member in that role."""

    def build(tenant: Tenant, role: str) -> APIClient:
        return client_for(tenant[role], tenant.id, role)

    return build


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


@pytest.fixture(scope="session")
def celery_worker_session(django_db_setup):
    """A real Celery worker (a thread of this process) on the real Redis broker.

    Started once per session; tests that use it also take ``transactional_db``, because the
    worker reads rows through its own connection and only sees committed data.
    """
    from celery.contrib.testing.worker import start_worker

    from rcm.celery import app

    # Close the worker thread's connection after each task (production reuses it): a
    # connection left open at the end would keep the test database from being dropped.
    app.conf.CELERY_DB_REUSE_MAX = 0
    from django.conf import settings

    # The queue named, not left to the app: a test that routed messages to a queue of its
    # own (worker_processes) has added that queue to the ones the app would consume.
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    with start_worker(
        app, pool="solo", perform_ping_check=False, shutdown_timeout=30, queues=[queue]
    ) as worker:
        yield worker


@pytest.fixture
def celery_worker(celery_worker_session, transactional_db):
    return celery_worker_session


UNREAD_QUEUE_SUFFIX = "-unread"


@pytest.fixture(autouse=True)
def _messages_no_worker_reads(request, settings):
    """Outside the tests that run a worker, the messages a test sends go to a queue no worker
    reads: the session's in-process worker would otherwise run them beside the test's
    teardown (a batch feed racing the tables' TRUNCATE deadlocked it)."""
    if not {"celery_worker", "worker_processes"} & set(request.fixturenames):
        queue = settings.CELERY_TASK_DEFAULT_QUEUE + UNREAD_QUEUE_SUFFIX
        settings.CELERY_TASK_DEFAULT_QUEUE = settings.CELERY_WEB_QUEUE = queue
    yield


@pytest.fixture(scope="session", autouse=True)
def _unread_queue_dropped():
    """What piled up in the unread queue goes with the session."""
    yield
    from django.conf import settings

    from rcm.workers import queue_drop

    queue_drop(settings.CELERY_TASK_DEFAULT_QUEUE + UNREAD_QUEUE_SUFFIX)


def wait_for(condition, timeout: float = 20.0, interval: float = 0.02):
    """Poll ``condition`` until it returns a truthy value; fail after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s: {condition}")


class ScriptedHttpServer:
    """A real HTTP server on 127.0.0.1 whose answers a test scripts, path by path.

    ``respond(path, status, body, times=n, delay=s, headers={...})`` queues an answer (the
    last one of a path repeats once the queue is down to it); ``hits(path)`` counts the
    requests received and ``headers(path)`` lists their headers, in order.
    """

    def __init__(self):
        import collections
        import http.server
        import json
        import threading
        import time

        server = self
        self._answers = collections.defaultdict(list)
        self._hits = collections.Counter()
        self._headers = collections.defaultdict(list)
        self._lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                path = self.path.split("?", 1)[0]
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                with server._lock:
                    server._hits[path] += 1
                    server._headers[path].append(dict(self.headers))
                    unscripted = [1, 404, {"error": "unscripted"}, 0, {}]
                    queue = server._answers.get(path) or [unscripted]
                    answer = queue[0]
                    if len(queue) > 1:
                        answer[0] -= 1
                        if answer[0] <= 0:
                            queue.pop(0)
                _, status, body, delay, headers = answer
                if delay:
                    time.sleep(delay)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def respond(
        self, path: str, status: int = 200, body=None, *, times: int = 1, delay=0.0, headers=None
    ):
        with self._lock:
            answer = [times, status, body if body is not None else {}, delay, headers or {}]
            self._answers[path].append(answer)

    def hits(self, path: str) -> int:
        with self._lock:
            return self._hits[path]

    def headers(self, path: str) -> list[dict]:
        with self._lock:
            return list(self._headers[path])

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_server():
    server = ScriptedHttpServer()
    yield server
    server.close()


@pytest.fixture
def worker_processes(transactional_db, settings):
    """``start(concurrency=2, env=None, name=None, **options)`` -> a rcm.workers.WorkerProcess
    on a queue of this test's own, to which the engine's messages are routed (no in-process
    worker sees them); ``options``: WorkerProcess's (loglevel, log_path)."""
    import uuid as uuid_module

    queue = f"rcm-test-proc-{uuid_module.uuid4().hex[:8]}"
    settings.CELERY_TASK_DEFAULT_QUEUE = settings.CELERY_WEB_QUEUE = queue
    started = []

    from rcm.workers import WorkerProcess, queue_drop

    def start(concurrency: int = 2, env: dict | None = None, name=None, **options):
        worker = WorkerProcess(
            queue,
            concurrency=concurrency,
            env={"DJANGO_SETTINGS_MODULE": "rcm.settings.test", **(env or {})},
            name=name,
            **options,
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
    queue_drop(queue)
