"""``rcm``: the platform from a shell.

    rcm login --url https://rcm.example.org --email ops@example.org
    rcm batch upload patients.csv --workflow <id> --wait
    rcm batch results <job id> -o results.csv
    rcm runs list --status failed

Exit status: 0 done; 1 the platform refused (its error code and message on stderr); 2 a usage
error, no session, or no answer from the platform.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import TextIO

from rcm_client.client import Client
from rcm_client.config import (
    credentials_delete,
    credentials_load,
    credentials_path,
    credentials_save,
)
from rcm_client.errors import AuthenticationError, RcmConnectionError, RcmError
from rcm_client.models import ApiObject, BatchJob
from rcm_client.retry import RetryPolicy

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
CELL_MAX = 60
BAR_WIDTH = 30


class UsageError(Exception):
    """A mistake on the command line or in the local set-up: exit status 2."""


# -- the parser -------------------------------------------------------------------------------


def _connection_options(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument(
        "--url", default=default(None), help="the platform's address (default: RCM_URL, then "
        "the log-in's)",
    )  # fmt: skip
    parser.add_argument(
        "--timeout", type=float, default=default(30.0), help="seconds per request (30)"
    )
    parser.add_argument(
        "--retries", type=int, default=default(RetryPolicy.attempts - 1),
        help="retries of a request that failed for a passing cause: 429, 5xx, no connection "
        f"({RetryPolicy.attempts - 1})",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rcm", description="The RCM platform's v2 API.")
    _connection_options(parser, lambda value: value)
    # The same options after the command too (`rcm login --url …`); suppressed there when not
    # given, or a subcommand's default would overwrite what was given before the command.
    connection = argparse.ArgumentParser(add_help=False)
    _connection_options(connection, lambda value: argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(subparsers, name: str, *parents, **options) -> argparse.ArgumentParser:
        return subparsers.add_parser(name, parents=[connection, *parents], **options)

    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="the API's JSON instead of a table")
    limit = argparse.ArgumentParser(add_help=False)
    limit.add_argument("--limit", type=int, help="at most this many rows (default: all)")

    login = add(commands, "login", help="log in and keep the session")
    login.add_argument("--email", help="default: RCM_EMAIL, else asked")
    login.add_argument(
        "--password",
        help="default: RCM_PASSWORD, else asked, not echoed (a flag shows in the process list)",
    )
    login.add_argument(
        "--api-key", nargs="?", const="", help="log in with an API key (default: RCM_API_KEY)"
    )
    login.add_argument("--org", help="an organization other than your primary one")
    login.set_defaults(handler=cmd_login)
    add(commands, "logout", help="forget the session").set_defaults(handler=cmd_logout)
    whoami = add(commands, "whoami", as_json, help="the organization and role")
    whoami.set_defaults(handler=cmd_whoami)
    switch = add(commands, "switch-org", help="act in another organization of yours")
    switch.add_argument("org_id")
    switch.set_defaults(handler=cmd_switch_org)

    workflows = commands.add_parser("workflows", help="workflows").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    workflow_list = add(workflows, "list", as_json, limit)
    workflow_list.add_argument("--status", help="draft, active, suspended, archived")
    workflow_list.set_defaults(handler=cmd_workflows_list)

    runs = commands.add_parser("runs", help="workflow runs").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    run_list = add(runs, "list", as_json, limit, help="newest first")
    run_list.add_argument("--status", help="pending, running, completed, failed, …")
    run_list.add_argument("--workflow", help="a workflow's id")
    run_list.set_defaults(handler=cmd_runs_list)
    run_show = add(runs, "show", as_json)
    run_show.add_argument("run_id")
    run_show.set_defaults(handler=cmd_runs_show)
    run_start = add(runs, "start", as_json, help="run a workflow on one row")
    run_start.add_argument("workflow", help="the workflow's id")
    run_start.add_argument("--input", required=True, help='the row as JSON: {"member_id": …}')
    run_start.add_argument("--external-id")
    run_start.add_argument("--wait", action="store_true", help="until the run has ended")
    run_start.set_defaults(handler=cmd_runs_start)

    batch = commands.add_parser("batch", help="batch jobs").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    upload = add(batch, "upload", as_json, help="upload a CSV or .xlsx file")
    upload.add_argument("file")
    upload.add_argument("--workflow", required=True, help="the workflow's id")
    upload.add_argument("--wait", action="store_true", help="until every row has ended")
    upload.add_argument("--on-invalid", choices=["reject", "skip"])
    upload.add_argument("--column-map", help='JSON: {"file column": "field name"}')
    upload.add_argument("--max-concurrency", type=int)
    upload.add_argument("--prompt")
    upload.add_argument("--quiet", action="store_true", help="no progress bar")
    upload.set_defaults(handler=cmd_batch_upload)
    batch_list = add(batch, "list", as_json, limit, help="newest first")
    batch_list.add_argument("--status")
    batch_list.add_argument("--workflow")
    batch_list.set_defaults(handler=cmd_batch_list)
    show = add(batch, "show", as_json)
    show.add_argument("job_id")
    show.set_defaults(handler=cmd_batch_show)
    items = add(batch, "items", as_json, limit, help="the job's rows")
    items.add_argument("job_id")
    items.add_argument("--status", help="pending, running, completed, failed, cancelled")
    items.set_defaults(handler=cmd_batch_items)
    results = add(batch, "results", help="results.csv")
    results.add_argument("job_id")
    results.add_argument("-o", "--output", help="a file (default: standard output)")
    results.set_defaults(handler=cmd_batch_results)
    for name, handler, text in (
        ("cancel", cmd_batch_cancel, "cancel the pending rows"),
        ("retry", cmd_batch_retry, "run the failed rows again"),
    ):
        action = add(batch, name, as_json, help=text)
        action.add_argument("job_id")
        action.set_defaults(handler=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args) or EXIT_OK
    except UsageError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except RcmConnectionError as exc:
        _error(f"{exc.code}: {exc.message}")
        return EXIT_USAGE
    except RcmError as exc:
        _error(str(exc))
        for line in _detail_lines(exc.details):
            print(f"  {line}", file=sys.stderr)
        if isinstance(exc, AuthenticationError) and args.command != "login":
            print("  (run `rcm login` to log in again)", file=sys.stderr)
        return EXIT_REFUSED if exc.status else EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _error(message: str) -> None:
    print(f"rcm: error: {message}", file=sys.stderr)


def _detail_lines(details: dict) -> Iterator[str]:
    for name, value in details.items():
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            yield f"{name}: {'; '.join(value)}"
        else:
            yield f"{name}: {json.dumps(value, ensure_ascii=False)}"


# -- the session ------------------------------------------------------------------------------


def _url(args, stored: dict | None) -> str:
    url = args.url or os.environ.get("RCM_URL") or (stored or {}).get("url")
    if not url:
        raise UsageError("no platform URL: give --url, set RCM_URL, or run `rcm login`")
    return url


def _client(args, url: str, **credentials) -> Client:
    retry = RetryPolicy(attempts=max(0, args.retries) + 1)
    return Client(url, timeout=args.timeout, retry=retry, **credentials)


def _session(args) -> Client:
    """A client from the environment (RCM_API_KEY) or the stored log-in."""
    stored = credentials_load()
    api_key = os.environ.get("RCM_API_KEY")
    if not (api_key or stored):
        raise UsageError(f"not logged in ({credentials_path()} does not exist): run `rcm login`")
    url = _url(args, stored)
    if api_key:
        return _client(args, url, api_key=api_key)
    if stored.get("api_key"):
        return _client(args, url, api_key=stored["api_key"])
    return _client(args, url, refresh_token=stored.get("refresh"), org_id=stored.get("org_id"))


def _run(args, command: Callable[[Client], int | None]) -> int | None:
    """Run ``command`` with a session, then keep the refresh token it ended with: each one
    starts a new lifetime, so a CLI in use stays logged in."""
    with _session(args) as client:
        try:
            return command(client)
        finally:
            stored = credentials_load()
            if stored and stored.get("refresh") and client.refresh_token != stored["refresh"]:
                credentials_save(
                    {**stored, "refresh": client.refresh_token, "org_id": client.org_id}
                )


def cmd_login(args) -> None:
    url = _url(args, credentials_load())
    if args.api_key is not None:  # --api-key, with or without the key
        api_key = args.api_key or os.environ.get("RCM_API_KEY") or getpass.getpass("API key: ")
        with _client(args, url, api_key=api_key) as client:
            org = client.current_organization()
        path = credentials_save({"url": url, "api_key": api_key, "org_id": org.id})
        print(f"Logged in to {org.name} ({org.id}) with an API key; kept in {path}.")
        return
    email = args.email or os.environ.get("RCM_EMAIL") or input("Email: ").strip()
    password = args.password or os.environ.get("RCM_PASSWORD") or getpass.getpass("Password: ")
    with _client(args, url) as client:
        tokens = client.login(email, password, org_id=args.org)
        org = client.current_organization()
    credentials = {"url": url, "email": email, "org_id": tokens.org_id, "refresh": tokens.refresh}
    path = credentials_save(credentials)
    print(f"Logged in to {org.name} ({org.id}) as {tokens.role}; session kept in {path}.")


def cmd_logout(args) -> None:
    if credentials_delete():
        print("Logged out.")
    else:
        print("Not logged in.")


def cmd_whoami(args) -> int | None:
    def command(client: Client) -> None:
        org = client.current_organization()
        if args.json:
            _print_json(org.raw)
        else:
            print(f"{org.name} ({org.id}), {org.org_type}; role: {client.role or 'api_user'}")

    return _run(args, command)


def cmd_switch_org(args) -> int | None:
    def command(client: Client) -> None:
        tokens = client.switch_org(args.org_id)
        print(f"Now acting in {tokens.org_id} as {tokens.role}.")

    return _run(args, command)


# -- workflows and runs -----------------------------------------------------------------------

WORKFLOW_COLUMNS = ("id", "name", "status", "latest_revision_num", "updated_at")
RUN_COLUMNS = ("id", "workflow_id", "status", "result", "created_at", "duration_ms", "error")


def cmd_workflows_list(args) -> int | None:
    return _run(
        args, lambda client: _list(args, client.workflows(status=args.status), WORKFLOW_COLUMNS)
    )


def cmd_runs_list(args) -> int | None:
    def command(client: Client) -> None:
        runs = client.runs(status=args.status, workflow=args.workflow, page_size=200)
        _list(args, runs, RUN_COLUMNS)

    return _run(args, command)


def cmd_runs_show(args) -> int | None:
    return _run(args, lambda client: _show(args, client.run(args.run_id), RUN_COLUMNS))


def cmd_runs_start(args) -> int | None:
    try:
        row = json.loads(args.input)
    except ValueError as exc:
        raise UsageError(f"--input is not JSON: {exc}") from None
    if not isinstance(row, dict):
        raise UsageError("--input must be a JSON object")

    def command(client: Client) -> int:
        run = client.run_workflow(
            args.workflow, input=row, external_id=args.external_id, wait=args.wait
        )
        _show(args, run, RUN_COLUMNS)
        return EXIT_REFUSED if args.wait and run.status != "completed" else EXIT_OK

    return _run(args, command)


# -- batch jobs -------------------------------------------------------------------------------

JOB_COLUMNS = (
    "id", "status", "total_rows", "successful_rows", "failed_rows", "file_name", "created_at",
)  # fmt: skip
ITEM_COLUMNS = ("row_number", "status", "run_id", "attempts", "error")


def cmd_batch_upload(args) -> int | None:
    column_map = None
    if args.column_map:
        try:
            column_map = json.loads(args.column_map)
        except ValueError as exc:
            raise UsageError(f"--column-map is not JSON: {exc}") from None
    if not os.path.isfile(args.file):
        raise UsageError(f"{args.file}: no such file")

    def command(client: Client) -> None:
        bar = None if args.quiet or not args.wait else ProgressBar(sys.stderr)
        try:
            job = client.upload_batch(
                args.file, workflow=args.workflow, column_map=column_map,
                on_invalid=args.on_invalid, max_concurrency=args.max_concurrency,
                prompt=args.prompt, wait=args.wait, on_progress=bar,
            )  # fmt: skip
        finally:
            if bar is not None:
                bar.close()
        _show(args, job, JOB_COLUMNS)

    return _run(args, command)


def cmd_batch_list(args) -> int | None:
    def command(client: Client) -> None:
        jobs = client.batch_jobs(status=args.status, workflow=args.workflow, page_size=200)
        _list(args, jobs, JOB_COLUMNS)

    return _run(args, command)


def cmd_batch_show(args) -> int | None:
    return _run(args, lambda client: _show(args, client.batch_job(args.job_id), JOB_COLUMNS))


def cmd_batch_items(args) -> int | None:
    def command(client: Client) -> None:
        items = client.batch_items(args.job_id, status=args.status, page_size=200)
        _list(args, items, ITEM_COLUMNS)

    return _run(args, command)


def cmd_batch_results(args) -> int | None:
    def command(client: Client) -> None:
        if args.output and args.output != "-":
            path = client.save_batch_results(args.job_id, args.output)
            print(f"Saved {path}.", file=sys.stderr)
        else:
            sys.stdout.write(client.batch_results(args.job_id))

    return _run(args, command)


def cmd_batch_cancel(args) -> int | None:
    return _run(args, lambda client: _show(args, client.cancel_batch(args.job_id), JOB_COLUMNS))


def cmd_batch_retry(args) -> int | None:
    return _run(args, lambda client: _show(args, client.retry_failed(args.job_id), JOB_COLUMNS))


class ProgressBar:
    """``[#####-----]  50.0%  10/20 rows, 1 failed  processing`` on one line of ``stream``,
    redrawn in place (``\\r``) whenever the job's counts move."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.width = 0

    def __call__(self, job: BatchJob) -> None:
        percent = job.progress.percent_done
        filled = round(BAR_WIDTH * percent / 100)
        line = (
            f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {percent:5.1f}%  "
            f"{job.processed_rows}/{job.total_rows} rows, {job.failed_rows} failed  {job.status}"
        )
        # Padded to the last line's length: a shorter line would leave the old one's tail.
        self.stream.write("\r" + line.ljust(self.width))
        self.stream.flush()
        self.width = len(line)

    def close(self) -> None:
        if self.width:
            self.stream.write("\n")
            self.stream.flush()


# -- output -----------------------------------------------------------------------------------


def _list(args, objects: Iterable[ApiObject], columns: tuple[str, ...]) -> None:
    if args.limit is not None:
        objects = islice(objects, args.limit)
    if args.json:
        _print_json([obj.raw for obj in objects])
    else:
        print_table(objects, columns)


def _show(args, obj: ApiObject, columns: tuple[str, ...]) -> None:
    if args.json:
        _print_json(obj.raw)
        return
    width = max(len(name) for name in columns)
    for name in columns:
        print(f"{name.ljust(width)}  {_cell(getattr(obj, name))}")


def _print_json(value) -> None:
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def print_table(objects: Iterable[ApiObject], columns: tuple[str, ...], out=None) -> None:
    out = out or sys.stdout
    rows = [[_cell(getattr(obj, name)) for name in columns] for obj in objects]
    header = [name.upper() for name in columns]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print(line.rstrip(), file=out)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    text = " ".join(str(value).split())  # one line per row, whatever an error message holds
    return text if len(text) <= CELL_MAX else text[: CELL_MAX - 1] + "…"


if __name__ == "__main__":
    sys.exit(main())
