"""Writing many rows at once: COPY into a temporary table, then one INSERT or UPDATE from it.

Why not COPY straight into the table: PostgreSQL refuses ``COPY FROM`` into a table under
row-level security, and every tenant table forces it. A temporary table has no policy; the
``INSERT … SELECT`` from it runs as an ordinary statement, inside the organization's context,
so the policy's WITH CHECK still vets every row. Why not the ORM's ``bulk_create``: it binds
every value of a chunk into one statement (slow for thousands of JSON documents and
768-number vectors), and it overwrites ``created_at`` (``auto_now_add``), which the import
keeps from v3.

Columns are named from the models (``_meta``), never spelled out: the V8 column names are set
by ``db_column`` and may change under the field names.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Sequence

from django.db import connection, models

STAGE_PREFIX = "legacy_stage_"


def json_text(value) -> str:
    """A JSON column's value as COPY takes it: its text."""
    return json.dumps(value, separators=(",", ":"))


def columns(model: type[models.Model], fields: Sequence[str]) -> list[str]:
    return [model._meta.get_field(name).column for name in fields]


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(connection.ops.quote_name(name) for name in names)


@contextlib.contextmanager
def staged(model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence]):
    """A temporary table shaped like ``fields`` of the model's table, holding ``rows``, for
    the block: yields (cursor, the stage's quoted name, the quoted column list)."""
    names = _quoted(columns(model, fields))
    stage = connection.ops.quote_name(STAGE_PREFIX + model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE {stage} AS SELECT {names} "
            f"FROM {connection.ops.quote_name(model._meta.db_table)} WITH NO DATA"
        )
        with cursor.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        yield cursor, stage, names
        cursor.execute(f"DROP TABLE {stage}")


def insert(model: type[models.Model], fields: Sequence[str], rows: Sequence[Sequence]) -> None:
    """Insert ``rows`` (values in the order of ``fields``) into the model's table."""
    if not rows:
        return
    with staged(model, fields, rows) as (cursor, stage, names):
        cursor.execute(
            f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({names}) "
            f"SELECT {names} FROM {stage}"
        )


def update(model: type[models.Model], fields: Sequence[str], rows: Sequence[Sequence]) -> None:
    """Update the rows whose primary key is each row's first value; ``fields`` starts with
    the primary key's field name."""
    if not rows:
        return
    key, *changed = (connection.ops.quote_name(name) for name in columns(model, fields))
    assignments = ", ".join(f"{name} = s.{name}" for name in changed)
    with staged(model, fields, rows) as (cursor, stage, _):
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(model._meta.db_table)} AS t SET {assignments} "
            f"FROM {stage} AS s WHERE t.{key} = s.{key}"
        )


def ids_allocate(model: type[models.Model], count: int) -> list[int]:
    """``count`` new primary keys from the table's own sequence, so that the import knows each
    row's id before it inserts it (and can record it in the map in the same transaction)."""
    if not count:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [model._meta.db_table, model._meta.pk.column, count],
        )
        return [row[0] for row in cursor.fetchall()]
