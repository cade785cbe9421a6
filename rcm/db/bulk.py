"""Many rows into a table at once, for writers of large amounts of finished data (historical
batch jobs and their traces, imported or seeded).

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
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence

from django.db import connection, models


def rows_copy(
    model: type[models.Model],
    fields: Sequence[str],
    rows: Iterable[Sequence],
    *,
    returning: Sequence[str] = (),
) -> list[tuple]:
    """Insert ``rows`` (one value per name in ``fields``, in that order) into ``model``'s
    table; returns the ``returning`` fields of the inserted rows (in no particular order).

    ``fields`` are field names or attnames (``batch_job`` or ``batch_job_id``: the value is
    the key either way). Must run inside a transaction: the temporary table lives until the
    commit.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("rows_copy runs inside transaction.atomic()")
    meta = model._meta
    resolved = [meta.get_field(name) for name in fields]
    converters = [_converter(field) for field in resolved]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in resolved)
    table = quote(meta.db_table)
    # Its own name: a temporary table named like the real one would hide it for the session.
    stage = quote(f"copy_stage_{meta.db_table}")
    with connection.cursor() as cursor:
        # The column types of the real table, none of its constraints, defaults or policies.
        # Dropped below; a failure rolls its creation back with the caller's transaction.
        cursor.execute(
            f"CREATE TEMPORARY TABLE {stage} AS SELECT {columns} FROM {table} WITH NO DATA"
        )
        # Django's cursor wraps psycopg's, which alone speaks COPY.
        with cursor.cursor.copy(f"COPY {stage} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(
                    [convert(value) for convert, value in zip(converters, row, strict=True)]
                )
        returned = ", ".join(quote(meta.get_field(name).column) for name in returning)
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage}"
            + (f" RETURNING {returned}" if returning else "")
        )
        inserted = cursor.fetchall() if returning else []
        cursor.execute(f"DROP TABLE {stage}")
    return inserted


def _as_is(value):
    return value


def _converter(field: models.Field) -> Callable:
    if isinstance(field, models.JSONField):
        encoder = field.encoder
        return lambda value: None if value is None else json.dumps(value, cls=encoder)
    return _as_is
