"""The demo's eligibility workflow run by the platform, against a hand-written Playwright script.

    .venv/bin/python benchmarks/web_actions.py [--rows 50]

The workload: "Eligibility & benefits" as ``seed_sandbox_demo`` publishes it (log in with a
TOTP code, search a member by member ID, date of birth and last name, extract coverage, plan
and group number) for ``--rows`` distinct members of the sandbox portal (layout v1, no injected
latency or failures). The portal is served by gunicorn in a process of its own, as the tests'
``portal`` fixture and `make run` serve it (2 sync workers), on a throw-away database.

Platform: the demo's seeding (``seed_demo``, ``seed_sandbox_demo``), then a batch job
uploaded through ``batch_job_upload`` (what the API and ``run_batch`` call), with the API's
default max_concurrency of 4. Two `celery worker` processes: the web worker consumes
CELERY_WEB_QUEUE alone with 2 prefork processes (each starts its own Chromium on its first
row, as in production); a separate engine worker with 1 process consumes the default queue
(the batch feeder; entry and outcome nodes complete inline). The clock runs from just before
the upload to the job's ``completed_at``. Settings are the platform's base ones: the browser's
address guard is on (every request a page makes passes through a route in Python), letting
only the sandbox at PUBLIC_BASE_URL through.

Scripted: the same steps for the same rows with fixed CSS selectors in two processes
(multiprocessing, half of the rows each), each with its own Chromium
(``webactions.browser.launch``), logging in once and reusing its page. Its clock runs from
both processes being ready (imports done) to the last row, browser start and log-in included,
as the platform's includes them. It runs once before the platform's phase and once after, and
``scripted_rows_per_min`` is the mean of the two, so that a change of the machine's load (it is
shared) between the phases moves both sides of the ratio alike.

Figures:

* ``platform_rows_per_min``, ``scripted_rows_per_min``, ``ratio_vs_scripted`` (the first over
  the second);
* ``action_p50_ms``: median duration of the job's per-action traces (``workflow_trace`` rows
  whose action_type starts with ``web.``), log-in actions included;
* ``browser_start_ms``: median of 5 ``webactions.browser.launch`` calls (to the browser being
  connected; closing it is not timed), taken before anything else runs;
* ``login_reuse_share``: the share of rows whose runs have no trace of the ``login`` phase
  (a stored session was reused);
* ``worker_peak_rss_mb``: the peak, over samples every 100 ms during the platform phase, of the
  summed VmRSS of the web worker's whole process tree: the celery main process, its 2 pool
  processes and all their descendants (Playwright's driver, Chromium's browser, zygote,
  renderer, GPU and utility processes). Shared pages (Chromium's code, memory inherited over
  fork) count once per process that maps them, so the figure is an upper bound. The engine
  worker, gunicorn and the servers are not in it.

Every row must end completed with the coverage, plan and group number the sandbox holds
(webactions/sandbox/data.py), in the platform's results and the script's alike; otherwise
the script names the rows that failed and exits non-zero without printing figures.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from datetime import datetime

import psutil
from _common import bench_database
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from rcm import webserver
from rcm.celery import app
from rcm.context import org_context
from rcm.lookups import UserRole
from rcm.progress import ProgressBar
from rcm.workers import WorkerProcess, database_url, queue_drop
from tenants import selectors as tenant_selectors
from tenants.demo import demo_email
from webactions import browser as chromium
from webactions.management.commands.seed_sandbox_demo import WORKFLOW_NAME
from webactions.sandbox.data import Patient, sandbox_patient, sandbox_patients
from webactions.sandbox.views import ACCOUNTS
from webactions.totp import totp_now
from workflows.models import BatchJob, BatchJobItem, NodeRun, Workflow, WorkflowTrace

LOGLEVEL = "WARNING"
LAYOUT = "v1"
BROWSER_LAUNCHES = 5
RSS_SAMPLE_S = 0.1
JOB_TIMEOUT_S = 900
# The scripted steps' selectors, fixed for layout v1 (webactions/templates/sandbox/v1/).
LOGIN_FIELDS = ("#username", "#password", "#code")
LOGIN_BUTTON = "#btnLogin"
SEARCH_FIELDS = ("#member_id", "#dob", "#last_name")
SEARCH_BUTTON = "#btnSearch"
COVERAGE_CELLS = {
    "coverage": "#coverageTable tr:nth-child(1) td",
    "plan": "#coverageTable tr:nth-child(3) td",
    "group": "#coverageTable tr:nth-child(4) td",
}


def expected_benefits(patient: Patient) -> dict:
    """What the workflow's extract should find for ``patient`` (the v1 eligibility page)."""
    return {
        "coverage": "Active" if patient.active else "Inactive",
        "plan": patient.plan,
        "group": patient.group_number,
    }


# -- the portal and the workers ---------------------------------------------------------------


def portal_start(port: int) -> subprocess.Popen:
    """gunicorn serving the platform (and so /sandbox/) on the benchmark's database."""
    db = connection.settings_dict
    owner = settings.DATABASE_OWNER
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(db),
        "DATABASE_OWNER_URL": database_url(db, user=owner["USER"], password=owner["PASSWORD"]),
        "REDIS_URL": settings.REDIS_URL,
        "WEB_CONCURRENCY": "2",
    }
    server = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed argv
        webserver.gunicorn_argv(port),
        cwd=settings.BASE_DIR,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    login_url = f"http://127.0.0.1:{port}/sandbox/{LAYOUT}/login/"
    deadline = time.monotonic() + 60
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while True:
        try:
            with opener.open(login_url, timeout=2):
                return server
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.terminate()
                raise SystemExit("the sandbox portal (gunicorn) did not start") from None
            time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def children_write_to_stderr():
    """Processes started in the block write their standard output to our standard error
    (celery prints its banner and its shutdown there), so that ours carries the figures alone."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def workers_start(queue: str, web_queue: str, routing: dict) -> tuple:
    """The engine's worker (1 process, the default queue) and the browser queue's (2 pool
    processes), both answering; their standard output goes to our standard error."""
    with children_write_to_stderr():
        engine_worker = WorkerProcess(
            queue, concurrency=1, env=routing, loglevel=LOGLEVEL, name=f"{queue}-engine@%h"
        )
        web_worker = WorkerProcess(
            web_queue, concurrency=2, env=routing, loglevel=LOGLEVEL, name=f"{web_queue}@%h"
        )
    workers_ready([f"{queue}-engine@", f"{web_queue}@"])
    return engine_worker, web_worker


def everything_stop(portal, workers, queues) -> None:
    """The workers (those started), their queues, then the portal."""
    for worker in workers:
        if worker is not None:
            worker.stop()
    for queue in queues:
        queue_drop(queue)
    portal.terminate()
    portal.wait(timeout=30)


def workers_ready(names: list[str], timeout: float = 60) -> None:
    """Wait until every worker named answers a ping: its pool is up and consuming."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answered = {name for reply in app.control.ping(timeout=1) for name in reply}
        if all(any(seen.startswith(name) for seen in answered) for name in names):
            return
    raise SystemExit(f"workers {names} did not answer within {timeout}s")


class TreeRss:
    """The peak of the summed VmRSS of a process and all its descendants, sampled in a thread."""

    def __init__(self, pid: int):
        self.root = psutil.Process(pid)
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(RSS_SAMPLE_S):
            total = 0
            for process in (self.root, *self.root.children(recursive=True)):
                try:
                    total += process.memory_info().rss
                except psutil.NoSuchProcess:
                    continue  # ended between the listing and the reading
            self.peak_bytes = max(self.peak_bytes, total)


# -- the platform ---------------------------------------------------------------------------


def demo_seed(portal_url: str):
    """The demo's organization, operator and published sandbox workflow."""
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_sandbox_demo", base_url=portal_url, stdout=io.StringIO())
    operator = tenant_selectors.auth_user_by_email(email=demo_email(UserRole.OPERATOR))
    with org_context(operator.org_id):
        workflow = Workflow.objects.get(name=WORKFLOW_NAME)
    return operator, workflow


def rows_csv(patients: list[Patient]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["member_id", "dob", "last_name"])
    for patient in patients:
        writer.writerow([patient.member_id, patient.date_of_birth.isoformat(), patient.last_name])
    return out.getvalue().encode()


def platform_run(operator, workflow, patients: list[Patient]) -> tuple[BatchJob, datetime]:
    """Upload the rows as a batch job and wait for its end; the job and when it started."""
    from workflows.services import batch_upload

    upload = SimpleUploadedFile("eligibility.csv", rows_csv(patients), content_type="text/csv")
    with org_context(operator.org_id):
        started = timezone.now()
        job = batch_upload.batch_job_upload(
            workflow=workflow,
            file=upload,
            column_map=None,
            on_invalid="reject",
            created_by=operator,
        )
        deadline = time.monotonic() + JOB_TIMEOUT_S
        with ProgressBar(job.total_rows, "platform rows") as bar:
            while job.completed_at is None:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the batch job did not end within {JOB_TIMEOUT_S}s")
                time.sleep(0.25)
                job = BatchJob.objects.get(pk=job.pk)
                bar.advance(job.processed_rows - bar.done)
    return job, started


def platform_failures(job: BatchJob, patients: list[Patient]) -> list[str]:
    """Every row that did not end completed with the sandbox's benefits, described."""
    items = list(BatchJobItem.objects.filter(batch_job=job).order_by("row_number"))
    uploaded = [item.input_data["member_id"] for item in items]
    if uploaded != [patient.member_id for patient in patients]:
        return [f"the job holds {len(items)} rows, not the {len(patients)} members uploaded"]
    failures = []
    for item in items:
        patient = sandbox_patient(item.input_data["member_id"])
        wanted = expected_benefits(patient)
        got = {name: (item.output_data or {}).get(name) for name in wanted}
        if item.status != "completed" or got != wanted:
            failures.append(
                f"platform row {item.row_number}: {item.status} {item.error_message!r} {got}"
            )
    return failures


def time_spent(job: BatchJob, started) -> str:
    """Where the platform phase's time went, for stderr: to the first web step's start, the web
    steps (their actions, and the rest of the step: claim, secrets, traces), and after the last."""
    run_ids = BatchJobItem.objects.filter(batch_job=job).values_list("run_id", flat=True)
    steps = list(
        NodeRun.objects.filter(run_id__in=list(run_ids), node_key="check")
        .exclude(started_at=None)
        .values_list("run_id", "started_at", "ended_at")
    )
    actions = dict(
        WorkflowTrace.objects.filter(
            run_id__in=[run for run, *_ in steps], action_type__startswith="web."
        )
        .values_list("run_id")
        .annotate(total=Sum("duration_ms"))
    )
    step_ms = statistics.mean((end - start).total_seconds() * 1000 for _, start, end in steps)
    action_ms = statistics.mean(actions.values())
    first = min(start for _, start, _ in steps)
    last = max(end for *_, end in steps)
    return (
        f"platform phase: {(first - started).total_seconds():.2f}s to the first web step, "
        f"web steps {step_ms:.0f} ms each ({action_ms:.0f} in their actions), "
        f"{(job.completed_at - last).total_seconds():.2f}s after the last"
    )


def job_traces(job: BatchJob) -> tuple[list[int], float]:
    """The durations of the job's per-action traces, and the share of rows that did not log
    in (their runs have no trace of the log-in phase)."""
    run_ids = list(
        BatchJobItem.objects.filter(batch_job=job).values_list("run_id", flat=True).distinct()
    )
    traces = WorkflowTrace.objects.filter(run_id__in=run_ids, action_type__startswith="web.")
    durations = list(traces.values_list("duration_ms", flat=True))
    logged_in = set(
        traces.filter(action_detail__phase="login").values_list("run_id", flat=True).distinct()
    )
    return durations, 1 - len(logged_in) / len(run_ids)


# -- the hand-written script ----------------------------------------------------------------


def scripted_process(base_url: str, member_ids: list[str], ready, results) -> None:
    """One process of the script: its own Chromium, one log-in, then row after row on the
    same page. Puts ("row", failure or None) per row, then ("done", end time)."""
    from playwright.sync_api import sync_playwright

    ready.wait()
    try:
        with sync_playwright() as playwright:
            browser = chromium.launch(playwright)
            page = browser.new_page()
            scripted_log_in(page, base_url)
            for member_id in member_ids:
                results.put(("row", scripted_row(page, base_url, sandbox_patient(member_id))))
            browser.close()
    except Exception as exc:  # noqa: BLE001 - reported as a failure by the parent
        results.put(("error", f"scripted process {os.getpid()}: {exc!r}"))
    results.put(("done", time.monotonic()))


def scripted_log_in(page, base_url: str) -> None:
    account = ACCOUNTS["clerk"]
    page.goto(f"{base_url}login/", wait_until="domcontentloaded")
    for selector, value in zip(
        LOGIN_FIELDS,
        (account.username, account.password, totp_now(account.totp_seed)),
        strict=True,
    ):
        page.fill(selector, value)
    with page.expect_navigation(wait_until="domcontentloaded"):
        page.click(LOGIN_BUTTON)


def scripted_row(page, base_url: str, patient: Patient) -> str | None:
    """Search one member and read the benefits; what went wrong, or None."""
    page.goto(base_url, wait_until="domcontentloaded")
    values = (patient.member_id, patient.date_of_birth.isoformat(), patient.last_name)
    for selector, value in zip(SEARCH_FIELDS, values, strict=True):
        page.fill(selector, value)
    with page.expect_navigation(wait_until="domcontentloaded"):
        page.click(SEARCH_BUTTON)
    got = {name: page.inner_text(cell).strip() for name, cell in COVERAGE_CELLS.items()}
    return None if got == expected_benefits(patient) else f"scripted {patient.member_id}: {got}"


def scripted_run(base_url: str, patients: list[Patient], processes: int = 2):
    """The script's rows per minute over ``processes`` processes, and the rows that failed."""
    spawn = multiprocessing.get_context("spawn")
    ready = spawn.Barrier(processes + 1)
    results = spawn.Queue()
    member_ids = [patient.member_id for patient in patients]
    workers = [
        spawn.Process(
            target=scripted_process,
            args=(base_url, member_ids[number::processes], ready, results),
        )
        for number in range(processes)
    ]
    for worker in workers:
        worker.start()
    ready.wait(timeout=120)
    started = time.monotonic()
    failures, ends = [], []
    with ProgressBar(len(patients), "scripted rows") as bar:
        while len(ends) < processes:
            kind, value = results.get(timeout=JOB_TIMEOUT_S)
            if kind == "done":
                ends.append(value)
            elif kind == "error":
                failures.append(value)
            else:
                bar.advance()
                if value is not None:
                    failures.append(value)
    for worker in workers:
        worker.join(timeout=30)
        if worker.exitcode != 0:
            failures.append(f"scripted process {worker.pid} exited with {worker.exitcode}")
    return len(patients) * 60 / (max(ends) - started), failures


def browser_start_ms(count: int = BROWSER_LAUNCHES) -> float:
    from playwright.sync_api import sync_playwright

    durations = []
    with sync_playwright() as playwright:
        for _ in ProgressBar.over(range(count), "browser launches"):
            started = time.perf_counter()
            browser = chromium.launch(playwright)
            durations.append((time.perf_counter() - started) * 1000)
            browser.close()
    return statistics.median(durations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50, help="distinct sandbox members (<= 500)")
    args = parser.parse_args()
    patients = list(sandbox_patients()[: args.rows])
    if len(patients) < args.rows:
        parser.error(f"the sandbox holds {len(patients)} members")

    launch_ms = browser_start_ms()  # first, on a quiet machine: no worker or portal yet
    suffix = uuid.uuid4().hex[:8]
    queue, web_queue = f"bench-{suffix}", f"bench-web-{suffix}"
    settings.CELERY_TASK_DEFAULT_QUEUE = app.conf.task_default_queue = queue
    settings.CELERY_WEB_QUEUE = web_queue
    port = free_port()
    portal_url = settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{port}"
    base_url = f"{portal_url}/sandbox/{LAYOUT}/"
    routing = {"CELERY_QUEUE": queue, "CELERY_WEB_QUEUE": web_queue, "PUBLIC_BASE_URL": portal_url}
    with bench_database("bench_web"):
        portal = portal_start(port)
        engine_worker = web_worker = None
        try:
            operator, workflow = demo_seed(portal_url)
            before_per_min, scripted_failures = scripted_run(base_url, patients)
            engine_worker, web_worker = workers_start(queue, web_queue, routing)
            with TreeRss(web_worker.process.pid) as rss:
                job, started = platform_run(operator, workflow, patients)
            seconds = (job.completed_at - started).total_seconds()
            with org_context(operator.org_id):
                print(time_spent(job, started), file=sys.stderr)
                failures = platform_failures(job, patients)
                durations, reuse_share = job_traces(job)
            web_worker.stop()  # the script's phase has the machine to itself
            engine_worker.stop()
            after_per_min, failures_after = scripted_run(base_url, patients)
            scripted_failures += failures_after
            scripted_per_min = (before_per_min + after_per_min) / 2
            print(
                f"scripted: {before_per_min:.1f} rows/min before the platform, "
                f"{after_per_min:.1f} after",
                file=sys.stderr,
            )
        finally:
            everything_stop(portal, (web_worker, engine_worker), (queue, web_queue))
    failures += scripted_failures
    if failures:
        # Figures of a run in which rows failed would measure the failures.
        print("\n".join(failures), file=sys.stderr)
        raise SystemExit(f"{len(failures)} rows failed; no figures")
    platform_per_min = len(patients) * 60 / seconds
    print(f"platform_rows_per_min: {platform_per_min:.1f}")
    print(f"scripted_rows_per_min: {scripted_per_min:.1f}")
    print(f"ratio_vs_scripted: {platform_per_min / scripted_per_min:.2f}")
    print(f"action_p50_ms: {statistics.median(durations):.0f}")
    print(f"browser_start_ms: {launch_ms:.0f}")
    print(f"login_reuse_share: {reuse_share:.2f}")
    print(f"worker_peak_rss_mb: {rss.peak_bytes / 2**20:.0f}")


if __name__ == "__main__":
    main()
