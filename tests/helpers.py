"""Helpers the test modules of several apps share: a staff member, a logged-in browser client
and the messages a page left, the API's not-found answer, a batch job read again, a portal
page, a free port."""

from __future__ import annotations

import socket
from pathlib import Path

from django.contrib.messages import get_messages
from django.test import Client

from rcm.context import org_context
from rcm.lookups import UserRole
from tenants import services as tenant_services
from tests.conftest import PASSWORD
from workflows.models import BatchJob

PORTAL_PAGES = Path(__file__).resolve().parent / "fixtures" / "portal"


def staff_user(tenant, email: str, role: str = UserRole.ORG_ADMIN):
    """A member of ``tenant`` who may use the admin, with the shared test password."""
    return tenant_services.user_create(
        org_id=tenant.id, email=email, role=role, password=PASSWORD, is_staff=True
    )


def logged_in(user) -> Client:
    """A browser client with ``user``'s session (the admin's and the console's pages)."""
    client = Client()
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    """The messages the request left for the next page (django.contrib.messages), as text."""
    return [str(message) for message in get_messages(response.wsgi_request)]


def assert_not_found(response) -> None:
    assert response.status_code == 404, response.content
    assert response.json() == {
        "error": {"code": "not_found", "message": "Not found.", "details": {}}
    }


def batch_job_reload(tenant, job: BatchJob) -> BatchJob:
    with org_context(tenant.id):
        return BatchJob.objects.get(pk=job.pk)


def portal_page(name: str) -> str:
    """A saved payer-portal page of tests/fixtures/portal, by its file name without .html."""
    return (PORTAL_PAGES / f"{name}.html").read_text()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
