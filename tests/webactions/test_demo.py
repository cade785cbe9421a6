"""The demo, end to end: `make run`'s seeding gives the demo organization a sandbox workflow and
a sample CSV; uploaded through the API, every row finishes in a real browser with the benefits
the sandbox holds for it."""

import csv
import datetime as dt
import io
import logging
import re

from django.core.management import call_command
from django.db import connection, transaction

from rcm.context import org_context
from rcm.lookups import UserRole
from tenants import selectors
from tenants.demo import demo_email
from tests.conftest import client_for, wait_for
from webactions.management.commands.seed_sandbox_demo import WORKFLOW_NAME, sample_csv_path
from webactions.sandbox import views
from webactions.sandbox.data import sandbox_patient
from workflows.models import BatchJob, BatchJobItem, Workflow


def test_the_sample_csv_runs_to_the_sandboxs_answers(worker_processes, portal, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_sandbox_demo", base_url=portal, stdout=io.StringIO())
    call_command("seed_sandbox_demo", base_url=portal, stdout=io.StringIO())  # idempotent
    operator = selectors.auth_user_by_email(email=demo_email(UserRole.OPERATOR))
    with org_context(operator.org_id):
        workflow = Workflow.objects.get(name=WORKFLOW_NAME)
        assert Workflow.objects.filter(name=WORKFLOW_NAME).count() == 1
    worker_log = tmp_path / "worker.log"
    worker_processes(concurrency=2, loglevel="INFO", log_path=worker_log)
    client = client_for(operator, operator.org_id, UserRole.OPERATOR)
    with sample_csv_path().open("rb") as sample:
        uploaded = client.post(
            "/api/v2/batch-jobs/",
            {"workflow": str(workflow.pk), "file": sample},
            format="multipart",
        )
    assert uploaded.status_code == 201, uploaded.json()
    job_id = uploaded.json()["id"]

    def settled() -> bool:
        with org_context(operator.org_id):
            return BatchJob.objects.get(pk=job_id).completed_at is not None

    wait_for(settled, timeout=240, interval=1)
    rows = list(csv.DictReader(sample_csv_path().open()))
    with org_context(operator.org_id):
        items = {item.row_number: item for item in BatchJobItem.objects.filter(batch_job_id=job_id)}
    assert len(items) == len(rows) == 21
    for number, row in enumerate(rows, start=1):
        item = items[number]
        patient = sandbox_patient(row["member_id"])
        if patient is None:
            # The sandbox said "Member not found": the workflow's not_found outcome.
            with org_context(operator.org_id):
                assert (item.status, item.run.outcome) == ("failed", "not_found")
            continue
        assert item.status == "completed", (number, item.error_message)
        benefits = item.output_data
        assert benefits["plan"] == patient.plan and benefits["group"] == patient.group_number
        assert benefits["coverage"] == ("Active" if patient.active else "Inactive")

    # Nothing of a row outside its own input and output: every column of every table this
    # organization can read (row-level security shows it nothing else), the worker's log at
    # make run's level, and this process's log.
    values = _row_values(rows)
    secrets = _secret_values()
    stored = _database_text(operator.org_id)
    logs = worker_log.read_text() + caplog.text
    assert "Task workflows" in logs or "succeeded" in logs, "the worker's log was not read"
    for where, text in [*stored.items(), ("the logs", logs)]:
        leaked = sorted(
            {
                value
                for value in values + secrets
                if re.search(rf"(?<!\w){re.escape(value)}(?!\w)", text)
            }
        )
        assert not leaked, f"{where} holds {leaked}"


# Where a row's own values belong (DESIGN.md: row inputs are kept in their batch item), and
# the screenshot's picture (PHI by design; served to the organization alone).
ROW_COLUMNS = {
    "batch_job_item": ("input_data", "output_data"),
    "workflow_run": ("input", "context", "output"),
    "node_run": ("output",),
    "web_screenshot": ("image",),
    "portal_credential": ("encrypted_credential",),
    "browser_session": ("encrypted_state",),
}


def _row_values(rows: list[dict]) -> list[str]:
    values = set()
    for row in rows:
        born = dt.date.fromisoformat(row["dob"])
        values |= {row["member_id"], row["last_name"], row["dob"], born.strftime("%m/%d/%Y")}
    return sorted(values)


def _secret_values() -> list[str]:
    clerk = views.ACCOUNTS["clerk"]
    return [clerk.password, clerk.totp_seed, f'"{clerk.username}"']


def _database_text(org_id) -> dict[str, str]:
    """Table -> its rows as JSON text, without the columns that may hold a row's values."""
    with org_context(org_id), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v') "
            "AND has_table_privilege(c.oid, 'SELECT') ORDER BY 1"
        )
        tables = [name for (name,) in cursor.fetchall()]
        found = {}
        for table in tables:
            dropped = "".join(f" - '{column}'" for column in ROW_COLUMNS.get(table, ()))
            cursor.execute(
                f"SELECT coalesce(string_agg((to_jsonb(t){dropped})::text, chr(10)), '') "
                f"FROM {connection.ops.quote_name(table)} t"
            )
            found[table] = cursor.fetchone()[0]
    assert found["batch_job_item"] and found["workflow_trace"], "nothing was read"
    return found
