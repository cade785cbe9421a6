"""API latency of the users list and detail, on two organizations of 10,000 users each.

    .venv/bin/python benchmarks/api_latency.py [--users 10000] [--requests 500]

Runs in a throw-away database (bench_rcm) on the same PostgreSQL as everything else (the
embedded one unless DATABASE_URL is set), through Django's full request stack in-process
(middleware, JWT authentication with the live membership check, RLS, serialization), so the
figures exclude only the HTTP server. Prints one `name: value` line per figure.
"""

from __future__ import annotations

import argparse
import uuid

from _common import bench_database, percentile, timed_gets
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from rcm.context import org_context
from rcm.lookups import OrgType, UserRole
from tenants import services
from tenants.authentication import token_pair_for

PAGE_SIZE = 50


def seed_org(name: str, users: int) -> tuple[uuid.UUID, object]:
    org = services.organization_create(name=name, org_type=OrgType.BILLING_FIRM)
    admin = services.user_create(
        org_id=org.id, email=f"admin@{org.id.hex[:8]}.bench", role=UserRole.ORG_ADMIN
    )
    password = make_password(None)
    # Set-based inserts: 10,000 ORM saves would take longer than the measurement itself.
    with org_context(org.id), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            WITH new_users AS (
                INSERT INTO app_user (user_id, password, email, full_name, org_id, role,
                                      is_active, is_staff, created_at, updated_at)
                SELECT gen_random_uuid(), %s, 'user' || n || '@' || %s || '.bench',
                       'Bench User ' || n, %s, 'operator', true, false,
                       now() - n * interval '1 second', now()
                FROM generate_series(1, %s) AS n
                RETURNING user_id, created_at
            )
            INSERT INTO user_organization (user_id, org_id, role, is_active, is_primary,
                                           created_at, updated_at)
            SELECT user_id, %s, 'operator', true, true, created_at, created_at FROM new_users
            """,
            [password, org.id.hex[:8], org.id, users - 1, org.id],
        )
    return org.id, admin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()

    with bench_database():
        orgs = [seed_org(f"Bench Org {n}", args.users) for n in (1, 2)]
        results = {"list": [], "detail": []}
        query_counts = {}
        for org_id, admin in orgs:
            client = APIClient()
            token = token_pair_for(user=admin, org_id=org_id, role=UserRole.ORG_ADMIN)
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token['access']}")
            with org_context(org_id):
                ids = [
                    str(pk)
                    for pk in services.User.objects.values_list("pk", flat=True)[: args.requests]
                ]
            for url in [f"/api/v2/users/?page_size={PAGE_SIZE}"] * 20 + [
                f"/api/v2/users/{ids[0]}/"
            ] * 20:
                client.get(url)  # warm-up: connections, caches, code paths
            # Walk the cursor pages, so that deep pages are measured as well as the first.
            list_urls, url = [], f"/api/v2/users/?page_size={PAGE_SIZE}"
            while len(list_urls) < args.requests:
                list_urls.append(url)
                url = client.get(url).json()["next"] or f"/api/v2/users/?page_size={PAGE_SIZE}"
            results["list"] += timed_gets(client, list_urls, f"list {org_id.hex[:6]}")
            detail_urls = [f"/api/v2/users/{pk}/" for pk in ids]
            results["detail"] += timed_gets(client, detail_urls, f"detail {org_id.hex[:6]}")
            for size in (10, PAGE_SIZE, 200):
                with CaptureQueriesContext(connection) as queries:
                    client.get(f"/api/v2/users/?page_size={size}")
                query_counts[size] = len(queries)

    print(f"list_p50_ms: {percentile(results['list'], 50):.2f}")
    print(f"list_p99_ms: {percentile(results['list'], 99):.2f}")
    print(f"detail_p50_ms: {percentile(results['detail'], 50):.2f}")
    print(f"detail_p99_ms: {percentile(results['detail'], 99):.2f}")
    print(f"queries_per_list_request: {query_counts[PAGE_SIZE]}")
    print(
        "queries_by_page_size: "
        + ", ".join(f"{size}={count}" for size, count in sorted(query_counts.items()))
    )


if __name__ == "__main__":
    main()
