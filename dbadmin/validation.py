"""The checks of ``rcm_validate``: the live database against what the code expects (its models,
migrations, the memory's vector index, the tenancy rules of DESIGN §5) and against the V8
contract (dbadmin/contract.py).

Each check is a small function of a :class:`Database` that returns what it found wrong
(``problems``, which fail it) and what is worth knowing (``notes``, which do not), in words
that name the table, column or row. ``CHECKS`` lists them in the order the report shows.

Each check reads a handful of catalog rows, or one statement per relationship for the row
checks (orphans, embeddings, the audit chain), so that a database of millions of rows is
validated in seconds. A part that is missing altogether (an empty database) is named by the
check that owns it (``tables``, ``lookups``, ``views``, ``migrations``); the others skip it
with a note rather than fail twice for one cause.
"""

from __future__ import annotations

import contextlib
import copy
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

import environ
from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.migrations.exceptions import InconsistentMigrationHistory
from django.db.migrations.executor import MigrationExecutor
from django.db.utils import load_backend

from dbadmin.contract import V8_COLUMNS, V8_LOOKUPS, V8_VIEWS
from memory.checks import PGVECTOR_MIN, pgvector_problem
from memory.models import DIMENSION, MicroState
from rcm.db.roles import as_owner, runtime_role
from rcm.db.tenancy import TenantModel
from tenants.models import AuditEvent
from tenants.services import audit_chain_verify

# The memory's search orders by CosineDistance (pgvector's <=>), which only an HNSW index built
# with the cosine operator class serves; any other leaves every search a sequential scan.
HNSW_OPCLASS = "vector_cosine_ops"
TENANT_COLUMN = TenantModel._meta.get_field("org").column
# The tables the V8 contract names: its relationships are the ones the orphan check follows.
CONTRACT_TABLES = set(V8_COLUMNS) | set(V8_LOOKUPS)
URL_ALIAS = "rcm_validate"
LISTED = 10  # a long list (the objects a role owns) is cut after this many


@dataclass
class Found:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Check:
    id: str
    title: str
    run: Callable[[Database], Found]


@dataclass
class CheckResult:
    id: str
    title: str
    problems: list[str]
    notes: list[str]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "ok": self.ok,
            "problems": self.problems,
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }


# -- the database under validation -------------------------------------------------------------


@dataclass(frozen=True)
class Index:
    table: str
    name: str
    columns: tuple[str, ...]  # key columns, in order (an expression's position is left out)
    opclasses: tuple[str, ...]
    method: str
    unique: bool
    primary: bool
    partial: bool
    valid: bool


class Database:
    """One connection (by its alias in ``django.db.connections``) and its catalog, read once
    per run: the tables, columns, indexes and constraints."""

    def __init__(self, alias: str):
        self.alias = alias
        self.connection = connections[alias]

    def describe(self) -> str:
        config = self.connection.settings_dict
        return f"{config['NAME']} on {config['HOST']}:{config['PORT']} as {config['USER']}"

    def quote(self, name: str) -> str:
        return self.connection.ops.quote_name(name)

    def rows(self, sql: str, params=()) -> list[tuple]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    @cached_property
    def tables(self) -> set[str]:
        return {row[0] for row in self.rows(TABLES_SQL)}

    @cached_property
    def columns(self) -> dict[str, list[str]]:
        """Every table's and view's columns, in their order."""
        found: dict[str, list[str]] = {}
        for relation, column in self.rows(COLUMNS_SQL):
            found.setdefault(relation, []).append(column)
        return found

    def has_column(self, table: str, column: str) -> bool:
        return column in self.columns.get(table, ())

    @cached_property
    def indexes(self) -> list[Index]:
        return [
            Index(*row[:2], tuple(row[2]), tuple(row[3]), *row[4:])
            for row in self.rows(INDEXES_SQL)
        ]

    @cached_property
    def constraints(self) -> dict[str, set[str]]:
        names: dict[str, set[str]] = {}
        for table, name in self.rows(CONSTRAINTS_SQL):
            names.setdefault(table, set()).add(name)
        return names

    @cached_property
    def _cross_org_role(self) -> tuple[str | None, str | None]:
        """(the role to take for reads across organizations, a note when there is none)."""
        role = settings.DATABASE_MAINTENANCE_ROLE
        bypasses, may_take = self.rows(CROSS_ORG_SQL, [role])[0]
        if bypasses:
            return None, None
        if may_take:
            return role, None
        user = self.connection.settings_dict["USER"]
        return None, (
            f"read as {user}, which cannot take the maintenance role {role}: row-level "
            "security hid the rows of organizations other than its own from this count"
        )

    @contextlib.contextmanager
    def cross_org(self) -> Iterator:
        """A cursor that sees every organization's rows (the maintenance role: BYPASSRLS, read
        only), when this connection's role may take it. Its own savepoint: were a read to fail,
        rolling it back also undoes the SET ROLE."""
        role, _ = self._cross_org_role
        with transaction.atomic(using=self.alias), self.connection.cursor() as cursor:
            if role:
                cursor.execute(f"SET ROLE {self.quote(role)}")
            yield cursor
            if role:
                cursor.execute("RESET ROLE")

    @property
    def cross_org_note(self) -> str | None:
        return self._cross_org_role[1]


# Every query reads the schema Django creates its tables in: current_schema(), the first of
# the search path.
TABLES_SQL = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
"""
COLUMNS_SQL = """
SELECT c.relname, a.attname
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm')
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum
"""
INDEXES_SQL = """
SELECT t.relname, ic.relname,
       ARRAY(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, position)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE k.position <= i.indnkeyatts ORDER BY k.position),
       ARRAY(SELECT o.opcname FROM unnest(i.indclass::oid[]) WITH ORDINALITY k(opclass, position)
             JOIN pg_opclass o ON o.oid = k.opclass ORDER BY k.position),
       am.amname, i.indisunique, i.indisprimary, i.indpred IS NOT NULL,
       i.indisvalid AND i.indisready
FROM pg_index i
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_am am ON am.oid = ic.relam
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = current_schema()
"""
CONSTRAINTS_SQL = """
SELECT t.relname, con.conname
FROM pg_constraint con
JOIN pg_class t ON t.oid = con.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = current_schema()
"""
CROSS_ORG_SQL = """
SELECT r.rolsuper OR r.rolbypassrls,
       EXISTS (SELECT 1 FROM pg_roles m WHERE m.rolname = %s
               AND pg_has_role(current_user, m.oid, 'MEMBER'))
FROM pg_roles r WHERE r.rolname = current_user
"""


NOT_A_URL = "--database-url {url!r} is not a PostgreSQL URL (postgres://user@host:port/name)"
# The password part of a URL's user information: never repeated in a message, which ends up in
# migration_run, the JSON output and the terminal's scroll-back.
URL_PASSWORD = re.compile(r"(//[^/@:]*):[^/@]*@")


def url_settings(url: str) -> dict:
    """The connection settings of a PostgreSQL URL; ValueError (in words) when it is not one."""
    shown = URL_PASSWORD.sub(r"\1:***@", url)
    scheme = url.partition("://")[0]
    if "postgresql" not in environ.Env.DB_SCHEMES.get(scheme, ""):
        raise ValueError(NOT_A_URL.format(url=shown))
    try:
        target = environ.Env.db_url_config(url)
    except ValueError as exc:  # a port that is not a number
        raise ValueError(f"{NOT_A_URL.format(url=shown)}: {exc}") from exc
    if not target["NAME"]:
        raise ValueError(NOT_A_URL.format(url=shown))
    return target


@contextlib.contextmanager
def database(target: dict | None = None) -> Iterator[Database]:
    """The database to validate: the configured one, read as the owner (who may take the
    maintenance role), or the one ``target`` (:func:`url_settings`) names, read as its role."""
    if target is None:
        with _as_owner("default"):
            yield Database("default")
        return
    with _other_connection(target) as alias:
        yield Database(alias)


@contextlib.contextmanager
def _as_owner(alias: str) -> Iterator[None]:
    """``as_owner()``, unless the connection already is the owner's: reconnecting would lose
    the transaction it holds, and with it the uncommitted changes a caller wants checked."""
    if connections[alias].settings_dict["USER"] == settings.DATABASE_OWNER["USER"]:
        yield
        return
    with as_owner(alias):
        yield


@contextlib.contextmanager
def _other_connection(target: dict) -> Iterator[str]:
    """A temporary connection with ``target``'s credentials, on the configured engine (the
    organization-context backend) and connection options (timeouts). It is handed to this
    thread's connections under its own alias, never added to the settings: no other code can
    reach it by name, and it is gone when the block ends."""
    config = copy.deepcopy(connections["default"].settings_dict)
    config.update({key: target[key] for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT")})
    config["OPTIONS"].update(target.get("OPTIONS", {}))
    connections[URL_ALIAS] = load_backend(config["ENGINE"]).DatabaseWrapper(config, URL_ALIAS)
    try:
        yield URL_ALIAS
    finally:
        connections[URL_ALIAS].close()
        del connections[URL_ALIAS]


def run_check(db: Database, check: Check) -> CheckResult:
    """One check in its own transaction (a savepoint inside a caller's): a statement that fails
    makes it a problem of this check, and the next check starts clean."""
    started = time.perf_counter()
    try:
        with transaction.atomic(using=db.alias):
            found = check.run(db)
    except DatabaseError as exc:
        found = Found(problems=[f"could not check: {str(exc).strip()}"])
    return CheckResult(
        check.id, check.title, found.problems, found.notes, time.perf_counter() - started
    )


# -- what the code expects -----------------------------------------------------------------------


def _models() -> list:
    """Every model with a table Django creates and migrates (the m2m tables too)."""
    return [
        model
        for model in apps.get_models(include_auto_created=True)
        if model._meta.managed and not model._meta.proxy and not model._meta.swapped
    ]


def _foreign_keys() -> list[tuple]:
    """(model, field) of every many-to-one and one-to-one field stored in a column."""
    return [
        (model, model_field)
        for model in _models()
        for model_field in model._meta.local_concrete_fields
        if model_field.many_to_one or model_field.one_to_one
    ]


def _relationship(model, model_field) -> str:
    child, parent = model._meta.db_table, model_field.related_model._meta.db_table
    return f"{child}.{model_field.column} → {parent}.{model_field.target_field.column}"


# -- the checks ------------------------------------------------------------------------------------


def extensions(db: Database) -> Found:
    rows = db.rows("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    version = rows[0][0] if rows else None
    problem = pgvector_problem(version)
    if problem:
        return Found(problems=[problem])
    return Found(notes=[f"vector {version}"])


def tables(db: Database) -> Found:
    expected = {model._meta.db_table: model._meta.label for model in _models()}
    for table in CONTRACT_TABLES:
        expected.setdefault(table, "the V8 contract")
    return Found(
        problems=[
            f"{table}: table missing ({source})"
            for table, source in sorted(expected.items())
            if table not in db.tables
        ]
    )


def columns(db: Database) -> Found:
    expected: dict[tuple[str, str], list[str]] = {}
    for model in _models():
        for model_field in model._meta.local_concrete_fields:
            key = (model._meta.db_table, model_field.column)
            expected.setdefault(key, []).append(f"{model._meta.label}.{model_field.name}")
    for table, names in V8_COLUMNS.items():
        for column in names:
            expected.setdefault((table, column), []).append("the V8 contract")
    return Found(
        problems=[
            f"{table}.{column}: column missing ({', '.join(sources)})"
            for (table, column), sources in sorted(expected.items())
            if table in db.tables and not db.has_column(table, column)
        ]
    )


FOREIGN_KEYS_SQL = """
SELECT t.relname, con.conname, ref.relname, con.convalidated,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(attnum, position)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.position),
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(attnum, position)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.position)
FROM pg_constraint con
JOIN pg_class t ON t.oid = con.conrelid
JOIN pg_class ref ON ref.oid = con.confrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
-- A partition's copy of its parent's key (conparentid) is the parent's, checked there.
WHERE con.contype = 'f' AND n.nspname = current_schema() AND con.conparentid = 0
"""


def foreign_keys(db: Database) -> Found:
    declared: dict[tuple, tuple[str, bool]] = {}
    for table, name, referenced, validated, keys, referenced_keys in db.rows(FOREIGN_KEYS_SQL):
        key = (table, tuple(keys), referenced, tuple(referenced_keys))
        if validated or key not in declared:  # of two keys on one column, a valid one counts
            declared[key] = (name, validated)
    found = Found()
    for model, model_field in _foreign_keys():
        child, parent = model._meta.db_table, model_field.related_model._meta.db_table
        if not model_field.db_constraint or not {child, parent} <= db.tables:
            continue
        key = (child, (model_field.column,), parent, (model_field.target_field.column,))
        name, validated = declared.get(key, (None, False))
        if name is None:
            found.problems.append(f"{_relationship(model, model_field)}: no foreign key")
        elif not validated:
            found.problems.append(
                f"{_relationship(model, model_field)}: foreign key {name} is NOT VALID "
                "(the rows it was added over were never checked)"
            )
    return found


def indexes(db: Database) -> Found:
    found = Found()
    by_table: dict[str, list[Index]] = {}
    for index in db.indexes:
        by_table.setdefault(index.table, []).append(index)
    for model in _models():
        table = model._meta.db_table
        if table in db.tables:
            found.problems += _model_index_problems(db, model, by_table.get(table, []))
    found.problems += _hnsw_problems(db, by_table)
    return found


def _model_index_problems(db: Database, model, table_indexes: list[Index]) -> list[str]:
    """The model's named indexes and constraints, its primary key and its unique columns."""
    table, options = model._meta.db_table, model._meta
    problems = []
    index_names = {index.name: index for index in table_indexes}
    for index in options.indexes:
        if index.name not in index_names:
            problems.append(f"{table}: index {index.name} missing ({options.label})")
        elif not index_names[index.name].valid:
            problems.append(f"{table}: index {index.name} is not valid (a failed build)")
    for constraint in options.constraints:
        if constraint.name not in db.constraints.get(table, set()) | set(index_names):
            problems.append(f"{table}: constraint {constraint.name} missing ({options.label})")
    if not any(options.pk.column in index.columns for index in table_indexes if index.primary):
        problems.append(f"{table}: no primary key on {options.pk.column}")
    unique_sets = [
        set(index.columns)
        for index in table_indexes
        if index.unique and not index.partial and index.valid
    ]
    wanted = [
        (model_field.column,)
        for model_field in options.local_concrete_fields
        if model_field.unique and not model_field.primary_key
    ] + [
        tuple(options.get_field(name).column for name in together)
        for together in options.unique_together
    ]
    for unique_columns in wanted:
        if set(unique_columns) not in unique_sets:
            problems.append(f"{table}: nothing makes ({', '.join(unique_columns)}) unique")
    return problems


def _hnsw_problems(db: Database, by_table: dict[str, list[Index]]) -> list[str]:
    """The memory's HNSW index on the micro-state table and on every partition of it: a
    partition without one is searched row by row, and a parent without one gives none to a
    partition attached later."""
    table = MicroState._meta.db_table
    column = MicroState._meta.get_field("text_emb").column
    if table not in db.tables:
        return []
    tree = db.rows(
        "SELECT c.relname FROM pg_partition_tree(to_regclass(%s)) p "
        "JOIN pg_class c ON c.oid = p.relid ORDER BY p.level, c.relname",
        [db.quote(table)],
    )
    problems = []
    for (relation,) in tree:
        hnsw = [
            index
            for index in by_table.get(relation, [])
            if index.method == "hnsw" and index.columns[:1] == (column,)
        ]
        if not hnsw:
            problems.append(f"{relation}: no HNSW index on {column}")
        for index in hnsw:
            if index.opclasses[:1] != (HNSW_OPCLASS,):
                problems.append(
                    f"{relation}: HNSW index {index.name} uses {index.opclasses[0]}, "
                    f"not {HNSW_OPCLASS} (the memory searches by cosine distance)"
                )
            if not index.valid:
                problems.append(f"{relation}: HNSW index {index.name} is not valid")
    return problems


def lookups(db: Database) -> Found:
    """Missing values fail; extra ones are notes. The lookups are editable at runtime (a new
    payer action is a row, not a migration) and the legacy importer adds the values a v3
    database used, so "exact values" means every contract value is there, not only them."""
    found = Found()
    for table, (key, values) in V8_LOOKUPS.items():
        if table not in db.tables:
            found.problems.append(f"{table}: table missing")
            continue
        if not db.has_column(table, key):
            found.problems.append(f"{table}.{key}: column missing")
            continue
        stored = {row[0] for row in db.rows(f"SELECT {db.quote(key)} FROM {db.quote(table)}")}  # noqa: S608 - identifiers from the contract, quoted
        missing = [value for value in values if value not in stored]
        extra = sorted(stored - set(values))
        if missing:
            found.problems.append(f"{table}: missing {', '.join(missing)}")
        if extra:
            found.notes.append(f"{table}: also holds {', '.join(extra)} (allowed)")
    return found


VIEW_OPTIONS_SQL = """
SELECT c.relname, c.relkind, coalesce(c.reloptions, '{}')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relname = ANY(%s)
"""
TRUE_WORDS = {"true", "on", "yes", "1"}


def views(db: Database) -> Found:
    found = Found()
    relations = {
        name: (kind, options) for name, kind, options in db.rows(VIEW_OPTIONS_SQL, [list(V8_VIEWS)])
    }
    for view, wanted in V8_VIEWS.items():
        if view not in relations:
            found.problems.append(f"{view}: view missing")
            continue
        kind, options = relations[view]
        if kind != "v":
            found.problems.append(f"{view}: not a view (relkind {kind})")
            continue
        found.problems += _view_column_problems(view, list(wanted), db.columns.get(view, []))
        settings_ = dict(option.partition("=")[::2] for option in options)
        if settings_.get("security_invoker", "").lower() not in TRUE_WORDS:
            found.problems.append(
                f"{view}: not security_invoker (it reads as its owner, past row-level security)"
            )
    return found


def _view_column_problems(view: str, wanted: list[str], present: list[str]) -> list[str]:
    if present == wanted:
        return []
    missing = [column for column in wanted if column not in present]
    extra = [column for column in present if column not in wanted]
    problems = []
    if missing:
        problems.append(f"{view}: columns missing: {', '.join(missing)}")
    if extra:
        problems.append(f"{view}: columns the contract does not name: {', '.join(extra)}")
    if not missing and not extra:
        problems.append(f"{view}: columns in the order {', '.join(present)}, not the contract's")
    return problems


RLS_SQL = """
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
       EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = %s AND NOT a.attisdropped
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
ORDER BY c.relname
"""


def rls(db: Database) -> Found:
    """Every table with an organization column, partitions included (a query naming a
    partition directly is bound by the partition's own policies, not its parent's)."""
    found = Found()
    for table, enabled, forced, has_policy in db.rows(RLS_SQL, [TENANT_COLUMN]):
        lacking = [
            words
            for words, present in (
                ("row-level security not enabled", enabled),
                ("not forced (its owner bypasses it)", forced),
                ("no policy", has_policy),
            )
            if not present
        ]
        if lacking:
            found.problems.append(f"{table}: {'; '.join(lacking)}")
    return found


OWNED_SQL = """
SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view'
                      WHEN 'm' THEN 'materialized view' ELSE 'table' END,
       n.nspname || '.' || c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'f', 'S', 'v', 'm') AND pg_has_role(%(role)s, c.relowner, 'MEMBER')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'
UNION ALL
SELECT 'function',
       n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE pg_has_role(%(role)s, p.proowner, 'MEMBER')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'
ORDER BY 1, 2
"""


BYPASSING_ROLES_SQL = """
SELECT m.rolname FROM pg_roles m, pg_roles r
WHERE r.rolname = %s AND m.oid <> r.oid AND (m.rolsuper OR m.rolbypassrls)
  AND pg_has_role(r.oid, m.oid, 'MEMBER')
ORDER BY m.rolname
"""


def runtime_role_check(db: Database) -> Found:
    """DESIGN §5: the role the platform runs as is bound by row-level security. A superuser or
    BYPASSRLS role skips it, and an owner (or a member of the owner's role) can switch FORCE
    off. Temporary objects (pg_temp_*) are left out: they go with the session that made them."""
    role = runtime_role()
    rows = db.rows("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", [role])
    if not rows:
        return Found(problems=[f"the runtime role {role} does not exist on this server"])
    superuser, bypass = rows[0]
    found = Found()
    if superuser:
        found.problems.append(f"{role} is a superuser")
    if bypass:
        found.problems.append(f"{role} has BYPASSRLS")
    # A member of a role that bypasses row-level security may SET ROLE to it at will: the
    # maintenance and definer roles are the owner's to take, never the runtime role's.
    for (above,) in db.rows(BYPASSING_ROLES_SQL, [role]):
        found.problems.append(f"{role} may take the role {above}, which bypasses RLS")
    owned = [f"{kind} {name}" for kind, name in db.rows(OWNED_SQL, {"role": role})]
    if owned:
        listed = ", ".join(owned[:LISTED])
        more = f" and {len(owned) - LISTED} more" if len(owned) > LISTED else ""
        found.problems.append(f"{role} owns (or may act as the owner of) {listed}{more}")
    return found


def _contract_relationships() -> list[tuple]:
    """(model, field) of every foreign key between two of the contract's tables, the
    micro-state alias included (the database keys it on (org_id, id), not on this column)."""
    return [
        (model, model_field)
        for model, model_field in _foreign_keys()
        if {model._meta.db_table, model_field.related_model._meta.db_table} <= CONTRACT_TABLES
    ]


def orphans(db: Database) -> Found:
    """Children whose parent row is missing, one statement per relationship. A valid foreign
    key forbids them, but a restore with triggers off or a key dropped by hand does not, so
    every relationship is counted, constrained or not."""
    found = Found()
    skipped = []
    q = db.quote
    for model, model_field in _contract_relationships():
        child, parent = model._meta.db_table, model_field.related_model._meta.db_table
        column, parent_column = model_field.column, model_field.target_field.column
        if not (db.has_column(child, column) and db.has_column(parent, parent_column)):
            skipped.append(_relationship(model, model_field))
            continue
        with db.cross_org() as cursor:
            cursor.execute(
                f"SELECT count(*) FROM {q(child)} c WHERE c.{q(column)} IS NOT NULL "  # noqa: S608 - identifiers from the models, quoted
                f"AND NOT EXISTS (SELECT 1 FROM {q(parent)} p "
                f"WHERE p.{q(parent_column)} = c.{q(column)})"
            )
            count = cursor.fetchone()[0]
        if count:
            found.problems.append(
                f"{_relationship(model, model_field)}: {count} row(s) reference a missing "
                f"{parent} row"
            )
    if skipped:
        found.notes.append(f"skipped, a table or column is missing: {', '.join(skipped)}")
    if db.cross_org_note:
        found.notes.append(db.cross_org_note)
    return found


def embeddings(db: Database) -> Found:
    """The memory compares vectors of its one dimension (memory.models.DIMENSION). A column
    typed plain ``vector`` (a hand-made table, a restore of an older dump) accepts any length,
    and a vector of another length makes every search that meets it fail."""
    table = MicroState._meta.db_table
    column = MicroState._meta.get_field("text_emb").column
    if not db.has_column(table, column):
        return Found(notes=[f"skipped: {table}.{column} is missing"])
    found = Found()
    declared = db.rows(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attname = %s",
        [db.quote(table), column],
    )[0][0]
    if declared != f"vector({DIMENSION})":
        found.problems.append(f"{table}.{column} is {declared}, not vector({DIMENSION})")
    with db.cross_org() as cursor:
        cursor.execute(
            f"SELECT vector_dims({db.quote(column)}), count(*) FROM {db.quote(table)} "  # noqa: S608 - identifiers from the model, quoted; the size is a parameter
            f"WHERE {db.quote(column)} IS NOT NULL AND vector_dims({db.quote(column)}) <> %s "
            "GROUP BY 1 ORDER BY 1",
            [DIMENSION],
        )
        wrong = cursor.fetchall()
    for dimensions, count in wrong:
        found.problems.append(
            f"{table}: {count} embedding(s) of {dimensions} dimensions, not {DIMENSION}"
        )
    if db.cross_org_note:
        found.notes.append(db.cross_org_note)
    return found


def migrations(db: Database) -> Found:
    executor = MigrationExecutor(db.connection)
    loader = executor.loader
    plan = executor.migration_plan(loader.graph.leaf_nodes())
    found = Found(
        problems=[f"{migration.app_label}.{migration.name}: not applied" for migration, _ in plan]
    )
    try:
        loader.check_consistent_history(db.connection)
    except InconsistentMigrationHistory as exc:
        found.problems.append(str(exc))
    unknown = sorted(set(loader.applied_migrations) - set(loader.disk_migrations))
    if unknown:
        found.notes.append(
            "applied here but not in this code (a newer release's?): "
            + ", ".join(f"{app}.{name}" for app, name in unknown)
        )
    return found


def audit_chain(db: Database) -> Found:
    table = AuditEvent._meta.db_table
    if table not in db.tables:
        return Found(notes=[f"skipped: {table} is missing"])
    checked, first_bad = audit_chain_verify(using=db.alias)
    if first_bad is not None:
        # An id past the last good row (or 0) means rows were removed from the end.
        return Found(
            problems=[
                f"{table}: the hash chain breaks at event {first_bad} ({checked} event(s) "
                "verified before it): an event was edited or deleted"
            ]
        )
    return Found(notes=[f"{checked} event(s) verified"])


CHECKS: list[Check] = [
    Check(
        "extensions", f"pgvector installed, {'.'.join(map(str, PGVECTOR_MIN))} or newer", extensions
    ),
    Check("tables", "every table the models and the V8 contract name", tables),
    Check("columns", "every column the models and the V8 contract name", columns),
    Check("foreign_keys", "a valid foreign key for every model relation", foreign_keys),
    Check("indexes", "declared indexes and constraints; HNSW on every partition", indexes),
    Check("lookups", "the nine lookup tables hold their values", lookups),
    Check("views", "rcm_user and rcm_trace as the contract shows them", views),
    Check("rls", "row-level security enabled, forced and policed", rls),
    Check("runtime_role", "the runtime role is bound by row-level security", runtime_role_check),
    Check("orphans", "no row references a missing parent", orphans),
    Check("embeddings", f"every embedding has {DIMENSION} dimensions", embeddings),
    Check("migrations", "every migration applied", migrations),
    Check("audit_chain", "the audit trail's hash chain is intact", audit_chain),
]
