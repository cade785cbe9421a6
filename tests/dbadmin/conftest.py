"""v3 databases on the test server: the fixture's (tests/fixtures/legacy_v3.sql), made once per
session and only read, and copies of it for the tests that change their source."""

import json
import os
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from dbadmin.legacy.generate import SCHEMA, legacy_v3_database, legacy_v3_load

FIXTURE = Path(__file__).parents[1] / "fixtures" / "legacy_v3.sql"


def owner_url(dbname: str) -> str:
    """The owner's connection string to ``dbname`` on the test server (the owner may create
    databases)."""
    owner, default = settings.DATABASE_OWNER, settings.DATABASES["default"]
    return make_conninfo(
        host=default["HOST"] or "localhost",
        port=default["PORT"] or 5432,
        user=owner["USER"],
        password=owner["PASSWORD"],
        dbname=dbname,
    )


def server_url() -> str:
    return owner_url(settings.DATABASES["default"]["NAME"])


@pytest.fixture(scope="session")
def legacy_url():
    """The fixture's v3 database: the import only reads it."""
    with legacy_v3_database(server_url(), f"legacy_v3_{os.getpid()}") as url:
        legacy_v3_load(url, SCHEMA, FIXTURE)
        yield url


@pytest.fixture
def legacy_copy(legacy_url):
    """A copy of the fixture's v3 database, for a test to change."""
    original = conninfo_to_dict(legacy_url)["dbname"]
    with legacy_v3_database(server_url(), f"{original}_copy", copy_of=original) as url:
        yield url


def import_legacy(*args) -> tuple[int, dict, str]:
    """Run rcm_import_legacy with ``--json``: (exit code, the JSON document, the human report)."""
    out, err = StringIO(), StringIO()
    try:
        call_command("rcm_import_legacy", "--json", *args, stdout=out, stderr=err)
        code = 0
    except CommandError as exc:
        code = exc.returncode
    return code, json.loads(out.getvalue()), err.getvalue()


def counts(document: dict) -> dict[str, tuple[int, ...]]:
    """path -> (read, created, updated, unchanged, skipped, rejected) of a run's report."""
    return {
        table["path"]: tuple(
            table[name]
            for name in ("read", "created", "updated", "unchanged", "skipped", "rejected")
        )
        for table in document["details"]["tables"]
    }


def issues(document: dict, level: str) -> dict[str, str]:
    """'<path> <v3 key>' -> reason, for the run's issues of ``level``."""
    return {
        f"{issue['path']} {issue['legacy_id']}": issue["reason"]
        for issue in document["details"]["issues"]
        if issue["level"] == level
    }
