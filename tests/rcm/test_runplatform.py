"""``make run`` end to end, on fresh embedded servers: the platform answers /health/ready; it
restarts whatever dies (each child, PostgreSQL, Redis) and ready comes back; a second one on
the same var/ is refused; one component that keeps dying stops it; and after Ctrl-C (or giving
up) no process it started is left behind (children, Celery's pool, PostgreSQL, Redis).

One platform serves the tests in order (they are one story: start, heal, refuse a twin, stop),
then a second start on the same var/ gives up. About a minute locally; the deadlines leave room
for a slow CI machine.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import httpx
import psutil
import pytest
from django.conf import settings

from rcm import keys

pytestmark = pytest.mark.e2e

# A first start migrates an empty database: about 20 s on an idle machine, over a minute on a
# loaded one. A deadline, not a wait: a healthy start returns as soon as it is ready.
START_DEADLINE_S = 180
HEAL_DEADLINE_S = 60
SERVERS = ("postgres", "redis")
STOP_DEADLINE_S = 30
POLL_INTERVAL_S = 0.25
_LOCAL_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers_200(url: str) -> bool:
    try:
        with _LOCAL_HTTP.open(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def living(pids: list[int]) -> list[int]:
    """The pids still running (a zombie awaiting its reaper has stopped)."""
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def processes_mentioning(text: str) -> list[str]:
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if text in cmdline and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(f"{process.pid}: {cmdline}")
    return found


def server_pids(var_dir: Path) -> list[int]:
    postmaster = int((var_dir / "pg" / "postmaster.pid").read_text().split()[0])
    redis = json.loads((var_dir / "redis" / "server.json").read_text())["pid"]
    return [postmaster, redis]


def kill_all(pids: list[int]) -> None:
    for pid in living(pids):
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()


def _kind(argv: list[str]) -> str:
    """Which child an argv is: the supervisor also parents the Redis it started."""
    if any("redis-server" in part for part in argv):
        return "redis"
    if "celery" in argv:
        if "beat" in argv:
            return "beat"
        return "browser" if "web@%h" in argv else "worker"
    return "web"


class Platform:
    """`manage.py runplatform` in a subprocess on ``var_dir``, its output in a log file."""

    def __init__(self, var_dir: Path, *options: str):
        self.var_dir, self.port = var_dir, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            name: value
            for name, value in os.environ.items()
            if name not in ("DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL")
        }
        self.env.update(RCM_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="rcm.settings.base")
        self.log = var_dir.parent / f"runplatform-{self.port}.log"
        self.argv = [sys.executable, "manage.py", "runplatform", "--port", str(self.port)]
        self.argv += ["--no-color", *options]
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                self.argv,
                cwd=settings.BASE_DIR,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.started: list[int] = []

    def output(self) -> str:
        return self.log.read_text()

    def wait_until(self, condition, what: str, deadline_s: float) -> None:
        deadline = time.monotonic() + deadline_s
        while not condition():
            assert self.process.poll() is None, f"runplatform exited:\n{self.output()[-4000:]}"
            assert time.monotonic() < deadline, f"{what} within {deadline_s}s:\n{self.output()}"
            time.sleep(POLL_INTERVAL_S)

    def wait_ready(self, deadline_s: float = START_DEADLINE_S) -> None:
        self.wait_until(lambda: answers_200(f"{self.base}/health/ready"), "ready", deadline_s)
        self.remember_processes()

    def remember_processes(self) -> None:
        """Every process started so far, to prove at the end that none is left."""
        children = psutil.Process(self.process.pid).children(recursive=True)
        self.started += [child.pid for child in children] + server_pids(self.var_dir)

    def child_pid(self, name: str) -> int | None:
        """The pid of the supervisor's child ``name`` (web, worker or beat), if running."""
        for child in psutil.Process(self.process.pid).children():
            with contextlib.suppress(psutil.NoSuchProcess):
                if _kind(child.cmdline()) == name:
                    return child.pid
        return None

    def finish(self) -> list[int]:
        """Kill whatever is still running (a failed test must not leak into the next); the
        pids that were still alive."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        leaked = living(self.started)
        kill_all(leaked)
        return leaked


def _fresh_env_var(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("platform") / "var"


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory):
    path = _fresh_env_var(tmp_path_factory)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def platform(var_dir):
    running = Platform(var_dir)
    try:
        running.wait_ready()
        yield running
    finally:
        running.finish()


def test_the_platform_becomes_ready(platform):
    assert f"{platform.base}/api/v2/docs/" in platform.output()
    # Served by gunicorn, static files included (whitenoise, from what runplatform collected).
    assert answers_200(f"{platform.base}/static/admin/css/base.css")
    assert answers_200(
        f"{platform.base}/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        _LOCAL_HTTP.open(f"{platform.base}/api/v2/workflows/", timeout=5)
    assert refused.value.code == 401
    web = psutil.Process(platform.child_pid("web"))
    assert "gunicorn" in " ".join(web.cmdline()) and len(web.children()) >= 2


def test_a_second_platform_on_the_same_var_is_refused(platform):
    second = subprocess.run(
        [*platform.argv[:4], str(free_port()), "--no-color"],
        cwd=settings.BASE_DIR,
        env=platform.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1, second.stdout + second.stderr
    message = second.stderr
    assert f"A platform is already running on {platform.var_dir.resolve()}" in message
    assert f"pid {platform.process.pid}, {platform.base}" in message
    assert "Stop it with Ctrl-C" in message
    # Refused before touching anything: no migration ran, the first one still answers.
    assert "Applying migrations" not in second.stdout
    assert answers_200(f"{platform.base}/health/ready")


def _postmaster_pid(platform) -> int | None:
    """None while a new postmaster is still writing its pid file."""
    with contextlib.suppress(ValueError, IndexError, FileNotFoundError):
        return server_pids(platform.var_dir)[0]
    return None


def _redis_pid(platform) -> int | None:
    with contextlib.suppress(ValueError, KeyError, FileNotFoundError):
        return server_pids(platform.var_dir)[1]
    return None


def _redis_log_tail(platform) -> str:
    """Why the embedded Redis last stopped, if it did, in its own words."""
    with contextlib.suppress(FileNotFoundError):
        return "\n".join((platform.var_dir / "redis" / "server.log").read_text().splitlines()[-20:])
    return "(no log)"


@pytest.mark.parametrize(
    ("name", "pid_of"),
    [
        ("worker", lambda platform: platform.child_pid("worker")),
        ("beat", lambda platform: platform.child_pid("beat")),
        ("browser", lambda platform: platform.child_pid("browser")),
        ("web", lambda platform: platform.child_pid("web")),
        ("postgres", _postmaster_pid),
        ("redis", _redis_pid),
    ],
)
def test_what_dies_is_restarted_and_ready_comes_back(platform, name, pid_of):
    pid = pid_of(platform)
    said_before = len(platform.output())
    os.kill(pid, signal.SIGKILL)
    platform.wait_until(
        lambda: pid_of(platform) not in (None, pid), f"{name} running again", HEAL_DEADLINE_S
    )
    platform.wait_ready(HEAL_DEADLINE_S)
    ended = "stopped (its process is gone)" if name in SERVERS else "was killed by SIGKILL"
    # What the supervisor said about this kill: it names what died, and counts its restarts
    # within the minute. The first death of a component is restart 1 after 0.5 s; only one
    # that has died before (Redis has been seen closing as PostgreSQL was killed, and is then
    # announced under its own name) may count more. The count's limit has its own test below.
    said = platform.output()[said_before:]
    announced = f"{name} {ended}; restarting it in"
    if announced in platform.output()[:said_before]:
        expected = rf"{re.escape(announced)} [\d.]+s \(restart \d+ this minute\)"
    else:
        expected = re.escape(f"{announced} 0.5s (restart 1 this minute)")
    assert re.search(expected, said), f"{said}\nRedis's log ends:\n{_redis_log_tail(platform)}"


def test_work_queued_when_postgres_dies_resumes_once_it_is_back(platform):
    """Runs in flight (a 2 s wait node, so that their steps are queued) when the database is
    killed: the supervisor restarts it, and every run completes within 10 s of readiness."""
    password = re.search(r"operator@demo\.rcm\.test\s+(\S+)\s+\(operator;", platform.output())
    api = httpx.Client(base_url=f"{platform.base}/api/v2", timeout=10, trust_env=False)
    login = api.post(
        "/auth/token/", json={"email": "operator@demo.rcm.test", "password": password[1]}
    )
    api.headers["Authorization"] = f"Bearer {login.json()['access']}"
    workflow = api.post("/workflows/", json={"name": "Outage", "required_data": []}).json()
    graph = {
        "version": workflow["version"],
        "nodes": [
            {"key": "start", "node_type": "entry"},
            {"key": "pause", "node_type": "general", "kind": "wait", "config": {"seconds": 2}},
            {"key": "done", "node_type": "outcome", "config": {"result": "success"}},
        ],
        "transitions": [
            {"from": "start", "to": "pause", "label": "success"},
            {"from": "pause", "to": "done", "label": "success"},
        ],
    }
    assert api.put(f"/workflows/{workflow['id']}/graph/", json=graph).status_code == 200
    assert api.post(f"/workflows/{workflow['id']}/publish/", json={}).status_code == 201
    started = [api.post(f"/workflows/{workflow['id']}/runs/", json={"input": {}}) for _ in range(8)]
    assert {run.status_code for run in started} == {202}

    postmaster = _postmaster_pid(platform)
    os.kill(postmaster, signal.SIGKILL)
    platform.wait_until(
        lambda: _postmaster_pid(platform) not in (None, postmaster), "postgres back", 60
    )
    platform.wait_ready(HEAL_DEADLINE_S)
    back_at = time.monotonic()

    def statuses() -> set[str]:
        answers = [api.get(f"/runs/{run.json()['id']}/") for run in started]
        return {answer.json()["status"] if answer.status_code == 200 else "?" for answer in answers}

    platform.wait_until(lambda: statuses() == {"completed"}, "every run completed", 10)
    assert time.monotonic() - back_at < 10


def test_ctrl_c_stops_everything_and_leaves_nothing_behind(platform):
    platform.process.send_signal(signal.SIGINT)
    assert platform.process.wait(timeout=STOP_DEADLINE_S) == 0, platform.output()[-4000:]
    output = platform.output()
    assert "Stopped the embedded PostgreSQL and Redis." in output
    assert platform.finish() == [], output[-4000:]
    # The keys web, worker and beat signed with were generated into var/, privately, and
    # never printed.
    generated = keys.keys_load(var_dir=platform.var_dir)
    assert stat.S_IMODE((platform.var_dir / keys.KEYS_FILE).stat().st_mode) == 0o600
    assert generated.secret_key not in output and generated.jwt_signing_key not in output
    assert processes_mentioning(str(platform.var_dir)) == []


def test_a_component_that_keeps_dying_stops_the_platform(var_dir):
    """The same var/ again (after the previous test stopped it): beat dies twice within a
    minute, and with --restart-limit 1 the second death is one too many."""
    again = Platform(var_dir, "--restart-limit", "1")
    try:
        again.wait_ready()
        os.kill(again.child_pid("beat"), signal.SIGKILL)
        again.wait_until(lambda: "Starting beat again." in again.output(), "beat back", 30)
        again.remember_processes()
        os.kill(again.child_pid("beat"), signal.SIGKILL)
        assert again.process.wait(timeout=STOP_DEADLINE_S) == 1, again.output()[-4000:]
        output = again.output()
        assert "beat was killed by SIGKILL; restarted once within 60s already" in output
        assert "beat was killed by SIGKILL and was restarted once within 60s" in output
        assert "Stopped the embedded PostgreSQL and Redis." in output
    finally:
        leaked = again.finish()
    assert leaked == [], again.output()[-4000:]
    assert processes_mentioning(str(var_dir)) == []
