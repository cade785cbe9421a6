"""The web server under load: gunicorn as `make run` starts it, against Django's development
server, in the same run.

    .venv/bin/python benchmarks/api_load.py [--clients 20] [--seconds 60]

In a throw-away database (bench_load): an organization, an operator (a JWT), 5 published
workflows, 200 runs and 20 batch jobs of 25 rows. Each server is started in turn on
127.0.0.1 against that database and the embedded Redis, with the argv `make run` uses
(rcm/webserver.py: gunicorn with rcm/gunicorn_conf.py) or the one `make run` used before
(`runserver --noreload --insecure`), and gets ``--clients`` concurrent clients for
``--seconds`` after a warm-up of 5 s. Each client is a thread with its own keep-alive
connection, sending one request after another from this mix:

    25 % GET /runs/                    10 % GET /batch-jobs/{id}/
    15 % GET /runs/{id}/               10 % GET /batch-jobs/{id}/items/
    15 % GET /batch-jobs/              10 % GET /workflows/ and /workflows/{id}/ (5 % each)
    15 % POST /batch-jobs/ (a 3-row CSV, multipart)

An error is a refused connection, a timeout or a status other than the one expected (200; 201
for uploads). Uploads' feed messages go to a queue of the benchmark's own, dropped at the end;
no worker runs, so their jobs stay pending. The machine has 2 cores, shared by the server, the
clients, PostgreSQL and Redis: the figures are for that, not for a server alone.

Prints ``requests_per_s``, ``p50_ms``, ``p99_ms``, ``errors`` for gunicorn, the same with a
``devserver_`` prefix for the development server, and ``ratio_vs_devserver`` (throughput).
Targets: p99_ms <= 250, errors 0, ratio_vs_devserver >= 1.5.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import socket
import subprocess
import threading
import time
import uuid

from _common import ROOT, bench_database, percentile
from batch_ingest import EDGES, NODES
from django.conf import settings
from django.db import connection

from rcm import webserver
from rcm.context import org_context
from rcm.lookups import OrgType, UserRole
from rcm.progress import ProgressBar
from rcm.workers import database_url, queue_drop
from tenants import services as tenant_services
from tenants.authentication import token_pair_for
from workflows.services import authoring, batch, runs

DATABASE = "bench_load"
WARM_UP_S = 5
START_TIMEOUT_S = 60
CSV_BODY = b"member_id,name\nW100,Ada\nW101,Bob\nW102,Cy\n"
BOUNDARY = "rcm-bench-boundary"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    queue = f"bench-load-{os.getpid()}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    try:
        with bench_database(DATABASE):
            world = seed()
            env = server_env(queue)
            figures = {}
            for prefix, argv_of in (("", webserver.gunicorn_argv), ("devserver_", None)):
                argv_of = argv_of or webserver.devserver_argv
                result = measure(argv_of, env, world, args.clients, args.seconds, prefix)
                figures.update({prefix + name: value for name, value in result.items()})
    finally:
        queue_drop(queue)
    ratio = figures["requests_per_s"] / max(figures["devserver_requests_per_s"], 1e-9)
    for name, value in figures.items():
        print(f"{name}: {value}")
    print(f"ratio_vs_devserver: {ratio:.2f}")


# -- the data -------------------------------------------------------------------------------


def seed() -> dict:
    org = tenant_services.organization_create(name="Load", org_type=OrgType.BILLING_FIRM)
    user = tenant_services.user_create(
        org_id=org.id, email="load@bench.test", role=UserRole.OPERATOR
    )
    with org_context(org.id):
        workflows = [_workflow(org.id, user, number) for number in range(5)]
        run_ids = [
            runs.run_start(
                workflow=workflows[number % 5],
                input={"member_id": f"W{number}", "name": "Ada"},
                created_by=user,
            ).pk
            for number in range(200)
        ]
        job_ids = []
        for number in range(20):
            workflow = workflows[number % 5]
            rows = ({"member_id": f"J{number}-{row}", "name": "Bob"} for row in range(25))
            job = batch.batch_job_create(
                workflow=workflow,
                revision=workflow.revisions.latest("revision_num"),
                rows=batch.rows_numbered(rows),
                created_by=user,
            )
            job_ids.append(job.pk)
    token = token_pair_for(user=user, org_id=org.id, role=UserRole.OPERATOR)["access"]
    return {
        "token": token,
        "workflows": [str(workflow.pk) for workflow in workflows],
        "runs": run_ids,
        "jobs": job_ids,
    }


def _workflow(org_id: uuid.UUID, user, number: int):
    workflow = authoring.workflow_create(
        org_id=org_id, created_by=user, name=f"Load {number}", required_data=["member_id", "name"]
    )
    authoring.workflow_graph_replace(
        workflow=workflow, version=workflow.version, nodes=NODES, transitions=EDGES
    )
    workflow.refresh_from_db()
    authoring.workflow_publish(workflow=workflow, created_by=user)
    return workflow


# -- the servers ----------------------------------------------------------------------------


def server_env(queue: str) -> dict:
    db = connection.settings_dict
    owner = settings.DATABASE_OWNER
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "rcm.settings.base",
        "DATABASE_URL": database_url(db),
        "DATABASE_OWNER_URL": database_url(db, user=owner["USER"], password=owner["PASSWORD"]),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_QUEUE": queue,
        "PYTHONUNBUFFERED": "1",
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    except OSError:
        return False


def measure(argv_of, env, world, clients: int, seconds: float, prefix: str) -> dict:
    port = _free_port()
    server = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed argv
        argv_of(port),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(port):
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{prefix or 'gunicorn'} server did not start on port {port}")
            time.sleep(0.2)
        load(port, world, clients, WARM_UP_S, label=f"{prefix}warm-up")
        return load(port, world, clients, seconds, label=f"{prefix or 'gunicorn_'}load")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# -- the clients ----------------------------------------------------------------------------


def _requests(world: dict):
    """(method, path, body, content type, expected status) of the mix, weighted."""
    runs_, jobs, flows = world["runs"], world["jobs"], world["workflows"]
    upload = (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="workflow"\r\n\r\n'
            f'{flows[0]}\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="rows.csv"\r\nContent-Type: text/csv\r\n\r\n'
        ).encode()
        + CSV_BODY
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    multipart = f"multipart/form-data; boundary={BOUNDARY}"
    return [
        (25, lambda: ("GET", "/api/v2/runs/", None, None, 200)),
        (15, lambda: ("GET", f"/api/v2/runs/{random.choice(runs_)}/", None, None, 200)),
        (15, lambda: ("GET", "/api/v2/batch-jobs/", None, None, 200)),
        (10, lambda: ("GET", f"/api/v2/batch-jobs/{random.choice(jobs)}/", None, None, 200)),
        (10, lambda: ("GET", f"/api/v2/batch-jobs/{random.choice(jobs)}/items/", None, None, 200)),
        (5, lambda: ("GET", "/api/v2/workflows/", None, None, 200)),
        (5, lambda: ("GET", f"/api/v2/workflows/{random.choice(flows)}/", None, None, 200)),
        (15, lambda: ("POST", "/api/v2/batch-jobs/", upload, multipart, 201)),
    ]


def load(port: int, world: dict, clients: int, seconds: float, *, label: str) -> dict:
    mix = _requests(world)
    choices = [make for weight, make in mix for _ in range(weight)]
    headers = {"Authorization": f"Bearer {world['token']}"}
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, failed = [], 0
        while time.monotonic() < stop_at:
            method, path, body, content_type, expected = random.choice(choices)()
            sent = dict(headers, **({"Content-Type": content_type} if content_type else {}))
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=sent)
                response = conn.getresponse()
                response.read()
                ok = response.status == expected
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()  # the development server closes after some answers
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
            mine.append((time.perf_counter() - started) * 1000)
            failed += not ok
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    with ProgressBar(total=int(seconds), label=label) as bar:
        while any(thread.is_alive() for thread in threads):
            time.sleep(1)
            bar.advance()
    for thread in threads:
        thread.join()
    return {
        "requests_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "errors": errors[0],
    }


if __name__ == "__main__":
    main()
