"""The two-organization checks on every v2 route, built from the URL resolver (STYLE §11, §17).

Every route under /api/v2/ is either public (PUBLIC below) or an OrgScopedAPIView naming a
resource of the permission table, and every route with ids has an entry in PATHS saying how to
reach one of each organization's objects. A new route missing from either fails
``test_every_route_is_registered``, so it cannot go unchecked. Then, for every route and
method: anonymous 401; every role below the table's minimum 403 (the minimum itself is let
through); another organization's ids answer exactly what ids that do not exist answer (404
for reads) and change nothing; a list's query count does not grow with its page size.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLResolver, get_resolver
from rest_framework.test import APIClient

from rcm.api.views import OrgScopedAPIView
from rcm.context import org_context
from rcm.lookups import ROLE_RANK, UserRole
from rcm.permissions import PERMISSIONS, minimum_role
from tenants import services as tenant_services
from tenants.models import ChannelType, Membership
from tests.workflows.factories import entry, general, outcome, workflow_build
from webactions.browse import Capture
from webactions.services import attempts, web_actions
from webactions.services import credentials as credential_services
from workflows.models import TaskType, WorkflowTrace
from workflows.services import authoring
from workflows.services import requirements as requirement_services

PUBLIC = {"schema", "swagger-ui", "auth-token", "auth-token-refresh", "invitation-redeem"}
METHODS = ("get", "post", "put", "patch", "delete")
MEMBER_ROLES = (UserRole.VIEWER, UserRole.OPERATOR, UserRole.ORG_ADMIN)
_PARAM = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def _routes() -> list[tuple[str, str, type]]:
    """(name, route, view class) of every /api/v2/ route."""
    found = []
    for route, pattern in _walk(get_resolver().url_patterns):
        if route.startswith("api/v2/"):
            callback = pattern.callback
            view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
            found.append((pattern.name, "/" + route, view))
    return found


ROUTES = _routes()
SCOPED = [(name, route, view) for name, route, view in ROUTES if name not in PUBLIC]


def _methods(view) -> list[str]:
    return [method for method in METHODS if hasattr(view, method)]


def _params(route: str) -> list[tuple[str, str]]:
    return [(m["converter"] or "str", m["name"]) for m in _PARAM.finditer(route)]


def _path(route: str, values: dict) -> str:
    return _PARAM.sub(lambda m: str(values[m["name"]]), route)


def _missing(route: str) -> dict:
    """Ids that exist nowhere, of each parameter's type."""
    fake = {"int": 2_000_000_000, "uuid": uuid.uuid4(), "str": "missing", "slug": "missing"}
    return {name: fake[converter] for converter, name in _params(route)}


# -- the objects each route is reached with --------------------------------------------------

# route name -> how to fill its path from one organization's world (see ``_populate``).
PATHS = {
    "user-detail": lambda w: {"pk": w["user"]},
    "membership-detail": lambda w: {"pk": w["membership"]},
    "channel-type-detail": lambda w: {"pk": w["channel_type"]},
    "endpoint-detail": lambda w: {"pk": w["endpoint"]},
    "api-key-revoke": lambda w: {"pk": w["api_key"]},
    "task-type-detail": lambda w: {"pk": w["task_type"]},
    "requirement-policy-detail": lambda w: {"pk": w["policy"]},
    "payer-requirement-detail": lambda w: {"pk": w["payer_requirement"]},
    "workflow-detail": lambda w: {"pk": w["workflow"]},
    "workflow-node-list": lambda w: {"pk": w["workflow"]},
    "workflow-node-detail": lambda w: {"pk": w["workflow"], "node_id": w["node"]},
    "workflow-transition-list": lambda w: {"pk": w["workflow"]},
    "workflow-transition-detail": lambda w: {
        "pk": w["workflow"],
        "transition_id": w["transition"],
    },
    "workflow-graph": lambda w: {"pk": w["workflow"]},
    "workflow-validate": lambda w: {"pk": w["workflow"]},
    "workflow-publish": lambda w: {"pk": w["workflow"]},
    "workflow-revision-list": lambda w: {"pk": w["workflow"]},
    "workflow-revision-detail": lambda w: {"pk": w["workflow"], "revision_num": 1},
    "workflow-suspend": lambda w: {"pk": w["workflow"]},
    "workflow-archive": lambda w: {"pk": w["workflow"]},
    "workflow-run-start": lambda w: {"pk": w["workflow"]},
    "run-detail": lambda w: {"pk": w["run"]},
    "run-cancel": lambda w: {"pk": w["run"]},
    "run-rerun": lambda w: {"pk": w["run"]},
    "batch-job-detail": lambda w: {"pk": w["batch_job"]},
    "batch-job-items": lambda w: {"pk": w["batch_job"]},
    "batch-job-results": lambda w: {"pk": w["batch_job"]},
    "batch-job-cancel": lambda w: {"pk": w["batch_job"]},
    "batch-job-retry-failed": lambda w: {"pk": w["batch_job"]},
    "invitation-detail": lambda w: {"pk": w["invitation"]},
    "invitation-resend": lambda w: {"pk": w["invitation"]},
    "invitation-revoke": lambda w: {"pk": w["invitation"]},
    # The caller's own invitations: an id of another's answers as a missing one.
    "my-invitation-accept": lambda w: {"pk": w["invitation"]},
    "my-invitation-decline": lambda w: {"pk": w["invitation"]},
    "micro-state-detail": lambda w: {"pk": w["micro_state"]},
    "micro-state-retire": lambda w: {"pk": w["micro_state"]},
    "micro-state-unretire": lambda w: {"pk": w["micro_state"]},
    "micro-state-outcome": lambda w: {"pk": w["micro_state"]},
    "credential-detail": lambda w: {"pk": w["credential"]},
    "credential-rotate": lambda w: {"pk": w["credential"]},
    "credential-validate": lambda w: {"pk": w["credential"]},
    "credential-accesses": lambda w: {"pk": w["credential"]},
    "web-action-detail": lambda w: {"pk": w["web_action"]},
    "web-action-cancel": lambda w: {"pk": w["web_action"]},
    "screenshot-detail": lambda w: {"pk": w["screenshot"]},
    "screenshot-image": lambda w: {"pk": w["screenshot"]},
}

# Two pages unlike each other, so that the memory stores both (not one reused).
PAGES = [
    (Path(__file__).parents[1] / "fixtures" / "portal" / f"{name}.html").read_text()
    for name in ("patient_search", "claim_status")
]


def _client(tenant, role: str) -> APIClient:
    from tests.conftest import client_for

    return client_for(tenant[role], tenant.id, role)


def _ok(response, status: int = 201) -> dict:
    assert response.status_code == status, response.content
    return response.json()


def _populate(tenant) -> dict:
    """Two of everything a route can reach in ``tenant`` (lists need two rows to show that
    their query count does not grow); the ids of the first."""
    admin, operator = _client(tenant, "org_admin"), _client(tenant, "operator")
    world = {}
    channel_types = ChannelType.objects.filter(code__in=["uhc-portal", "aetna-provider"])
    for number, channel_type in enumerate(channel_types):
        with org_context(tenant.id):
            endpoint = tenant_services.endpoint_create(
                org_id=tenant.id, name=f"Portal {number}", channel_type=channel_type
            )
            key, _ = tenant_services.api_key_create(
                org_id=tenant.id,
                user=tenant["api_user"],
                name=f"robot {number}",
                created_by=tenant["org_admin"],
            )
            credential = credential_services.credential_create(
                org_id=tenant.id,
                actor=tenant["org_admin"],
                endpoint_id=endpoint.pk,
                name=f"Login {number}",
                credential_type="user_pass",
                secrets={"username": f"clerk{number}", "password": "s3cret-pass"},
            )
            # A second row in its access log (stored, then rotated).
            credential_services.credential_rotate(
                credential=credential,
                actor=tenant["org_admin"],
                secrets={"username": f"clerk{number}", "password": "n3w-pass"},
            )
            web_action = web_actions.web_action_create(
                org_id=tenant.id, actor=tenant["operator"], endpoint_id=endpoint.pk,
                credential_id=credential.pk, actions=[{"tool": "goto", "url": "/"}],
                outcomes={}, input={}, max_attempts=1, timeout_s=30,
            )  # fmt: skip
            screenshot, _ = attempts.screenshots_store(
                org_id=tenant.id, captures=[Capture("a", "failure", "p/", b"\x89PNG", "<p>")] * 2,
                attempt=1, declared={}, web_action=web_action,
            )  # fmt: skip
            invitation = tenant_services.invitation_create(
                org_id=tenant.id,
                actor=tenant["org_admin"],
                actor_role=UserRole.ORG_ADMIN,
                email=f"invitee{number}@elsewhere.test",
                role=UserRole.VIEWER,
            )
        policy = _ok(
            admin.post(
                "/api/v2/requirement-policies/",
                {
                    "task_type": "eligibility/check",
                    "field_name": f"extra_{number}",
                    "operation": "add",
                    "spec": {"field_type": "text"},
                    "effective_date": "2025-01-01",
                    "reason": "Our payers ask for it.",
                },
                "json",
            )
        )
        workflow, _ = workflow_build(
            org_id=tenant.id,
            name=f"W{number}",
            nodes=[entry("start"), general("check"), outcome("done")],
            edges=["start -> check -> done"],
        )
        run = _ok(
            operator.post(f"/api/v2/workflows/{workflow.pk}/runs/", {"input": {}}, "json"), 202
        )
        job = _ok(
            operator.post(
                "/api/v2/batch-jobs/",
                {"workflow": str(workflow.pk), "rows": [{"n": "1"}, {"n": "2"}]},
                "json",
            )
        )
        state = _ok(
            operator.post(
                "/api/v2/micro-states/",
                json.dumps(
                    {
                        "dom_snapshot": PAGES[number],
                        "url": f"https://portal.test/search/{number}",
                        "action_json": {"tool": "click", "target": {"text": "Search"}},
                    }
                ),
                content_type="application/json",
            )
        )
        with org_context(tenant.id):
            WorkflowTrace.objects.create(
                org_id=tenant.id,
                workflow=workflow,
                run_id=run["id"],
                action_type="node",
                success=True,
            )
            # A second revision, so that the revisions list has two rows.
            authoring.workflow_publish(workflow=workflow, created_by=None, comment="again")
            node = workflow.nodes.order_by("id").first()
            transition = workflow.transitions.order_by("id").first()
        if number == 0:
            world.update(
                endpoint=endpoint.pk,
                api_key=key.pk,
                invitation=invitation.pk,
                policy=policy["id"],
                workflow=workflow.pk,
                node=node.pk,
                transition=transition.pk,
                run=run["id"],
                batch_job=job["id"],
                micro_state=state["state"]["id"],
                credential=credential.pk,
                web_action=web_action.pk,
                screenshot=screenshot.pk,
            )
    with org_context(tenant.id):
        world["membership"] = Membership.objects.get(user=tenant["operator"]).pk
    world.update(
        user=tenant["operator"].pk,
        channel_type=channel_types[0].pk,
        task_type=TaskType.objects.order_by("pk").first().pk,
    )
    return world


@pytest.fixture
def worlds(org_a, org_b):
    found = {org_a.id: _populate(org_a), org_b.id: _populate(org_b)}
    payer_requirement = _payer_requirement()
    for world in found.values():
        world["payer_requirement"] = payer_requirement
    return found


def _payer_requirement() -> int:
    """A platform row (the payers' catalogue), shared by both organizations."""
    channel_type = ChannelType.objects.get(code="uhc-portal")
    for number in range(2):
        row = requirement_services.payer_requirement_create(
            channel_type=channel_type,
            task_type=TaskType.objects.order_by("pk").first(),
            field_name=f"payer_field_{number}",
            spec={"field_type": "text", "rtype": "optional"},
            effective_date=dt.date(2025, 1, 1),
            end_date=None,
            reason="The payer asks for it.",
            actor=None,
        )
    return row.pk


# route name -> the query string a GET needs to be answered at all.
QUERIES = {"requirements-effective": "?task_type=eligibility/check"}


def _url(name: str, route: str, world: dict) -> str:
    path = _path(route, PATHS[name](world)) if _params(route) else route
    return path + QUERIES.get(name, "")


def _body(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def _send(client, method: str, url: str):
    if method in ("get", "delete"):
        return getattr(client, method)(url)
    return getattr(client, method)(url, {}, "json")


# -- the registry is complete ------------------------------------------------------------------


def test_every_route_is_registered():
    problems = []
    for name, route, view in ROUTES:
        if name in PUBLIC:
            continue
        if view is None or not issubclass(view, OrgScopedAPIView):
            problems.append(f"{route}: not an OrgScopedAPIView and not listed as PUBLIC")
            continue
        if view.resource not in PERMISSIONS:
            problems.append(f"{route}: resource {view.resource!r} is not in the table")
            continue
        for method in _methods(view):
            action = view.action_for(method.upper())
            if minimum_role(view.resource, action) is None:
                problems.append(f"{method.upper()} {route}: nobody may {action} {view.resource}")
        if _params(route) and name not in PATHS:
            problems.append(f"{route}: no entry in PATHS (how to reach an object)")
    assert not problems, "\n".join(problems)
    assert set(PATHS) <= {name for name, _, _ in ROUTES}, "PATHS names routes that are gone"


# -- the checks ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_is_401_on_every_route_and_method(worlds, org_a):
    anon, failures = APIClient(), []
    for name, route, view in SCOPED:
        url = _url(name, route, worlds[org_a.id])
        for method in _methods(view):
            response = _send(anon, method, url)
            if response.status_code != 401 or response.json()["error"]["code"] != (
                "not_authenticated"
            ):
                failures.append(f"{method.upper()} {url}: {response.status_code}")
    assert not failures, "\n".join(failures)


@pytest.mark.django_db
def test_every_role_below_the_tables_minimum_is_403_and_the_minimum_reads(worlds, org_a):
    clients = {role: _client(org_a, role) for role in MEMBER_ROLES}
    failures = []
    for name, route, view in SCOPED:
        url = _url(name, route, worlds[org_a.id])
        for method in _methods(view):
            needed = minimum_role(view.resource, view.action_for(method.upper()))
            for role, client in clients.items():
                if ROLE_RANK[role] >= ROLE_RANK[needed]:
                    continue
                response = _send(client, method, url)
                if response.status_code != 403:
                    failures.append(f"{role} {method.upper()} {url}: {response.status_code}")
            if method == "get" and needed in clients:
                response = clients[needed].get(url)
                if response.status_code != 200:
                    failures.append(f"{needed} GET {url}: {response.status_code}, expected 200")
    assert not failures, "\n".join(failures)


def _snapshot(tenant, world) -> dict:
    """What the organization's own admin reads on every detail route."""
    client, seen = _client(tenant, "org_admin"), {}
    for name, route, view in SCOPED:
        if _params(route) and hasattr(view, "get") and view.tenant_scoped:
            response = client.get(_url(name, route, world))
            seen[route] = (response.status_code, _body(response))
    return seen


@pytest.mark.django_db
def test_another_organizations_ids_answer_as_missing_ones_and_change_nothing(worlds, org_a, org_b):
    before = _snapshot(org_b, worlds[org_b.id])
    clients = {role: _client(org_a, role) for role in MEMBER_ROLES}
    failures = []
    for name, route, view in SCOPED:
        if not _params(route) or not view.tenant_scoped:
            continue
        theirs = _url(name, route, worlds[org_b.id])
        missing = _path(route, _missing(route))
        for method in _methods(view):
            needed = minimum_role(view.resource, view.action_for(method.upper()))
            if needed not in clients:
                continue
            client = clients[needed]
            got, expected = _send(client, method, theirs), _send(client, method, missing)
            if method == "get" and got.status_code != 404:
                failures.append(f"GET {theirs}: {got.status_code}, expected 404")
            got_body, expected_body = _body(got), _body(expected)
            if (got.status_code, got_body) != (expected.status_code, expected_body):
                failures.append(
                    f"{method.upper()} {theirs}: {got.status_code} {got_body[:120]!r} where "
                    f"a missing id gets {expected.status_code} {expected_body[:120]!r}"
                )
    assert not failures, "\n".join(failures)
    assert _snapshot(org_b, worlds[org_b.id]) == before


def _foreign_marks(tenant, world) -> list[str]:
    """Strings only the other organization's rows hold: its id, its users' emails, its
    workflow's id."""
    return [str(tenant.id), str(world["workflow"]), *(user.email for user in tenant.users.values())]


@pytest.mark.django_db
def test_lists_hold_only_the_members_rows_in_a_query_count_independent_of_the_page_size(
    worlds, org_a, org_b
):
    client, failures = _client(org_a, "org_admin"), []
    foreign = _foreign_marks(org_b, worlds[org_b.id])
    for name, route, view in SCOPED:
        if not hasattr(view, "get") or minimum_role(view.resource, "view") == UserRole.SYS_ADMIN:
            continue
        url = _url(name, route, worlds[org_a.id])
        counts = []
        for size in (1, 2):
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url, {"page_size": size})
            is_json = response.get("Content-Type") == "application/json"
            if response.status_code != 200 or "next" not in (response.json() if is_json else {}):
                break  # not a paginated list
            if size == 2 and len(response.json()["results"]) < 2:
                failures.append(f"{url}: fewer than two rows; the world must hold two")
            leaked = [mark for mark in foreign if mark in response.content.decode()]
            if leaked:
                failures.append(f"{url}: shows the other organization's {leaked}")
            counts.append(len(queries))
        if len(counts) == 2 and counts[0] != counts[1]:
            failures.append(f"{url}: {counts[0]} queries for one row, {counts[1]} for two")
    assert not failures, "\n".join(failures)


@pytest.mark.django_db
def test_unknown_ids_and_routes_are_404_in_the_same_shape(org_a):
    client = _client(org_a, "org_admin")
    not_found = {"error": {"code": "not_found", "message": "Not found.", "details": {}}}
    for url in ("/api/v2/endpoints/999999/", "/api/v2/users/not-a-uuid/", "/api/v2/no-such/"):
        response = client.get(url)
        assert (response.status_code, response.json()) == (404, not_found), url
