"""Bounded input: the three hostile uploads of the issue, each sent to POST /api/v2/batch-jobs/.

    .venv/bin/python benchmarks/upload_limits.py

The files are built by ``tests/workflows/hostile_files.py`` (the tests send the same ones):

* ``xlsx_rowgap``: a 4.7 KB workbook whose second data row is numbered 100,000,000 (and whose
  dimension says so); it used to take 40 s of CPU, reading every blank row up to it;
* ``xlsx_bomb``: a 1 MB workbook whose sheet inflates to 1 GiB (one cell, "Ada" and spaces);
  it used to take the web process to 2.2 GB;
* ``blank_csv``: a 49 MB CSV of a header and line breaks; it used to take 53 s.

In a throw-away database (bench_rcm): an organization, an operator and a published workflow
taking ``member_id`` and ``name``. Each file goes as one multipart POST with a JWT through
Django's whole request stack in-process (middleware, authentication, the request transaction,
multipart parsing, the upload service), from the request to its answer; the HTTP server itself
is not in the figure.

Memory: each file is sent from a fresh Python process (whose allocator holds no memory freed
by building the files), and the figure is the growth of its resident set at its highest: just
before the request the kernel's high-water mark is reset to the current resident set (Linux:
"5" written to /proc/self/clear_refs), and after it the mark (VmHWM in /proc/self/status) minus
that level. Unlike getrusage's ru_maxrss, which never comes down, the mark then misses nothing
the request adds, however brief. The multipart body is read from disk before the reset (a
server reads it from a socket); the test client's copy of it, if it makes one, is inside.

Prints, for each file, ``<file>_file_kb``, ``<file>_answer`` (status and error code),
``<file>_seconds`` and ``<file>_peak_mb``. Targets: xlsx_rowgap_seconds
<= 1, xlsx_bomb_peak_mb <= 100, blank_csv_seconds <= 2.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _common import ROOT, bench_database, bench_operator
from batch_ingest import EDGES, NODES
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from rcm.context import org_context
from rcm.lookups import UserRole
from tenants.authentication import token_pair_for
from tests.workflows import hostile_files
from workflows.services import authoring

URL = "/api/v2/batch-jobs/"
DATABASE = "bench_rcm"
FILES = {
    "xlsx_rowgap": ("rowgap.xlsx", lambda: hostile_files.xlsx_row_gap(row=100_000_000)),
    "xlsx_bomb": ("bomb.xlsx", lambda: hostile_files.xlsx_inflating(inflated_bytes=1 << 30)),
    "blank_csv": ("blank.csv", lambda: hostile_files.csv_blank_lines(size=49 * 1024 * 1024)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--send", nargs=2, metavar=("BODY", "TOKEN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.send:
        send(Path(args.send[0]), args.send[1])
        return
    with tempfile.TemporaryDirectory() as folder, bench_database(DATABASE):
        org, user = bench_operator()
        with org_context(org.id):
            workflow = _workflow(org.id, user)
        token = token_pair_for(user=user, org_id=org.id, role=UserRole.OPERATOR)["access"]
        for name, (file_name, build) in FILES.items():
            body = Path(folder) / f"{name}.body"
            upload = Path(folder) / file_name
            upload.write_bytes(build())
            with upload.open("rb") as handle:
                body.write_bytes(
                    encode_multipart(BOUNDARY, {"workflow": str(workflow.pk), "file": handle})
                )
            figures = _sent_from_a_fresh_process(body, token)
            print(f"{name}_file_kb: {upload.stat().st_size / 1024:.1f}")
            print(f"{name}_answer: {figures['status']} {figures['code']}")
            print(f"{name}_seconds: {figures['seconds']:.3f}")
            print(f"{name}_peak_mb: {figures['peak_mb']:.1f}")


def _workflow(org_id: uuid.UUID, user):
    workflow = authoring.workflow_create(
        org_id=org_id, created_by=user, name="Upload limits", required_data=["member_id", "name"]
    )
    authoring.workflow_graph_replace(
        workflow=workflow, version=workflow.version, nodes=NODES, transitions=EDGES
    )
    workflow.refresh_from_db()
    authoring.workflow_publish(workflow=workflow, created_by=user)
    return workflow


def _sent_from_a_fresh_process(body: Path, token: str) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--send", str(body), token]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def send(body_path: Path, token: str) -> None:
    """In the fresh process: one POST of the body, timed, its memory high-water measured."""
    from django.db import connections
    from rest_framework.test import APIClient

    from rcm.celery import app
    from rcm.workers import queue_drop

    connections["default"].settings_dict["NAME"] = DATABASE
    # A refused upload sends nothing; an accepted one (an older version of the code) would
    # send its feed to a queue of its own, which nothing consumes and which is dropped.
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    app.conf.task_default_queue = queue
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    client.get("/api/v2/batch-jobs/")  # connections, URL resolver and serializers warm
    with body_path.open("rb", buffering=0) as handle:
        body = handle.read()  # one allocation of the file's size, not a buffered read's two
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    before_kb = _status_kb("VmRSS")
    started = time.perf_counter()
    response = client.generic("POST", URL, body, content_type=MULTIPART_CONTENT)
    seconds = time.perf_counter() - started
    after_kb = _status_kb("VmHWM")
    queue_drop(queue)
    payload = response.json()
    code = payload["error"]["code"] if response.status_code >= 400 else "created"
    figures = {
        "status": response.status_code,
        "code": code,
        "seconds": seconds,
        "peak_mb": (after_kb - before_kb) / 1024,
    }
    print(json.dumps(figures))


def _status_kb(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE).group(1))


if __name__ == "__main__":
    main()
