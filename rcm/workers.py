"""Starting Celery worker processes against a given database (test runs and benchmarks).

`make run` supervises its own worker (rcm/management/commands/runplatform.py); this is for
code that needs real worker processes on a database other than the default one, such as a
test database or a benchmark's throw-away one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection


def database_url(settings_dict: dict, *, user: str | None = None, password=None) -> str:
    user = quote(user or settings_dict["USER"], safe="")
    password = quote(password or settings_dict["PASSWORD"] or "", safe="")
    host, port, name = settings_dict["HOST"], settings_dict["PORT"], settings_dict["NAME"]
    return f"postgres://{user}:{password}@{host}:{port}/{name}"


class WorkerProcess:
    """A `celery worker` (prefork) on the database the current connection uses, fed from
    ``queue`` alone; it sends the messages it makes to that queue too."""

    def __init__(
        self,
        queue: str,
        *,
        concurrency: int = 2,
        env: dict | None = None,
        include: tuple[str, ...] = (),
        loglevel: str = "WARNING",
        name: str | None = None,
        log_path: Path | None = None,
    ):
        """``name``: the worker node name (``-n``); a worker started again under the same name
        is that worker restarted (it takes back the attempts its predecessor left running).
        ``log_path``: where its output goes (default: this process's)."""
        db = connection.settings_dict
        owner = settings.DATABASE_OWNER
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "rcm.settings.base"),
            "DATABASE_URL": database_url(db),
            "DATABASE_OWNER_URL": database_url(db, user=owner["USER"], password=owner["PASSWORD"]),
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_QUEUE": queue,
            **(env or {}),
        }
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "rcm.celery",
            "worker",
            "-Q",
            queue,
            "--concurrency",
            str(concurrency),
            "--pool",
            "prefork",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            name or f"{queue}-{os.getpid()}-{id(self)}@%h",
            "--loglevel",
            loglevel,
        ]
        for module in include:
            argv += ["--include", module]
        output = log_path.open("ab") if log_path is not None else None
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed argv
            argv,
            env=environment,
            cwd=settings.BASE_DIR,
            start_new_session=True,
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
        )
        if output is not None:
            output.close()  # the worker holds its own copy

    def kill(self) -> None:
        """SIGKILL the worker and its pool at once, as a crashed machine would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


def queue_drop(name: str) -> None:
    """Delete a queue with whatever is left in it. A channel deletes only the bindings it has
    declared itself (kombu keeps them in the channel's memory), so a fresh channel declares the
    queue first; a bare ``queue_delete`` would leave it all in Redis."""
    from kombu import Queue

    from rcm.celery import app

    with app.connection_for_write() as conn:
        bound = Queue(name).bind(conn.default_channel)
        bound.declare()
        bound.delete()
