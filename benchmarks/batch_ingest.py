"""Batch ingest: a 100,000-row CSV uploaded through the API until every row is a stored item.

    .venv/bin/python benchmarks/batch_ingest.py [--rows 100000]

In a throw-away database (bench_rcm): an organization with a UHC endpoint (``uhc-portal``) and
a published workflow whose task type is ``eligibility/check`` on that endpoint, so that every
row is checked against the effective requirements of (organization, UHC, eligibility check,
today), as a real upload's rows are. The CSV is written to a temporary file first: member IDs,
patient names, dates of birth, rendering-provider NPIs (with a valid check digit), dates of
service and service type codes, every row valid.

The figure is one multipart POST to /api/v2/batch-jobs/ with a JWT, through Django's whole
request stack in-process (middleware, JWT authentication with the live membership check,
multipart parsing with the file spooled to disk, the upload service reading and checking the
rows and inserting them in chunks, row-level security), from the request to its 201: the job
and its items are committed when the answer comes back, and the benchmark counts them. The
HTTP server itself is not in the figure. The feed the commit sends goes to a queue of the
benchmark's own, which nothing consumes and which is deleted at the end.

Memory: the process's resident set, sampled every 10 ms by a thread (psutil), peak minus the
level just before the request. Not getrusage's ``ru_maxrss``: that is the peak of the process's
whole life, and creating and migrating the database may already have set it above the
upload's own, so the difference before/after would read 0. Python seldom hands freed memory
back to the system, so a peak shorter than the sampling interval still shows in the next
sample. The multipart body is encoded before the baseline (a server reads it from a socket);
the test client's copy of it (the size of the file) is inside the figure.

Prints rows, file_mb, ingest_seconds (target <= 10), rows_per_s and peak_memory_growth_mb
(target <= 150).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gc
import random
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil
from _common import bench_database, bench_operator, bench_queue
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from rest_framework.test import APIClient

from rcm.context import org_context
from rcm.lookups import UserRole
from rcm.progress import ProgressBar
from tenants import services as tenant_services
from tenants.authentication import token_pair_for
from tenants.models import ChannelType
from workflows.models import BatchJobItem
from workflows.services import authoring

URL = "/api/v2/batch-jobs/"
SAMPLE_SECONDS = 0.01
HEADER = [
    "member_id",
    "patient_first_name",
    "patient_last_name",
    "patient_dob",
    "provider_npi",
    "service_date",
    "service_type_code",
]
# Including the accents and apostrophes real rosters have.
FIRST_NAMES = ["Ada", "James", "Maria", "Robert", "Linda", "Michael", "José", "Zoë", "Renée", "Wei"]
LAST_NAMES = ["Smith", "Garcia", "Nguyen", "O'Brien", "Fitzgerald-Smith", "Patel", "Kim", "Lopez"]
SERVICE_TYPES = ["30", "1", "33", "35", "47", "48", "86", "88", "98", "AL", "MH", "UC"]
NODES = [
    {"key": "start", "node_type": "entry"},
    {"key": "check", "node_type": "general", "kind": "noop"},
    {"key": "done", "node_type": "outcome", "config": {"result": "success"}},
]
EDGES = [
    {"from": "start", "to": "check", "label": "success"},
    {"from": "check", "to": "done", "label": "success"},
]


def npi(base: int) -> str:
    """A 10-digit NPI: 9 digits and the Luhn check digit over '80840' + those digits (the
    prefix the NPI standard assigns to US health identifiers)."""
    digits = f"80840{base:09d}"
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return f"{base:09d}{(10 - total % 10) % 10}"


def write_csv(path: Path, rows: int, seed: int = 8) -> None:
    rng = random.Random(seed)
    providers = [npi(rng.randrange(100_000_000, 300_000_000)) for _ in range(200)]
    today = dt.date.today()
    with (
        path.open("w", newline="", encoding="utf-8") as handle,
        ProgressBar(rows, "writing the CSV") as bar,
    ):
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for number in range(rows):
            # UHC-style member IDs: 9 digits, some with a letter prefix or a dependent suffix.
            member = f"{rng.randrange(10**8, 10**9)}"
            if number % 3 == 0:
                member = f"W{member}"
            elif number % 7 == 0:
                member = f"{member}-0{rng.randrange(1, 4)}"
            writer.writerow(
                [
                    member,
                    rng.choice(FIRST_NAMES),
                    rng.choice(LAST_NAMES),
                    (today - dt.timedelta(days=rng.randrange(365, 95 * 365))).isoformat(),
                    rng.choice(providers),
                    (today - dt.timedelta(days=rng.randrange(0, 60))).isoformat(),
                    rng.choice(SERVICE_TYPES),
                ]
            )
            if number % 1000 == 999:
                bar.advance(1000)
        bar.advance(rows % 1000)


class PeakRss:
    """The peak of the process's resident memory inside the block above its level at the start,
    sampled every ``interval`` seconds by a thread."""

    def __init__(self, interval: float = SAMPLE_SECONDS):
        self.interval = interval
        self.process = psutil.Process()

    def __enter__(self) -> PeakRss:
        gc.collect()
        self.baseline = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / (1024 * 1024)


def eligibility_workflow(org_id: uuid.UUID, user):
    """Published, on the organization's UHC endpoint, checking eligibility."""
    endpoint = tenant_services.endpoint_create(
        org_id=org_id,
        name="UHC Provider Portal",
        channel_type=ChannelType.objects.get(code="uhc-portal"),
    )
    workflow = authoring.workflow_create(
        org_id=org_id,
        created_by=user,
        name="Eligibility on UHC",
        task_type="eligibility/check",
        endpoint_id=endpoint.pk,
        required_data=["member_id", "service_date"],
    )
    authoring.workflow_graph_replace(
        workflow=workflow, version=workflow.version, nodes=NODES, transitions=EDGES
    )
    workflow.refresh_from_db()
    authoring.workflow_publish(workflow=workflow, created_by=user)
    return workflow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with bench_queue(), tempfile.TemporaryDirectory() as folder, bench_database():
        org, user = bench_operator()
        with org_context(org.id):
            workflow = eligibility_workflow(org.id, user)
        path = Path(folder) / "eligibility.csv"
        write_csv(path, args.rows)
        client = APIClient()
        token = token_pair_for(user=user, org_id=org.id, role=UserRole.OPERATOR)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token['access']}")
        with path.open("rb") as upload:
            body = encode_multipart(BOUNDARY, {"workflow": str(workflow.pk), "file": upload})
        file_mb = path.stat().st_size / (1024 * 1024)
        with PeakRss() as memory:
            started = time.perf_counter()
            response = client.generic("POST", URL, body, content_type=MULTIPART_CONTENT)
            seconds = time.perf_counter() - started
        if response.status_code != 201:
            raise SystemExit(f"upload answered {response.status_code}: {response.content!r}")
        job = response.json()
        with org_context(org.id):
            stored = BatchJobItem.objects.filter(batch_job_id=job["id"]).count()
        if stored != args.rows or job["total_rows"] != args.rows:
            raise SystemExit(f"{stored} items stored, job says {job['total_rows']}")
    print(f"rows: {stored}")
    print(f"file_mb: {file_mb:.1f}")
    print(f"ingest_seconds: {seconds:.2f}")
    print(f"rows_per_s: {stored / seconds:.0f}")
    print(f"peak_memory_growth_mb: {memory.growth_mb:.1f}")


if __name__ == "__main__":
    main()
