"""gunicorn's settings for the platform's web server, all in this one file.

`make run` starts the web server with it (rcm/webserver.py), and production does the same:

    gunicorn -c python:rcm.gunicorn_conf rcm.wsgi:application

Environment overrides, each checked here with a message naming it:

* ``WEB_CONCURRENCY``  worker processes (default: 2 per CPU + 1, gunicorn's own advice);
* ``RCM_WEB_THREADS``  threads per worker (default 1; more makes them gthread workers);
* ``RCM_WEB_BIND``     address to listen on (default ``127.0.0.1:$RCM_PORT``, port 8000);
* ``RCM_FORWARDED_ALLOW_IPS``  proxies trusted for X-Forwarded-* (default 127.0.0.1).
"""

from __future__ import annotations

import os

MAX_WORKERS = 64
MAX_THREADS = 64


class ConfigError(ValueError):
    """A web server setting from the environment that cannot be used."""


def _count(environ, name: str, default: int, maximum: int) -> int:
    text = environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or not 1 <= int(text) <= maximum:
        raise ConfigError(f"{name} must be a whole number from 1 to {maximum}; got {text!r}.")
    return int(text)


def worker_count(environ, cpus: int) -> int:
    # Processes, not only threads: the GIL lets one process use one core for Python work, and
    # a request spends most of its time in Python (DRF serialising, templates). The +1 keeps a
    # core busy while another worker waits on PostgreSQL.
    return _count(environ, "WEB_CONCURRENCY", 2 * cpus + 1, MAX_WORKERS)


def thread_count(environ) -> int:
    # One request per process by default (sync workers), measured against threads on two cores
    # with 20 clients (benchmarks/api_load.py): 5 sync workers answered 200 requests/s with a
    # p99 of 160 ms; 5 gthread workers of 4 threads as many, with a p99 of 740 ms. A gthread
    # worker keeps each client's connection (keep-alive) to itself, so a busy process queues
    # its clients behind one GIL while another idles; a sync worker takes the next connection
    # only when free. Threads (gthread) suit a server exposed to slow clients without a
    # buffering proxy in front; each holds its own database connection.
    return _count(environ, "RCM_WEB_THREADS", 1, MAX_THREADS)


workers = worker_count(os.environ, os.cpu_count() or 1)
threads = thread_count(os.environ)
# gunicorn makes them gthread workers when threads > 1. Sync workers expect a buffering proxy
# (nginx) in front in production, as gunicorn advises: it absorbs slow clients.
worker_class = "sync"
bind = os.environ.get("RCM_WEB_BIND") or f"127.0.0.1:{os.environ.get('RCM_PORT') or 8000}"
# Django is imported once, in the master, and the workers are forked from it: they start in a
# fraction of the time (five imports of the whole platform at once would take seconds on two
# cores) and share its memory. Nothing connects to PostgreSQL or Redis at import, so no socket
# is shared across the fork. The price: `kill -HUP` does not load new code; restart instead.
preload_app = True
# A worker silent this long is killed and replaced: a sync worker reports in between requests,
# so this is also the longest a request may take (a 50 MB spreadsheet upload takes seconds).
timeout = 120
# SIGTERM: requests in flight get this long to finish (the supervisor waits 20 s in all).
graceful_timeout = 15
# For gthread workers behind a proxy that keeps connections open (sync workers close each):
# longer than gunicorn's 2 s default, so a reused connection is not closed under the proxy.
keepalive = 5
# A worker is replaced after this many requests (staggered by the jitter so that they do not
# all restart at once): whatever a request leaked goes with it.
max_requests = 5000
max_requests_jitter = 500
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
forwarded_allow_ips = os.environ.get("RCM_FORWARDED_ALLOW_IPS", "127.0.0.1")
# The platform's own logging (rcm/settings) writes the errors; gunicorn's go to stderr.
errorlog = "-"
proc_name = "rcm-web"
# gunicorn ≥ 25.1 opens a control socket at one fixed path in $HOME by default: two platforms
# on one machine (make run beside a benchmark) would fight over it, and nothing here uses it.
control_socket_disable = True
