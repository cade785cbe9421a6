"""The demo, end to end: `make run`'s seeding gives the demo organization a sandbox workflow and
a sample CSV; uploaded through the API, every row finishes in a real browser with the benefits
the sandbox holds for it."""

import csv
import io

from django.core.management import call_command

from rcm.context import org_context
from rcm.lookups import UserRole
from tenants import selectors
from tenants.management.commands.seed_demo import demo_email
from tests.conftest import client_for, wait_for
from webactions.management.commands.seed_sandbox_demo import WORKFLOW_NAME, sample_csv_path
from webactions.sandbox.data import sandbox_patient
from workflows.models import BatchJob, BatchJobItem, Workflow


def test_the_sample_csv_runs_to_the_sandboxs_answers(worker_processes, portal):
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_sandbox_demo", base_url=portal, stdout=io.StringIO())
    call_command("seed_sandbox_demo", base_url=portal, stdout=io.StringIO())  # idempotent
    operator = selectors.auth_user_by_email(email=demo_email(UserRole.OPERATOR))
    with org_context(operator.org_id):
        workflow = Workflow.objects.get(name=WORKFLOW_NAME)
        assert Workflow.objects.filter(name=WORKFLOW_NAME).count() == 1
    worker_processes(concurrency=2)
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
