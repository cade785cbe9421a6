"""Uploading a batch in the console: choose a workflow and a file, map the columns (guessed
from their names), check the rows (invalid ones in words), start through the API's upload
service; bad input is named and writes nothing; the file waits for its own user only."""

from __future__ import annotations

import html
import io
import re
import time

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from rcm.context import org_context
from rcm.errors import NotFound
from rcm.lookups import UserRole
from tests.conftest import make_tenant
from tests.helpers import logged_in as _client
from tests.helpers import messages_of as _messages
from tests.rcm import test_admin_security
from tests.workflows.engine_helpers import published
from workflows.models import BatchJob, BatchJobItem, TaskType, Workflow
from workflows.selectors import batch_upload as upload_selectors
from workflows.services import batch_staging
from workflows.tasks import batch_upload_staging_purge_task

pytestmark = pytest.mark.django_db

OPERATOR, VIEWER = UserRole.OPERATOR, UserRole.VIEWER
URL = "/admin/console/upload/"
staff = test_admin_security.staff  # role -> a staff member of org A holding it
# A roster as a billing office exports it: its own column names, one column the task does
# not take, row 2 with a date of birth in the wrong format, row 3 without a member ID.
ROSTER = (
    "Member #,First Name,Last Name,DOB,NPI,Notes\n"
    "W100200300,Ada,Lovelace,1990-12-10,1234567893,first visit\n"
    "W100200301,Grace,Hopper,12/09/1906,1234567893,\n"
    ",Alan,Turing,1912-06-23,1234567893,call back\n"
    "W100200303,Edsger,Dijkstra,1930-05-11,1234567893,\n"
)


@pytest.fixture(autouse=True)
def staging(settings, tmp_path):
    settings.BATCH_STAGING_DIR = tmp_path / "staging"
    return settings.BATCH_STAGING_DIR


@pytest.fixture
def eligibility(org_a) -> Workflow:
    task_type = TaskType.objects.get(domain="eligibility", action="check")
    return published(org_a.id, "start>done", task_type_id=str(task_type.pk), name="Eligibility")[0]


def _file(content: str | bytes = ROSTER, name: str = "roster.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content.encode() if isinstance(content, str) else content)


def _choose(client, workflow, file=None, **extra):
    data = {"step": "choose", "workflow": str(getattr(workflow, "pk", workflow)), **extra}
    if file is not None:
        data["file"] = file
    return client.post(URL, data)


def _token(response) -> str:
    assert response.status_code == 302, response.content
    return re.search(r"\?upload=([\w-]+)$", response["Location"]).group(1)


def _map_page(client, token: str):
    return client.get(URL, {"upload": token})


def _fills(response) -> dict[str, str]:
    """column -> what its select has chosen."""
    return {column: chosen for _, column, chosen in response.context["columns"]}


def _posted(response, **changes) -> dict:
    """The mapping form as the page filled it, with ``changes`` (column -> value)."""
    data = {"upload": response.context["staged"].token}
    for index, column, chosen in response.context["columns"]:
        data[f"column-{index}"] = changes.get(column, chosen)
    return data


def _jobs(tenant) -> list[BatchJob]:
    with org_context(tenant.id):
        return list(BatchJob.objects.all())


def _staged_files(staging) -> list[str]:
    return sorted(path.name for path in staging.iterdir()) if staging.exists() else []


# -- step 1: choose -----------------------------------------------------------------------------


def test_the_choose_step_lists_the_organizations_runnable_workflows(
    staff, org_a, org_b, eligibility
):
    published(org_b.id, "start>done", name="Theirs")
    with org_context(org_a.id):
        Workflow.objects.create(org_id=org_a.id, name="A draft", status_id="draft")
    page = _client(staff[OPERATOR]).get(URL)
    assert page.status_code == 200
    assert [workflow.name for workflow in page.context["workflows"]] == ["Eligibility"]
    assert 'id="upload-drop"' in page.text and 'type="file" name="file"' in page.text
    assert 'enctype="multipart/form-data"' in page.text  # works without JS


def test_a_file_is_staged_for_its_user_and_the_columns_are_guessed(
    staff, org_a, eligibility, staging
):
    client = _client(staff[OPERATOR])
    token = _token(_choose(client, eligibility, _file()))
    assert _staged_files(staging) == [f"{token}.meta", f"{token}.upload"]
    assert _jobs(org_a) == []
    page = _map_page(client, token)
    assert page.status_code == 200
    assert _fills(page) == {
        "Member #": "member_id",
        "First Name": "patient_first_name",
        "Last Name": "patient_last_name",
        "DOB": "patient_dob",
        "NPI": "provider_npi",
        "Notes": "__keep__",
    }
    assert "Every required field has a column." in page.text


def test_required_fields_without_a_column_are_called_out(staff, eligibility):
    client = _client(staff[OPERATOR])
    content = "Member ID,Surname,Date of birth\nW1,Lovelace,1990-12-10\n"
    page = _map_page(client, _token(_choose(client, eligibility, _file(content))))
    assert _fills(page) == {
        "Member ID": "member_id",
        "Surname": "patient_last_name",
        "Date of birth": "patient_dob",
    }
    assert [field.label for field in page.context["unfilled"]] == [
        "Patient first name",
        "Rendering provider NPI",
    ]
    assert "No column fills these required fields yet:" in page.text


@pytest.mark.parametrize(
    ("file", "workflow", "message"),
    [
        (None, "eligibility", "Choose a CSV or Excel (.xlsx) file to upload."),
        (_file(b""), "eligibility", "The file is empty: it has no header row."),
        (
            _file("a,b\n1,2\n", name="roster.xls"),
            "eligibility",
            "Only CSV (.csv) and Excel (.xlsx) files are accepted; save the file as one.",
        ),
        (
            _file(b"%PDF-1.4 a report", name="roster.pdf"),
            "eligibility",
            "Only CSV (.csv) and Excel (.xlsx) files are accepted; save the file as one.",
        ),
        (_file(), "00000000-0000-0000-0000-000000000000", "Choose one of your organization's"),
        (_file(), "not-a-workflow", "Choose one of your organization's"),
        (_file(), "theirs", "Choose one of your organization's"),
        (_file(), "draft", "Choose one of your organization's"),
    ],
    ids=["no-file", "empty", "xls", "pdf", "unknown-id", "not-an-id", "other-org", "draft"],
)
def test_bad_input_is_named_and_nothing_is_written(
    staff, org_a, org_b, eligibility, staging, file, workflow, message
):
    workflows = {
        "eligibility": eligibility,
        "theirs": published(org_b.id, "start>done")[0],
        "draft": published(org_a.id, "start>done")[0],
    }
    if workflow == "draft":
        with org_context(org_a.id):
            Workflow.objects.filter(pk=workflows["draft"].pk).update(status_id="draft")
    response = _choose(_client(staff[OPERATOR]), workflows.get(workflow, workflow), file)
    assert response.status_code in (400, 413)
    assert message in html.unescape(response.text), response.context["form"].errors
    assert _staged_files(staging) == [] and _jobs(org_a) == []


def test_a_file_over_the_limit_is_refused_as_the_api_refuses_it(
    staff, org_a, eligibility, staging, settings
):
    settings.BATCH_MAX_UPLOAD_BYTES = 100
    response = _choose(_client(staff[OPERATOR]), eligibility, _file())
    assert response.status_code == 413
    assert f"The upload is {len(ROSTER)} bytes; at most 100 bytes" in response.text
    assert 'data-max-bytes="100"' in response.text  # the drop zone says so before sending
    assert _staged_files(staging) == [] and _jobs(org_a) == []


# -- step 2: map and check ----------------------------------------------------------------------


def test_checking_lists_the_invalid_rows_in_words_and_counts_the_valid(staff, org_a, eligibility):
    client = _client(staff[OPERATOR])
    page = _map_page(client, _token(_choose(client, eligibility, _file())))
    checked = client.post(URL, {**_posted(page), "step": "check"})
    assert checked.status_code == 200
    check = checked.context["check"]
    assert (check.rows, check.valid_rows, check.invalid_rows) == (4, 2, 2)
    assert [f"Row {p.row}: {p.message}" for p in check.problems] == [
        "Row 2: Patient date of birth must look like 1980-04-30.",
        "Row 3: Member ID is required.",
    ]
    assert "<li>Row 2: Patient date of birth must look like 1980-04-30.</li>" in checked.text
    # With invalid rows, the policy offered first runs the valid ones.
    assert checked.context["start"]["on_invalid"] == "skip"
    assert _jobs(org_a) == []


def test_an_xlsx_file_maps_and_checks_the_same_way(staff, org_a, eligibility):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for line in ROSTER.splitlines():
        sheet.append(line.split(","))
    buffer = io.BytesIO()
    workbook.save(buffer)
    client = _client(staff[OPERATOR])
    page = _map_page(
        client, _token(_choose(client, eligibility, _file(buffer.getvalue(), "r.xlsx")))
    )
    assert _fills(page)["DOB"] == "patient_dob"
    checked = client.post(URL, {**_posted(page), "step": "check"})
    assert checked.context["check"].invalid_rows == 2


def test_a_mapping_that_cannot_work_is_named_before_any_row_is_read(staff, eligibility):
    client = _client(staff[OPERATOR])
    page = _map_page(client, _token(_choose(client, eligibility, _file())))
    twice = client.post(URL, {**_posted(page, Notes="member_id"), "step": "check"})
    assert twice.status_code == 400 and "check" not in twice.context
    assert _messages(twice) == [
        "Columns Member # and Notes would both fill Member ID; keep one and ignore the other."
    ]
    unfilled = client.post(URL, {**_posted(page, DOB="__ignore__"), "step": "check"})
    assert _messages(unfilled) == [
        "No column fills Patient date of birth: choose a column for each, or add the column to "
        "the file."
    ]
    forged = client.post(URL, {**_posted(page, Notes="password"), "step": "check"})
    assert _messages(forged) == ["Choose what column Notes fills from the list."]


# -- step 3: start ------------------------------------------------------------------------------


def test_start_creates_the_batch_through_the_upload_service_with_the_mapping(
    staff, org_a, eligibility, staging
):
    client = _client(staff[OPERATOR])
    page = _map_page(client, _token(_choose(client, eligibility, _file())))
    response = client.post(
        URL,
        {
            **_posted(page, Notes="__ignore__"),
            "step": "start",
            "on_invalid": "skip",
            "max_concurrency": "2",
            "prompt": "March roster",
        },
    )
    (job,) = _jobs(org_a)
    assert response.status_code == 302
    assert response["Location"] == reverse("console:batch", args=(job.pk,))
    assert _messages(response) == [
        f"Batch {job.pk} started with 4 rows (2 invalid rows recorded as failed)."
    ]
    assert (job.file_name, job.on_invalid, job.max_concurrency, job.prompt) == (
        "roster.csv",
        "skip",
        2,
        "March roster",
    )
    assert job.created_by_id == staff[OPERATOR].pk
    with org_context(org_a.id):
        first, second, *_ = BatchJobItem.objects.filter(batch_job=job).order_by("row_number")
    assert first.input_data == {
        "member_id": "W100200300",
        "patient_first_name": "Ada",
        "patient_last_name": "Lovelace",
        "patient_dob": "1990-12-10",
        "provider_npi": "1234567893",
    }  # Notes ignored: not carried
    assert (second.status, second.error_message) == (
        "failed",
        "Patient date of birth must look like 1980-04-30.",
    )
    assert _staged_files(staging) == []  # the file is gone once the batch has started


def test_start_with_reject_and_invalid_rows_creates_nothing_and_says_why(staff, org_a, eligibility):
    client = _client(staff[OPERATOR])
    page = _map_page(client, _token(_choose(client, eligibility, _file())))
    response = client.post(URL, {**_posted(page), "step": "start", "on_invalid": "reject"})
    assert response.status_code == 400
    assert _messages(response)[0].startswith("2 row(s) do not satisfy the workflow's requirements")
    assert response.context["check"].invalid_rows == 2  # the rows are shown again
    assert _jobs(org_a) == []
    bad = client.post(URL, {**_posted(page), "step": "start", "max_concurrency": "500"})
    assert bad.status_code == 400 and _jobs(org_a) == []
    assert "Max concurrency: Ensure this value is less than or equal to 100." in _messages(bad)


def test_start_twice_makes_one_batch_and_a_refused_start_can_be_tried_again(
    staff, org_a, eligibility, staging
):
    client = _client(staff[OPERATOR])
    page = _map_page(client, _token(_choose(client, eligibility, _file())))
    refused = client.post(URL, {**_posted(page), "step": "start", "on_invalid": "reject"})
    assert refused.status_code == 400 and _jobs(org_a) == []
    # The refused start put the upload back: the same page starts it now.
    start = {**_posted(page), "step": "start", "on_invalid": "skip"}
    assert client.post(URL, start).status_code == 302
    # The same form again (a second click after the first was answered): the upload is gone.
    again = client.post(URL, start)
    assert again.status_code == 404 and batch_staging.STAGED_GONE in _messages(again)
    assert len(_jobs(org_a)) == 1
    assert _staged_files(staging) == []


def test_two_starts_at_once_claim_the_staged_file_once(staff, org_a, eligibility, staging):
    """Two requests that both found the upload waiting: the first to claim it starts the
    batch; the second is told it is gone, while the first is still at work."""
    client = _client(staff[OPERATOR])
    token = _token(_choose(client, eligibility, _file()))
    with org_context(org_a.id):
        staged = batch_staging.batch_upload_staged(
            token=token, org_id=org_a.id, user_id=staff[OPERATOR].pk
        )
    with batch_staging.batch_upload_claim(staged=staged) as file:
        assert file.read(10)
        with pytest.raises(NotFound), batch_staging.batch_upload_claim(staged=staged):
            pass
    assert _staged_files(staging) == []


# -- the staged file ----------------------------------------------------------------------------


def test_a_staged_file_opens_for_its_own_user_and_organization_only(staff, org_a, eligibility):
    token = _token(_choose(_client(staff[OPERATOR]), eligibility, _file()))
    colleague = _client(staff[UserRole.ORG_ADMIN])
    for response in (
        _map_page(colleague, token),
        colleague.post(URL, {"upload": token, "step": "start", "on_invalid": "skip"}),
    ):
        assert response.status_code == 404
        assert batch_staging.STAGED_GONE in response.text
    other = make_tenant("Other Org")
    with pytest.raises(NotFound) as refused:
        batch_staging.batch_upload_staged(token=token, org_id=other.id, user_id=staff[OPERATOR].pk)
    assert refused.value.code == "staged_upload_gone"
    assert _jobs(org_a) == []
    for forged in ("../../etc/passwd", "x" * 43):
        assert _map_page(_client(staff[OPERATOR]), forged).status_code == 404


def test_a_staged_file_expires(staff, org_a, eligibility, staging, settings, monkeypatch):
    client = _client(staff[OPERATOR])
    token = _token(_choose(client, eligibility, _file()))
    later = time.time() + settings.BATCH_STAGING_TTL_S + 1
    monkeypatch.setattr(batch_staging.time, "time", lambda: later)
    assert _map_page(client, token).status_code == 404
    # The next file staged sweeps the expired one away.
    fresh = _token(_choose(client, eligibility, _file()))
    assert _staged_files(staging) == [f"{fresh}.meta", f"{fresh}.upload"]


def test_expired_uploads_are_purged_when_nobody_stages_another(
    staff, eligibility, staging, settings, monkeypatch
):
    client = _client(staff[OPERATOR])
    _token(_choose(client, eligibility, _file()))
    assert batch_upload_staging_purge_task() == 0  # still waiting: kept
    later = time.time() + settings.BATCH_STAGING_TTL_S + 1
    monkeypatch.setattr(batch_staging.time, "time", lambda: later)
    assert batch_upload_staging_purge_task() == 2  # the file and its metadata
    assert _staged_files(staging) == []


def test_a_user_keeps_a_few_uploads_waiting_and_staging_more_drops_the_oldest(
    staff, org_a, eligibility, staging
):
    client = _client(staff[OPERATOR])
    tokens = [
        _token(_choose(client, eligibility, _file()))
        for _ in range(batch_staging.STAGED_PER_USER + 2)
    ]
    kept = sorted(f"{token}.{end}" for token in tokens[2:] for end in ("meta", "upload"))
    assert _staged_files(staging) == kept
    assert _map_page(client, tokens[0]).status_code == 404  # the oldest is gone
    assert _map_page(client, tokens[-1]).status_code == 200
    # Another user's uploads are theirs to keep: an org admin's file drops none of these.
    _token(_choose(_client(staff[UserRole.ORG_ADMIN]), eligibility, _file()))
    assert set(kept) <= set(_staged_files(staging))


def test_a_viewer_may_not_upload_and_a_forged_post_stages_nothing(
    staff, org_a, eligibility, staging
):
    client = _client(staff[VIEWER])
    assert client.get(URL).status_code == 403
    assert _choose(client, eligibility, _file()).status_code == 403
    assert _staged_files(staging) == [] and _jobs(org_a) == []


# -- guessing columns ---------------------------------------------------------------------------


def test_headers_are_matched_by_name_label_subject_and_synonym():
    fields = [
        upload_selectors.UploadField("member_id", "Member ID", True),
        upload_selectors.UploadField("patient_first_name", "Patient first name", True),
        upload_selectors.UploadField("patient_dob", "Patient date of birth", True),
        upload_selectors.UploadField("service_date", "Date of service", False),
    ]
    guesses = upload_selectors.batch_columns_suggest(
        columns=["MEMBER-ID", "member #", "Given name", "D.O.B.", "DOS", "Comments"],
        fields=fields,
    )
    assert guesses == {
        "MEMBER-ID": "member_id",
        "member #": None,  # member_id is taken by the first column that matched
        "Given name": "patient_first_name",
        "D.O.B.": "patient_dob",
        "DOS": "service_date",
        "Comments": None,
    }
