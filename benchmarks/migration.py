"""The migration commands at platform size (issue 15).

    .venv/bin/python benchmarks/migration.py [--orgs 10] [--rows 20000] [--legacy-items 100000]

In a throw-away database (bench_migration): ``rcm_seed --profile test-data`` writes ``--orgs``
organizations of ``--rows`` finished batch items each, with their traces, through the
services. Then, each timed on its own:

- ``backup_seconds``, ``backup_mb``: ``rcm_backup`` (pg_dump through the maintenance role, the
  manifest's counts, the ``pg_restore --list`` proof);
- ``verify_restore_seconds``: that backup restored into a scratch database and its row counts
  compared (what ``rcm_backup --verify-restore`` adds);
- ``validate_seconds``: ``rcm_validate``, the median of three runs (target <= 10), with the
  seconds of each check;
- ``import_rows_per_s``: a generated v3 database of ``--legacy-items`` batch rows (each with
  its trace; ``--orgs`` organizations with their users, portals, catalogue and page memory)
  imported by ``rcm_import_legacy``: v3 rows read per second of the whole import, and
  ``import_items_per_s``, its batch rows alone per second (the stricter reading);
- ``reimport_changed_rows``: the same import run again: rows created or updated (must be 0).

Every command runs in-process through ``call_command``, as an administrator's shell would run
it, and must succeed: a benchmark never times a failure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from io import StringIO
from pathlib import Path

from _common import bench_database
from django.core.management import call_command
from psycopg.conninfo import make_conninfo

from dbadmin import backups
from dbadmin.legacy.generate import legacy_v3_database, legacy_v3_generate


def command(*args: str) -> tuple[float, dict]:
    """Seconds and JSON document of one successful run of a command."""
    out = StringIO()
    started = time.perf_counter()
    call_command(*args, "--json", stdout=out, stderr=StringIO())  # the reports: figures only
    return time.perf_counter() - started, json.loads(out.getvalue())


def seed(orgs: int, rows: int) -> None:
    seconds, document = command(
        "rcm_seed", "--profile", "test-data", "--orgs", str(orgs), "--rows", str(rows)
    )
    created = document["details"].get("created", document["details"])
    print(f"seed_seconds: {seconds:.1f}  ({json.dumps(created, sort_keys=True)})")


def backup_figures(folder: Path) -> None:
    path = folder / "bench.dump"
    seconds, document = command("rcm_backup", "--output", str(path))
    print(f"backup_seconds: {seconds:.2f}")
    print(f"backup_mb: {document['details']['size_bytes'] / 1_000_000:.1f}")
    server = backups.owner_server()
    tools = backups.tools_find(server)
    started = time.perf_counter()
    backups.verify_restore(archive=backups.archive_open(path, tools), server=server, tools=tools)
    print(f"verify_restore_seconds: {time.perf_counter() - started:.2f}")


def validate_figures(repeat: int = 3) -> None:
    runs = sorted((command("rcm_validate") for _ in range(repeat)), key=lambda run: run[0])
    _, median = runs[len(runs) // 2]
    for check in median["details"]["checks"]:
        print(f"  {check['id']:14} {check['seconds']:7.3f}s")
    seconds = statistics.median(run[0] for run in runs)
    print(f"validate_seconds: {seconds:.2f} (target <= 10)")


def import_figures(orgs: int, items: int) -> None:
    server = backups.owner_server()
    owner_url = make_conninfo(server.conninfo, password=server.password)
    with legacy_v3_database(owner_url, "bench_legacy_v3") as source:
        started = time.perf_counter()
        legacy_v3_generate(source, orgs=orgs, items=items)
        print(f"legacy_generate_seconds: {time.perf_counter() - started:.1f}  ({items} items)")
        seconds, first = command("rcm_import_legacy", "--source", source)
        totals = first["details"]["totals"]
        print(f"import_seconds: {seconds:.1f}  ({json.dumps(totals, sort_keys=True)})")
        # Two readings of "rows": every v3 row the import read (batch rows, their traces, the
        # organizations' users, portals, catalogue and memory), and the batch rows alone.
        print(f"import_rows_per_s: {totals['read'] / seconds:,.0f} (target >= 5,000)")
        print(f"import_items_per_s: {items / seconds:,.0f}")
        _, again = command("rcm_import_legacy", "--source", source)
        changed = again["details"]["totals"]["created"] + again["details"]["totals"]["updated"]
        print(f"reimport_changed_rows: {changed} (must be 0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=10)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--legacy-items", type=int, default=100_000)
    args = parser.parse_args()
    with bench_database("bench_migration"), tempfile.TemporaryDirectory() as folder:
        seed(args.orgs, args.rows)
        backup_figures(Path(folder))
        validate_figures()
        import_figures(args.orgs, args.legacy_items)


if __name__ == "__main__":
    main()
