"""The v3 database, read: one connection, one consistent snapshot, rows streamed in chunks.

The import reads through a REPEATABLE READ, READ ONLY transaction: every table is seen as of
one instant even while the v3 system keeps writing, and nothing can be written by mistake.
Each row comes with ``row_md5``, an MD5 of the whole row's text computed by the source server
(cheap there, and no column is left out): the map's digest starts from it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import namedtuple_row
from psycopg.types.string import TextLoader

from dbadmin.command import CannotRun
from dbadmin.legacy.values import VOCABULARIES

CONNECT_TIMEOUT_S = 10

# The tables and columns the import reads: a database lacking any of them is not a v3 one.
TABLES: dict[str, tuple[str, ...]] = {
    "organization": ("org_id", "org_type", "name", "email_domain", "created_at"),
    "app_user": ("user_id", "org_id", "email", "full_name", "role", "created_at"),
    "portal_type": ("portal_type_id", "code", "name", "base_url", "endpoint_kind"),
    "integration_endpoint": (
        "portal_id", "org_id", "name", "portal_type_id", "base_url", "config", "created_at",
        "secret_arn",
    ),
    "task_type": ("task_type_id", "domain", "action", "display_name", "description"),
    "field_requirement": (
        "requirement_id", "task_type_id", "portal_id", "required_fields", "optional_fields",
        "field_metadata", "version", "active", "created_at",
    ),
    "batch_job": (
        "batch_id", "org_id", "portal_id", "task_type_id", "status", "created_at",
        "completed_at", "result_url",
    ),
    "batch_row": (
        "row_id", "batch_id", "row_idx", "trace_id", "status", "error_code", "error_msg",
        "created_at", "updated_at",
    ),
    "rcm_trace": (
        "trace_id", "portal_id", "org_id", "task_signature", "prompt_version", "used_fallback",
        "fallback_model", "trace", "duration_ms", "success", "created_at",
    ),
    "rcm_state": (
        "state_id", "portal_id", "text_emb", "semantic_spec", "action", "success_ema",
        "page_caption", "action_caption", "caption_conf", "macro_state_id", "is_retired",
        "alias_state_id",
    ),
    "rcm_transition": ("from_state", "to_state", "action_caption", "freq"),
    "task_signature": (
        "signature_id", "portal_id", "portal_type_id", "domain", "action", "source", "alias_of",
        "created_at",
    ),
    "credential_access_log": (
        "id", "access_timestamp", "portal_id", "secret_arn", "access_type", "access_by",
        "success", "error_message",
    ),
}  # fmt: skip


def where(url: str) -> str:
    """host:port/database of a URL, for messages (never its password)."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(an unreadable URL)"
    host = parts.get("host") or "localhost"
    return f"{host}:{parts.get('port') or 5432}/{parts.get('dbname') or ''}"


class LegacySource:
    """A connection to a v3 database, open for the length of one import."""

    def __init__(self, url: str):
        self.where = where(url)
        try:
            self.connection = psycopg.connect(
                url,
                connect_timeout=CONNECT_TIMEOUT_S,
                application_name="rcm_import_legacy",
                row_factory=namedtuple_row,
            )
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise CannotRun(f"Cannot connect to the v3 database at {self.where}: {reason}") from exc
        # v3 keys arrive as text, the form the map keeps them in: no UUID objects to make
        # and print again for every row.
        self.connection.adapters.register_loader("uuid", TextLoader)
        self.connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        self.connection.read_only = True

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> LegacySource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def check(self) -> None:
        """Refuse (exit 2) a database that lacks a v3 table or column the import reads."""
        present: dict[str, set[str]] = {}
        for row in self.all(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_schema, table_name) "
            "WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'"
        ):
            present.setdefault(row.table_name, set()).add(row.column_name)
        missing_tables = [table for table in TABLES if table not in present]
        missing_columns = [
            f"{table}.{column}"
            for table, columns in TABLES.items()
            if table in present
            for column in columns
            if column not in present[table]
        ]
        if missing_tables or missing_columns:
            missing = ", ".join(missing_tables + missing_columns)
            raise CannotRun(
                f"The database at {self.where} is not a v3 database: it has no {missing}."
            )

    # -- reading -------------------------------------------------------------------------------

    def all(self, query: str, params: Sequence = ()) -> list:
        with self.connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall()

    def chunks(self, query: str, params: Sequence = (), *, size: int) -> Iterator[list]:
        """The rows of ``query`` in lists of ``size``, from a server-side cursor."""
        with self.connection.cursor(name="legacy_import_rows") as cursor:
            cursor.itersize = size
            cursor.execute(query, params)
            while rows := cursor.fetchmany(size):
                yield rows

    def distinct_values(self) -> dict[str, set[str]]:
        """Every value each vocabulary's columns hold (NULLs aside), to resolve up front."""
        found: dict[str, set[str]] = {}
        for name, vocabulary in VOCABULARIES.items():
            parts = [
                sql.SQL("SELECT DISTINCT {column}::text AS value FROM {table}").format(
                    column=sql.Identifier(column), table=sql.Identifier(table)
                )
                for table, column in vocabulary.columns
            ]
            query = sql.SQL(" UNION ").join(parts)
            found[name] = {
                row.value
                for row in self.all(query.as_string(self.connection))
                if row.value is not None
            }
        return found
