"""How the web server is started: gunicorn with rcm/gunicorn_conf.py, as `make run` and
production run it, and Django's development server, which benchmarks/api_load.py measures it
against."""

from __future__ import annotations

import sys

from django.conf import settings


def gunicorn_argv(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:rcm.gunicorn_conf",
        "--bind",
        f"127.0.0.1:{port}",
        "rcm.wsgi:application",
    ]


def devserver_argv(port: int) -> list[str]:
    # --insecure: it serves the static files itself with DEBUG off.
    manage = str(settings.BASE_DIR / "manage.py")
    return [sys.executable, manage, "runserver", f"127.0.0.1:{port}", "--noreload", "--insecure"]
