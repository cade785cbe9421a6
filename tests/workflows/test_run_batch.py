"""``run_batch``: a file uploaded as the API uploads it, followed to its end with a progress
bar and a summary; bad arguments refused with a clear message and nothing created."""

import io
import json
import uuid

import pytest
from django.core.management import CommandError, call_command

from rcm.context import org_context
from tests.workflows.engine_helpers import published, published_transform
from workflows.management.commands import run_batch
from workflows.models import BatchJob, BatchJobItem, Workflow

HEADER = "member_id,name"


@pytest.fixture
def workflow(org_a) -> Workflow:
    return published_transform(
        org_a.id, {"greeting": "hi {{ input.name }}"}, required_data=["member_id", "name"]
    )[0]


def _csv(tmp_path, lines: list[str], name: str = "march.csv") -> str:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def _run(path: str, org_id, workflow_id, **options) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "run_batch",
        path,
        org=str(org_id),
        workflow=str(workflow_id),
        stdout=out,
        stderr=err,
        **options,
    )
    return out.getvalue(), err.getvalue()


def _jobs(org_id) -> list[BatchJob]:
    with org_context(org_id):
        return list(BatchJob.objects.order_by("pk"))


# -- running -----------------------------------------------------------------------------------


@pytest.mark.celery_worker
def test_a_file_runs_to_its_end_behind_a_progress_bar_then_a_summary(
    celery_worker, org_a, workflow, tmp_path
):
    path = _csv(tmp_path, [HEADER, *(f"W{n},Patient {n}" for n in range(1, 7))])
    out, err = _run(path, org_a.id, workflow.pk, max_concurrency=3)
    [job] = _jobs(org_a.id)
    assert (job.status_id, job.successful_rows, job.total_rows) == ("completed", 6, 6)
    assert job.file_name == "march.csv" and job.max_concurrency == 3 and job.created_by is None
    with org_context(org_a.id):
        first = BatchJobItem.objects.get(batch_job=job, row_number=1)
    assert first.output_data == {"greeting": "hi Patient 1"}
    assert f"batch job {job.pk}" in err and "6/6" in err  # the bar's last line
    lines = out.splitlines()
    assert lines[0] == f"Created batch job {job.pk}: 6 rows, 6 to run, 0 failed the upload's check."
    assert lines[1] == f"Batch job {job.pk}: completed"
    assert "  successful: 6" in lines and "  failed: 0" in lines and "  cancelled: 0" in lines
    assert f"  results: GET /api/v2/batch-jobs/{job.pk}/results.csv" in lines
    assert any(line.startswith("  duration: ") for line in lines)
    assert any(line.startswith("  rows/s: ") for line in lines)


@pytest.mark.celery_worker
def test_skip_runs_the_valid_rows_and_the_column_map_renames_columns(
    celery_worker, org_a, workflow, tmp_path
):
    path = _csv(tmp_path, ["Member ID,name", "W1,Ada", ",Bob", "W3,Cy"])
    out, _ = _run(
        path,
        org_a.id,
        workflow.pk,
        on_invalid="skip",
        column_map=json.dumps({"Member ID": "member_id"}),
    )
    [job] = _jobs(org_a.id)
    assert (job.status_id, job.successful_rows, job.failed_rows) == ("partially_completed", 2, 1)
    with org_context(org_a.id):
        failed = BatchJobItem.objects.get(batch_job=job, status="failed")
    assert (failed.row_number, failed.error_message) == (2, "Member ID is required.")
    assert "3 rows, 2 to run, 1 failed the upload's check." in out
    assert f"Batch job {job.pk}: partially_completed" in out and "  failed: 1" in out


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_reject_lists_the_first_20_row_errors_and_creates_nothing(org_a, workflow, tmp_path):
    rows = [f"W{n},Patient {n}" if n % 2 else f",Patient {n}" for n in range(1, 52)]
    path = _csv(tmp_path, [HEADER, *rows])
    err = io.StringIO()
    with pytest.raises(CommandError, match=r"25 row\(s\) do not satisfy .*\(invalid_rows\)"):
        call_command("run_batch", path, org=str(org_a.id), workflow=str(workflow.pk), stderr=err)
    listed = err.getvalue().splitlines()
    assert listed[0] == "  Row 2: Member ID is required."
    assert listed[19] == "  Row 40: Member ID is required."
    assert listed[20:] == ["  (20 of the 25 listed errors shown)"]
    assert _jobs(org_a.id) == []


@pytest.mark.django_db
def test_a_refused_file_says_why(org_a, workflow, tmp_path):
    path = _csv(tmp_path, ["member_id,note", "W1,x"])
    with pytest.raises(CommandError, match=r"no column for these required fields: name"):
        _run(path, org_a.id, workflow.pk)
    assert _jobs(org_a.id) == []


@pytest.fixture
def good_file(tmp_path) -> str:
    return _csv(tmp_path, [HEADER, "W1,Ada"])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"org": "acme"}, "--org must be an organization id (a UUID); got 'acme'."),
        ({"org": "unknown"}, "No active organization has the id "),
        ({"workflow": "w-1"}, "--workflow: Must be a valid UUID."),
        ({"workflow": "unknown"}, "has no workflow with the id "),
        ({"workflow": "other org"}, "has no workflow with the id "),
        ({"max_concurrency": 0}, "--max-concurrency: Ensure this value is greater than or equal"),
        ({"max_concurrency": 101}, "--max-concurrency: Ensure this value is less than or equal"),
        ({"column_map": "Member ID=member_id"}, "--column-map: Expected a JSON object"),
        ({"column_map": '{"Member ID": ""}'}, "--column-map: Column and field names must be"),
        ({"column_map": '{"Nope": "member_id"}'}, "column_map names columns the file does not"),
        ({"on_invalid": "ignore"}, '--on-invalid: "ignore" is not a valid choice.'),
        ({"file": "missing.csv"}, "Cannot read missing.csv: No such file or directory."),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_message(
    org_a, org_b, workflow, good_file, options, message
):
    other_workflow, _ = published(org_b.id, "start>done")
    special = {
        "unknown": str(uuid.uuid4()),
        "other org": str(other_workflow.pk),
    }
    arguments = {"org": str(org_a.id), "workflow": str(workflow.pk), **options}
    for name in ("org", "workflow"):
        arguments[name] = special.get(arguments[name], arguments[name])
    path = arguments.pop("file", good_file)
    with pytest.raises(CommandError) as refused:
        call_command("run_batch", path, stdout=io.StringIO(), **arguments)
    assert message in str(refused.value)
    assert _jobs(org_a.id) == [] and _jobs(org_b.id) == []


@pytest.mark.django_db
def test_a_suspended_workflow_is_refused(org_a, workflow, good_file):
    with org_context(org_a.id):
        Workflow.objects.filter(pk=workflow.pk).update(status_id="suspended")
    with pytest.raises(CommandError, match=r"\(workflow_not_active\)$"):
        _run(good_file, org_a.id, workflow.pk)


@pytest.mark.django_db
def test_the_organization_and_workflow_are_required(good_file):
    with pytest.raises(CommandError, match="the following arguments are required: --org"):
        call_command("run_batch", good_file, workflow=str(uuid.uuid4()))


# -- not waiting -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_no_wait_returns_once_the_job_is_created(org_a, workflow, good_file):
    out, err = _run(good_file, org_a.id, workflow.pk, no_wait=True)
    [job] = _jobs(org_a.id)
    assert job.status_id == "pending" and job.total_rows == 1
    assert out.splitlines()[1] == f"Follow it with GET /api/v2/batch-jobs/{job.pk}/"
    assert err == ""  # no progress bar


@pytest.mark.django_db
def test_ctrl_c_while_waiting_leaves_the_job_running(org_a, workflow, good_file, monkeypatch):
    def interrupted(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_batch.time, "sleep", interrupted)
    err = io.StringIO()
    with pytest.raises(SystemExit) as stopped:
        call_command(
            "run_batch",
            good_file,
            org=str(org_a.id),
            workflow=str(workflow.pk),
            stdout=io.StringIO(),
            stderr=err,
        )
    assert stopped.value.code == 130
    [job] = _jobs(org_a.id)
    assert err.getvalue().splitlines()[-1] == (
        f"Stopped waiting; batch job {job.pk} keeps running. Follow it with GET "
        f"/api/v2/batch-jobs/{job.pk}/, or cancel it with POST /api/v2/batch-jobs/{job.pk}/cancel/."
    )
    assert job.completed_at is None and not job.cancel_requested


@pytest.mark.django_db
def test_as_a_member_the_permission_table_decides(tmp_path, org_a, org_b, workflow):
    path = _csv(tmp_path, [HEADER, "W1,Ann"])
    for email in (org_a["viewer"].email, org_b["operator"].email, "nobody@nowhere.test"):
        with pytest.raises(CommandError, match="may not add batch_job"):
            _run(path, org_a.id, workflow.pk, no_wait=True, acting_email=email)
    assert _jobs(org_a.id) == []
    _run(path, org_a.id, workflow.pk, no_wait=True, acting_email=org_a["operator"].email)
    assert [job.created_by_id for job in _jobs(org_a.id)] == [org_a["operator"].pk]
