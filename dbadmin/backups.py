"""Backups of the platform database: the PostgreSQL tools that fit the server, a dump and its
manifest, the proofs that a file is a backup, and a restore that either completes or leaves the
database as it was. ``rcm_backup``, ``rcm_restore`` and ``rcm_rollback`` are thin over this.

Row-level security, and how each direction gets past it:

- **Dump.** Every tenant table has FORCE ROW LEVEL SECURITY, so the owner itself sees only the
  rows of the organization in its context (none), and pg_dump refuses to dump a table whose rows
  a policy would hide. pg_dump connects as the owner and takes the maintenance role
  (``--role``): BYPASSRLS, SELECT only. The manifest's row counts are taken by that role in a
  REPEATABLE READ transaction whose snapshot pg_dump imports (``--snapshot``), so the counts and
  the dump describe the same instant.
- **Restore.** As the owner, who owns the tables. pg_dump puts ENABLE ROW LEVEL SECURITY and
  the policies in the post-data section, after the data: rows are copied into tables that have
  no policy yet. The copied rows are counted by the maintenance role before COMMIT.

Atomicity: psql runs the whole restore in one transaction that this module opens (BEGIN) and
closes. It first drops everything in the schema that no extension owns, then replays the
archive, then checks the row counts against the manifest; COMMIT is sent only when pg_restore
wrote its last statement and exited 0. Anything else (a damaged file that pg_restore stops
reading halfway, a statement that fails, a count that differs, this process dying) ends the
session without COMMIT and PostgreSQL rolls all of it back. ``psql --single-transaction`` would
not do: it commits at the end of its input, and a pg_restore that died halfway ends it too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import connections
from psycopg import sql
from psycopg.conninfo import make_conninfo

from dbadmin.command import CannotRun, Failed, Result, database_refusal
from rcm import embedded
from rcm.admin import counted
from rcm.db.roles import as_owner, grant_maintenance_privileges, grant_runtime_privileges
from rcm.progress import ProgressBar

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_FORMAT = 1
# How long the restore waits for a lock on a table it replaces before it gives up (and changes
# nothing): a web server or worker still running holds them. Past the first statement the
# restore holds every lock it needs.
RESTORE_LOCK_TIMEOUT = "30s"
MIB = 1024 * 1024

# The tables whose data a backup holds: every ordinary table of the schema (a partitioned
# table's rows are in its partitions, which are ordinary tables), none an extension owns.
_TABLES_SQL = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r'
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY c.relname
"""

# What a restore drops before it replays the archive: everything in the schema that no
# extension owns (the vector extension is the superuser's, and stays). Tables first: their
# indexes, policies, triggers and sequences go with them; then what outlived them. Objects the
# backup does not hold (a newer migration's table, under --force) go too, so that the database
# becomes exactly the backup.
_DROPS_SQL = """
WITH objects AS (
    SELECT CASE WHEN c.relkind IN ('r', 'p', 'f') THEN 1 WHEN c.relkind IN ('v', 'm') THEN 2
                ELSE 3 END AS step,
           CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END AS kind,
           format('%I.%I', n.nspname, c.relname) AS name,
           'pg_class'::regclass AS catalog, c.oid
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S')
      AND NOT c.relispartition
    UNION ALL
    SELECT 4, 'ROUTINE',
           format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)),
           'pg_proc'::regclass, p.oid
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public'
    UNION ALL
    SELECT 5, CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
           format('%I.%I', n.nspname, t.typname), 'pg_type'::regclass, t.oid
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = 'public' AND t.typtype IN ('c', 'd', 'e', 'r')
      AND (t.typtype <> 'c' OR EXISTS (SELECT FROM pg_class c
                                       WHERE c.oid = t.typrelid AND c.relkind = 'c'))
)
SELECT format('DROP %s IF EXISTS %s CASCADE;', kind, name) FROM objects o
WHERE NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = o.catalog AND d.objid = o.oid
                  AND d.deptype = 'e')
ORDER BY step, name
"""

# The last statements of a restore before its COMMIT: the maintenance role (it sees every
# organization's rows, and the archive grants it SELECT on every table, or pg_dump could not
# have read them) counts each table; a count other than the manifest's aborts the transaction.
_ROW_COUNT_CHECK = """
SET LOCAL ROLE :"rcm_maintenance_role";
SELECT set_config('rcm.expected_rows', :'rcm_expected_rows', true);
DO $check$
DECLARE
    expected record;
    restored bigint;
    differences text[] := '{}';
BEGIN
    FOR expected IN SELECT key AS name, value::bigint AS count
                    FROM jsonb_each_text(current_setting('rcm.expected_rows')::jsonb) LOOP
        EXECUTE format('SELECT count(*) FROM public.%I', expected.name) INTO restored;
        IF restored <> expected.count THEN
            differences := differences || format('%s: %s in the manifest, %s restored',
                                                 expected.name, expected.count, restored);
        END IF;
    END LOOP;
    IF cardinality(differences) > 0 THEN
        RAISE EXCEPTION 'row counts differ from the manifest: %',
            array_to_string(differences, '; ');
    END IF;
END
$check$;
RESET ROLE;
"""


# -- reaching the database -----------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """A database reached as the owner role, by this module and by the tools it runs. The
    password goes to the tools in PGPASSWORD, never on a command line (``ps`` shows those to
    every user of the machine)."""

    params: dict[str, str]  # libpq keywords: host, port, dbname, user, sslmode, ...
    password: str

    @property
    def database(self) -> str:
        return self.params["dbname"]

    @property
    def conninfo(self) -> str:
        return make_conninfo(**self.params)

    def on(self, database: str) -> Server:
        return replace(self, params={**self.params, "dbname": database})

    def env(self) -> dict[str, str]:
        return {**os.environ, "PGPASSWORD": self.password}

    @contextlib.contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        """An autocommit connection; whatever the database refuses is exit 2, in its words."""
        try:
            with psycopg.connect(self.conninfo, password=self.password, autocommit=True) as conn:
                yield conn
        except psycopg.Error as exc:
            raise CannotRun(f"{self.database}: {database_refusal(exc)}") from exc


def owner_server() -> Server:
    """The platform's database as the owner role: the owner's host and credentials, and the
    database the platform uses (the test database under pytest)."""
    owner = settings.DATABASE_OWNER
    params = {
        "host": owner.get("HOST") or "",
        "port": str(owner.get("PORT") or ""),
        "dbname": connections["default"].settings_dict["NAME"],
        "user": owner["USER"],
        **{key: str(value) for key, value in owner.get("OPTIONS", {}).items()},
    }
    return Server(
        params={key: value for key, value in params.items() if value},
        password=owner.get("PASSWORD") or "",
    )


def _maintenance_role() -> sql.Identifier:
    return sql.Identifier(settings.DATABASE_MAINTENANCE_ROLE)


# -- the tools -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tools:
    """pg_dump, pg_restore and psql of the server's major version, from one directory."""

    bin_dir: Path
    version: str  # pg_dump --version: "pg_dump (PostgreSQL) 18.6"

    def path(self, name: str) -> str:
        return str(self.bin_dir / name)


def tools_find(server: Server) -> Tools:
    """The tools of the server's major version, or exit 2 naming what was found.

    An older pg_dump refuses a newer server; a newer one writes SQL the older server may not
    know (pg_restore's script sets parameters that appeared in later versions). So the major
    versions must be equal.
    """
    with server.connect() as conn:
        server_major = int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000
    found = []
    for bin_dir in _tool_dirs():
        version = _pg_dump_version(bin_dir)
        if version is None:
            continue
        major = re.search(r"\) (\d+)", version)
        complete = all((bin_dir / name).exists() for name in ("pg_restore", "psql"))
        if major and int(major[1]) == server_major and complete:
            return Tools(bin_dir=bin_dir, version=version)
        found.append(f"{version} in {bin_dir}")
    raise CannotRun(
        f"No pg_dump, pg_restore and psql of PostgreSQL {server_major}, the server's version "
        f"(found: {'; '.join(found) or 'none'}). Set PG_BIN_DIR to the directory of "
        f"PostgreSQL {server_major}'s client tools."
    )


def _tool_dirs() -> list[Path]:
    if settings.PG_BIN_DIR:
        return [Path(settings.PG_BIN_DIR)]
    dirs = []
    with contextlib.suppress(ImportError):  # a deployment may leave the embedded server out
        dirs.append(embedded.postgres_bin_dir())
    on_path = shutil.which("pg_dump")
    if on_path:
        dirs.append(Path(on_path).parent)
    return dirs


def _pg_dump_version(bin_dir: Path) -> str | None:
    try:
        # A fixed tool name in a directory the administrator configured.
        answer = subprocess.run(  # noqa: S603
            [str(bin_dir / "pg_dump"), "--version"], capture_output=True, text=True, timeout=30
        )
    except OSError:
        return None
    return answer.stdout.strip() if answer.returncode == 0 else None


# What pg_dump and pg_restore say with --verbose when they reach a table's rows.
_TABLE_REACHED = re.compile(r": (dumping contents|processing data) (of|for) table ")


@dataclass(frozen=True)
class Progress:
    label: str
    tables: int


class _ToolRun:
    """A running pg_dump or pg_restore. With ``progress``, its ``--verbose`` lines advance a
    progress bar, a step per table whose rows it reaches; what it says besides its progress
    (errors, warnings, their details) is kept for the report."""

    def __init__(self, args: list[str], *, env, progress: Progress | None, stdout):
        # Tools from Tools.path, arguments built here: nothing passes through a shell.
        self.process = subprocess.Popen(  # noqa: S603
            args, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE
        )
        self.name = Path(args[0]).name
        self.messages: list[str] = []
        self._reader = threading.Thread(target=self._read, args=(progress,))
        self._reader.start()

    def _read(self, progress: Progress | None) -> None:
        bar = ProgressBar(progress.tables, progress.label) if progress else None
        for raw in self.process.stderr:
            line = raw.decode(errors="replace").rstrip()
            if _TABLE_REACHED.search(line):
                if bar:
                    bar.advance()
            elif not line.startswith(f"{self.name}: ") or re.search(
                r": (error|warning|detail|hint): ", line
            ):
                self.messages.append(line)
        if bar:
            bar.close()

    def wait(self) -> int:
        code = self.process.wait()
        self._reader.join()
        return code

    def stop(self) -> None:
        """Stop it early (psql, which read its output, is gone): kill, then reap."""
        self.process.kill()
        self.wait()

    def said(self) -> str:
        return " ".join(self.messages[-6:]) or f"{self.name} gave no reason"


# -- the manifest --------------------------------------------------------------------------------


def manifest_path(backup: Path) -> Path:
    return backup.with_name(backup.name + MANIFEST_SUFFIX)


@dataclass
class Manifest:
    """What a backup file holds, written beside it (FILE.manifest.json) by ``rcm_backup``:
    enough to tell the file is whole (size, sha256), what it restores to (the migrations, the
    rows of each table, counted in the dump's own snapshot) and what proved it."""

    file: str
    size_bytes: int
    sha256: str
    created_at: str
    database: str
    server_version: str
    pg_dump_version: str
    migrations: list[list[str]]  # [app, name] pairs, in the order they were applied
    tables: dict[str, int]  # table -> rows
    listed: bool = False  # pg_restore --list read it, with every table's data entry
    verified: bool | None = None  # restored into a scratch database, counts equal; None: not tried
    format: int = MANIFEST_FORMAT

    @property
    def rows(self) -> int:
        return sum(self.tables.values())

    @property
    def contents(self) -> str:
        return f"{counted(self.rows, 'row')} in {counted(len(self.tables), 'table')}"

    def write(self, backup: Path) -> None:
        """Beside the backup, replaced whole (a reader never sees half of it), mode 0600."""
        target = manifest_path(backup)
        partial = target.with_name(target.name + ".partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(asdict(self), handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())  # on disk before it names the backup (pg_dump syncs too)
        os.replace(partial, target)

    @classmethod
    def read(cls, backup: Path) -> Manifest:
        path = manifest_path(backup)
        if not path.is_file():
            raise Failed(
                f"{backup.name} has no manifest beside it ({path.name}): rcm_backup writes one "
                "with every backup, and without it the file cannot be checked.",
                {"file": str(backup)},
            )
        try:
            data = json.loads(path.read_text())
            manifest = cls(**{field.name: data[field.name] for field in fields(cls)})
            valid = (
                isinstance(manifest.tables, dict)
                and all(isinstance(rows, int) for rows in manifest.tables.values())
                and all(len(pair) == 2 for pair in manifest.migrations)
            )
        except (ValueError, KeyError, TypeError):
            valid = False
        if not valid:
            raise Failed(f"{path.name} is not a manifest rcm_backup wrote.", {"file": str(backup)})
        return manifest

    def summary(self, backup: Path) -> dict:
        """The facts a command reports about this backup."""
        return {
            "file": str(backup),
            "manifest": str(manifest_path(backup)),
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "listed": self.listed,
            "verified": self.verified,
            "tables": len(self.tables),
            "rows": self.rows,
        }


def file_digest(path: Path) -> tuple[int, str]:
    """The file's size and sha256."""
    digest = hashlib.sha256()
    size = 0
    chunks = -(-path.stat().st_size // MIB)
    with open(path, "rb") as handle, ProgressBar(chunks, "Checksum (MiB)") as bar:
        while chunk := handle.read(MIB):
            digest.update(chunk)
            size += len(chunk)
            bar.advance()
    return size, digest.hexdigest()


# -- backing up ----------------------------------------------------------------------------------


def default_path(database: str, label: str = "") -> Path:
    """A new file in BACKUP_DIR (made private if new), named by the UTC time."""
    folder = Path(settings.BACKUP_DIR)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return folder / f"{database}-{stamp}{label}.dump"


def backup_make(*, path: Path, server: Server, tools: Tools, verify: bool) -> Manifest:
    """Dump the database into ``path``, write its manifest, and prove the file: pg_restore must
    list every table's data, and with ``verify`` the file must restore into a scratch database
    with the manifest's row counts. The manifest records what the proofs found; a failed proof
    raises :class:`Failed` (exit 1) with the file kept for inspection."""
    # The owner grants the maintenance role what pg_dump reads (SELECT on tables and
    # sequences): a database migrated before the role had sequences still lacks it.
    with as_owner():
        grant_maintenance_privileges()
    manifest = _dump(path=path, server=server, tools=tools)
    manifest.write(path)  # unproven until the listing below says otherwise
    try:
        listing = archive_listing(path, tools)
        problem = listing.missing_tables(manifest)
    except Failed as exc:
        problem = str(exc)
    manifest.listed = not problem
    manifest.write(path)
    if problem:
        raise Failed(f"{path.name} is not a usable backup: {problem}", manifest.summary(path))
    if verify:
        try:
            verify_restore(archive=Archive(path, manifest, listing), server=server, tools=tools)
        except Failed as exc:
            manifest.verified = False
            manifest.write(path)
            raise Failed(str(exc), manifest.summary(path)) from exc
        manifest.verified = True
        manifest.write(path)
    return manifest


def _dump(*, path: Path, server: Server, tools: Tools) -> Manifest:
    try:
        # A new file, private from its first byte (it holds every organization's PHI), and
        # never an existing one overwritten.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        raise CannotRun(f"{path} exists: a backup never overwrites a file.") from None
    except OSError as exc:
        raise CannotRun(f"Cannot create {path}: {exc.strerror}.") from None
    try:
        with server.connect() as conn:
            conn.execute(sql.SQL("SET ROLE {}").format(_maintenance_role()))
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
            created_at = datetime.now(UTC).isoformat(timespec="seconds")
            tables = _row_counts(conn)
            migrations = _migrations(conn)
            server_version = conn.execute("SHOW server_version").fetchone()[0]
            dump = _ToolRun(
                [
                    tools.path("pg_dump"),
                    "--format=custom",
                    "--verbose",
                    f"--snapshot={snapshot}",
                    f"--role={settings.DATABASE_MAINTENANCE_ROLE}",
                    f"--dbname={server.conninfo}",
                    f"--file={path}",
                ],
                env=server.env(),
                progress=Progress("Dumping tables", len(tables)),
                stdout=subprocess.DEVNULL,
            )
            if dump.wait() != 0:  # the snapshot's transaction stays open until pg_dump is done
                raise CannotRun(f"pg_dump failed: {dump.said()}")
            conn.execute("COMMIT")
    except BaseException:
        path.unlink(missing_ok=True)  # a partial file must never pass for a backup
        raise
    size, sha256 = file_digest(path)
    return Manifest(
        file=path.name,
        size_bytes=size,
        sha256=sha256,
        created_at=created_at,
        database=server.database,
        server_version=server_version,
        pg_dump_version=tools.version,
        migrations=migrations,
        tables=tables,
    )


def _row_counts(conn: psycopg.Connection) -> dict[str, int]:
    names = [row[0] for row in conn.execute(_TABLES_SQL)]
    count = sql.SQL("SELECT count(*) FROM public.{}")
    return {
        name: conn.execute(count.format(sql.Identifier(name))).fetchone()[0]
        for name in ProgressBar.over(names, "Counting rows")
    }


def _migrations(conn: psycopg.Connection) -> list[list[str]]:
    if conn.execute("SELECT to_regclass('public.django_migrations')").fetchone()[0] is None:
        return []  # never migrated
    return [
        list(row) for row in conn.execute("SELECT app, name FROM django_migrations ORDER BY id")
    ]


# -- reading an archive --------------------------------------------------------------------------

# A line of pg_restore --list: "<dump id>; <catalog oid> <object oid> <what it is>".
_TOC_LINE = re.compile(r"^\d+; \d+ \d+ (?P<entry>.+)$")


@dataclass(frozen=True)
class Listing:
    """An archive's table of contents, as pg_restore --list reads it."""

    lines: list[tuple[str, str]]  # (the line, its entry: "TABLE DATA public app_user rcm_owner")

    def table_data(self) -> set[str]:
        return {
            entry.split(" ")[3] for _, entry in self.lines if entry.startswith("TABLE DATA public ")
        }

    def extensions(self) -> list[str]:
        return [entry.split(" ")[2] for _, entry in self.lines if entry.startswith("EXTENSION ")]

    def missing_tables(self, manifest: Manifest) -> str:
        """Why the archive does not hold what its manifest says, or "" when it does."""
        if not manifest.tables:
            return "its manifest names no tables."
        missing = sorted(set(manifest.tables) - self.table_data())
        if missing:
            return (
                f"it holds no data for {len(missing)} of the {len(manifest.tables)} tables its "
                f"manifest names ({', '.join(missing[:10])}{', ...' if len(missing) > 10 else ''})."
            )
        return ""

    def restore_passes(self) -> tuple[str, str]:
        """The two pg_restore lists of a restore.

        The schema's privileges come first: pg_restore keeps every privilege for its last pass,
        but handing a function to rcm_definer (ALTER FUNCTION ... OWNER TO) needs the definer's
        CREATE on the schema already. The extensions are left out: they are the superuser's,
        and stay in the database as they are (``extensions_ensure``).
        """
        first, rest = [], []
        for line, entry in self.lines:
            if entry.startswith("ACL - SCHEMA "):
                first.append(line)
            elif not entry.startswith(("EXTENSION ", "COMMENT - EXTENSION ")):
                rest.append(line)
        return "\n".join(first) + "\n", "\n".join(rest) + "\n"


def archive_listing(path: Path, tools: Tools) -> Listing:
    """pg_restore --list of the file; a file it cannot read is :class:`Failed` (exit 1)."""
    # The tool from Tools.path, the file the administrator named; no shell.
    answer = subprocess.run(  # noqa: S603
        [tools.path("pg_restore"), "--list", str(path)], capture_output=True, text=True
    )
    if answer.returncode != 0:
        said = answer.stderr.strip() or f"exit {answer.returncode}"
        raise Failed(f"pg_restore cannot read {path.name}: {said}", {"file": str(path)})
    lines = [(line, match["entry"]) for line in answer.stdout.splitlines()
             if (match := _TOC_LINE.match(line))]  # fmt: skip
    return Listing(lines=lines)


@dataclass(frozen=True)
class Archive:
    """A backup file that passed its checks, with its manifest and its table of contents."""

    path: Path
    manifest: Manifest
    listing: Listing


def archive_open(path: Path, tools: Tools) -> Archive:
    """The backup at ``path``, checked before anything is touched: its manifest is beside it,
    the file is the one the manifest describes (size and sha256), and pg_restore reads every
    table's data in it. Each failed check is :class:`Failed` (exit 1), naming it."""
    if not path.is_file():
        raise Failed(f"{path}: no such file.", {"file": str(path)})
    manifest = Manifest.read(path)
    size, sha256 = file_digest(path)
    details = {"file": str(path), "size_bytes": size, "sha256": sha256}
    if size != manifest.size_bytes:
        raise Failed(
            f"{path.name} is {size} bytes and its manifest says {manifest.size_bytes}: the file "
            "was cut short or replaced.",
            details,
        )
    if sha256 != manifest.sha256:
        raise Failed(
            f"{path.name} does not match its manifest's checksum (sha256 {sha256}, the manifest "
            f"says {manifest.sha256}): the file or the manifest was changed.",
            details,
        )
    listing = archive_listing(path, tools)
    missing = listing.missing_tables(manifest)
    if missing:
        raise Failed(f"{path.name} is not a usable backup: {missing}", details)
    return Archive(path=path, manifest=manifest, listing=listing)


# -- restoring -----------------------------------------------------------------------------------


def refusal_arguments(parser) -> None:
    """``--yes`` and ``--force``: the administrator's answers to :meth:`Restore.prepare`'s
    refusals."""
    parser.add_argument(
        "--yes",
        action="store_true",
        help="Replace a database that holds organizations' data (refused without it).",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="Replace a database that has migrations the backup lacks (then run migrate, or "
        "deploy the release the backup was taken with).",
    )


@dataclass(frozen=True)
class Restore:
    """A restore of the platform's database, checked and cleared to run."""

    server: Server
    tools: Tools
    archive: Archive
    newer_migrations: list[str]  # applied here, not in the backup: allowed by --force
    organizations_replaced: int

    @classmethod
    def prepare(cls, path: Path, *, force: bool, yes: bool) -> Restore:
        """Open the backup (:func:`archive_open`) and refuse (:class:`Failed`, exit 1) a
        restore that would lose what the administrator did not mean to lose:

        - the database has migrations the backup lacks: restored, its schema would be older
          than the code that runs on it, and a newer migration's data would go (``--force``);
        - the database holds organizations, whose data would be replaced (``--yes``).
        """
        server = owner_server()
        tools = tools_find(server)
        archive = archive_open(path, tools)
        with server.connect() as conn:
            applied = {tuple(pair) for pair in _migrations(conn)}
            conn.execute(sql.SQL("SET ROLE {}").format(_maintenance_role()))
            organizations = 0
            if conn.execute("SELECT to_regclass('public.organization')").fetchone()[0]:
                organizations = conn.execute("SELECT count(*) FROM organization").fetchone()[0]
        in_backup = {tuple(pair) for pair in archive.manifest.migrations}
        newer = sorted(f"{app}.{name}" for app, name in applied - in_backup)
        restore = cls(server, tools, archive, newer, organizations)
        if newer and not force:
            shown = ", ".join(newer[:10]) + (", ..." if len(newer) > 10 else "")
            raise Failed(
                f"The database has {counted(len(newer), 'newer migration')} than the backup "
                f"({shown}): restored, it would be older than the code that runs on it. Restore "
                "with the release the backup was taken with, or pass --force and run migrate.",
                restore.facts(),
            )
        if organizations and not yes:
            raise Failed(
                f"The database {server.database} holds the data of "
                f"{counted(organizations, 'organization')}, which the restore replaces: pass "
                "--yes to replace it.",
                restore.facts(),
            )
        return restore

    def facts(self, dropped: list[str] | None = None) -> dict:
        return {
            "file": str(self.archive.path),
            "database": self.server.database,
            "newer_migrations": self.newer_migrations,
            "organizations_replaced": self.organizations_replaced,
            "dropped_tables_not_in_backup": dropped or [],
        }

    def run(self) -> Result:
        """Replace the database with the backup (:func:`restore_into`), then grant the runtime
        role its privileges again; the verdict, with what the backup did not hold (dropped)."""
        # This process's own connection must not hold a lock the restore would wait for.
        connections["default"].close()
        try:
            dropped = restore_into(server=self.server, archive=self.archive, tools=self.tools)
        except Failed as exc:
            raise Failed(
                f"{exc} The database {self.server.database} is as it was.", self.facts()
            ) from exc
        # The archive carries the grants it was dumped with; the current release's are these.
        with as_owner():
            grant_runtime_privileges()
        manifest = self.archive.manifest
        summary = (
            f"Restored {self.server.database} from {self.archive.path.name} "
            f"({manifest.created_at}): {manifest.contents}, counted equal to the manifest."
        )
        if dropped:
            summary += f" Dropped the tables the backup does not hold: {', '.join(dropped)}."
        if self.newer_migrations:
            summary += " The database now has the backup's migrations: run migrate."
        return Result(ok=True, summary=summary, details=self.facts(dropped))


def verify_restore(*, archive: Archive, server: Server, tools: Tools) -> None:
    """Restore the archive into a scratch database of the same server, counts checked against
    the manifest (:class:`Failed` if they differ or the restore fails), and drop the scratch
    database whatever happened."""
    scratch = server.on(f"{server.database[:40]}_verify_{secrets.token_hex(4)}")
    name = sql.Identifier(scratch.database)
    with server.connect() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    try:
        restore_into(server=scratch, archive=archive, tools=tools)
    except Failed as exc:
        raise Failed(
            f"{archive.path.name} did not restore into a scratch database: {exc}",
            {"file": str(archive.path)},
        ) from exc
    finally:
        with server.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


def restore_into(*, server: Server, archive: Archive, tools: Tools) -> list[str]:
    """Make the database's schema exactly the archive's, rows counted, in one transaction
    (see the module's docstring), or change nothing and raise :class:`Failed`. Returns the
    tables that were there and that the archive does not hold (dropped with the rest)."""
    with server.connect() as conn:
        extensions_ensure(conn, archive.listing.extensions(), server.database)
        drops = [row[0] for row in conn.execute(_DROPS_SQL)]
        existing = {row[0] for row in conn.execute(_TABLES_SQL)}
    opening = "\n".join(
        [
            "BEGIN;",
            f"SET LOCAL lock_timeout = '{RESTORE_LOCK_TIMEOUT}';",
            "SET LOCAL client_min_messages = warning;",
            *drops,
            "",
        ]
    )
    with tempfile.TemporaryDirectory(prefix="rcm-restore-") as folder:
        passes = []
        for number, text in enumerate(archive.listing.restore_passes()):
            listing = Path(folder) / f"pass-{number}.list"
            listing.write_text(text)
            passes.append(listing)
        _run_restore(server=server, archive=archive, tools=tools, opening=opening, passes=passes)
    return sorted(existing - set(archive.manifest.tables))


def extensions_ensure(conn: psycopg.Connection, names: list[str], database: str) -> None:
    """The archive's extensions, present in the target before its objects that use them."""
    present = {row[0] for row in conn.execute("SELECT extname FROM pg_extension")}
    for name in names:
        if name in present:
            continue
        try:
            conn.execute(sql.SQL("CREATE EXTENSION {}").format(sql.Identifier(name)))
        except psycopg.errors.InsufficientPrivilege:
            raise CannotRun(
                f"The database {database} has no {name} extension and the owner role may not "
                f"create it. Create it once as a superuser (CREATE EXTENSION {name};), in "
                "template1 too for the scratch databases of --verify-restore and rcm_rollback "
                "(docs/operations.md, Managed PostgreSQL)."
            ) from None


def _run_restore(*, server, archive, tools, opening: str, passes: list[Path]) -> None:
    """Feed psql the transaction: the opening (BEGIN, drops), each pass's script as pg_restore
    writes it, then the row-count check and COMMIT, the last only when all went well."""
    expected_rows = json.dumps(archive.manifest.tables, separators=(",", ":"))
    with tempfile.TemporaryFile() as psql_said:
        # The tool from Tools.path, arguments built here; no shell.
        psql = subprocess.Popen(  # noqa: S603
            [
                tools.path("psql"),
                "--no-psqlrc",
                "--quiet",
                "--set=ON_ERROR_STOP=1",
                # The error alone: its detail and context may quote a row, and rows are PHI.
                "--set=VERBOSITY=terse",
                f"--set=rcm_maintenance_role={settings.DATABASE_MAINTENANCE_ROLE}",
                f"--set=rcm_expected_rows={expected_rows}",
                f"--dbname={server.conninfo}",
            ],
            env=server.env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=psql_said,
        )
        restore_failure = None
        try:
            psql.stdin.write(opening.encode())
            for number, listing in enumerate(passes):  # the second pass carries the rows
                restore_failure = _stream_pass(psql, archive, tools, listing, data=number > 0)
                if restore_failure:
                    break
            else:
                psql.stdin.write((_ROW_COUNT_CHECK + "COMMIT;\n").encode())
        except BrokenPipeError:
            pass  # psql stopped at an error, which it wrote down; below
        finally:
            with contextlib.suppress(BrokenPipeError):
                psql.stdin.close()  # without COMMIT, the end of the session rolls back
            code = psql.wait()
        if restore_failure:
            raise Failed(
                f"pg_restore stopped reading {archive.path.name} ({restore_failure}); the "
                "restore was rolled back."
            )
        if code != 0:
            psql_said.seek(0)
            said = "; ".join(
                match[1]
                for line in psql_said.read().decode(errors="replace").splitlines()
                if (match := re.search(r"(?:ERROR|FATAL|error):\s+(.*)", line))
            )
            raise Failed(f"The restore failed and was rolled back: {said or f'psql exit {code}'}.")


def _stream_pass(psql, archive: Archive, tools: Tools, listing: Path, *, data: bool) -> str:
    """One pg_restore pass written into psql; what pg_restore said if it failed, else ""."""
    restore = _ToolRun(
        [
            tools.path("pg_restore"),
            "--verbose",
            f"--use-list={listing}",
            "--file=-",
            str(archive.path),
        ],
        env=os.environ,
        progress=Progress("Restoring tables", len(archive.manifest.tables)) if data else None,
        stdout=subprocess.PIPE,
    )
    try:
        shutil.copyfileobj(restore.process.stdout, psql.stdin, MIB)
    except BrokenPipeError:
        restore.stop()
        raise
    return "" if restore.wait() == 0 else restore.said()
