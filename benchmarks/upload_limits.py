"""Hostile uploads: how fast each is refused and how much memory refusing it takes.

    .venv/bin/python benchmarks/upload_limits.py

Three files the security review sent, built in memory (tests/workflows/hostile_files.py):

- an XLSX of a few kilobytes whose second row is numbered 100,000,000 (openpyxl yields every
  row of the gap; the upload used to read all of them, 40 s);
- an XLSX of about a megabyte whose sheet inflates to 1 GB (the web process used to reach
  2.2 GB);
- a 49 MB CSV of blank lines (53 s).

Each is one multipart POST to /api/v2/batch-jobs/ with a JWT, through Django's whole request
stack in-process, in a throw-away database (bench_rcm), and must be refused with nothing
written. Memory is the process's resident set sampled every 10 ms (batch_ingest.PeakRss), peak
minus the level just before the request; the body is encoded before that baseline, the test
client's copy of the file is inside the figure.

Prints, for each file, ``<name>_seconds`` and ``<name>_peak_mb``, among them
xlsx_rowgap_seconds (target <= 1), xlsx_bomb_peak_mb (target <= 100) and blank_csv_seconds
(target <= 2).
"""

from __future__ import annotations

import gc
import time
import uuid

from _common import bench_database
from batch_ingest import PeakRss
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from rest_framework.test import APIClient

from rcm.context import org_context
from rcm.lookups import OrgType, UserRole
from tenants import services as tenant_services
from tenants.authentication import token_pair_for
from tests.workflows import hostile_files
from tests.workflows.engine_helpers import published
from workflows.models import BatchJob


def _files() -> list[tuple[str, str, bytes]]:
    return [
        ("xlsx_rowgap", "gap.xlsx", hostile_files.xlsx_row_gap(100_000_000)),
        ("xlsx_bomb", "bomb.xlsx", hostile_files.xlsx_bomb(1024 * 1024 * 1024)),
        ("blank_csv", "blank.csv", hostile_files.csv_blank_lines(49 * 1024 * 1024)),
    ]


def main() -> None:
    with bench_database():
        org = tenant_services.organization_create(name="Bench", org_type=OrgType.BILLING_FIRM)
        user = tenant_services.user_create(
            org_id=org.id, email=f"op-{uuid.uuid4().hex[:6]}@bench.test", role=UserRole.OPERATOR
        )
        workflow, _ = published(org.id, "start>done", required_data=["member_id", "name"])
        client = APIClient()
        token = token_pair_for(user=user, org_id=org.id, role=UserRole.OPERATOR)["access"]
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        for name, file_name, content in _files():
            upload = SimpleUploadedFile(file_name, content)
            body = encode_multipart(BOUNDARY, {"workflow": str(workflow.pk), "file": upload})
            del upload, content
            gc.collect()
            with PeakRss() as memory:
                started = time.perf_counter()
                response = client.generic("POST", "/api/v2/batch-jobs/", body, MULTIPART_CONTENT)
                seconds = time.perf_counter() - started
            with org_context(org.id):
                written = BatchJob.objects.count()
            code = response.json()["error"]["code"]
            assert response.status_code in (400, 413) and written == 0, (name, response.content)
            print(f"{name}_bytes: {len(body)}")
            print(f"{name}_status: {response.status_code} {code}")
            print(f"{name}_seconds: {seconds:.3f}")
            print(f"{name}_peak_mb: {memory.growth_mb:.1f}")
            del body, response


if __name__ == "__main__":
    main()
