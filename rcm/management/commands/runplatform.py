"""``runplatform`` (``make run``): migrate, seed the demo, then supervise web (gunicorn), the
engine's worker, the browser worker and beat.

With DATABASE_URL/REDIS_URL unset, importing the settings has already started the embedded
PostgreSQL and Redis (rcm/embedded.py). The children get their URLs through the environment,
so they reuse those servers instead of starting their own, and this process stops the servers
itself once the children are gone: after Ctrl-C nothing is left running.

It heals: a child that dies is started again, and so is an embedded server (on its old port:
the children's URLs name it), after a backoff that doubles with each restart of the same
component within a minute; past ``--restart-limit`` restarts within a minute the component is
taken to be broken rather than unlucky, and the platform stops with its name. One supervisor
per ``var/``: a second one is refused, naming the first.

Each child runs in its own process group, so a Ctrl-C in the terminal reaches only this
supervisor, which stops the children (SIGTERM, then SIGKILL after ``--stop-timeout``) before
the database and broker they are still talking to.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.core.management.color import supports_color
from django.db import connections
from django.utils import termcolors

from rcm import embedded, webserver

PREFIX_WIDTH = len("browser")
SUPERVISOR = "rcm"
WEB_ANSWER_TIMEOUT_S = 120
READY_TIMEOUT_S = 60
POLL_INTERVAL_S = 0.2
# Restarts: the first after half a second, doubling up to 8 s; a component restarted
# --restart-limit times within RESTART_WINDOW_S is given up on.
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 8.0
RESTART_WINDOW_S = 60.0
LOCK_FILE = "runplatform.lock"
# Requests to our own 127.0.0.1 server must not go through an HTTP(S)_PROXY from the environment.
_LOCAL_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Restarts:
    """The recent restarts of one component: the wait before the next, or None to give up."""

    limit: int
    times: deque = field(default_factory=deque)
    due_at: float | None = None  # a restart waiting out its backoff
    reason: str = ""  # how the component last ended

    def delay(self, now: float) -> float | None:
        while self.times and now - self.times[0] > RESTART_WINDOW_S:
            self.times.popleft()
        if len(self.times) >= self.limit:
            return None
        return min(BACKOFF_FIRST_S * 2 ** len(self.times), BACKOFF_MAX_S)

    def schedule(self, now: float, reason: str) -> float | None:
        """Plan the next restart; its delay, or None when the limit is reached."""
        self.reason = reason
        delay = self.delay(now)
        if delay is not None:
            self.due_at = now + delay
        return delay

    def done(self, now: float) -> None:
        self.times.append(now)
        self.due_at = None


@dataclass
class Child:
    """One supervised process: its argv, its colour and, once started, the process itself."""

    name: str
    argv: list[str]
    colour: str
    restarts: Restarts
    process: subprocess.Popen[bytes] | None = None
    pump: threading.Thread | None = None

    def started(self) -> tuple[subprocess.Popen[bytes], threading.Thread]:
        """The process and the thread pumping its output, of a child `_start` has started."""
        if self.process is None or self.pump is None:
            raise RuntimeError(f"{self.name} has not been started")
        return self.process, self.pump


class GaveUp(Exception):
    """A component kept dying: restarted --restart-limit times within a minute."""

    def __init__(self, name: str, restarts: Restarts):
        super().__init__(name)
        self.name, self.restarts = name, restarts


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # gunicorn binds with SO_REUSEADDR too: a socket in TIME_WAIT is not "in use".
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


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _claim_var_dir(var_dir: Path, port: int):
    """Lock var/ for this supervisor, or refuse naming the one that holds it.

    Two supervisors on one var/ would both restart the same servers and fight over them. The
    lock is an flock: the kernel drops it when its holder dies, so a crashed supervisor
    leaves nothing that blocks the next start. Returns the open file (the lock lives with it).
    """
    var_dir.mkdir(parents=True, exist_ok=True)
    handle = open(var_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held for the process's lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        try:
            holder = json.loads(handle.read())
        except ValueError:  # it is writing its details this very moment
            holder = {}
        handle.close()
        pid = holder.get("pid", "?")
        raise CommandError(
            f"A platform is already running on {var_dir}: pid {pid}, "
            f"{holder.get('url', 'its address not written yet')}. Stop it with Ctrl-C in its "
            f"terminal (or kill {pid}), or start this one with another RCM_VAR_DIR."
        ) from None
    handle.seek(0)
    handle.truncate()
    details = {"pid": os.getpid(), "url": f"http://127.0.0.1:{port}", "started_at": time.time()}
    handle.write(json.dumps(details))
    handle.flush()
    return handle


class Command(BaseCommand):
    help = (
        "Run the platform: migrate, seed the demo, then supervise the web server, the engine's "
        "worker, the browser worker and beat, restarting what dies."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--port",
            type=int,
            default=settings.RCM_PORT,
            help="Port of the web server on 127.0.0.1 (default: $RCM_PORT, else 8000).",
        )
        parser.add_argument(
            "--restart-limit",
            type=int,
            default=5,
            help="Restarts of one component within a minute before giving up (default 5).",
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
        port, limit = options["port"], options["restart_limit"]
        if limit < 1:
            raise CommandError(f"--restart-limit must be at least 1; got {limit}.")
        self._var_dir = embedded.default_var_dir().resolve()
        # Held until this process ends (the kernel drops it even on SIGKILL).
        self._lock_handle = _claim_var_dir(self._var_dir, port)
        if not _port_is_free(port):
            raise CommandError(f"Port {port} is in use; pass --port or set RCM_PORT.")
        self._embedded = not os.environ.get("DATABASE_URL")
        if "PUBLIC_BASE_URL" not in os.environ:
            # This server's address: where mails' links point and what the web agent knows as
            # the platform's own sandbox portal (rcm/addresses.py), here and in the children.
            settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{port}"
        self._servers = {name: Restarts(limit) for name in ("postgres", "redis")}
        children: list[Child] = []
        gave_up = None
        try:
            self._prepare(verbosity=options["verbosity"])
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, self._on_stop_signal)
            children = self._children(port, limit)
            self._env = self._child_env()
            for child in children:
                self._start(child)
            threading.Thread(target=self._announce, args=(port,), daemon=True).start()
            self._supervise(children)
        except GaveUp as exc:
            gave_up = exc
        finally:
            self._stop_children(children, options["stop_timeout"])
            self._stop_embedded()
        if gave_up is not None:
            raise CommandError(
                f"{gave_up.name} {gave_up.restarts.reason} and was restarted {_times(limit)} "
                f"within {RESTART_WINDOW_S:.0f}s, so the platform was stopped; the lines "
                f"prefixed '{gave_up.name}' above say why."
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
            # The demo: three organizations with their logins (printed the first time only),
            # portals, workflows and a week of finished batches.
            call_command("rcm_seed", "--profile", "demo", stdout=self.stdout)
            if settings.RCM_SANDBOX:
                # The sandbox eligibility workflow, its endpoint at this web server's address.
                call_command("seed_sandbox_demo", stdout=self.stdout)
            # Into STATIC_ROOT, where the web server's whitenoise serves them from; only what
            # changed is copied again.
            call_command("collectstatic", interactive=False, verbosity=0)
        except KeyboardInterrupt:
            raise CommandError("Interrupted before the platform started.", returncode=130) from None
        # The supervisor needs no database connection of its own from here on.
        connections.close_all()

    def _children(self, port: int, limit: int) -> list[Child]:
        python = sys.executable
        celery = [python, "-m", "celery", "-A", "rcm.celery"]
        schedule = embedded.default_var_dir().resolve() / "celerybeat-schedule"
        schedule.parent.mkdir(parents=True, exist_ok=True)
        return [
            Child("web", webserver.gunicorn_argv(port), "green", Restarts(limit)),
            Child(
                "worker",
                [*celery, "worker", "-l", "info", "--concurrency", "2"]
                + ["-Q", settings.CELERY_TASK_DEFAULT_QUEUE],
                "cyan",
                Restarts(limit),
            ),
            # Browser work (the web node kind): its own queue and concurrency, one Chromium
            # per pool process.
            Child(
                "browser",
                [*celery, "worker", "-l", "info", "--concurrency", "2"]
                + ["-Q", settings.CELERY_WEB_QUEUE, "-n", "web@%h"],
                "blue",
                Restarts(limit),
            ),
            Child(
                "beat",
                [*celery, "beat", "-l", "info", "-s", str(schedule)],
                "magenta",
                Restarts(limit),
            ),
        ]

    def _child_env(self) -> dict:
        return {
            **os.environ,
            "PUBLIC_BASE_URL": settings.PUBLIC_BASE_URL,
            # The servers this process reached (or started): the children must not start
            # their own, and must not stop these when they exit.
            "DATABASE_URL": settings.DATABASE_URL,
            "DATABASE_OWNER_URL": settings.DATABASE_OWNER_URL,
            "REDIS_URL": settings.REDIS_URL,
            "PYTHONUNBUFFERED": "1",
        }

    def _start(self, child: Child) -> None:
        child.process = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed argv
            child.argv,
            env=self._env,
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
        self._say(f"  console     {base}/   (the admin site: {base}/admin/)")
        self._say(f"  API docs    {base}/api/v2/docs/")
        self._say(f"  readiness   {base}/health/ready")
        self._say("Press Ctrl-C to stop everything.")
        if self._poll(f"{base}/health/ready", READY_TIMEOUT_S, 1.0):
            self._say("Ready: database, vector extension, broker, worker and browser all answer.")
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
    def _supervise(self, children: list[Child]) -> None:
        """Block until a stop signal, restarting what dies; GaveUp when one keeps dying."""
        while not self._stop.wait(POLL_INTERVAL_S):
            if self._embedded:
                self._heal_servers()
            for child in children:
                self._heal_child(child)
        self._say("Stopping (Ctrl-C again to kill at once).")

    def _heal_child(self, child: Child) -> None:
        now = time.monotonic()
        restarts = child.restarts
        process, pump = child.started()
        if restarts.due_at is None and _has_exited(process):
            # Its whole group first, while its pid is still its own (not reaped): a worker
            # killed alone leaves its pool processes behind, still holding claimed work.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            pump.join(timeout=5)
            self._plan(child.name, restarts, now, _how_it_ended(process.returncode))
        elif restarts.due_at is not None and now >= restarts.due_at:
            self._say(f"Starting {child.name} again.")
            self._start(child)
            restarts.done(now)

    def _heal_servers(self) -> None:
        now = time.monotonic()
        servers: dict[str, embedded.EmbeddedPostgres | embedded.EmbeddedRedis] = {
            "postgres": embedded.EmbeddedPostgres(self._var_dir),
            "redis": embedded.EmbeddedRedis(self._var_dir),
        }
        for name, server in servers.items():
            restarts = self._servers[name]
            if restarts.due_at is None and not server.is_alive():
                self._plan(name, restarts, now, "stopped (its process is gone)")
            elif restarts.due_at is not None and now >= restarts.due_at:
                port = server.previous_port()
                self._say(f"Starting {name} again on port {port}.")
                restarts.done(now)
                try:
                    started = embedded.revive(server, self._var_dir)
                except Exception as exc:  # noqa: BLE001 - a failed start is retried, then given up
                    self._plan(name, restarts, now, f"did not start ({exc})")
                else:
                    back = "is back" if started else "was already running again"
                    self._say(f"{name} {back} on port {port}.")

    def _plan(self, name: str, restarts: Restarts, now: float, reason: str) -> None:
        delay = restarts.schedule(now, reason)
        if delay is None:
            self._say(
                f"{name} {reason}; restarted {_times(restarts.limit)} within "
                f"{RESTART_WINDOW_S:.0f}s already: giving up and stopping everything."
            )
            raise GaveUp(name, restarts)
        count = len(restarts.times) + 1
        self._say(f"{name} {reason}; restarting it in {delay:.1f}s (restart {count} this minute).")

    def _on_stop_signal(self, signum, frame) -> None:
        if self._stop.is_set():
            self._hurry.set()
        self._stop.set()

    # -- stop ----------------------------------------------------------------------------------
    def _stop_children(self, children: list[Child], timeout: float) -> None:
        self._stop.set()
        # Not one that died and was reaped, waiting for its restart: its pid may be another's.
        started = [
            (child.name, *child.started())
            for child in children
            if child.process is not None and child.process.returncode is None
        ]
        # os.kill rather than Popen.terminate(), which would reap an exited child (see
        # _has_exited); an unreaped child's pid is still its own, so no other process is hit.
        for _, process, _ in started:
            if not _has_exited(process):
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while not all(_has_exited(process) for _, process, _ in started):
            if time.monotonic() >= deadline or self._hurry.is_set():
                break
            self._hurry.wait(0.1)
        for name, process, _ in started:
            if not _has_exited(process):
                self._say(f"{name} is still running; killing it.")
            # The whole group: the child and whatever it left behind (Celery's pool processes
            # when the worker itself was killed). It is not reaped yet, so the group is its own.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for _, _, pump in started:
            pump.join(timeout=5)

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
        # A pipe: _start opens the process with stdout=PIPE.
        output = cast(IO[bytes], child.started()[0].stdout)
        for raw in iter(output.readline, b""):
            self._write(prefix + raw.decode(errors="replace").rstrip("\r\n"))
        output.close()

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
