"""Batch search: the console's batch page on a 100,000-row batch, its rows filtered, searched
by member ID and by patient name, and paged deep.

    .venv/bin/python benchmarks/batch_search.py [--rows 100000] [--repeat 40]

In a throw-away database (bench_rcm): an organization with two batch jobs of ``--rows`` rows
each (the second one a neighbour, so that every search has another job's rows to leave out),
their items written with bulk_create (the rows are what an upload stores: member IDs, patient
names, dates; 90 % completed, 8 % failed, 2 % pending). Then ANALYZE, as autovacuum would.

Two figures per case, each the median (p50) and p95 of ``--repeat`` runs after one warm-up:

- ``query_ms``: the selector the page calls (``batch_job_item_page``), in the organization's
  context, row-level security on: the database's share.
- ``page_ms``: the whole console page through Django's stack in-process (session, the admin's
  organization middleware, the permission check, the selector, the template), a signed-in
  operator's GET; the HTTP server is not in the figure.

The plan of each case's query is printed too (EXPLAIN), to show which index serves it, and
last the worst case's medians: query_p50_worst_case_ms and page_p50_worst_case_ms (target
<= 30).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid

from _common import bench_database, percentile
from django.db import connection
from django.test import Client
from django.urls import reverse

from rcm.context import org_context
from rcm.lookups import OrgType, UserRole
from tenants import services as tenant_services
from workflows.models import BatchJob, BatchJobItem, Workflow, WorkflowRevision
from workflows.selectors import batch as selectors

FIRST_NAMES = ["Ada", "James", "Maria", "Robert", "Linda", "Michael", "José", "Zoë", "Renée", "Wei"]
LAST_NAMES = ["Smith", "Garcia", "Nguyen", "O'Brien", "Fitzgerald-Smith", "Patel", "Kim", "Lopez"]
# A rare name, on one row of the measured job: a search that finds almost nothing.
RARE = ("Ottoline", "Quennell")
CHUNK = 5000


def seed_job(org_id, workflow, revision, rows: int, rng: random.Random) -> tuple[BatchJob, str]:
    """A job of ``rows`` items written straight (bulk_create), counters to match; returns it
    and one member ID it holds."""
    statuses = ["completed"] * 90 + ["failed"] * 8 + ["pending"] * 2
    job = BatchJob.objects.create(
        org_id=org_id, workflow=workflow, revision=revision, file_name="bench.csv"
    )
    counts = {"completed": 0, "failed": 0, "pending": 0}
    sample = ""
    for start in range(0, rows, CHUNK):
        items = []
        for number in range(start + 1, min(start + CHUNK, rows) + 1):
            member = f"{rng.randrange(10**8, 10**9)}"
            if number % 3 == 0:
                member = f"W{member}"
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            if number == rows // 2:
                first, last, sample = *RARE, member
            status = rng.choice(statuses)
            counts[status] += 1
            items.append(
                BatchJobItem(
                    org_id=org_id,
                    batch_job=job,
                    row_number=number,
                    status=status,
                    attempts=0 if status == "pending" else 1,
                    error_message="failure" if status == "failed" else "",
                    input_data={
                        "member_id": member,
                        "patient_first_name": first,
                        "patient_last_name": last,
                        "patient_dob": "1980-04-30",
                        "provider_npi": "1234567893",
                        "service_date": "2026-01-05",
                    },
                )
            )
        BatchJobItem.objects.bulk_create(items)
    done = counts["completed"] + counts["failed"]
    BatchJob.objects.filter(pk=job.pk).update(
        total_rows=rows,
        pending_rows=counts["pending"],
        successful_rows=counts["completed"],
        failed_rows=counts["failed"],
        processed_rows=done,
        status_id="processing",
    )
    job.refresh_from_db()
    return job, sample


def timed(action, repeat: int) -> tuple[float, float]:
    action()  # warm-up: plans, caches
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), percentile(times, 95)


def plan(org_id, job, filters: dict) -> str:
    """Which scans and indexes the first page's statement uses, as the selector builds it."""
    with org_context(org_id):
        searched = {key: value for key, value in filters.items() if key != "after"}
        items = selectors.batch_job_item_search(job=job, **searched)
        if filters.get("after"):
            items = items.filter(row_number__gt=filters["after"])
        page = items.order_by("row_number")[: selectors.ITEM_PAGE_SIZE + 1]
        sql, params = page.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {sql}", params)
            lines = [row[0] for row in cursor.fetchall()]
    return " / ".join(line.strip() for line in lines if "Index" in line or "Scan" in line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()
    rng = random.Random(14)
    with bench_database():
        org = tenant_services.organization_create(name="Bench", org_type=OrgType.BILLING_FIRM)
        user = tenant_services.user_create(
            org_id=org.id,
            email="bench@bench.test",
            role=UserRole.OPERATOR,
            password="bench-password-1",
            is_staff=True,
        )
        with org_context(org.id):
            workflow = Workflow.objects.create(
                org_id=org.id, name=f"bench-{uuid.uuid4().hex[:6]}", status_id="active"
            )
            revision = WorkflowRevision.objects.create(
                org_id=org.id, workflow=workflow, revision_num=1, graph={"nodes": [], "edges": []}
            )
            started = time.perf_counter()
            job, member = seed_job(org.id, workflow, revision, args.rows, rng)
            seed_job(org.id, workflow, revision, args.rows, rng)
            seeded = time.perf_counter() - started
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE batch_job_item")
        print(f"rows_per_job {args.rows}  jobs 2  seed_seconds {seeded:.1f}")
        client = Client()
        client.force_login(user)
        url = reverse("console:batch", args=(job.pk,))
        cases = {
            "first page": {},
            "deep page (after row 90,000)": {"after": int(args.rows * 0.9)},
            "status failed": {"status": "failed"},
            "member ID, whole": {"member_id": member},
            "member ID, its first 5 characters": {"member_id": member[:5]},
            "member ID, its first 2 characters": {"member_id": member[:2]},
            "patient, common last name": {"patient": "garcia"},
            "patient, first name prefix": {"patient": "ma"},
            "patient, first and last": {"patient": "maria nguyen"},
            "patient, rare name": {"patient": RARE[1].lower()},
            "patient, no match": {"patient": "xyzzy"},
        }
        print(f"{'case':36} {'found':>5} {'query p50':>10} {'p95':>7} {'page p50':>9} {'p95':>7}")
        medians = {"query": [], "page": []}
        for name, filters in cases.items():
            with org_context(org.id):

                def query(filters=filters):
                    return selectors.batch_job_item_page(job=job, **filters)

                found = len(query().rows)
                query_p50, query_p95 = timed(query, args.repeat)

            def get(filters=filters):
                response = client.get(url, filters)
                assert response.status_code == 200, response.status_code

            page_p50, page_p95 = timed(get, args.repeat)
            medians["query"].append(query_p50)
            medians["page"].append(page_p50)
            print(
                f"{name:36} {found:5d} {query_p50:9.2f}ms {query_p95:6.2f}ms "
                f"{page_p50:8.2f}ms {page_p95:6.2f}ms"
            )
            print(f"    plan: {plan(org.id, job, filters)}")
        print(f"query_p50_worst_case_ms: {max(medians['query']):.2f}")
        print(f"page_p50_worst_case_ms: {max(medians['page']):.2f} (target <= 30)")


if __name__ == "__main__":
    main()
