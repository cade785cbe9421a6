"""rcm_validate on a platform-sized database: 10 organizations, each with a batch job of 20,000
rows, a trace per row (with the endpoint it touched) and 200 micro-states.

    .venv/bin/python benchmarks/validate.py [--orgs 10] [--items 20000] [--states 200] [--repeat 3]

In a throw-away database (bench_rcm). Per organization one row of each table is made through
the ORM; the batch items, traces and trace endpoints are then copies of it, one
``INSERT … SELECT`` each (the columns read from the models), written in the organization's
context so that row-level security checks them as it checks the platform's own writes. The
micro-states are stored through the ORM with random embeddings, so that their partitions'
HNSW indexes are real. Then ANALYZE, as autovacuum would.

Prints the seconds of each check (of the median run) and ``validate_seconds``, the median of
``--repeat`` whole runs of the command (target <= 10).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from io import StringIO

from _common import bench_database
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from memory.models import DIMENSION, MicroState
from rcm.context import org_context
from rcm.db.roles import as_maintenance
from rcm.lookups import OrgType
from tenants import services as tenant_services
from tenants.models import ChannelType
from workflows.models import (
    BatchJob,
    BatchJobItem,
    Workflow,
    WorkflowRevision,
    WorkflowTrace,
    WorkflowTraceEndpoint,
)


def replicate(template, source: str, params=(), **expressions: str) -> None:
    """Copies of ``template``, one per row ``g`` of ``source`` (a FROM item), the fields named
    in ``expressions`` set to SQL over ``g``; every other column as in the template."""
    model = type(template)
    quote = connection.ops.quote_name
    fields = [
        model_field
        for model_field in model._meta.local_concrete_fields
        if not model_field.primary_key and not model_field.generated
    ]
    columns = ", ".join(quote(model_field.column) for model_field in fields)
    values = ", ".join(
        expressions.get(model_field.name, f"t.{quote(model_field.column)}")
        for model_field in fields
    )
    table, key = quote(model._meta.db_table), quote(model._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {values} FROM {table} t, {source} "
            f"WHERE t.{key} = %s",
            [*params, template.pk],
        )


def seed_organization(number: int, items: int, states: int, rng: random.Random) -> None:
    org = tenant_services.organization_create(
        name=f"Bench {number:02d}", org_type=OrgType.BILLING_FIRM
    )
    with org_context(org.id):
        endpoint = tenant_services.endpoint_create(
            org_id=org.id, name="UHC", channel_type=ChannelType.objects.get(code="uhc-portal")
        )
        workflow = Workflow.objects.create(org_id=org.id, name="Eligibility", status_id="active")
        revision = WorkflowRevision.objects.create(
            org_id=org.id, workflow=workflow, revision_num=1, graph={"nodes": [], "edges": []}
        )
        job = BatchJob.objects.create(
            org_id=org.id,
            workflow=workflow,
            revision=revision,
            endpoint=endpoint,
            status_id="completed",
            total_rows=items,
            successful_rows=items,
            processed_rows=items,
        )
        item = BatchJobItem.objects.create(
            org_id=org.id,
            batch_job=job,
            row_number=1,
            status="completed",
            input_data={"member_id": "W123456789", "patient_last_name": "Garcia"},
            output_data={"eligible": True},
        )
        replicate(item, "generate_series(2, %s) g", [items], row_number="g")
        trace = WorkflowTrace.objects.create(
            org_id=org.id,
            workflow=workflow,
            batch_job_item=item,
            action_type="web.click",
            action_detail={"state": 1},
            success=True,
            duration_ms=420,
            tier=1,
        )
        item_table = BatchJobItem._meta.db_table
        item_key = BatchJobItem._meta.pk.column
        replicate(
            trace,
            f"(SELECT {item_key} AS id FROM {item_table} WHERE batch_job_id = %s "
            f"AND {item_key} <> %s) g",
            [job.pk, item.pk],
            batch_job_item="g.id",
        )
        link = WorkflowTraceEndpoint.objects.create(org_id=org.id, trace=trace, endpoint=endpoint)
        trace_table, trace_key = WorkflowTrace._meta.db_table, WorkflowTrace._meta.pk.column
        replicate(
            link,
            f"(SELECT {trace_key} AS id FROM {trace_table} WHERE {trace_key} <> %s) g",
            [trace.pk],
            trace="g.id",
        )
        MicroState.objects.bulk_create(
            MicroState(
                org_id=org.id,
                workflow=workflow,
                endpoint=endpoint,
                dom_snapshot="<form>…</form>",
                action_json={"tool": "click", "target": {"label": "Search"}},
                text_emb=[rng.uniform(-1, 1) for _ in range(DIMENSION)],
                embedder="bench",
                embedder_dimension=DIMENSION,
            )
            for _ in range(states)
        )


def rows_across_organizations() -> list[tuple[str, int]]:
    """The big tables' rows as the maintenance role sees them (the orphan check's view)."""
    with as_maintenance(), connection.cursor() as cursor:
        counts = []
        for model in (BatchJobItem, WorkflowTrace, WorkflowTraceEndpoint, MicroState):
            cursor.execute(f"SELECT count(*) FROM {model._meta.db_table}")
            counts.append((model._meta.db_table, cursor.fetchone()[0]))
    return counts


def validate_once() -> dict:
    out = StringIO()
    started = time.perf_counter()
    try:
        call_command("rcm_validate", "--json", stdout=out, stderr=StringIO())
    except CommandError as exc:
        if exc.returncode != 1:
            raise
    document = json.loads(out.getvalue())
    document["wall_seconds"] = time.perf_counter() - started
    return document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=10)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--states", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(15)
    with bench_database():
        started = time.perf_counter()
        for number in range(args.orgs):
            seed_organization(number, args.items, args.states, rng)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        seeded = time.perf_counter() - started
        counts = "  ".join(f"{table} {count}" for table, count in rows_across_organizations())
        print(f"{counts}  seed_seconds {seeded:.1f}")
        runs = [validate_once() for _ in range(args.repeat)]
        runs.sort(key=lambda run: run["wall_seconds"])
        median = runs[len(runs) // 2]
        for check in median["details"]["checks"]:
            verdict = "ok" if check["ok"] else f"FAILED ({len(check['problems'])} problems)"
            print(f"  {check['id']:14} {check['seconds']:7.3f}s  {verdict}")
        seconds = statistics.median(run["wall_seconds"] for run in runs)
        print(f"validate_seconds: {seconds:.2f} (target <= 10)")


if __name__ == "__main__":
    main()
