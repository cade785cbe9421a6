"""Settings read from the environment: defaults that hold, and bad values refused at start-up."""

import os
import subprocess
import sys

from django.conf import settings

from rcm.celery import app


def test_a_worker_process_is_replaced_once_a_task_leaves_it_past_512_mib():
    assert settings.CELERY_WORKER_MAX_MEMORY_PER_CHILD == 512 * 1024  # KiB
    assert app.conf.worker_max_memory_per_child == 512 * 1024


def test_a_worker_memory_limit_below_an_idle_process_is_refused_at_start_up():
    environment = {**os.environ, "CELERY_WORKER_MAX_MEMORY_PER_CHILD": "512"}
    started = subprocess.run(
        [sys.executable, "-c", "import rcm.settings.base"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert started.returncode != 0
    assert "CELERY_WORKER_MAX_MEMORY_PER_CHILD is in KiB and must be at least 262144" in (
        started.stderr
    )
