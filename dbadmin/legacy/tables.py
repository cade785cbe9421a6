"""The import of one high-volume v3 table into one V8 table, chunk by chunk, in bulk.

A subclass says how a v3 row is identified (``legacy_id``), what it depends on
(``fingerprint``: the V8 rows it references and the values it resolves to, cheap to compute)
and what V8 row it makes (``values``, which may reject it). The driver sorts a chunk's rows
into new, changed and unchanged by the map, writes the new ones and the changed ones in one
statement each (rcm.db.bulk) with their map entries, in the chunk's transaction.
An unchanged row costs a dictionary look-up: its JSON is never parsed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from django.db import models

from dbadmin.legacy.idmap import IdMap, digest
from dbadmin.legacy.report import Report
from dbadmin.legacy.values import Unmapped
from rcm.db.bulk import ids_allocate, rows_copy, rows_update
from rcm.progress import ProgressBar

if TYPE_CHECKING:
    from dbadmin.legacy.importer import OrgImport


class Rejected(Exception):  # noqa: N818 - a row's outcome, not a bug
    """The row cannot be imported as it is; the message says why."""


class Skipped(Exception):  # noqa: N818
    """The row is left out by a rule of the mapping; the message says which."""


@dataclass(slots=True)
class Planned:
    """A v3 row on its way: its key, digest, V8 values and V8 id (a changed row's from the
    map; a new row's allocated before it is written)."""

    row: Any
    legacy_id: str
    row_hash: str
    values: tuple
    target_id: Any = None


class BulkTable:
    path: ClassVar[str]  # the report's line (dbadmin/legacy/report.py PATHS)
    legacy_table: ClassVar[str]
    model: ClassVar[type[models.Model]]
    # The v3 rows of the organization (``%(org)s``), each with a ``row_md5`` column.
    query: ClassVar[str]
    key: ClassVar[str]  # the column of a row's v3 key
    fields: ClassVar[tuple[str, ...]]  # the V8 fields ``values`` gives, primary key aside
    # Fields set when a row is created and left alone when it is updated (a job's counters).
    defaults: ClassVar[dict[str, Any]] = {}
    # V8 rows nobody may change once written (credential_access_log): a changed v3 row is
    # reported and left as it was imported.
    append_only: ClassVar[bool] = False

    def __init__(self, run: OrgImport):
        self.run = run
        self.idmap: IdMap = run.idmap
        self.report: Report = run.report
        self.target_table = self.model._meta.db_table

    # -- what a subclass says ------------------------------------------------------------------

    def legacy_id(self, row) -> str:
        return str(getattr(row, self.key))

    def fingerprint(self, row) -> tuple:
        """What the row resolves to besides its own content (V8 ids it references, values);
        raises Rejected when something it needs is not there."""
        return ()

    def values(self, row, resolved: tuple) -> tuple:
        """The V8 row (in the order of ``fields``) given what ``fingerprint`` resolved;
        raises Rejected or Skipped."""
        raise NotImplementedError

    def written(self, created: list[Planned], changed: list[Planned]) -> None:
        """After a chunk's rows are written, in its transaction: rows hanging on them."""

    # -- the driver ----------------------------------------------------------------------------

    def run_all(self) -> None:
        params = {"org": self.run.legacy_org.org_id}
        bar = self._progress_bar(params)
        for rows in self.run.source.chunks(self.query, params, size=self.run.chunk_size):
            with self.run.chunk():
                self.chunk(rows)
            if bar is not None:
                bar.advance(len(rows))
        if bar is not None:
            bar.close()

    def _progress_bar(self, params: dict) -> ProgressBar | None:
        """A progress bar (stderr) over the rows of a table of more than one chunk."""
        if not self.run.main.progress:
            return None
        counting = f"SELECT count(*) FROM ({self.query}) AS counted"  # noqa: S608 - wraps the importer's own constant query
        (total,) = self.run.source.all(counting, params)[0]
        if total <= self.run.chunk_size:
            return None
        return ProgressBar(total, f"{self.run.legacy_org.name[:14]}: {self.legacy_table}")

    def chunk(self, rows: Sequence) -> None:
        entries = self.idmap.table(self.legacy_table, self.target_table)
        created: list[Planned] = []
        changed: list[Planned] = []
        unchanged = 0
        self.report.read(self.path, len(rows))
        for row in rows:
            legacy_id = self.legacy_id(row)
            try:
                resolved = self.fingerprint(row)
                row_hash = digest(row.row_md5, *resolved)
                entry = entries.get(legacy_id)
                if entry is not None and entry.row_hash == row_hash:
                    unchanged += 1
                    continue
                if entry is not None and self.append_only:
                    raise Skipped(
                        f"changed in v3 since it was imported, and V8's {self.target_table} is "
                        "append-only: the change is not applied"
                    )
                values = self.values(row, resolved)
            except (Rejected, Unmapped) as exc:
                self.report.reject(self.path, legacy_id, str(exc))
                continue
            except Skipped as exc:
                self.report.skip(self.path, legacy_id, str(exc))
                continue
            if entry is None:
                created.append(Planned(row, legacy_id, row_hash, values))
            else:
                target_id = self.model._meta.pk.to_python(entry.target_id)
                changed.append(Planned(row, legacy_id, row_hash, values, target_id))
        self.report.tally(self.path, "unchanged", unchanged)
        self._write(created, changed)

    def _write(self, created: list[Planned], changed: list[Planned]) -> None:
        for planned, new_id in zip(created, ids_allocate(self.model, len(created)), strict=True):
            planned.target_id = new_id
        pk, defaults = self.model._meta.pk.name, tuple(self.defaults.values())
        if created:
            rows_copy(
                self.model,
                (pk, *self.fields, *self.defaults),
                [(planned.target_id, *planned.values, *defaults) for planned in created],
            )
        rows_update(
            self.model,
            (pk, *self.fields),
            [(planned.target_id, *planned.values) for planned in changed],
        )
        self.idmap.record(
            self.legacy_table,
            self.target_table,
            [(p.legacy_id, p.target_id, p.row_hash) for p in (*created, *changed)],
        )
        self.report.tally(self.path, "created", len(created))
        self.report.tally(self.path, "updated", len(changed))
        self.written(created, changed)


def aliases_link(run, *, path: str, model, field: str, links, resolve, what: str) -> None:
    """Point each V8 row at the V8 row its v3 row names as its alias (``links``: pairs of v3
    ids; ``resolve``: v3 id -> V8 id or None). Done once every row of the organization is in,
    as an alias may name a later row; only links that differ are written. An alias that is not
    another V8 row of the organization is noted and left unset."""
    wanted: dict[int, int] = {}
    for legacy_id, legacy_alias in links:
        own, alias = resolve(legacy_id), resolve(legacy_alias)
        if own is None:
            continue
        if alias is None or alias == own:
            run.report.note(
                path,
                legacy_id,
                f"its alias, {what} {legacy_alias}, is no other V8 row of this organization: "
                "left without one",
            )
            continue
        wanted[int(own)] = int(alias)
    column = model._meta.get_field(field).attname
    current = dict(model.objects.filter(pk__in=wanted).values_list("pk", column))
    rows_update(
        model,
        (model._meta.pk.name, field),
        [(pk, alias) for pk, alias in wanted.items() if current.get(pk) != alias],
    )
