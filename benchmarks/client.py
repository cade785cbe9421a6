"""What the Python client costs over bare httpx when listing: 10,000 runs read through
``Client.runs()`` and through an httpx loop following the same cursor pages, in the same run.

    .venv/bin/python benchmarks/client.py [--runs 10000] [--page-size 200] [--rounds 5]

In a throw-away database (bench_client): an organization, an operator with a password, one
published workflow and ``--runs`` finished runs (one set-based INSERT, as api_latency.py seeds
its users: 10,000 engine runs would take longer than the measurement). The platform is
served by gunicorn as `make run` serves it (rcm/webserver.py), on 127.0.0.1, with 2 workers.

Both readers send the same requests one after another: ``GET /api/v2/runs/?page_size=N``,
then each page's ``next`` link, with a JWT. The client turns every row into a frozen ``Run``
(timestamps parsed), checks its token before each request and goes through its retry loop;
the bare loop decodes the JSON and counts the rows. After a warm-up pass of each, ``--rounds``
rounds alternate which goes first; a figure is all rows read over all the time it took.

Prints ``client_list_rows_per_s``, ``httpx_list_rows_per_s`` and ``ratio`` (client over
httpx; target >= 0.9), with ``client_cost_us_per_row`` (the client's own time per row,
measured apart: ``Run.from_api`` on the same JSON).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import subprocess
import time

import httpx
from _common import ROOT, bench_database
from django.conf import settings
from django.db import connection
from engine_throughput import publish_noop_workflow
from rcm_client import Client, Run

from rcm import webserver
from rcm.context import org_context
from rcm.lookups import OrgType, UserRole
from rcm.workers import database_url
from tenants import services as tenant_services

DATABASE = "bench_client"
PASSWORD = "bench-client-password"
START_TIMEOUT_S = 60


def seed(runs: int) -> str:
    """The operator's email, with ``runs`` finished runs in their organization."""
    org = tenant_services.organization_create(name="Client bench", org_type=OrgType.BILLING_FIRM)
    user = tenant_services.user_create(
        org_id=org.id, email="operator@client.bench", role=UserRole.OPERATOR, password=PASSWORD
    )
    with org_context(org.id):
        workflow = publish_noop_workflow(org.id, user)
        revision = workflow.revisions.latest("revision_num")
        with connection.cursor() as cursor:
            # One in ten failed, as a night's eligibility checks might end.
            cursor.execute(
                """
                INSERT INTO workflow_run (org_id, workflow_id, revision_id, input, context,
                    status, outcome, result, error, cancel_requested, created_by_id,
                    started_at, ended_at, duration_ms, created_at, updated_at)
                SELECT %s, %s, %s,
                       jsonb_build_object('member_id', 'W' || n, 'last_name', 'Rivera',
                                          'date_of_birth', '1984-03-02'),
                       '{}'::jsonb,
                       CASE WHEN n %% 10 = 0 THEN 'failed' ELSE 'completed' END,
                       'done',
                       CASE WHEN n %% 10 = 0 THEN 'failure' ELSE 'success' END,
                       CASE WHEN n %% 10 = 0 THEN 'portal_timeout' ELSE '' END,
                       false, %s,
                       now() - n * interval '1 second',
                       now() - n * interval '1 second' + interval '850 milliseconds',
                       850,
                       now() - n * interval '1 second', now()
                FROM generate_series(1, %s) AS n
                """,
                [org.id, workflow.pk, revision.pk, user.pk, runs],
            )
    return user.email


@contextlib.contextmanager
def served():
    """gunicorn on the benchmark's database; its address."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    db, owner = connection.settings_dict, settings.DATABASE_OWNER
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "rcm.settings.base",
        "DATABASE_URL": database_url(db),
        "DATABASE_OWNER_URL": database_url(db, user=owner["USER"], password=owner["PASSWORD"]),
        "REDIS_URL": settings.REDIS_URL,
        "WEB_CONCURRENCY": "2",
    }
    server = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed argv
        webserver.gunicorn_argv(port), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _ready(url):
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not start on port {port}")
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def through_client(client: Client, page_size: int) -> int:
    return sum(1 for _ in client.runs(page_size=page_size))


def through_httpx(http: httpx.Client, page_size: int) -> int:
    rows, url = 0, f"/api/v2/runs/?page_size={page_size}"
    while url:
        response = http.get(url)
        response.raise_for_status()
        page = response.json()
        rows += len(page["results"])
        url = page["next"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    # httpx logs every request at INFO, which the platform's logging shows: thousands of lines
    # that would cost both readers the same and say nothing.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    with bench_database(DATABASE):
        email = seed(args.runs)
        with served() as url, Client(url, email=email, password=PASSWORD) as client:
            token = httpx.post(
                f"{url}/api/v2/auth/token/", json={"email": email, "password": PASSWORD}
            ).json()["access"]
            http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})
            readers = {
                "client": lambda: through_client(client, args.page_size),
                "httpx": lambda: through_httpx(http, args.page_size),
            }
            for read in readers.values():  # warm-up: connections, the server's caches
                assert read() == args.runs
            rows = dict.fromkeys(readers, 0)
            seconds = dict.fromkeys(readers, 0.0)
            for round_number in range(args.rounds):
                order = list(readers) if round_number % 2 == 0 else list(reversed(readers))
                for name in order:
                    started = time.perf_counter()
                    rows[name] += readers[name]()
                    seconds[name] += time.perf_counter() - started
            sample = http.get(f"/api/v2/runs/?page_size={args.page_size}").json()["results"]
            http.close()

    rates = {name: rows[name] / seconds[name] for name in readers}
    started = time.perf_counter()
    for _ in range(20):
        for item in sample:
            Run.from_api(item)
    cost_us = (time.perf_counter() - started) / (20 * len(sample)) * 1e6
    print(f"client_list_rows_per_s: {rates['client']:.0f}")
    print(f"httpx_list_rows_per_s: {rates['httpx']:.0f}")
    print(f"ratio: {rates['client'] / rates['httpx']:.3f}")
    print(f"client_cost_us_per_row: {cost_us:.1f}")


if __name__ == "__main__":
    main()
