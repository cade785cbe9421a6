"""Helpers the test modules of several apps share: a staff member, an endpoint, a membership
ended, a logged-in browser client and the messages a page left, the queries a page costs, the API's
not-found answer, requests racing each other, a batch job read again or its items moved on, a
portal page, a free port; a new channel type's fields."""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from django.contrib.messages import get_messages
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext

from rcm import clock
from rcm.context import org_context
from rcm.lookups import UserRole
from tenants import services as tenant_services
from tenants.models import ChannelType, Endpoint, Membership
from tests.conftest import PASSWORD
from workflows.models import BatchJob, BatchJobItem

PORTAL_PAGES = Path(__file__).resolve().parent / "fixtures" / "portal"

# A channel type the seeded lookups do not have, as the admin's form and the API are sent it.
NEW_CHANNEL_TYPE = {
    "code": "cigna-portal",
    "name": "Cigna for HCP",
    "base_url": "https://cignaforhcp.cigna.com",
    "endpoint_kind": "payer",
    "access_medium": "web",
}


def staff_user(tenant, email: str, role: str = UserRole.ORG_ADMIN):
    """A member of ``tenant`` who may use the admin, with the shared test password."""
    return tenant_services.user_create(
        org_id=tenant.id, email=email, role=role, password=PASSWORD, is_staff=True
    )


def endpoint_add(tenant, name: str, channel: str = "uhc-portal", **fields) -> Endpoint:
    """An endpoint of ``tenant`` on the seeded channel type whose code is ``channel``."""
    with org_context(tenant.id):
        return tenant_services.endpoint_create(
            org_id=tenant.id,
            name=name,
            channel_type=ChannelType.objects.get(code=channel),
            **fields,
        )


def membership_end(tenant, user, actor) -> None:
    """``user``'s membership of ``tenant`` made inactive by ``actor``, one of its org_admins."""
    with org_context(tenant.id):
        tenant_services.membership_update(
            membership=Membership.objects.get(user=user, org_id=tenant.id),
            actor=actor,
            actor_role=UserRole.ORG_ADMIN,
            is_active=False,
        )


def logged_in(user) -> Client:
    """A browser client with ``user``'s session (the admin's and the console's pages)."""
    client = Client()
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    """The messages the request left for the next page (django.contrib.messages), as text."""
    return [str(message) for message in get_messages(response.wsgi_request)]


def page_queries(client: Client, url: str) -> int:
    """How many queries one successful GET of ``url`` costs."""
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def assert_not_found(response) -> None:
    assert response.status_code == 404, response.content
    assert response.json() == {
        "error": {"code": "not_found", "message": "Not found.", "details": {}}
    }


def race_run(send: Callable, clients: Sequence) -> None:
    """``send(client)`` for each client, each in a thread of its own, all let go at the same
    moment; each thread closes its database connections when done."""
    barrier = threading.Barrier(len(clients))

    def one(client) -> None:
        try:
            barrier.wait()
            send(client)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def batch_job_reload(tenant, job: BatchJob) -> BatchJob:
    with org_context(tenant.id):
        return BatchJob.objects.get(pk=job.pk)


def batch_items_move(
    tenant,
    job: BatchJob,
    *,
    error: str = "failure",
    started_ago: dt.timedelta | None = None,
    **rows_by_status,
) -> BatchJob:
    """Items to the given statuses (``completed=[1, 2]``) as runs would leave them, failed ones
    with ``error``, and the job's counters recounted from its items (the database checks that
    they add up). The job started now, or ``started_ago`` and counts its speed since then."""
    with org_context(tenant.id):
        for status, numbers in rows_by_status.items():
            BatchJobItem.objects.filter(batch_job=job, row_number__in=numbers).update(
                status=status, attempts=1, error_message=error if status == "failed" else ""
            )
        counts = Counter(
            BatchJobItem.objects.filter(batch_job=job).values_list("status", flat=True)
        )
        now = clock.now()
        if started_ago is None:
            started = {"started_at": now}
        else:
            started = {"started_at": now - started_ago, "speed_since": now - started_ago}
        BatchJob.objects.filter(pk=job.pk).update(
            pending_rows=counts["pending"],
            running_rows=counts["running"],
            successful_rows=counts["completed"],
            failed_rows=counts["failed"],
            cancelled_rows=counts["cancelled"],
            processed_rows=counts["completed"] + counts["failed"] + counts["cancelled"],
            status_id="processing",
            **started,
        )
        return BatchJob.objects.get(pk=job.pk)


def portal_page(name: str) -> str:
    """A saved payer-portal page of tests/fixtures/portal, by its file name without .html."""
    return (PORTAL_PAGES / f"{name}.html").read_text()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
