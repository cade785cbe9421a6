"""rcm_validate: each check passes on the migrated database and fails, by name, when the part it
guards is broken.

Most breakages are made as the owner inside a transaction that is rolled back, and the command
validates on that same connection (dbadmin.validation reuses a connection that already is the
owner's), so it sees the uncommitted damage and nothing outlives the test. A test compares the
problems it sees with those of the untouched database (``baseline``): the damage must add
problems to the check it names and to no other.
"""

from __future__ import annotations

import contextlib
import json
import os
from io import StringIO
from urllib.parse import quote

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.migrations.loader import MigrationLoader

from dbadmin import validation
from dbadmin.contract import V8_LOOKUPS, V8_VIEWS
from dbadmin.models import MigrationRun
from memory.checks import PGVECTOR_MISSING, PGVECTOR_TOO_OLD
from memory.models import MicroState
from rcm.context import org_context
from rcm.db.rls import POLICY_NAME
from rcm.db.roles import as_owner, runtime_role
from rcm.lookups import JobStatus
from tenants.models import Endpoint
from tenants.services import audit_event_record
from workflows.models import BatchJob

CHECK_IDS = [check.id for check in validation.CHECKS]


def validate(*args: str) -> tuple[int, dict]:
    """Run the command with --json: (exit code, the JSON document)."""
    out = StringIO()
    try:
        call_command("rcm_validate", "--json", *args, stdout=out, stderr=StringIO())
        code = 0
    except CommandError as exc:
        code = exc.returncode
    return code, json.loads(out.getvalue())


def problems(document: dict) -> dict[str, list[str]]:
    return {check["id"]: check["problems"] for check in document["details"]["checks"]}


def notes(document: dict) -> dict[str, list[str]]:
    return {check["id"]: check["notes"] for check in document["details"]["checks"]}


def added(document: dict, baseline: dict[str, list[str]]) -> dict[str, list[str]]:
    """The problems this run found that the untouched database does not have, by check."""
    found = {}
    for check_id, listed in problems(document).items():
        new = [problem for problem in listed if problem not in baseline[check_id]]
        if new:
            found[check_id] = new
    return found


@contextlib.contextmanager
def as_owner_rolled_back():
    """The owner's connection in a transaction that is rolled back, whatever happens inside."""
    with as_owner(), transaction.atomic():
        yield
        transaction.set_rollback(True)


def execute(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture(scope="module")
def baseline(django_db_setup, django_db_blocker) -> dict[str, list[str]]:
    """The problems of the freshly migrated test database (none, once the V8 renames and the
    compatibility views are merged)."""
    with django_db_blocker.unblock(), as_owner_rolled_back():
        _, document = validate()
    return problems(document)


def foreign_key_name(table: str, column: str) -> str:
    return execute(
        "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid = to_regclass(%s) "
        "AND conkey = ARRAY[(SELECT attnum FROM pg_attribute WHERE attrelid = to_regclass(%s) "
        "AND attname = %s)]",
        [table, table, column],
    )[0][0]


# -- a healthy database --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the command reconnects as the owner
def test_the_migrated_database_passes_every_check():
    # Fails on the validate branch alone for the V8 column names and the two views, which the
    # schema branch brings; it passes once both are merged.
    code, document = validate()

    failing = {check_id: listed for check_id, listed in problems(document).items() if listed}
    assert failing == {}
    assert code == 0 and document["outcome"] == "ok"


@pytest.mark.django_db(transaction=True)  # the command reconnects as the owner
def test_the_json_names_every_check_with_its_problems_and_notes():
    code, document = validate()

    assert document["command"] == "validate" and document["exit_code"] == code
    checks = document["details"]["checks"]
    assert [check["id"] for check in checks] == CHECK_IDS
    for check in checks:
        assert set(check) == {"id", "ok", "problems", "notes", "seconds"}
        assert check["ok"] == (check["problems"] == [])
    assert document["details"]["failed"] == [check["id"] for check in checks if not check["ok"]]
    assert notes(document)["extensions"] == [f"vector {installed_pgvector()}"]
    run = MigrationRun.objects.get(pk=document["run_id"])
    assert run.kind == "validate" and run.details["checks"] == checks


def installed_pgvector() -> str:
    return execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")[0][0]


@pytest.mark.django_db(transaction=True)
def test_the_human_report_marks_each_check_and_indents_its_problems(baseline):
    out = StringIO()
    with as_owner_rolled_back():
        execute("DELETE FROM job_status_lu WHERE status = %s", [JobStatus.CANCELLED])
        with pytest.raises(CommandError) as failure:
            call_command("rcm_validate", stdout=out, stderr=StringIO())

    assert failure.value.returncode == 1
    assert "lookups" in str(failure.value)
    lines = out.getvalue().splitlines()
    for check_id in CHECK_IDS:
        mark = "✓" if not baseline[check_id] and check_id != "lookups" else "✗"
        assert any(line.startswith(f"{mark} {check_id}: ") for line in lines), check_id
    at = lines.index(next(line for line in lines if line.startswith("✗ lookups: ")))
    assert lines[at + 1] == "    job_status_lu: missing cancelled"


# -- each check broken on purpose ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the command reconnects as the owner
def test_a_pgvector_older_than_required_fails_extensions(baseline, monkeypatch):
    # The check reads pg_extension; the installed version is what it is, so the requirement
    # moves above it. A database without the extension is in the empty-database test.
    monkeypatch.setattr("memory.checks.PGVECTOR_MIN", (99, 0, 0))

    code, document = validate()

    assert code == 1
    assert added(document, baseline) == {
        "extensions": [PGVECTOR_TOO_OLD.format(found=installed_pgvector(), needed="99.0.0")]
    }


@pytest.mark.django_db(transaction=True)
def test_a_dropped_column_fails_columns(baseline):
    column = BatchJob._meta.get_field("prompt").column
    with as_owner_rolled_back():
        execute(f"ALTER TABLE batch_job DROP COLUMN {column}")
        code, document = validate()

    assert code == 1
    assert added(document, baseline) == {
        "columns": [
            f"batch_job.{column}: column missing (workflows.BatchJob.prompt, the V8 contract)"
        ]
    }


@pytest.mark.django_db(transaction=True)
def test_a_dropped_table_is_named_and_its_relations_are_skipped(baseline):
    table = Endpoint._meta.db_table
    with as_owner_rolled_back():
        execute(f"DROP TABLE {table} CASCADE")
        code, document = validate()

    assert code == 1
    # Its relations are gone with it (CASCADE) or skipped: the one cause is named once. The
    # rcm_trace view reads endpoint (its portal_id), so CASCADE takes it too, and that is named.
    assert added(document, baseline) == {
        "tables": [f"{table}: table missing (tenants.Endpoint)"],
        "views": ["rcm_trace: view missing"],
    }
    assert any(
        note.startswith("skipped, a table or column is missing: ") and f"→ {table}." in note
        for note in notes(document)["orphans"]
    )


@pytest.mark.django_db(transaction=True)
def test_a_dropped_foreign_key_fails_foreign_keys(baseline):
    field = Endpoint._meta.get_field("channel_type")
    target = field.target_field.column
    with as_owner_rolled_back():
        execute(
            f"ALTER TABLE endpoint DROP CONSTRAINT {foreign_key_name('endpoint', field.column)}"
        )
        code, document = validate()

    assert code == 1
    assert added(document, baseline) == {
        "foreign_keys": [f"endpoint.{field.column} → channel_type.{target}: no foreign key"]
    }


@pytest.mark.django_db(transaction=True)
def test_a_foreign_key_never_validated_fails_foreign_keys(baseline):
    field = Endpoint._meta.get_field("channel_type")
    name = foreign_key_name("endpoint", field.column)
    with as_owner_rolled_back():
        definition = execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = %s", [name]
        )[0][0]
        execute(f"ALTER TABLE endpoint DROP CONSTRAINT {name}")
        execute(f"ALTER TABLE endpoint ADD CONSTRAINT {name} {definition} NOT VALID")
        _, document = validate()

    assert added(document, baseline) == {
        "foreign_keys": [
            f"endpoint.{field.column} → channel_type.{field.target_field.column}: foreign key "
            f"{name} is NOT VALID (the rows it was added over were never checked)"
        ]
    }


def hnsw_index() -> tuple[str, str]:
    """(name, definition from USING on) of the memory's HNSW index on the partitioned table."""
    return execute(
        "SELECT c.relname, substring(pg_get_indexdef(i.indexrelid) from ' USING .*') "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_am am ON am.oid = c.relam WHERE i.indrelid = to_regclass(%s) "
        "AND am.amname = 'hnsw'",
        [MicroState._meta.db_table],
    )[0]


def partitions() -> list[str]:
    return [
        row[0]
        for row in execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits "
            "WHERE inhparent = to_regclass(%s) ORDER BY 1",
            [MicroState._meta.db_table],
        )
    ]


@pytest.mark.django_db(transaction=True)
def test_a_partition_without_its_hnsw_index_fails_indexes(baseline):
    # A partition's index cannot be dropped while its parent's index exists; so the parent's
    # goes, and every partition but one gets its own, as a partition created or restored by
    # hand would be.
    table = MicroState._meta.db_table
    with as_owner_rolled_back():
        name, using = hnsw_index()
        every = partitions()
        unindexed = every[3]
        execute(f"DROP INDEX {name}")
        for partition in every:
            if partition != unindexed:
                execute(f"CREATE INDEX ON {partition} {using}")
        code, document = validate()

    assert code == 1
    assert added(document, baseline) == {
        "indexes": [
            f"{table}: no HNSW index on text_emb",
            f"{unindexed}: no HNSW index on text_emb",
        ]
    }


@pytest.mark.django_db(transaction=True)
def test_an_hnsw_index_of_another_distance_fails_indexes(baseline):
    with as_owner_rolled_back():
        name, using = hnsw_index()
        execute(f"DROP INDEX {name}")
        l2 = using.replace("vector_cosine_ops", "vector_l2_ops")
        execute(f"CREATE INDEX {name} ON {MicroState._meta.db_table} {l2}")
        _, document = validate()

    found = added(document, baseline)
    assert list(found) == ["indexes"] and len(found["indexes"]) == 1 + len(partitions())
    assert found["indexes"][0] == (
        f"micro_state: HNSW index {name} uses vector_l2_ops, not vector_cosine_ops "
        "(the memory searches by cosine distance)"
    )


@pytest.mark.django_db(transaction=True)
def test_a_missing_named_index_fails_indexes(baseline):
    model, index = next(
        (model, index) for model in apps.get_models() for index in model._meta.indexes
    )
    table = model._meta.db_table
    with as_owner_rolled_back():
        execute(f"DROP INDEX {index.name}")
        _, document = validate()

    assert added(document, baseline) == {
        "indexes": [f"{table}: index {index.name} missing ({model._meta.label})"]
    }


@pytest.mark.django_db(transaction=True)
def test_a_missing_lookup_value_fails_lookups_and_an_extra_one_is_a_note(baseline):
    table, (key, _) = "task_action_lu", V8_LOOKUPS["task_action_lu"]
    model = next(model for model in apps.get_models() if model._meta.db_table == table)
    with as_owner_rolled_back():
        model.objects.create(pk="fax_cover_sheet", sort_order=99)
        execute(f"DELETE FROM {table} WHERE {key} IN ('appeal', 'void')")
        code, document = validate()

    assert code == 1
    assert added(document, baseline) == {"lookups": [f"{table}: missing appeal, void"]}
    assert notes(document)["lookups"] == [f"{table}: also holds fax_cover_sheet (allowed)"]


def create_view(name: str, *, columns: tuple[str, ...], security_invoker: bool) -> None:
    """A stand-in of a compatibility view with these columns (the check reads the catalog, not
    the rows), replacing the real one inside the test's transaction."""
    select = ", ".join(f'NULL::text AS "{column}"' for column in columns)
    execute(f"DROP VIEW IF EXISTS {name}")
    execute(
        f"CREATE VIEW {name} WITH (security_invoker = {str(security_invoker).lower()}) "
        f"AS SELECT {select} FROM app_user"
    )


@pytest.mark.django_db(transaction=True)
def test_a_view_without_security_invoker_fails_views():
    with as_owner_rolled_back():
        create_view("rcm_user", columns=V8_VIEWS["rcm_user"], security_invoker=False)
        create_view("rcm_trace", columns=V8_VIEWS["rcm_trace"], security_invoker=True)
        code, document = validate()

    assert code == 1
    assert problems(document)["views"] == [
        "rcm_user: not security_invoker (it reads as its owner, past row-level security)"
    ]


@pytest.mark.django_db(transaction=True)
def test_a_missing_view_or_columns_out_of_order_fail_views():
    user_columns = V8_VIEWS["rcm_user"]
    swapped = (user_columns[1], user_columns[0], *user_columns[2:])
    with as_owner_rolled_back():
        create_view("rcm_user", columns=swapped, security_invoker=True)
        execute("DROP VIEW IF EXISTS rcm_trace")
        _, document = validate()

    assert problems(document)["views"] == [
        f"rcm_user: columns in the order {', '.join(swapped)}, not the contract's",
        "rcm_trace: view missing",
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        (f"DROP POLICY {POLICY_NAME} ON endpoint", "endpoint: no policy"),
        (
            "ALTER TABLE {partition} NO FORCE ROW LEVEL SECURITY",
            "{partition}: not forced (its owner bypasses it)",
        ),
        (
            "ALTER TABLE batch_job DISABLE ROW LEVEL SECURITY",
            "batch_job: row-level security not enabled",
        ),
    ],
)
def test_row_level_security_switched_off_fails_rls(baseline, sql, problem):
    partition = partitions()[5]  # a partition's own policy binds a query that names it
    sql, problem = sql.format(partition=partition), problem.format(partition=partition)
    with as_owner_rolled_back():
        execute(sql)
        code, document = validate()

    assert code == 1
    assert added(document, baseline) == {"rls": [problem]}


@pytest.mark.django_db(transaction=True)
def test_a_table_the_runtime_role_owns_fails_runtime_role(baseline):
    # Ownership cannot be handed to the runtime role (the owner is no member of it), so it
    # creates the table itself, given CREATE on the schema for the while: committed, since the
    # two roles work on two connections, and undone in the finally.
    role = runtime_role()
    schema = execute("SELECT current_schema()")[0][0]
    with as_owner():
        execute(f"GRANT CREATE ON SCHEMA {schema} TO {role}")
    try:
        execute("CREATE TABLE runtime_owned (id int)")
        code, document = validate()
    finally:
        execute("DROP TABLE IF EXISTS runtime_owned")
        with as_owner():
            execute(f"REVOKE CREATE ON SCHEMA {schema} FROM {role}")

    assert code == 1
    assert added(document, baseline) == {
        "runtime_role": [f"{role} owns (or may act as the owner of) table {schema}.runtime_owned"]
    }


@pytest.mark.django_db(transaction=True)
def test_a_runtime_role_that_may_take_a_bypassing_role_fails_runtime_role(monkeypatch):
    # Granting rcm_maintenance to the runtime role takes a superuser, which the tests do not
    # have; the owner is such a member already (it takes the maintenance and definer roles),
    # so the check is pointed at it as if it were the runtime role.
    owner = settings.DATABASE_OWNER["USER"]
    monkeypatch.setattr(validation, "runtime_role", lambda: owner)

    code, document = validate()

    assert code == 1
    found = problems(document)["runtime_role"]
    for bypassing in (settings.DATABASE_DEFINER_ROLE, settings.DATABASE_MAINTENANCE_ROLE):
        assert f"{owner} may take the role {bypassing}, which bypasses RLS" in found


def micro_state(org_id) -> MicroState:
    return MicroState.objects.create(
        org_id=org_id,
        dom_snapshot="<form>",
        action_json={"tool": "click"},
        text_emb=[0.5] * 768,
        embedder="test",
        embedder_dimension=768,
    )


def alias_foreign_key() -> str:
    """The micro-state table's key onto itself: (org_id, aliased_to) → (org_id, id)."""
    return execute(
        "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conparentid = 0 "
        "AND conrelid = to_regclass(%s) AND confrelid = conrelid",
        [MicroState._meta.db_table],
    )[0][0]


@pytest.mark.django_db(transaction=True)
def test_an_orphan_fails_orphans(org_a, baseline):
    # The alias is the relation the model leaves unconstrained (the database keys it on
    # (org_id, id)): drop that key and a state can point at one that does not exist.
    field = MicroState._meta.get_field("aliased_to")
    with as_owner_rolled_back(), org_context(org_a.id):
        execute(f"ALTER TABLE micro_state DROP CONSTRAINT {alias_foreign_key()}")
        state = micro_state(org_a.id)
        MicroState.objects.filter(pk=state.pk).update(aliased_to_id=state.pk + 1000)
        with org_context(None):
            code, document = validate()

    assert code == 1
    assert added(document, baseline) == {
        "orphans": [
            f"micro_state.{field.column} → micro_state.{field.target_field.column}: 1 row(s) "
            "reference a missing micro_state row"
        ]
    }


@pytest.mark.django_db(transaction=True)
def test_an_embedding_of_another_dimension_fails_embeddings(org_a, baseline):
    # vector(768) refuses any other length, so the column is made what a hand-made or restored
    # table might have: plain vector (the HNSW index, which needs a dimension, goes first).
    with as_owner_rolled_back(), org_context(org_a.id):
        execute(f"DROP INDEX {hnsw_index()[0]}")
        execute("ALTER TABLE micro_state ALTER COLUMN text_emb TYPE vector")
        state = micro_state(org_a.id)
        MicroState.objects.filter(pk=state.pk).update(text_emb=[1.0, 2.0, 3.0])
        with org_context(None):
            code, document = validate()

    assert code == 1
    found = added(document, baseline)
    assert found["embeddings"] == [
        "micro_state.text_emb is vector, not vector(768)",
        "micro_state: 1 embedding(s) of 3 dimensions, not 768",
    ]
    assert set(found) == {"embeddings", "indexes"}  # the dropped HNSW index


@pytest.mark.django_db(transaction=True)
def test_an_unapplied_migration_fails_migrations(baseline):
    app, name = sorted(MigrationLoader(None).graph.leaf_nodes())[0]
    with as_owner_rolled_back():
        execute("DELETE FROM django_migrations WHERE app = %s AND name = %s", [app, name])
        code, document = validate()

    assert code == 1
    assert added(document, baseline) == {"migrations": [f"{app}.{name}: not applied"]}


@pytest.mark.django_db(transaction=True)
def test_an_edited_audit_event_fails_audit_chain(org_a, baseline):
    events = [
        audit_event_record(action="test.event", org_id=org_a.id, object_id=str(number))
        for number in range(3)
    ]
    with as_owner_rolled_back():
        # As a rogue owner would: the append-only trigger off for the edit.
        with org_context(org_a.id):
            execute("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
            execute("UPDATE audit_event SET action = 'forged' WHERE id = %s", [events[1]])
            execute("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only")
        code, document = validate()

    assert code == 1
    found = added(document, baseline)
    assert list(found) == ["audit_chain"] and len(found["audit_chain"]) == 1
    assert found["audit_chain"][0].startswith(
        f"audit_event: the hash chain breaks at event {events[1]} ("
    )
    assert found["audit_chain"][0].endswith("): an event was edited or deleted")


# -- another database -----------------------------------------------------------------------------


def url_of(name: str, *, user: str, password: str) -> str:
    config = connection.settings_dict
    return (
        f"postgres://{quote(user, safe='')}:{quote(password, safe='')}"
        f"@{config['HOST']}:{config['PORT']}/{name}"
    )


@pytest.fixture
def empty_database(transactional_db):
    """A database with nothing in it, not even pgvector (template0), dropped afterwards."""
    name = f"validate_empty_{os.getpid()}"
    with as_owner():
        execute(f"CREATE DATABASE {name} TEMPLATE template0")
    try:
        yield url_of(name, **owner_credentials())
    finally:
        with as_owner():
            execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def owner_credentials() -> dict:
    return {
        "user": settings.DATABASE_OWNER["USER"],
        "password": settings.DATABASE_OWNER["PASSWORD"],
    }


def test_an_empty_database_names_every_missing_part(empty_database):
    code, document = validate("--database-url", empty_database)

    assert code == 1
    found = problems(document)
    assert found["extensions"] == [PGVECTOR_MISSING]
    expected_tables = {
        model._meta.db_table for model in validation._models()
    } | validation.CONTRACT_TABLES
    assert {problem.split(":")[0] for problem in found["tables"]} == expected_tables
    assert found["lookups"] == [f"{table}: table missing" for table in V8_LOOKUPS]
    assert found["views"] == [f"{view}: view missing" for view in V8_VIEWS]
    on_disk = MigrationLoader(None).disk_migrations
    assert sorted(found["migrations"]) == sorted(
        f"{app}.{name}: not applied" for app, name in on_disk
    )
    assert document["details"]["failed"] == [
        "extensions",
        "tables",
        "lookups",
        "views",
        "migrations",
    ]
    assert notes(document)["embeddings"] == ["skipped: micro_state.text_emb is missing"]
    assert notes(document)["audit_chain"] == ["skipped: audit_event is missing"]
    assert document["details"]["database"].startswith(empty_database.rsplit("/", 1)[1])


@pytest.mark.django_db(transaction=True)
def test_another_database_read_as_a_role_without_the_maintenance_role_says_so():
    config = connection.settings_dict
    url = url_of(config["NAME"], user=config["USER"], password=config["PASSWORD"])

    _, document = validate("--database-url", url)

    said = (
        f"read as {config['USER']}, which cannot take the maintenance role "
        f"{settings.DATABASE_MAINTENANCE_ROLE}: row-level security hid the rows of "
        "organizations other than its own from this count"
    )
    assert said in notes(document)["orphans"] and said in notes(document)["embeddings"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgres://nobody:wrong@127.0.0.1:1/nothing", "Cannot connect to nothing on 127.0.0.1:1"),
        ("not a url", "is not a PostgreSQL URL"),
        ("postgres://rcm_owner:S3cret-pw@db:notaport/rcm", "postgres://rcm_owner:***@db:"),
    ],
)
def test_a_database_it_cannot_reach_is_exit_2(url, said):
    code, document = validate("--database-url", url)

    assert code == 2 and document["outcome"] == "error"
    assert said in document["summary"]
    # A password given in the URL is never repeated: the summary is stored in migration_run.
    assert "S3cret" not in json.dumps(document)
    assert "S3cret" not in json.dumps(list(MigrationRun.objects.values()), default=str)
