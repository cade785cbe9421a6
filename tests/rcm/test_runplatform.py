"""``make run`` end to end: on fresh embedded servers the platform answers /health/ready, and
after Ctrl-C no process it started is left behind (children, Celery's pool, PostgreSQL, Redis).

About 15 s locally (initdb, migrations, three children); the deadlines leave room for a slow
CI machine while keeping the whole test under a minute and a half at worst.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from django.conf import settings

from rcm import keys

pytestmark = pytest.mark.e2e

START_DEADLINE_S = 60
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


def test_runplatform_becomes_ready_and_leaves_nothing_behind(tmp_path):
    var_dir = tmp_path / "var"
    port = free_port()
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL")
    }
    env.update(RCM_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="rcm.settings.base")
    log = tmp_path / "runplatform.log"
    started: list[int] = []
    with log.open("wb") as output:
        platform = subprocess.Popen(
            [sys.executable, "manage.py", "runplatform", "--port", str(port), "--no-color"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_DEADLINE_S
        while not answers_200(f"http://127.0.0.1:{port}/health/ready"):
            assert platform.poll() is None, f"runplatform exited early:\n{log.read_text()}"
            assert time.monotonic() < deadline, (
                f"/health/ready not 200 within {START_DEADLINE_S}s:\n{log.read_text()[-4000:]}"
            )
            time.sleep(POLL_INTERVAL_S)
        started = [child.pid for child in psutil.Process(platform.pid).children(recursive=True)]
        started += server_pids(var_dir)

        platform.send_signal(signal.SIGINT)
        assert platform.wait(timeout=STOP_DEADLINE_S) == 0, log.read_text()[-4000:]
    finally:
        # A failed run must not leak servers into the next test: kill what it started.
        if platform.poll() is None:
            platform.kill()
            platform.wait()
        leaked = living(started)
        kill_all(leaked)

    output = log.read_text()
    assert f"http://127.0.0.1:{port}/api/v2/docs/" in output
    assert "Stopped the embedded PostgreSQL and Redis." in output
    assert leaked == [], output[-4000:]
    # The keys web, worker and beat signed with were generated into var/, privately, and
    # never printed.
    generated = keys.keys_load(var_dir=var_dir)
    assert stat.S_IMODE((var_dir / keys.KEYS_FILE).stat().st_mode) == 0o600
    assert generated.secret_key not in output and generated.jwt_signing_key not in output
    assert processes_mentioning(str(tmp_path)) == []
    shutil.rmtree(var_dir, ignore_errors=True)
