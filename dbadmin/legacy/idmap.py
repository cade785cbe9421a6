"""The legacy id map (dbadmin.LegacyIdMap) of one organization, or of the platform's catalogue:
read once, consulted for every row, written in the same transaction as the rows it records.

Writing an entry with the row it maps is what makes an import safe to kill and run again:
a chunk that committed is in the map and is skipped next time; one that did not commit left
nothing, in the map or in the tables.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from django.conf import settings
from django.db import connection

from dbadmin.models import LegacyIdMap
from rcm.db.bulk import rows_staged


@cache
def _digest_key() -> bytes:
    return hashlib.sha256(f"rcm_import_legacy:{settings.SECRET_KEY}".encode()).digest()


def digest(*parts) -> str:
    """A keyed digest of a source row (its server-side MD5) and of what the import resolved
    for it. Keyed with the project's secret: the MD5 covers secrets held in clear by some v3
    rows, and an unkeyed hash of them would let a reader of the map test guesses."""
    text = "\x1f".join("" if part is None else str(part) for part in parts)
    return hashlib.blake2b(text.encode(), key=_digest_key(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class Entry:
    target_id: str
    row_hash: str


class IdMap:
    """The map's entries of ``org_id`` (None: the platform's), by (v3 table, V8 table)."""

    def __init__(self, org_id: uuid.UUID | None, *, now: datetime):
        self.org_id = org_id
        self.now = now
        self.entries: dict[tuple[str, str], dict[str, Entry]] = {}
        # (legacy table, target table) -> (legacy id, target id, row hash) not written yet.
        self.pending: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
        rows = LegacyIdMap.objects.unscoped().filter(org_id=org_id)
        if org_id is None:
            rows = LegacyIdMap.objects.unscoped().filter(org_id__isnull=True)
        for legacy_table, target_table, legacy_id, target_id, row_hash in rows.values_list(
            "legacy_table", "target_table", "legacy_id", "target_id", "row_hash"
        ).iterator(chunk_size=10_000):
            self.entries.setdefault((legacy_table, target_table), {})[legacy_id] = Entry(
                target_id, row_hash
            )

    def table(self, legacy_table: str, target_table: str) -> dict[str, Entry]:
        return self.entries.setdefault((legacy_table, target_table), {})

    def get(self, legacy_table: str, target_table: str, legacy_id) -> Entry | None:
        table = self.entries.get((legacy_table, target_table))
        return (
            table.get(legacy_id if isinstance(legacy_id, str) else str(legacy_id))
            if table
            else None
        )

    def record(
        self, legacy_table: str, target_table: str, items: list[tuple[object, object, str]]
    ) -> None:
        """Entries (legacy id, target id, row hash), new or replacing older ones: known at
        once, written by ``flush`` (the step's or chunk's last statement)."""
        table = self.table(legacy_table, target_table)
        pending = self.pending.setdefault((legacy_table, target_table), [])
        for legacy_id, target_id, row_hash in items:
            entry = Entry(str(target_id), row_hash)
            table[str(legacy_id)] = entry
            pending.append((str(legacy_id), entry.target_id, row_hash))

    def flush(self) -> None:
        """Write the entries recorded since the last flush: a statement per pair of tables,
        whose names (like the organization and the time) go in once, not with every row."""
        meta = LegacyIdMap._meta
        column = {name: connection.ops.quote_name(meta.get_field(name).column) for name in (
            "org", "legacy_table", "legacy_id", "target_table", "target_id", "row_hash",
            "imported_at",
        )}  # fmt: skip
        for (legacy_table, target_table), items in self.pending.items():
            if not items:
                continue
            with rows_staged(LegacyIdMap, ("legacy_id", "target_id", "row_hash"), items) as (
                cursor,
                stage,
                _,
            ):
                cursor.execute(
                    f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ("  # noqa: S608 - identifiers from the model, quoted; values are parameters
                    f"{column['org']}, {column['legacy_table']}, {column['legacy_id']}, "
                    f"{column['target_table']}, {column['target_id']}, {column['row_hash']}, "
                    f"{column['imported_at']}) "
                    f"SELECT %s, %s, {column['legacy_id']}, %s, {column['target_id']}, "
                    f"{column['row_hash']}, %s FROM {stage} "
                    f"ON CONFLICT ON CONSTRAINT legacy_id_map_key DO UPDATE SET "
                    f"{column['target_id']} = EXCLUDED.{column['target_id']}, "
                    f"{column['row_hash']} = EXCLUDED.{column['row_hash']}, "
                    f"{column['imported_at']} = EXCLUDED.{column['imported_at']}",
                    [self.org_id, legacy_table, target_table, self.now],
                )
        self.pending = {}
