"""``runplatform`` (``make run``): migrate, seed the demo, then supervise web, worker and beat.

With DATABASE_URL/REDIS_URL unset, importing the settings has already started the embedded
PostgreSQL and Redis (rcm/embedded.py). The children get their URLs through the environment,
so they reuse those servers instead of starting their own, and this process stops the servers
itself once the children are gone: after Ctrl-C nothing is left running.

Each child runs in its own process group, so a Ctrl-C in the terminal reaches only this
supervisor, which stops the children (SIGTERM, then SIGKILL after ``--stop-timeout``) before
the database and broker they are still talking to.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.core.management.color import supports_color
from django.db import connections
from django.utils import termcolors

from rcm import embedded

PREFIX_WIDTH = len("worker")
SUPERVISOR = "rcm"
WEB_ANSWER_TIMEOUT_S = 120
READY_TIMEOUT_S = 60
POLL_INTERVAL_S = 0.2
# Requests to our own 127.0.0.1 server must not go through an HTTP(S)_PROXY from the environment.
_LOCAL_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Child:
    """One supervised process: its argv, its colour and, once started, the process itself."""

    name: str
    argv: list[str]
    colour: str
    process: subprocess.Popen | None = None
    pump: threading.Thread | None = None


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # runserver binds with SO_REUSEADDR too: a socket in TIME_WAIT is not "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _answers_200(url: str) -> bool:
    try:
        with _LOCAL_HTTP.open(url, timeout=5) as response:
            return response.status == 200
    except OSError:  # refused, reset, timed out, or an HTTPError (a URLError, an OSError)
        return False


def _has_exited(process: subprocess.Popen) -> bool:
    """Whether ``process`` has ended, without reaping it.

    Until it is reaped, its pid (and so its process-group id) cannot go to another process,
    which is what makes signalling its group safe. ``Popen.poll()`` would reap it.
    """
    if process.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _how_it_ended(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with code {returncode}"


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Run the platform: migrate, seed the demo, then the web server, a worker and beat."

    def add_arguments(self, parser):
        parser.add_argument(
            "--port",
            type=int,
            default=settings.RCM_PORT,
            help="Port of the web server on 127.0.0.1 (default: $RCM_PORT, else 8000).",
        )
        parser.add_argument(
            "--stop-timeout",
            type=float,
            default=20.0,
            help="Seconds a child gets to exit after SIGTERM before it is killed (default 20).",
        )

    def handle(self, *args, **options):
        self._colour = options["force_color"] or (not options["no_color"] and supports_color())
        self._output_lock = threading.Lock()
        self._stop = threading.Event()
        self._hurry = threading.Event()
        port = options["port"]
        if not _port_is_free(port):
            raise CommandError(f"Port {port} is in use; pass --port or set RCM_PORT.")
        children: list[Child] = []
        died = None
        try:
            self._prepare(verbosity=options["verbosity"])
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, self._on_stop_signal)
            children = self._children(port)
            self._start(children)
            threading.Thread(target=self._announce, args=(port,), daemon=True).start()
            died = self._supervise(children)
        finally:
            self._stop_children(children, options["stop_timeout"])
            self._stop_embedded()
        if died is not None:
            raise CommandError(
                f"{died.name} {_how_it_ended(died.process.returncode)}, so the platform was "
                f"stopped; the lines prefixed '{died.name}' above say why."
            )
        self._say("Stopped.")

    # -- start ---------------------------------------------------------------------------------
    def _prepare(self, *, verbosity: int) -> None:
        # Until the children exist, a SIGTERM or SIGHUP aborts like Ctrl-C does, so that the
        # `finally` in handle() still stops the servers (their default action would not).
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGHUP, _interrupt)
        try:
            self._say("Applying migrations (as the owner role).")
            call_command("migrate", interactive=False, verbosity=verbosity, stdout=self.stdout)
            call_command("seed_demo", stdout=self.stdout)
        except KeyboardInterrupt:
            raise CommandError("Interrupted before the platform started.", returncode=130) from None
        # The supervisor needs no database connection of its own from here on.
        connections.close_all()

    def _children(self, port: int) -> list[Child]:
        python = sys.executable
        celery = [python, "-m", "celery", "-A", "rcm.celery"]
        schedule = embedded.default_var_dir().resolve() / "celerybeat-schedule"
        schedule.parent.mkdir(parents=True, exist_ok=True)
        return [
            # --insecure: serve the admin's and Swagger UI's static files with DEBUG off, as
            # a production web server would; runserver only ever listens on 127.0.0.1 here.
            Child(
                "web",
                [python, str(settings.BASE_DIR / "manage.py"), "runserver"]
                + [f"127.0.0.1:{port}", "--noreload", "--insecure"],
                "green",
            ),
            Child(
                "worker",
                [*celery, "worker", "-l", "info", "--concurrency", "2"]
                + ["-Q", settings.CELERY_TASK_DEFAULT_QUEUE],
                "cyan",
            ),
            Child("beat", [*celery, "beat", "-l", "info", "-s", str(schedule)], "magenta"),
        ]

    def _start(self, children: list[Child]) -> None:
        env = {
            **os.environ,
            # The servers this process reached (or started): the children must not start
            # their own, and must not stop these when they exit.
            "DATABASE_URL": settings.DATABASE_URL,
            "DATABASE_OWNER_URL": settings.DATABASE_OWNER_URL,
            "REDIS_URL": settings.REDIS_URL,
            "PYTHONUNBUFFERED": "1",
        }
        for child in children:
            child.process = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed argv
                child.argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                process_group=0,
            )
            child.pump = threading.Thread(target=self._pump, args=(child,), daemon=True)
            child.pump.start()

    def _announce(self, port: int) -> None:
        base = f"http://127.0.0.1:{port}"
        if not self._poll(f"{base}/health", WEB_ANSWER_TIMEOUT_S, POLL_INTERVAL_S):
            return
        self._say("The web server answers:")
        self._say(f"  admin UI    {base}/admin/")
        self._say(f"  API docs    {base}/api/v2/docs/")
        self._say(f"  readiness   {base}/health/ready")
        self._say("Press Ctrl-C to stop everything.")
        if self._poll(f"{base}/health/ready", READY_TIMEOUT_S, 1.0):
            self._say("Ready: database, vector extension, broker and worker all answer.")
        elif not self._stop.is_set():
            self._say(f"Not ready after {READY_TIMEOUT_S}s; {base}/health/ready says why.")

    def _poll(self, url: str, timeout: float, interval: float) -> bool:
        """Whether ``url`` answered 200 before ``timeout``; gives up at once on a stop."""
        deadline = time.monotonic() + timeout
        while not self._stop.is_set() and time.monotonic() < deadline:
            if _answers_200(url):
                return True
            self._stop.wait(interval)
        return False

    # -- run -----------------------------------------------------------------------------------
    def _supervise(self, children: list[Child]) -> Child | None:
        """Block until a stop signal (None) or a child's death (that child)."""
        while not self._stop.wait(POLL_INTERVAL_S):
            for child in children:
                if _has_exited(child.process):
                    self._say(f"{child.name} stopped unexpectedly; stopping everything.")
                    return child
        self._say("Stopping (Ctrl-C again to kill at once).")
        return None

    def _on_stop_signal(self, signum, frame) -> None:
        if self._stop.is_set():
            self._hurry.set()
        self._stop.set()

    # -- stop ----------------------------------------------------------------------------------
    def _stop_children(self, children: list[Child], timeout: float) -> None:
        self._stop.set()
        started = [child for child in children if child.process is not None]
        # os.kill rather than Popen.terminate(), which would reap an exited child (see
        # _has_exited); an unreaped child's pid is still its own, so no other process is hit.
        for child in started:
            if not _has_exited(child.process):
                os.kill(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while not all(_has_exited(child.process) for child in started):
            if time.monotonic() >= deadline or self._hurry.is_set():
                break
            self._hurry.wait(0.1)
        for child in started:
            if not _has_exited(child.process):
                self._say(f"{child.name} is still running; killing it.")
            # The whole group: the child and whatever it left behind (Celery's pool processes
            # when the worker itself was killed). It is not reaped yet, so the group is its own.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.process.pid, signal.SIGKILL)
            child.process.wait()
        for child in started:
            child.pump.join(timeout=5)

    def _stop_embedded(self) -> None:
        if os.environ.get("DATABASE_URL"):
            return
        if embedded.release():
            self._say("Stopped the embedded PostgreSQL and Redis.")
        else:
            self._say(
                "The embedded PostgreSQL and Redis are still used by another process; "
                "the last one to exit stops them."
            )

    # -- output --------------------------------------------------------------------------------
    def _pump(self, child: Child) -> None:
        prefix = self._prefix(child.name, child.colour)
        for raw in iter(child.process.stdout.readline, b""):
            self._write(prefix + raw.decode(errors="replace").rstrip("\r\n"))
        child.process.stdout.close()

    def _say(self, text: str) -> None:
        self._write(self._prefix(SUPERVISOR, "yellow") + text)

    def _prefix(self, name: str, colour: str) -> str:
        label = f"{name:<{PREFIX_WIDTH}} | "
        return termcolors.colorize(label, fg=colour, opts=("bold",)) if self._colour else label

    def _write(self, line: str) -> None:
        # One lock for every thread's lines, so that no two lines interleave mid-way.
        with self._output_lock:
            self.stdout.write(line)
            self.stdout.flush()
