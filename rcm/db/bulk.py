"""Many rows into a table at once, for writers of large amounts of finished data (historical
batch jobs and their traces, imported or seeded, the legacy import's inserts and updates).

``bulk_create`` was measured at 7,000–10,000 rows a second for ``workflow_trace`` and
``batch_job_item`` (Django builds one parameter per value and one INSERT per chunk); COPY into a
temporary table and one ``INSERT … SELECT`` from it reach 45,000–58,000, which is what makes a
seed of millions of traces take a minute rather than several. Two more reasons it is not
``bulk_create``:

* ``COPY … FROM`` is refused on a table with row-level security, and every tenant table has
  it: the rows are copied into a temporary table of the same column types, then inserted with
  an ordinary INSERT, which the policy's ``WITH CHECK`` binds like any other.
* ``bulk_create`` replaces the value of an ``auto_now_add`` field (``created_at``) with the
  current time; history has its own times, and the INSERT keeps what it is given.

Columns are named from the model (``Field.column``), never written out, so a ``db_column``
change follows. Values go to psycopg as they are (UUIDs, numbers, text, booleans, aware
datetimes, None), except JSON fields' values, dumped here with the field's own encoder: Django's
per-value conversion (``get_db_prep_save``) cost 25 µs a row, more than the COPY itself. The
organization context applies to the INSERT as to any statement (the
database backend sets it per transaction), so the caller works inside ``org_context``.

An update goes the same way (``rows_update``: COPY, then one ``UPDATE … FROM`` the stage), and
a writer with a statement of its own (an ``INSERT … ON CONFLICT``) stages its rows with
``rows_staged``. ``ids_allocate`` draws primary keys ahead, for rows that others written in the
same chunk point at (a COPY returns rows in no order that could be matched).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence

from django.db import connection, models


@contextlib.contextmanager
def rows_staged(
    model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence]
) -> Iterator[tuple]:
    """A temporary table of the columns of ``fields`` of ``model``'s table, holding ``rows``,
    for the block: yields (cursor, the stage's quoted name, the quoted column list).

    ``fields`` are field names or attnames (``batch_job`` or ``batch_job_id``: the value is
    the key either way). Must run inside a transaction: the temporary table lives until the
    commit.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("bulk writes run inside transaction.atomic()")
    meta = model._meta
    resolved = [meta.get_field(name) for name in fields]
    # Only the JSON columns' values are converted: a call per value of every other column cost
    # the legacy import a tenth of its time.
    json_columns = [
        (index, _json_dumps(field.encoder))
        for index, field in enumerate(resolved)
        if isinstance(field, models.JSONField)
    ]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(_column(model, name)) for name in fields)
    # Its own name: a temporary table named like the real one would hide it for the session.
    stage = quote(f"copy_stage_{meta.db_table}")
    with connection.cursor() as cursor:
        # The column types of the real table, none of its constraints, defaults or policies.
        # Dropped below; a failure rolls its creation back with the caller's transaction.
        cursor.execute(
            f"CREATE TEMPORARY TABLE {stage} AS SELECT {columns} "  # noqa: S608 - identifiers from the model, quoted
            f"FROM {quote(meta.db_table)} WITH NO DATA"
        )
        # Django's cursor wraps psycopg's, which alone speaks COPY.
        with cursor.cursor.copy(f"COPY {stage} ({columns}) FROM STDIN") as copy:
            for row in rows:
                if len(row) != len(resolved):
                    raise ValueError(f"a row of {len(row)} values for {len(resolved)} fields")
                if json_columns:
                    row = list(row)
                    for index, dumps in json_columns:
                        if row[index] is not None:
                            row[index] = dumps(row[index])
                copy.write_row(row)
        yield cursor, stage, columns
        cursor.execute(f"DROP TABLE {stage}")


def rows_copy(
    model: type[models.Model],
    fields: Sequence[str],
    rows: Iterable[Sequence],
    *,
    returning: Sequence[str] = (),
) -> list[tuple]:
    """Insert ``rows`` (one value per name in ``fields``, in that order) into ``model``'s
    table; returns the ``returning`` fields of the inserted rows (in no particular order)."""
    quote = connection.ops.quote_name
    with rows_staged(model, fields, rows) as (cursor, stage, columns):
        returned = ", ".join(quote(_column(model, name)) for name in returning)
        cursor.execute(
            f"INSERT INTO {quote(model._meta.db_table)} ({columns}) SELECT {columns} FROM {stage}"  # noqa: S608 - identifiers from the model, quoted
            + (f" RETURNING {returned}" if returning else "")
        )
        return cursor.fetchall() if returning else []


def rows_update(model: type[models.Model], fields: Sequence[str], rows: Sequence[Sequence]) -> None:
    """Update the rows of ``model``'s table whose primary key is each row's first value;
    ``fields`` starts with the primary key's name, the others are the columns set."""
    if not rows:
        return
    quote = connection.ops.quote_name
    key, *changed = (quote(_column(model, name)) for name in fields)
    assignments = ", ".join(f"{name} = s.{name}" for name in changed)
    with rows_staged(model, fields, rows) as (cursor, stage, _):
        cursor.execute(
            f"UPDATE {quote(model._meta.db_table)} AS t SET {assignments} "  # noqa: S608 - identifiers from the model, quoted
            f"FROM {stage} AS s WHERE t.{key} = s.{key}"
        )


def _column(model: type[models.Model], name: str) -> str:
    """The column of ``model``'s field ``name`` (a field name or an attname)."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or not field.column:
        # A reverse relation or a generic foreign key: no column to write.
        raise ValueError(f"{model.__name__}.{name} is not a column")
    return field.column


def ids_allocate(model: type[models.Model], count: int) -> list[int]:
    """``count`` new primary keys from the table's own sequence, known before their rows are
    written. Drawn values are never given back: a rolled-back transaction leaves a gap."""
    if not count:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [model._meta.db_table, model._meta.pk.column, count],
        )
        return [row[0] for row in cursor.fetchall()]


def _json_dumps(encoder: type[json.JSONEncoder] | None) -> Callable[[object], str]:
    """The field's encoder (or the standard one), made once: ``json.dumps(cls=…)`` would make
    one per value. Without spaces after separators: less text to copy for the same JSON."""
    return (encoder or json.JSONEncoder)(separators=(",", ":")).encode
