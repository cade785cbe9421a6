"""Settings read from the environment: defaults that hold, and bad values refused at start-up."""

import math
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from rcm.celery import app
from rcm.settings.base import WEB_LLM_MODEL_REQUIRED, WEB_LLM_URL_INVALID, web_llm_check


def test_a_worker_process_is_replaced_once_a_task_leaves_it_past_512_mib():
    assert settings.CELERY_WORKER_MAX_MEMORY_PER_CHILD == 512 * 1024  # KiB
    assert app.conf.worker_max_memory_per_child == 512 * 1024


def settings_loaded_with(**variables: str) -> subprocess.CompletedProcess:
    """The base settings imported in a fresh process with ``variables`` in its environment."""
    return subprocess.run(
        [sys.executable, "-c", "import rcm.settings.base"],
        env={**os.environ, **variables},
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_worker_memory_limit_below_an_idle_process_is_refused_at_start_up():
    started = settings_loaded_with(CELERY_WORKER_MAX_MEMORY_PER_CHILD="512")
    assert started.returncode != 0
    assert "CELERY_WORKER_MAX_MEMORY_PER_CHILD is in KiB and must be at least 262144" in (
        started.stderr
    )


@pytest.mark.parametrize(
    "url",
    ["ftp://models.example/v1", "api.openai.com/v1", "http://", "http://models.example:port/v1"],
)
def test_a_web_llm_url_that_is_not_http_is_refused(url):
    with pytest.raises(ImproperlyConfigured) as error:
        web_llm_check(url=url, model="gpt-4o-mini", timeout_s=20.0)
    assert str(error.value) == WEB_LLM_URL_INVALID


def test_a_web_llm_url_needs_a_model():
    with pytest.raises(ImproperlyConfigured) as error:
        web_llm_check(url="http://127.0.0.1:11434/v1", model="", timeout_s=20.0)
    assert str(error.value) == WEB_LLM_MODEL_REQUIRED


@pytest.mark.parametrize("timeout_s", [0.0, -1.0, math.nan, math.inf])
def test_a_web_llm_timeout_must_be_a_positive_number(timeout_s):
    with pytest.raises(ImproperlyConfigured, match="WEB_LLM_TIMEOUT_S must be a positive"):
        web_llm_check(url="", model="", timeout_s=timeout_s)


def test_the_web_llm_may_be_off_or_a_local_provider():
    web_llm_check(url="", model="", timeout_s=20.0)
    web_llm_check(url="http://127.0.0.1:11434/v1", model="llama3.1", timeout_s=20.0)


def test_a_bad_web_llm_url_is_refused_at_start_up():
    started = settings_loaded_with(WEB_LLM_URL="ftp://models.example/v1")
    assert started.returncode != 0
    assert WEB_LLM_URL_INVALID in started.stderr
