"""The V8 contract (dbadmin/contract.py) holds in the migrated database: every column under its
V8 name, the compatibility views in their shape and behind row-level security, the lookup
rows; and the migrations that renamed the columns kept every row, both ways."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.utils import ProgrammingError

from dbadmin.contract import V8_COLUMNS, V8_LOOKUPS, V8_VIEWS
from memory.models import MicroState
from rcm.context import org_context
from rcm.db.roles import as_maintenance
from rcm.lookups import UserRole
from tenants import services as tenant_services
from tenants.models import ChannelType
from tests.workflows.factories import entry, outcome, workflow_build
from workflows.models import (
    BatchJob,
    BatchJobItem,
    TaskSignature,
    WorkflowTrace,
    WorkflowTraceEndpoint,
)

# What tenants 0005, workflows 0014 and memory 0004 renamed: table -> {old name: V8 name}.
RENAMED = {
    "channel_type": {"id": "channel_type_id"},
    "endpoint": {"id": "endpoint_id"},
    "task_signature": {"id": "signature_id", "alias_of_id": "alias_of"},
    "field_requirement": {"validation": "validation_rules"},
    "workflow_node": {"id": "node_id"},
    "workflow_transition": {"from_node_id": "from_node", "to_node_id": "to_node"},
    "micro_state": {"id": "micro_state_id", "aliased_to_id": "aliased_to"},
    "batch_job": {"id": "batch_job_id", "created_by_id": "created_by"},
    "batch_job_item": {"id": "batch_job_item_id"},
    "workflow_trace": {"id": "trace_id"},
}
# The last migration of each app before the renames (workflows 0014 and 0015 depend on tenants
# 0005, so migrating tenants back takes them back too).
BEFORE_RENAMES = [("memory", "0003_plural_names"), ("tenants", "0004_plural_names")]


def _query(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _columns(relkinds: tuple[str, ...]) -> dict[str, list[str]]:
    """Relation -> its columns in order, from the catalogue (which, unlike
    information_schema, does not hide what the reading role may not select)."""
    rows = _query(
        "SELECT c.relname, a.attname FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind = ANY(%s) AND a.attnum > 0 "
        "AND NOT a.attisdropped ORDER BY c.relname, a.attnum",
        [list(relkinds)],
    )
    columns: dict[str, list[str]] = {}
    for relation, column in rows:
        columns.setdefault(relation, []).append(column)
    return columns


# -- the contract in the catalogue --------------------------------------------------------------


@pytest.mark.django_db
def test_every_v8_table_has_every_v8_column():
    tables = _columns(("r", "p"))
    missing = {
        table: [column for column in wanted if column not in tables.get(table, [])]
        for table, wanted in V8_COLUMNS.items()
    }
    assert {table: columns for table, columns in missing.items() if columns} == {}


@pytest.mark.django_db
def test_the_partitions_of_micro_state_carry_the_v8_names_too():
    partitions = _query(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'micro_state'::regclass"
    )
    tables = _columns(("r",))
    assert partitions
    for (partition,) in partitions:
        assert tables[partition] == tables["micro_state_p00"]
        assert {"micro_state_id", "aliased_to"} <= set(tables[partition])


@pytest.mark.django_db
def test_the_views_have_exactly_the_v8_columns_in_order_and_run_as_their_reader():
    views = _columns(("v",))
    assert {name: views.get(name) for name in V8_VIEWS} == {
        name: list(columns) for name, columns in V8_VIEWS.items()
    }
    options = dict(
        _query("SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%s)", [list(V8_VIEWS)])
    )
    assert options == {name: ["security_invoker=true"] for name in V8_VIEWS}


@pytest.mark.django_db
@pytest.mark.parametrize("table", V8_LOOKUPS)
def test_each_lookup_table_holds_exactly_its_values_in_order(table):
    key, values = V8_LOOKUPS[table]
    rows = _query(f"SELECT {key} FROM {table} ORDER BY sort_order, {key}")
    assert [value for (value,) in rows] == values


# -- the views, read by two organizations -------------------------------------------------------


def _rows(tenant, channel_codes: tuple[str, ...] = ("uhc-portal",)) -> WorkflowTrace:
    """In ``tenant``: an endpoint per channel type and a row of every table the renames touched,
    its renamed columns filled; returns the trace, linked to the endpoints in that order."""
    user = tenant[UserRole.OPERATOR]
    workflow, revision = workflow_build(
        org_id=tenant.id, nodes=[entry(), outcome()], edges=["start -> done"], created_by=user
    )
    with org_context(tenant.id):
        endpoints = [
            tenant_services.endpoint_create(
                org_id=tenant.id, name=code, channel_type=ChannelType.objects.get(code=code)
            )
            for code in channel_codes
        ]
        signature = TaskSignature.objects.create(
            org_id=tenant.id, domain_id="eligibility", action_id="check", source_id="human"
        )
        TaskSignature.objects.create(
            org_id=tenant.id,
            endpoint=endpoints[0],
            domain_id="eligibility",
            action_id="check",
            source_id="system_learned",
            alias_of=signature,
        )
        job = BatchJob.objects.create(
            org_id=tenant.id, workflow=workflow, revision=revision, created_by=user
        )
        item = BatchJobItem.objects.create(org_id=tenant.id, batch_job=job, row_number=1)
        trace = WorkflowTrace.objects.create(
            org_id=tenant.id,
            workflow=workflow,
            batch_job_item=item,
            action_type="web.click",
            action_detail={"state": 1},
            success=True,
            duration_ms=140,
            llm_model="gpt-test",
            llm_tokens_used=12,
            user=user,
            session_id="session-1",
        )
        for endpoint in endpoints:
            WorkflowTraceEndpoint.objects.create(org_id=tenant.id, trace=trace, endpoint=endpoint)
        states = {
            name: MicroState.objects.create(
                org_id=tenant.id,
                workflow=workflow,
                dom_snapshot=f"<h1>{name}</h1>",
                action_json={"tool": "click"},
                text_emb=[1.0] + [0.0] * 767,
                embedder="test",
                embedder_dimension=768,
            )
            for name in ("repaired", "replaced")
        }
        MicroState.objects.filter(pk=states["replaced"].pk).update(
            is_retired=True, aliased_to=states["repaired"]
        )
    return trace


def _view(name: str, org_id) -> list[dict]:
    with org_context(org_id), connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {name} ORDER BY id")
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@pytest.mark.django_db
def test_rcm_user_shows_each_organization_its_own_users(org_a, org_b):
    for tenant in (org_a, org_b):
        shown = _view("rcm_user", tenant.id)
        assert {row["id"] for row in shown} == {user.pk for user in tenant.users.values()}
        user = tenant[UserRole.OPERATOR]
        assert next(row for row in shown if row["id"] == user.pk) == {
            "id": user.pk,
            "email": user.email,
            "full_name": user.full_name,
            "role": UserRole.OPERATOR,
            "is_active": True,
            "api_key_ssm_parameter_name": None,
            "created_at": user.created_at,
            "updated_at": user.updated_at,
            "last_login_at": None,
        }
    assert _view("rcm_user", None) == []


@pytest.mark.django_db
def test_rcm_trace_shows_each_organization_its_own_traces_and_first_portal(org_a, org_b):
    mine = _rows(org_a, channel_codes=("uhc-portal", "anthem-availity"))
    theirs = _rows(org_b, channel_codes=("anthem-availity",))
    with org_context(org_a.id):
        bare = WorkflowTrace.objects.create(org_id=org_a.id, action_type="node.noop", success=False)

    shown = _view("rcm_trace", org_a.id)
    assert [row["id"] for row in shown] == [mine.pk, bare.pk]
    # The first endpoint linked, not the first by name (anthem-availity sorts before).
    assert shown[0] == {
        "id": mine.pk,
        "batch_job_item_id": mine.batch_job_item_id,
        "portal_id": "uhc-portal",
        "action_type": "web.click",
        "action_detail": '{"state": 1}',  # jsonb comes as text: Django decodes in its fields
        "success": True,
        "duration_ms": 140,
        "error_detail": "",
        "llm_prompt": "",
        "llm_response": "",
        "llm_model": "gpt-test",
        "llm_tokens_used": 12,
        "created_at": mine.created_at,
        "user_id": org_a[UserRole.OPERATOR].pk,
        "session_id": "session-1",
    }
    assert shown[1]["portal_id"] is None
    assert [(row["id"], row["portal_id"]) for row in _view("rcm_trace", org_b.id)] == [
        (theirs.pk, "anthem-availity")
    ]
    assert _view("rcm_trace", None) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement", ["UPDATE rcm_user SET full_name = 'renamed'", "DELETE FROM rcm_trace"]
)
def test_the_runtime_role_writes_nothing_through_the_views(org_a, statement):
    with (
        org_context(org_a.id),
        connection.cursor() as cursor,
        pytest.raises(ProgrammingError, match="permission denied"),
        transaction.atomic(),
    ):
        cursor.execute(statement)


@pytest.mark.django_db(transaction=True)  # as_maintenance reconnects: no test transaction
def test_the_maintenance_role_reads_the_views_of_every_organization(org_a, org_b):
    traces = {_rows(org_a).pk, _rows(org_b).pk}
    users = {user.pk for tenant in (org_a, org_b) for user in tenant.users.values()}
    with as_maintenance():
        assert {row for (row,) in _query("SELECT id FROM rcm_trace")} == traces
        assert {row for (row,) in _query("SELECT id FROM rcm_user")} == users


# -- the renames keep every row -----------------------------------------------------------------


def _in_order(rows) -> list[dict]:
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True))


def _renamed_tables() -> dict[str, list[dict]]:
    """Every row of the renamed tables, all columns, read across organizations."""
    with as_maintenance():
        return {
            table: _in_order(
                json.loads(row) for (row,) in _query(f"SELECT to_jsonb(t) FROM {table} t")
            )
            for table in RENAMED
        }


def _by_old_names(tables: dict[str, list[dict]]) -> dict[str, list[dict]]:
    old = {table: {v8: name for name, v8 in names.items()} for table, names in RENAMED.items()}
    return {
        table: _in_order(
            {old[table].get(key, key): value for key, value in row.items()} for row in rows
        )
        for table, rows in tables.items()
    }


@pytest.mark.django_db(transaction=True)  # migrate reconnects as the owner
def test_the_renames_keep_every_row_both_ways(org_a, org_b):
    for tenant in (org_a, org_b):
        _rows(tenant)
    renamed = _renamed_tables()
    try:
        for app, migration in BEFORE_RENAMES:
            call_command("migrate", app, migration, verbosity=0)
        assert _renamed_tables() == _by_old_names(renamed)
        # A row written by the old names: its key comes from the sequence the new one uses.
        with org_context(org_a.id):
            (old_writer,) = _query(
                "INSERT INTO workflow_trace (org_id, node_key, attempt, action_type, "
                "action_detail, success, duration_ms, error_detail, llm_prompt, llm_response, "
                "llm_model, tier_reason, session_id, created_at) VALUES "
                "(%s, '', 1, 'node.noop', '{}', true, 0, '', '', '', '', '', '', now()) "
                "RETURNING id",
                [org_a.id],
            )[0]
    finally:
        call_command("migrate", verbosity=0)

    after = _renamed_tables()
    assert len(after["workflow_trace"]) == len(renamed["workflow_trace"]) + 1
    after["workflow_trace"] = [
        row for row in after["workflow_trace"] if row["trace_id"] != old_writer
    ]
    assert after == renamed
    with org_context(org_a.id):
        assert WorkflowTrace.objects.get(pk=old_writer).action_type == "node.noop"
        newer = WorkflowTrace.objects.create(org_id=org_a.id, action_type="node.noop", success=True)
    assert newer.pk == old_writer + 1
