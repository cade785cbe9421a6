"""The console's home and a 100,000-row batch's page: server-side latency, queries per page,
and member-ID search over the batch's rows.

    .venv/bin/python benchmarks/console.py [--rows 100000] [--requests 200] [--plans]

One organization with three workflows (two on a portal), a batch of ``--rows`` rows half done
today and one finished, ``--rows`` runs that ended over the last week (one in ten failed, at a
node or at a failure outcome), and ``--rows`` web actions of every tier. A second organization
of the same size shares the tables (the home must read only its own). Measured through
Django's whole request stack in-process (sessions, the admin's log-in and organization
context, RLS, the template), so the figures exclude only the HTTP server. Prints one
`name: value` line per figure; ``--plans`` prints EXPLAIN ANALYZE of each grouped read.

The batch page: a job of ``--rows`` rows as an upload stores them (member IDs, patient names;
benchmarks/batch_search.py's seeding), and a job of 1,000 such rows to show that the page's
queries do not grow with the batch. ``batch_page_p50_ms`` is the first page of the big job,
``item_search_p50_ms`` the page searched by a whole member ID (batch_search.py prints every
search case with its plan).

Two figures for the home: as most requests find it (the week's panels in the cache, counted by an
earlier request: console/views/home.py, WEEK_CACHE_SECONDS), and as the first request of each
such period finds it (every panel counted).
"""

from __future__ import annotations

import argparse

from _common import bench_database, percentile, timed_gets
from batch_search import seed_job
from django.core.cache import cache
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from console.views import home as home_views
from rcm.context import org_context
from rcm.db.roles import as_owner
from rcm.lookups import OrgType, UserRole
from tenants import services
from tenants.models import ChannelType
from workflows.services import authoring

HOME = "/admin/console/"
GRAPH = {
    "nodes": [
        {"key": "start", "node_type": "entry"},
        {"key": "check", "node_type": "general", "kind": "noop"},
        {"key": "done", "node_type": "outcome", "config": {"result": "success"}},
        {"key": "denied", "node_type": "outcome", "config": {"result": "failure"}},
    ],
    "transitions": [
        {"from": "start", "to": "check", "label": "success"},
        {"from": "check", "to": "done", "label": "success"},
        {"from": "check", "to": "denied", "label": "error"},
    ],
}


def seed_org(name: str, rows: int):
    org = services.organization_create(name=name, org_type=OrgType.BILLING_FIRM)
    user = services.user_create(
        org_id=org.id,
        email=f"ops@{org.id.hex[:8]}.bench",
        role=UserRole.OPERATOR,
        is_staff=True,
    )
    with org_context(org.id):
        portals = ChannelType.objects.order_by("code")[:2]
        endpoints = [
            services.endpoint_create(org_id=org.id, name=f"Portal {n}", channel_type=portal)
            for n, portal in enumerate(portals)
        ]
        revisions = []
        for number, endpoint in enumerate([*endpoints, None]):
            workflow = authoring.workflow_create(
                org_id=org.id,
                created_by=None,
                name=f"Workflow {number}",
                endpoint_id=endpoint.pk if endpoint else None,
            )
            authoring.workflow_graph_replace(workflow=workflow, version=workflow.version, **GRAPH)
            revisions.append(authoring.workflow_publish(workflow=workflow, created_by=None))
    with org_context(org.id), transaction.atomic(), connection.cursor() as cursor:
        _seed_rows(cursor, org.id, revisions, rows)
    return org.id, user


def _seed_rows(cursor, org_id, revisions, rows: int) -> None:
    """Set-based inserts: 300,000 ORM saves would take longer than the measurement itself."""
    first = revisions[0]
    done = rows // 2
    cursor.execute(
        """
        INSERT INTO batch_job (org_id, workflow_id, revision_id, file_name, max_concurrency,
            on_invalid, status, total_rows, pending_rows, running_rows, successful_rows,
            failed_rows, cancelled_rows, processed_rows, cancel_requested, created_at,
            updated_at, started_at, completed_at, prompt, file_path, speed_since)
        VALUES (%(org)s, %(workflow)s, %(revision)s, 'june.csv', 50, 'reject', 'processing',
            %(rows)s, %(pending)s, 50, %(ok)s, %(failed)s, 0, %(done)s, false,
            now() - interval '2 hours', now(), now() - interval '2 hours', NULL, '', '',
            now() - interval '2 hours'),
               (%(org)s, %(workflow)s, %(revision)s, 'may.csv', 50, 'reject', 'completed',
            %(rows)s, 0, 0, %(rows)s, 0, 0, %(rows)s, false,
            now() - interval '3 days', now(), now() - interval '3 days', now() - interval '2 days',
            '', '', now() - interval '3 days')
        RETURNING batch_job_id
        """,
        {
            "org": org_id,
            "workflow": first.workflow_id,
            "revision": first.pk,
            "rows": rows,
            "pending": rows - done - 50,
            "ok": done - done // 10,
            "failed": done // 10,
            "done": done,
        },
    )
    live, finished = (row[0] for row in cursor.fetchall())
    cursor.execute(
        """
        INSERT INTO batch_job_item (org_id, batch_job_id, row_number, input_data, status,
            error_message, attempts, created_at, updated_at, completed_at)
        SELECT %(org)s, %(job)s, n, '{}'::jsonb,
               CASE WHEN n > %(done)s + 50 THEN 'pending' WHEN n > %(done)s THEN 'running'
                    WHEN n %% 10 = 0 THEN 'failed' ELSE 'completed' END,
               '', 1, now(), now(),
               CASE WHEN n <= %(done)s THEN now() - (n %% 3600) * interval '1 second' END
        FROM generate_series(1, %(rows)s) AS n
        """,
        {"org": org_id, "job": live, "done": done, "rows": rows},
    )
    cursor.execute(
        """
        INSERT INTO batch_job_item (org_id, batch_job_id, row_number, input_data, status,
            error_message, attempts, created_at, updated_at, completed_at)
        SELECT %(org)s, %(job)s, n, '{}'::jsonb, 'completed', '', 1, now(), now(),
               now() - interval '2 days'
        FROM generate_series(1, %(rows)s) AS n
        """,
        {"org": org_id, "job": finished, "rows": rows},
    )
    # Runs over the week: one in ten failed at a node (one in three of those timed out
    # against the portal), one in ten reached the failure outcome.
    cursor.execute(
        """
        INSERT INTO workflow_run (org_id, workflow_id, revision_id, input, context, status,
            outcome, result, error, cancel_requested, started_at, ended_at, duration_ms,
            created_at, updated_at)
        SELECT %(org)s, (%(workflows)s::uuid[])[1 + n %% 3], (%(revisions)s::int[])[1 + n %% 3],
               '{}'::jsonb, '{}'::jsonb,
               CASE WHEN n %% 10 = 1 THEN 'failed' ELSE 'completed' END,
               CASE n %% 10 WHEN 1 THEN '' WHEN 2 THEN 'denied' ELSE 'done' END,
               CASE n %% 10 WHEN 1 THEN '' WHEN 2 THEN 'failure' ELSE 'success' END,
               CASE WHEN n %% 10 = 1 THEN 'check: the portal answered 503' ELSE '' END,
               false, at - interval '2 seconds', at, 2000, at, at
        FROM (SELECT n, now() - (n * 7 * 86400.0 / %(rows)s) * interval '1 second' AS at
              FROM generate_series(1, %(rows)s) AS n) AS runs
        """,
        {
            "org": org_id,
            "workflows": [str(revision.workflow_id) for revision in revisions],
            "revisions": [revision.pk for revision in revisions],
            "rows": rows,
        },
    )
    cursor.execute(
        """
        INSERT INTO node_run (org_id, run_id, node_key, status, attempt, timeout_s, label,
            error, error_kind, started_at, ended_at, created_at, updated_at, claim_task_id,
            claim_worker)
        SELECT org_id, id, 'check', 'failed', 3, 300, '', 'the portal answered 503',
               CASE WHEN id %% 3 = 0 THEN 'http_timeout' ELSE 'http_5xx' END,
               started_at, ended_at, created_at, ended_at, '', ''
        FROM workflow_run WHERE org_id = %(org)s AND status = 'failed'
        """,
        {"org": org_id},
    )
    cursor.execute(
        """
        INSERT INTO workflow_trace (org_id, workflow_id, run_id, node_key, attempt, action_type,
            action_detail, success, duration_ms, error_detail, llm_prompt, llm_response,
            llm_model, tier, tier_reason, session_id, created_at)
        SELECT %(org)s, (%(workflows)s::uuid[])[1 + n %% 3], NULL, 'check', 1, 'web.fill',
               jsonb_build_object('state', n %% 500), n %% 20 <> 0, 120, '', '', '', '',
               CASE WHEN n %% 20 = 0 THEN NULL WHEN n %% 10 = 1 THEN 2 WHEN n %% 50 = 3 THEN 3
                    ELSE 1 END,
               CASE WHEN n %% 20 = 0 THEN 'miss: best score 0.52 < 0.75' ELSE 'hit' END, '',
               now() - (n * 7 * 86400.0 / %(rows)s) * interval '1 second'
        FROM generate_series(1, %(rows)s) AS n
        """,
        {
            "org": org_id,
            "workflows": [str(revision.workflow_id) for revision in revisions],
            "rows": rows,
        },
    )


def measure(client: Client, requests: int, url: str = HOME, label: str = "home") -> list[float]:
    return timed_gets(client, [url] * requests, label)


def queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    return len(captured)


def seed_batches(org_id, rows: int) -> tuple[str, str, str]:
    """The measured batch (``rows`` rows), a 1,000-row one, and a member ID of the first: the
    URLs of both pages and the member ID."""
    import random

    from workflows.models import WorkflowRevision

    rng = random.Random(14)
    with org_context(org_id):
        revision = WorkflowRevision.objects.order_by("pk").first()
        big, member = seed_job(org_id, revision.workflow, revision, rows, rng)
        small, _ = seed_job(org_id, revision.workflow, revision, 1000, rng)
    return (
        reverse("console:batch", args=(big.pk,)),
        reverse("console:batch", args=(small.pk,)),
        member,
    )


def plans(org_id) -> None:
    """EXPLAIN ANALYZE of the home's grouped reads, as the view runs them."""
    from datetime import timedelta

    from workflows.selectors import overview

    today = timezone.localdate()
    since = overview.day_start(today - timedelta(days=6))
    until = overview.day_start(today + timedelta(days=1))
    with org_context(org_id), transaction.atomic():
        # The selectors' querysets, rebuilt here only to print their plans.
        from django.db.models import Count

        from workflows.models import BatchJobItem, WorkflowRun, WorkflowTrace
        from workflows.models.runs import RUN_FAILED
        from workflows.models.traces import TIERED

        reads = {
            "items today": BatchJobItem.objects.filter(
                completed_at__gte=overview.day_start(today), completed_at__lt=until
            )
            .values("status")
            .annotate(count=Count("*"))
            .order_by(),
            "runs of the week": WorkflowRun.objects.filter(ended_at__gte=since, ended_at__lt=until)
            .values("revision_id", "status", "result")
            .annotate(count=Count("*"))
            .order_by(),
            "newest failures": WorkflowRun.objects.filter(RUN_FAILED, ended_at__gte=since)
            .order_by("-ended_at", "-id")
            .values("pk")[:1000],
            "tier mix": WorkflowTrace.objects.filter(
                TIERED, created_at__gte=since, created_at__lt=until
            )
            .values("tier")
            .annotate(count=Count("*"))
            .order_by(),
        }
        for name, queryset in reads.items():
            print(f"-- {name}")
            print(queryset.explain(analyze=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--plans", action="store_true")
    args = parser.parse_args()

    with bench_database("bench_console"):
        org_id, user = seed_org("Bench Org", args.rows)
        seed_org("Neighbour Org", args.rows)
        big_url, small_url, member = seed_batches(org_id, args.rows)
        connection.close()
        with as_owner(), connection.cursor() as cursor:
            # As autovacuum would soon (the owner's to run): statistics for the planner,
            # visibility for index-only scans.
            cursor.execute("VACUUM ANALYZE")
        connection.close()
        client = Client()
        client.force_login(user)
        for url in (HOME, big_url, small_url):
            for _ in range(10):
                client.get(url)  # warm-up: connections, templates, code paths
        batch_page = measure(client, args.requests, big_url, "batch page")
        search_url = f"{big_url}?member_id={member}"
        item_search = measure(client, args.requests, search_url, "member-ID search")
        batch_queries = (queries(client, small_url), queries(client, big_url))
        # As most requests find it: the week's panels counted by an earlier one, in the cache.
        cached = measure(client, args.requests)
        cached_queries = queries(client, HOME)
        # As the first request of each WEEK_CACHE_SECONDS finds it: every panel counted.
        home_views.WEEK_CACHE_SECONDS = 0
        today = timezone.localdate()
        cache.delete_many(
            [home_views.week_cache_key(org_id, today, part) for part in ("runs", "tiers")]
        )
        counted = measure(client, args.requests)
        counted_queries = queries(client, HOME)
        if args.plans:
            plans(org_id)

    print(f"rows: {args.rows}")
    print(f"dashboard_p50_ms: {percentile(cached, 50):.2f}")
    print(f"dashboard_p99_ms: {percentile(cached, 99):.2f}")
    print(f"dashboard_counted_p50_ms: {percentile(counted, 50):.2f}")
    print(f"dashboard_counted_p99_ms: {percentile(counted, 99):.2f}")
    print(f"dashboard_queries: {cached_queries} (counted: {counted_queries})")
    print(f"batch_page_p50_ms: {percentile(batch_page, 50):.2f}")
    print(f"batch_page_p99_ms: {percentile(batch_page, 99):.2f}")
    small, big = batch_queries
    print(f"queries_per_page: {big} (batch of 1,000 rows: {small}; of {args.rows:,}: {big})")
    print(f"item_search_p50_ms: {percentile(item_search, 50):.2f}")
    print(f"item_search_p99_ms: {percentile(item_search, 99):.2f}")


if __name__ == "__main__":
    main()
