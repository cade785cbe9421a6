"""The import, start to end: the platform's catalogue first, then one organization at a time.

Transactions: the catalogue is one; then, for each organization, each small step (the
organization, its users, its endpoints, ...) is one, and the large tables commit every
``chunk_size`` rows. A run killed at any point leaves whole steps and chunks behind, each with
its map entries, so the next run skips what was done and finishes the rest; nothing is
written twice. Under ``dry_run`` the same steps run inside one transaction that is rolled back
at the end (each step is then a savepoint, and each organization's savepoint is rolled back
when it is done), so the report counts exactly what a real run would do, and the tables are
left as they were.

``on_commit`` is called after each committed step or chunk with the number committed so far;
it exists for the tests, which raise from it to interrupt an import the way a crash would.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from dbadmin.command import CannotRun
from dbadmin.legacy import batches, catalog, memory, orgs, requirements, signatures
from dbadmin.legacy.idmap import IdMap
from dbadmin.legacy.report import Report
from dbadmin.legacy.source import LegacySource
from dbadmin.legacy.values import ValueMap
from rcm import phi
from rcm.context import org_context

DEFAULT_CHUNK_SIZE = 5000


@dataclass
class Catalogue:
    """The platform rows the v3 catalogue became: by v3 key, the V8 row."""

    channel_types: dict = field(default_factory=dict)  # portal_type_id -> ChannelType
    task_types: dict = field(default_factory=dict)  # task_type_id (text) -> TaskType


class LegacyImport:
    def __init__(
        self,
        *,
        source: LegacySource,
        values: ValueMap,
        dry_run: bool = False,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        on_commit: Callable[[int], None] | None = None,
        progress: bool = False,
    ):
        self.source = source
        self.values = values
        self.dry_run = dry_run
        self.chunk_size = chunk_size
        self.on_commit = on_commit
        self.progress = progress
        self.report = Report(dry_run=dry_run)
        self.now = timezone.now()
        self.committed = 0
        self.catalogue = Catalogue()
        # Page captions and trace steps repeat the same texts across thousands of rows.
        self.mask = phi.remembering_masker()

    def organizations(self, selected: list[str]) -> list:
        """The v3 organizations to import: those named (by id or name), or all of them."""
        rows = self.source.all(
            "SELECT org_id, org_type::text AS org_type, name, email_domain, created_at, "
            "md5(o::text) AS row_md5 FROM organization o ORDER BY created_at, org_id"
        )
        if not selected:
            return rows
        chosen = [row for row in rows if str(row.org_id) in selected or row.name in selected]
        found = {str(row.org_id) for row in chosen} | {row.name for row in chosen}
        unknown = [name for name in selected if name not in found]
        if unknown:
            raise CannotRun(
                f"The v3 database has no organization {', '.join(map(repr, unknown))} "
                "(give an org_id or an exact name)."
            )
        return chosen

    def run(self, selected: list[str]) -> Report:
        organizations = self.organizations(selected)
        with self._dry_run_rollback():
            platform = IdMap(None, now=self.now)
            with self.chunk(platform):
                self.values.prepare(self.source.distinct_values())
                catalog.import_catalogue(self, platform)
                requirements.import_platform_fields(self, platform)
            for legacy_org in organizations:
                with self._dry_run_rollback():
                    OrgImport(self, legacy_org).run()
            if not selected:
                orgs.report_unowned_access_log(self)
        self.report.values = self.values.placed
        self.report.unmapped = {
            name: values for name, values in self.values.unmapped.items() if values
        }
        return self.report

    @contextlib.contextmanager
    def _dry_run_rollback(self) -> Iterator[None]:
        """Under --dry-run, undo the block at its end. Around each organization too (a
        savepoint), not only around the run: an organization's endpoints are audited, and the
        audit chain's lock is then held until the rollback; other audited writes of the
        platform wait that long, better one organization's time than the whole run's."""
        if not self.dry_run:
            yield
            return
        with transaction.atomic():
            yield
            transaction.set_rollback(True)

    @contextlib.contextmanager
    def chunk(self, idmap: IdMap) -> Iterator[None]:
        """One step or chunk: a transaction (a savepoint in a dry run), which ends by writing
        the map entries of the rows it wrote."""
        with transaction.atomic():
            with connection.cursor() as cursor:
                # The commit does not wait for the disk: a server crash may lose the last
                # chunks, never part of one (each is still atomic), and the next run redoes
                # them. Waiting costs more than the writing itself on a busy disk.
                cursor.execute("SET LOCAL synchronous_commit TO off")
            yield
            idmap.flush()
        self.committed += 1
        if self.on_commit is not None:
            self.on_commit(self.committed)


class OrgImport:
    """One v3 organization's rows, inside its V8 organization's context."""

    def __init__(self, main: LegacyImport, legacy_org):
        self.main = main
        self.legacy_org = legacy_org
        self.source = main.source
        self.values = main.values
        self.report = main.report
        self.catalogue = main.catalogue
        self.chunk_size = main.chunk_size
        self.now = main.now
        self.mask = main.mask
        self.org_id = uuid.UUID(legacy_org.org_id)
        self.idmap: IdMap
        # v3 portal_id -> (V8 endpoint id, v3 portal_type_id), for this organization.
        self.endpoints: dict[int, tuple[int, int]] = {}
        # lower-cased email -> V8 user id, for the access log's ``access_by``.
        self.users_by_email: dict[str, uuid.UUID] = {}
        # v3 signature -> the V8 signature it was joined to (dbadmin/legacy/signatures.py).
        self.signature_joins: dict[str, int] = {}

    def run(self) -> None:
        # The V8 organization keeps the v3 id: its map entries are found in its own context.
        with org_context(self.org_id):
            self.idmap = IdMap(self.org_id, now=self.now)
            with self.chunk():
                imported = orgs.import_organization(self)
            if not imported:
                return
            with self.chunk():
                orgs.import_users(self)
            with self.chunk():
                orgs.import_endpoints(self)
                requirements.import_org_policies(self)
                signatures.import_signatures(self)
                memory.import_workflows(self)
            memory.import_states(self)
            batches.import_batches(self)
            orgs.import_access_log(self)

    def chunk(self):
        return self.main.chunk(self.idmap)

    def target(self, legacy_table: str, target_table: str, legacy_id) -> str | None:
        entry = self.idmap.get(legacy_table, target_table, legacy_id)
        return entry.target_id if entry is not None else None
