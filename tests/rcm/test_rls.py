"""Row-level security holds underneath the application, even when code forgets a filter."""

import uuid

import pytest
from django.db import connection, transaction
from django.db.utils import ProgrammingError
from django.utils import timezone

from dbadmin.models import LegacyIdMap
from memory.models import MicroState
from rcm.checks import check_runtime_role_cannot_bypass_rls
from rcm.context import NoOrganizationContext, org_context
from rcm.db.roles import as_owner
from rcm.models import IdempotencyKey
from tenants import services
from tenants.models import ChannelType, Endpoint, Membership, User
from tests.conftest import invite_and_accept
from webactions.browse import Capture
from webactions.models import WebAction
from webactions.services import attempts
from webactions.services import credentials as credential_services
from workflows.models import NodeRun

TENANT_TABLES_QUERY = """
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
       EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid) AS has_policy,
       c.relispartition
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
ORDER BY c.relname
"""


def tenant_tables(*, partitions: bool = False) -> list[str]:
    """Tables with an org_id; with ``partitions``, the partitions of partitioned ones (a row
    lands in one of them only) instead of the rest."""
    with connection.cursor() as cursor:
        cursor.execute(TENANT_TABLES_QUERY)
        rows = cursor.fetchall()
    return [name for name, *_, is_partition in rows if is_partition == partitions]


def _raw_rows(table: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT org_id FROM {table}")
        return cursor.fetchall()


@pytest.mark.django_db
def test_every_table_with_org_id_forces_rls_with_a_policy():
    with connection.cursor() as cursor:
        cursor.execute(TENANT_TABLES_QUERY)
        rows = cursor.fetchall()
    assert {"organization", "app_user", "user_organization", "endpoint", "api_key"} <= {
        row[0] for row in rows
    } | {"organization"}
    missing = [
        name for name, enabled, forced, policy, _ in rows if not (enabled and forced and policy)
    ]
    assert missing == [], f"tables with org_id but no forced RLS policy: {missing}"


@pytest.mark.django_db
def test_organization_table_is_policed_on_its_key():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class "
            "WHERE relname = 'organization'"
        )
        assert cursor.fetchone() == (True, True)


@pytest.fixture
def populated(org_a, org_b):
    """A row of every tenant table in both organizations (a new table must be added here:
    the test below fails on any tenant table that org A sees nothing of)."""
    channel = ChannelType.objects.get(code="uhc-portal")
    for tenant in (org_a, org_b):
        with org_context(tenant.id):
            services.endpoint_create(org_id=tenant.id, name="UHC", channel_type=channel)
            services.api_key_create(
                org_id=tenant.id,
                user=tenant["api_user"],
                name="robot",
                created_by=tenant["org_admin"],
            )
            _workflow_rows(tenant)
            # A credential (portal_credential, credential_access_log) and its browser session.
            credential = credential_services.credential_create(
                org_id=tenant.id,
                actor=tenant["org_admin"],
                endpoint_id=Endpoint.objects.get().pk,
                name="Front desk",
                credential_type="user_pass",
                secrets={"username": "clerk", "password": "s3cret-pass"},
            )
            credential_services.browser_session_store(
                credential=credential, state={"cookies": [], "origins": []}
            )
            # An ad-hoc web action (web_action) and screenshots (web_screenshot) of it and of
            # a workflow step.
            web_action = WebAction.objects.create(
                org_id=tenant.id, endpoint=credential.endpoint, credential=credential, actions=[]
            )
            capture = Capture("page", "failure", "portal.test/", b"\x89PNG", "<p>")
            attempts.screenshots_store(
                org_id=tenant.id, captures=[capture], attempt=1, declared={},
                web_action=web_action,
            )  # fmt: skip
            attempts.screenshots_store(
                org_id=tenant.id, captures=[capture], attempt=1, declared={},
                node_run_id=NodeRun.objects.get().pk,
            )  # fmt: skip
            services.invitation_create(
                org_id=tenant.id,
                actor=tenant["org_admin"],
                actor_role="org_admin",
                email="invitee@elsewhere.test",
                role="viewer",
            )
            LegacyIdMap.objects.create(
                org_id=tenant.id,
                legacy_table="integration_endpoint",
                legacy_id="7",
                target_table="endpoint",
                target_id=str(credential.endpoint_id),
                row_hash="0" * 32,
                imported_at=timezone.now(),
            )
            IdempotencyKey.objects.create(
                org_id=tenant.id,
                user_id=tenant["org_admin"].pk,
                key="k",
                method="POST",
                path="/api/v2/endpoints/",
                request_hash="0" * 64,
            )
    return org_a, org_b


def _workflow_rows(tenant) -> None:
    """One row of each workflows table, written straight through the ORM."""
    from workflows import models as wf

    endpoint = Endpoint.objects.get()
    task_type = wf.TaskType.objects.get(domain="eligibility", action="check")
    wf.TaskSignature.objects.create(
        org_id=tenant.id,
        endpoint=endpoint,
        domain_id="eligibility",
        action_id="check",
        source_id="human",
    )
    wf.OrgRequirementPolicy.objects.create(
        org_id=tenant.id,
        task_type=task_type,
        field_name="mrn",
        operation="add",
        spec={"field_type": "text"},
        effective_date="2025-01-01",
        reason="our EHR needs it",
    )
    wf.RequirementChangelog.objects.create(
        org_id=tenant.id,
        table_name="org_requirement_policy",
        record_id=1,
        change="created",
    )
    workflow = wf.Workflow.objects.create(org_id=tenant.id, name="Eligibility")
    entry = wf.WorkflowNode.objects.create(
        org_id=tenant.id, workflow=workflow, key="start", node_type="entry"
    )
    done = wf.WorkflowNode.objects.create(
        org_id=tenant.id, workflow=workflow, key="done", node_type="outcome"
    )
    wf.WorkflowTransition.objects.create(
        org_id=tenant.id, workflow=workflow, from_node=entry, to_node=done
    )
    revision = wf.WorkflowRevision.objects.create(
        org_id=tenant.id, workflow=workflow, revision_num=1, graph={}
    )
    run = wf.WorkflowRun.objects.create(org_id=tenant.id, workflow=workflow, revision=revision)
    node_run = wf.NodeRun.objects.create(org_id=tenant.id, run=run, node_key="start")
    trace = wf.WorkflowTrace.objects.create(
        org_id=tenant.id,
        workflow=workflow,
        run=run,
        node_run=node_run,
        action_type="node",
        success=True,
    )
    wf.WorkflowTraceEndpoint.objects.create(org_id=tenant.id, trace=trace, endpoint=endpoint)
    job = wf.BatchJob.objects.create(org_id=tenant.id, workflow=workflow, revision=revision)
    wf.BatchJobItem.objects.create(org_id=tenant.id, batch_job=job, row_number=1)
    MicroState.objects.create(
        org_id=tenant.id,
        workflow=workflow,
        dom_snapshot="<form><label>Member ID</label><input name=member_id></form>",
        action_json={"tool": "fill"},
        text_emb=[1.0] + [0.0] * 767,
        embedder="test",
        embedder_dimension=768,
    )


@pytest.mark.django_db
def test_raw_select_on_every_tenant_table_sees_only_the_current_org(populated):
    org_a, org_b = populated
    tables = [t for t in tenant_tables() if t != "audit_event"]
    for table in tables:
        with org_context(org_a.id):
            rows = _raw_rows(table)
        assert rows, f"{table}: org A sees nothing"
        assert {row[0] for row in rows} == {org_a.id}, table
        with org_context(None):
            assert _raw_rows(table) == [], f"{table}: rows visible with no organization"


@pytest.mark.django_db
def test_a_partition_queried_directly_is_policed_too(populated):
    """micro_state is partitioned; a query naming a partition skips the parent's policy, so
    every partition carries its own."""
    org_a, org_b = populated
    partitions = tenant_tables(partitions=True)
    assert "micro_state_p00" in partitions
    seen = set()
    for table in partitions:
        with org_context(org_a.id):
            seen |= {row[0] for row in _raw_rows(table)}
        with org_context(None):
            assert _raw_rows(table) == [], f"{table}: rows visible with no organization"
    assert seen == {org_a.id}


@pytest.mark.django_db
def test_audit_rows_are_scoped_too(populated):
    org_a, org_b = populated
    with org_context(org_a.id):
        assert {row[0] for row in _raw_rows("audit_event")} == {org_a.id}
    with org_context(None):
        assert _raw_rows("audit_event") == []


@pytest.mark.django_db
def test_inserting_a_row_for_another_org_is_refused_by_the_database(org_a, org_b):
    channel = ChannelType.objects.get(code="aetna-provider")
    refused = pytest.raises(ProgrammingError, match="row-level security")
    with org_context(org_a.id), refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO endpoint (org_id, name, channel_type_id, base_url, config, "
            "created_at, updated_at) VALUES (%s, 'x', %s, '', '{\"max_concurrency\": 1}', "
            "now(), now())",
            [org_b.id, channel.id],
        )


@pytest.mark.django_db
def test_moving_a_row_to_another_org_is_refused(org_a, org_b):
    refused = pytest.raises(ProgrammingError, match="row-level security")
    with org_context(org_a.id), refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE user_organization SET org_id = %s WHERE org_id = %s", [org_b.id, org_a.id]
        )


@pytest.mark.django_db
def test_the_scoped_manager_fails_closed_without_context(org_a):
    with pytest.raises(NoOrganizationContext):
        list(Endpoint.objects.all())
    with pytest.raises(NoOrganizationContext):
        list(User.objects.all())
    # The escape hatch is loud, and RLS still stands behind it.
    assert list(Membership.objects.unscoped().all()) == []


@pytest.mark.django_db
def test_unscoped_manager_still_sees_only_the_current_org(org_a, org_b):
    with org_context(org_a.id):
        org_ids = set(Membership.objects.unscoped().values_list("org_id", flat=True))
    assert org_ids == {org_a.id}


@pytest.mark.django_db
def test_a_member_homed_elsewhere_is_visible_in_the_org_they_joined(org_a, org_b):
    guest = org_b["operator"]
    with org_context(org_a.id):
        assert not User.objects.filter(pk=guest.pk).exists()
    invite_and_accept(org_a, guest, "viewer")
    with org_context(org_a.id):
        assert User.objects.filter(pk=guest.pk).exists()
    with org_context(uuid.uuid4()):
        assert not User.objects.unscoped().filter(pk=guest.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_one_connection_serving_a_then_nobody_then_b(org_a, org_b):
    """A pooled connection carries nothing from one unit of work to the next."""
    with org_context(org_a.id):
        with transaction.atomic():
            first = {row[0] for row in _raw_rows("user_organization")}
        backend_pid = connection.connection.info.backend_pid
    with transaction.atomic():
        second = _raw_rows("user_organization")
    second_autocommit = _raw_rows("user_organization")
    with org_context(org_b.id), transaction.atomic():
        third = {row[0] for row in _raw_rows("user_organization")}
    assert connection.connection.info.backend_pid == backend_pid  # really one connection
    assert first == {org_a.id}
    assert second == [] and second_autocommit == []
    assert third == {org_b.id}


@pytest.mark.django_db(transaction=True)
def test_setting_is_transaction_local_even_after_rollback_of_a_savepoint(org_a, org_b):
    with org_context(org_a.id), transaction.atomic():
        try:
            with transaction.atomic(), org_context(org_b.id):
                assert {r[0] for r in _raw_rows("user_organization")} == {org_b.id}
                raise RuntimeError("roll the savepoint back")
        except RuntimeError:
            pass
        assert {r[0] for r in _raw_rows("user_organization")} == {org_a.id}


@pytest.mark.django_db
def test_runtime_role_cannot_bypass_policies():
    assert check_runtime_role_cannot_bypass_rls() == []


@pytest.mark.django_db(transaction=True)
def test_system_check_refuses_a_role_that_owns_the_tables():
    with as_owner():
        errors = check_runtime_role_cannot_bypass_rls()
    assert [error.id for error in errors] == ["rcm.E002"]
    assert "owns" in errors[0].msg
    # The owner takes the definer and maintenance roles (BYPASSRLS) at will: so would a
    # runtime role granted one of them.
    assert "may take a role that bypasses row-level security" in errors[0].msg


@pytest.mark.django_db(transaction=True)
def test_server_side_cursors_see_the_organization_too(org_a, org_b):
    """.iterator() uses a named cursor, which only DECLAREs its query: the organization must
    still be set for it, including when the context switches inside one transaction."""
    with transaction.atomic():
        with org_context(org_a.id):
            assert {m.org_id for m in Membership.objects.iterator()} == {org_a.id}
        with org_context(org_b.id):
            assert {m.org_id for m in Membership.objects.iterator()} == {org_b.id}
    with org_context(org_a.id):  # autocommit
        assert {m.org_id for m in Membership.objects.iterator()} == {org_a.id}


@pytest.mark.django_db(transaction=True)
def test_a_failed_statement_after_an_inner_rollback_leaves_the_outer_block_usable(org_a):
    with org_context(org_a.id), transaction.atomic():
        with transaction.atomic():
            _raw_rows("user_organization")
            transaction.set_rollback(True)
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT 1/0")
        except Exception:  # noqa: BLE001 - the division fails on purpose
            pass
        assert {row[0] for row in _raw_rows("user_organization")} == {org_a.id}
