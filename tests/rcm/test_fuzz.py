"""Schemathesis: examples generated from the OpenAPI schema, sent to every operation in
process, as an org_admin of one organization. No answer may be a 5xx, and every answer must
be one the schema documents: its status, its content type, its body.

Bounded so that it runs in every ``make test``: a few derandomized examples per operation.
The requests run in the test's transaction (pytest-django's ``db``), so what the fuzzed POSTs
write is rolled back with it; tasks are enqueued on commit, so none is sent.
"""

import json

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from rcm.context import org_context
from rcm.lookups import UserRole
from tenants.authentication import token_pair_for
from tenants.models import ChannelType, Membership
from tenants.services import invitation_create
from tests.webactions.factories import credential_body
from tests.workflows.factories import entry, general, outcome, workflow_build
from webactions.browse import Capture
from webactions.models import PortalCredential
from webactions.services.attempts import screenshots_store
from webactions.services.web_actions import web_action_create
from workflows.models import PayerRequirement, TaskType, WorkflowNode, WorkflowTransition
from workflows.services.runs import run_start

pytestmark = pytest.mark.fuzz

EXAMPLES_PER_OPERATION = 20
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.app = WSGIHandler()


@pytest.fixture
def object_ids(api, org_a) -> dict:
    """An id of one of org A's objects for each path parameter, so that the examples reach
    the views' code past get_object() rather than a 404: (collection, parameter) -> id."""
    workflow, _ = workflow_build(
        org_id=org_a.id,
        nodes=[entry(), general("a"), outcome()],
        edges=["start -> a -> done"],
        required_data=["member_id"],
    )
    client = api(org_a, UserRole.ORG_ADMIN)

    def created(path: str, body: dict) -> int:
        response = client.post(path, json.dumps(body), content_type="application/json")
        assert response.status_code == 201, (path, response.content)
        return response.json().get("id") or response.json()["state"]["id"]

    with org_context(org_a.id):
        run = run_start(workflow=workflow, input={"member_id": "W1"})
        node = WorkflowNode.objects.get(workflow=workflow, key="a")
        transition = WorkflowTransition.objects.filter(workflow=workflow).first()
        membership = Membership.objects.filter(user=org_a[UserRole.ORG_ADMIN]).first()
        invitation = invitation_create(
            org_id=org_a.id,
            actor=org_a[UserRole.ORG_ADMIN],
            actor_role=UserRole.ORG_ADMIN,
            email="fuzz.invitee@elsewhere.test",
            role=UserRole.VIEWER,
        )
    rows = {"workflow": str(workflow.pk), "rows": [{"member_id": "W1"}]}
    key = {"name": "fuzz", "user_id": str(org_a[UserRole.API_USER].pk)}
    state = {"dom_snapshot": "<form><input name=member></form>", "action_json": {"tool": "x"}}
    credential_id = created("/api/v2/credentials/", credential_body(client))
    with org_context(org_a.id):
        web_action = web_action_create(
            org_id=org_a.id, actor=None,
            endpoint_id=PortalCredential.objects.get(pk=credential_id).endpoint_id,
            credential_id=credential_id, actions=[{"tool": "goto", "url": "/"}], outcomes={},
            input={}, max_attempts=1, timeout_s=30,
        )  # fmt: skip
        [screenshot] = screenshots_store(
            org_id=org_a.id, captures=[Capture("page", "failure", "portal.test/", b"PNG", "")],
            attempt=1, declared={}, web_action=web_action,
        )  # fmt: skip
    return {
        ("workflows", "id"): str(workflow.pk),
        ("workflows", "node_id"): node.pk,
        ("workflows", "transition_id"): transition.pk,
        ("workflows", "revision_num"): 1,
        ("runs", "id"): run.pk,
        ("batch-jobs", "id"): created("/api/v2/batch-jobs/", rows),
        ("micro-states", "id"): created("/api/v2/micro-states/", state),
        ("endpoints", "id"): created(
            "/api/v2/endpoints/", {"name": "Portal", "channel_type": "uhc-portal"}
        ),
        ("api-keys", "id"): created("/api/v2/api-keys/", key),
        ("credentials", "id"): credential_id,
        ("web-actions", "id"): web_action.pk,
        ("screenshots", "id"): screenshot.pk,
        ("memberships", "id"): membership.pk,
        ("users", "id"): str(org_a[UserRole.VIEWER].pk),
        ("channel-types", "id"): ChannelType.objects.first().pk,
        ("task-types", "id"): str(TaskType.objects.first().pk),
        ("payer-requirements", "id"): PayerRequirement.objects.first().pk,
        ("requirement-policies", "id"): 1,
        ("invitations", "id"): invitation.pk,
        # Another's invitation, from the caller's side: answered as not found.
        ("me", "id"): invitation.pk,
    }


@pytest.fixture
def admin_headers(org_a, object_ids) -> dict:
    """An org_admin's token for the fuzzed requests.

    Django's WSGI handler closes the database connection around each request; its test client
    keeps it from doing so (the test's transaction lives on that connection), and so do we for
    this handler, once the objects are made (the test client restores the signals)."""
    user = org_a[UserRole.ORG_ADMIN]
    tokens = token_pair_for(user=user, org_id=org_a.id, role=UserRole.ORG_ADMIN)
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield {"Authorization": f"Bearer {tokens['access']}"}
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_answers_as_its_schema_says(case, admin_headers, object_ids):
    collection = case.path.split("/")[3]  # /api/v2/<collection>/...
    if case.path_parameters:
        case.path_parameters = {
            name: object_ids[(collection, name)] for name in case.path_parameters
        }
    case.call_and_validate(headers=admin_headers, checks=CHECKS)
