"""The web server's settings (rcm/gunicorn_conf.py): counts from the CPU count, overrides from
the environment, and a clear refusal of a value that cannot be used."""

import pytest

from rcm.gunicorn_conf import ConfigError, thread_count, worker_count


def test_workers_follow_the_cpu_count_unless_set():
    assert worker_count({}, cpus=2) == 5
    assert worker_count({}, cpus=8) == 17
    assert worker_count({"WEB_CONCURRENCY": "3"}, cpus=8) == 3
    assert worker_count({"WEB_CONCURRENCY": " "}, cpus=1) == 3
    assert thread_count({}) == 1
    assert thread_count({"RCM_WEB_THREADS": "8"}) == 8


@pytest.mark.parametrize("value", ["0", "-2", "two", "2.5", "65"])
def test_a_count_that_cannot_be_used_is_refused_by_name(value):
    with pytest.raises(ConfigError) as refused:
        worker_count({"WEB_CONCURRENCY": value}, cpus=2)
    assert str(refused.value) == (
        f"WEB_CONCURRENCY must be a whole number from 1 to 64; got {value!r}."
    )
    with pytest.raises(ConfigError, match="RCM_WEB_THREADS must be a whole number"):
        thread_count({"RCM_WEB_THREADS": value})
