"""Every console route, per role and per organization, against what it declares (STYLE §17).

Built from ``console.urls``: each route is a ``console_view`` naming one ``(resource, action)``
of the permission table and its methods. For each route: anonymous visitors are sent to the
log-in page; a role below the table's is refused (403) and a forged write changes nothing;
another method is a 405; and a route about one object answers 404 for another organization's.
A new route without an entry in ``OBJECTS`` for its URL arguments fails here.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.urls import reverse

import console.urls
from rcm import permissions
from rcm.context import org_context
from rcm.lookups import ROLE_RANK, UserRole
from tests.console import factories
from tests.helpers import logged_in as _client
from tests.rcm.test_admin_security import staff  # noqa: F401 (a fixture)
from tests.workflows.engine_helpers import published
from tests.workflows.factories import entry, outcome, workflow_build
from workflows.services import batch

ROUTES = list(console.urls.urlpatterns)
ROLES = (UserRole.VIEWER, UserRole.OPERATOR, UserRole.ORG_ADMIN, UserRole.SYS_ADMIN)

# URL argument -> a function making, in the organization in context, the object it names
# (returns the value for the URL). Each route about an object is checked against another
# organization's.
OBJECTS: dict[str, Callable[[object], object]] = {
    # -- home, run page, memory browser (issue 14: home) --
    "run_id": lambda tenant: factories.run(tenant).pk,
    "state_id": lambda tenant: factories.micro_state(tenant).pk,
}


# -- the workflow editor --
def _workflow_id(tenant):
    nodes, edges = [entry("start"), outcome("done")], ["start -> done"]
    workflow, _ = workflow_build(org_id=tenant.id, nodes=nodes, edges=edges, publish=False)
    return workflow.pk


OBJECTS["workflow_id"] = _workflow_id


# -- batches --
def _batch_job(tenant) -> int:
    workflow, revision = published(tenant.id, "start>done", required_data=["member_id"])
    rows = batch.rows_numbered([{"member_id": "W1"}, {"member_id": "W2"}])
    return batch.batch_job_create(workflow=workflow, revision=revision, rows=rows).pk


# -- end of batches --

OBJECTS["job_id"] = _batch_job


def _route_id(pattern) -> str:
    return pattern.name


def _arguments(pattern, tenant) -> dict:
    names = list(pattern.pattern.converters)
    missing = [name for name in names if name not in OBJECTS]
    assert not missing, f"console route {pattern.name!r}: no OBJECTS entry for {missing}"
    with org_context(tenant.id):
        return {name: OBJECTS[name](tenant) for name in names}


def _url(pattern, tenant) -> str:
    return reverse(f"console:{pattern.name}", kwargs=_arguments(pattern, tenant))


def test_every_console_route_is_a_console_view_of_the_table():
    problems = []
    for pattern in ROUTES:
        declared = getattr(pattern.callback, "console_permission", None)
        if declared is None:
            problems.append(f"{pattern.name}: not a console_view")
            continue
        resource, action = declared
        if permissions.minimum_role(resource, action) is None:
            problems.append(f"{pattern.name}: nobody may {action} {resource}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("pattern", ROUTES, ids=_route_id)
def test_anonymous_visitors_are_sent_to_the_log_in_page(pattern, client, org_a):
    method = pattern.callback.console_methods[0].lower()
    response = getattr(client, method)(_url(pattern, org_a))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("pattern", ROUTES, ids=_route_id)
def test_each_role_is_let_in_as_the_table_says(pattern, staff, org_a):  # noqa: F811
    resource, action = pattern.callback.console_permission
    methods = pattern.callback.console_methods
    needed = permissions.minimum_role(resource, action)
    for role in ROLES:
        client = _client(staff[role])
        url = _url(pattern, org_a)
        if ROLE_RANK[role] < ROLE_RANK[needed]:
            response = getattr(client, methods[0].lower())(url)
            assert response.status_code == 403, (role, url, response.status_code)
        elif "GET" in methods:
            response = client.get(url)
            assert response.status_code == 200, (role, url, response.status_code)
        else:
            # A write route answers no read; what its POST does, its own tests show.
            assert client.get(url).status_code == 405, (role, url)


@pytest.mark.parametrize("pattern", [p for p in ROUTES if p.pattern.converters], ids=_route_id)
def test_another_organizations_object_is_not_found(pattern, staff, org_a, org_b):  # noqa: F811
    theirs = _url(pattern, org_b)
    for role in (UserRole.ORG_ADMIN, UserRole.SYS_ADMIN):
        method = pattern.callback.console_methods[0].lower()
        response = getattr(_client(staff[role]), method)(theirs)
        assert response.status_code == 404, (role, theirs, response.status_code)
