"""The console's batch pages: the list, one batch (progress, rows filtered, searched and paged),
its progress as JSON, the downloads, and the buttons (retry, cancel) for the roles that may use
them; the admin's batch pages link here."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from rcm import clock
from rcm.context import org_context
from rcm.lookups import UserRole
from tests.helpers import batch_items_move as _move
from tests.helpers import batch_job_reload as _reload
from tests.helpers import logged_in as _client
from tests.helpers import messages_of as _messages
from tests.helpers import page_queries as _page_queries
from tests.rcm import test_admin_security
from tests.workflows.engine_helpers import published
from workflows.models import BatchJob, BatchJobItem, WorkflowRun
from workflows.selectors import batch as batch_selectors
from workflows.services import batch, runs

pytestmark = pytest.mark.django_db

OPERATOR, VIEWER = UserRole.OPERATOR, UserRole.VIEWER
staff = test_admin_security.staff  # role -> a staff member of org A holding it
PATIENTS = [
    ("Ada", "Lovelace"),
    ("José", "Muñoz"),
    ("Renée", "O'Brien"),
    ("Wei", "Zhang"),
    ("Ada", "Byron"),
]


def _rows(count: int) -> list[dict]:
    return [
        {
            "member_id": f"W{1000 + n}",
            "patient_first_name": PATIENTS[n % len(PATIENTS)][0],
            "patient_last_name": PATIENTS[n % len(PATIENTS)][1],
            "service_type_code": "30",
        }
        for n in range(1, count + 1)
    ]


def _job(tenant, count: int = 5, *, invalid=(), file_name="march.csv") -> BatchJob:
    """A job of ``count`` rows (member IDs W1001...), the ``invalid`` ones failed at upload;
    no row has started (the test's transaction never commits, so no feed goes out)."""
    workflow, revision = published(
        tenant.id, "start>done", required_data=["member_id"], name=f"Eligibility {file_name}"
    )
    errors = dict.fromkeys(invalid, "Member ID is required.")
    with org_context(tenant.id):
        return batch.batch_job_create(
            workflow=workflow,
            revision=revision,
            rows=batch.rows_numbered(_rows(count), errors=errors),
            file_name=file_name,
            on_invalid="skip",
        )


def _page(client, job: BatchJob, **params):
    response = client.get(reverse("console:batch", args=(job.pk,)), params)
    assert response.status_code == 200
    return response


def _shown_rows(response) -> list[int]:
    return [row.row_number for row in response.context["rows"]]


def _csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


# -- the batch's page ---------------------------------------------------------------------------


def test_the_page_shows_the_batch_its_progress_and_its_rows_in_words(staff, org_a):
    job = _move(org_a, _job(org_a, 5, invalid=[5]), completed=[1, 2], failed=[3], running=[4])
    with org_context(org_a.id):
        item = BatchJobItem.objects.get(batch_job=job, row_number=1)
        run = runs.run_start(workflow=job.workflow, input={"member_id": "W1001"})
        WorkflowRun.objects.filter(pk=run.pk).update(batch_job_item=item)
        BatchJobItem.objects.filter(pk=item.pk).update(run=run)
    response = _page(_client(staff[OPERATOR]), job)
    text = response.text
    assert "Eligibility march.csv" in text and "march.csv" in text
    assert 'data-field="status">processing<' in text
    assert 'data-field="successful">2<' in text and 'data-field="failed">2<' in text
    assert "80.0 %" in text  # 4 of 5 rows done
    assert f'data-progress-url="{reverse("console:batch_progress", args=(job.pk,))}"' in text
    assert 'data-final="false"' in text
    rows = {row.row_number: row for row in response.context["rows"]}
    assert list(rows) == [1, 2, 3, 4, 5]
    assert (rows[1].member_id, rows[1].patient) == ("W1001", "José Muñoz")
    assert rows[3].error == "The workflow ended at a failure outcome."  # not "failure"
    assert rows[5].error == "Member ID is required."
    run_url = reverse("admin:workflows_workflowrun_change", args=(run.pk,))
    assert f'<a href="{run_url}">run {run.pk}</a>' in text


def test_times_are_given_to_the_second_as_iso_moments_for_the_browser(staff, org_a):
    job = _reload(org_a, _move(org_a, _job(org_a, 2), completed=[1, 2]))
    text = _page(_client(staff[OPERATOR]), job).text
    started = job.started_at.isoformat()
    assert f'<time datetime="{started}" data-local>' in text
    assert job.started_at.strftime("%Y-%m-%d %H:%M:%S UTC") in text


def test_search_by_member_id_and_by_patient_name_within_this_job(staff, org_a):
    job = _job(org_a, 30)
    _job(org_a, 30, file_name="other.csv")  # the same member IDs in another job
    client = _client(staff[OPERATOR])
    assert _shown_rows(_page(client, job, member_id="w1012")) == [12]  # any case
    assert _shown_rows(_page(client, job, member_id="W101")) == list(range(10, 20))  # its start
    assert _shown_rows(_page(client, job, member_id="1012")) == []  # not the middle
    # Row n has patient n % 5: Ada Lovelace at 5, 10, ...; Ada Byron at 4, 9, ...
    assert _shown_rows(_page(client, job, patient="lovelace")) == [5, 10, 15, 20, 25, 30]
    assert _shown_rows(_page(client, job, patient="ada love")) == [5, 10, 15, 20, 25, 30]
    assert _shown_rows(_page(client, job, patient="lace")) == []  # names match by their start
    assert _shown_rows(_page(client, job, patient="ADA")) == [
        4,
        5,
        9,
        10,
        14,
        15,
        19,
        20,
        24,
        25,
        29,
        30,
    ]
    assert _shown_rows(_page(client, job, patient="byron ada")) == [4, 9, 14, 19, 24, 29]
    assert _shown_rows(_page(client, job, patient="muñoz", member_id="W1011")) == [11]
    nothing = _page(client, job, member_id="X9")
    assert _shown_rows(nothing) == [] and "No row of this batch matches." in nothing.text


def test_rows_filter_by_status_and_a_bad_filter_is_named_not_applied(staff, org_a):
    job = _move(org_a, _job(org_a, 6, invalid=[2]), completed=[1, 3], failed=[6])
    client = _client(staff[OPERATOR])
    assert _shown_rows(_page(client, job, status="failed")) == [2, 6]
    assert _shown_rows(_page(client, job, status="completed")) == [1, 3]
    refused = _page(client, job, status="lost", after="x")
    assert _shown_rows(refused) == [1, 2, 3, 4, 5, 6]
    (message,) = _messages(refused)
    assert message.startswith("That filter could not be used: Status: Select a valid choice.")


def test_rows_come_a_page_at_a_time_by_row_number(staff, org_a):
    job = _move(org_a, _job(org_a, 120), failed=list(range(1, 121, 2)))
    client = _client(staff[OPERATOR])
    first = _page(client, job)
    assert _shown_rows(first) == list(range(1, 51))
    assert first.context["pages"] == {"previous": None, "next": "after=50"}
    second = _page(client, job, after=50)
    assert _shown_rows(second) == list(range(51, 101))
    assert second.context["pages"] == {"previous": "before=51", "next": "after=100"}
    assert _shown_rows(_page(client, job, before=51)) == list(range(1, 51))
    last = _page(client, job, after=100)
    assert _shown_rows(last) == list(range(101, 121)) and last.context["pages"]["next"] is None
    # The filters stay with the pages.
    failed = _page(client, job, status="failed", after=49)
    assert _shown_rows(failed) == list(range(51, 121, 2))[:50]
    assert failed.context["pages"]["previous"] == "status=failed&before=51"


@pytest.mark.parametrize("params", [{}, {"member_id": "W10"}, {"patient": "ada"}])
def test_the_page_costs_the_same_queries_for_a_larger_batch(staff, org_a, params):
    client = _client(staff[OPERATOR])
    small, large = _job(org_a, 3), _job(org_a, 400, file_name="large.csv")
    _move(org_a, small, completed=[1], failed=[2])
    _move(org_a, large, completed=list(range(1, 200)), failed=list(range(200, 300)))
    _page(client, small)  # the session and the content types, cached

    def count(job) -> int:
        with CaptureQueriesContext(connection) as queries:
            _page(client, job, **params)
        return len(queries)

    assert count(large) == count(small)


def test_the_progress_answers_as_json_in_one_query(staff, org_a, django_assert_max_num_queries):
    job = _move(org_a, _job(org_a, 4), completed=[1], failed=[2])
    client = _client(staff[VIEWER])
    url = reverse("console:batch_progress", args=(job.pk,))
    client.get(url)
    with django_assert_max_num_queries(4):  # the session, the user, the membership, the job
        state = client.get(url).json()
    assert state["status"] == "processing" and state["final"] is False
    assert (state["total"], state["processed"], state["successful"], state["failed"]) == (
        4,
        2,
        1,
        1,
    )
    assert state["percent"] == 50.0 and state["bar"] == {
        "ok": "25.00",
        "failed": "25.00",
        "cancelled": "0.00",
    }
    assert state["started_at"].startswith(str(clock.now().year))
    assert state["completed_at"] is None


# -- downloads ----------------------------------------------------------------------------------


def test_results_are_the_same_bytes_as_the_apis_results_csv(staff, org_a, api):
    job = _move(org_a, _job(org_a, 3, invalid=[3]), completed=[1], failed=[2])
    console = _client(staff[VIEWER]).get(reverse("console:batch_results", args=(job.pk,)))
    assert console.status_code == 200 and console["Content-Type"] == "text/csv; charset=utf-8"
    assert console["Content-Disposition"] == f'attachment; filename="batch-{job.pk}-results.csv"'
    from_api = api(org_a, VIEWER).get(f"/api/v2/batch-jobs/{job.pk}/results.csv")
    assert from_api.status_code == 200
    body = b"".join(console.streaming_content)
    assert body == b"".join(from_api.streaming_content)
    assert body.startswith("\ufeffrow_number,member_id,".encode())


def test_failed_rows_download_as_uploaded_with_their_errors(staff, org_a):
    job = _move(org_a, _job(org_a, 4, invalid=[4]), completed=[1], failed=[2])
    response = _client(staff[VIEWER]).get(reverse("console:batch_failed_rows", args=(job.pk,)))
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith(f'"batch-{job.pk}-failed-rows.csv"')
    assert _csv(response) == [
        [
            "member_id",
            "patient_first_name",
            "patient_last_name",
            "service_type_code",
            "row_number",
            "error",
        ],
        ["W1002", "Renée", "O'Brien", "30", "2", "The workflow ended at a failure outcome."],
        ["W1004", "Ada", "Byron", "30", "4", "Member ID is required."],
    ]


def test_another_organizations_downloads_are_not_found(staff, org_a, org_b):
    theirs = _job(org_b, 2)
    client = _client(staff[OPERATOR])
    for name in ("batch_results", "batch_failed_rows", "batch", "batch_progress"):
        assert client.get(reverse(f"console:{name}", args=(theirs.pk,))).status_code == 404


# -- buttons ------------------------------------------------------------------------------------


def test_retry_sends_the_failed_rows_back_and_says_how_many(staff, org_a):
    job = _move(org_a, _job(org_a, 5, invalid=[5]), completed=[1], failed=[2, 3])
    client = _client(staff[OPERATOR])
    assert "Retry failed rows" in _page(client, job).text
    response = client.post(reverse("console:batch_retry_failed", args=(job.pk,)), follow=True)
    assert response.redirect_chain == [(reverse("console:batch", args=(job.pk,)), 302)]
    assert "Sent 2 failed rows back to run again." in _messages(response)
    job = _reload(org_a, job)
    # The row refused at upload would fail the same way: it stays failed.
    assert (job.pending_rows, job.failed_rows, job.status_id) == (3, 1, "processing")
    again = client.post(reverse("console:batch_retry_failed", args=(job.pk,)), follow=True)
    assert _messages(again) == [batch.NOTHING_TO_RETRY]
    # Rows refused at upload alone: nothing a retry would send back, so no button.
    refused = _job(org_a, 2, invalid=[1, 2], file_name="refused.csv")
    assert "Retry failed rows" not in _page(client, refused).text


def test_cancel_cancels_the_rows_not_started_and_a_finished_batch_says_so(staff, org_a):
    job = _job(org_a, 3)
    client = _client(staff[OPERATOR])
    page = _page(client, job).text
    assert 'data-confirm="Cancel batch' in page
    response = client.post(reverse("console:batch_cancel", args=(job.pk,)), follow=True)
    assert _messages(response) == [
        f"Batch {job.pk} is cancelled: rows not started yet will not run; running rows finish."
    ]
    job = _reload(org_a, job)
    assert (job.status_id, job.cancelled_rows) == ("cancelled", 3)
    assert "Cancel the batch" not in response.text  # it has ended
    again = client.post(reverse("console:batch_cancel", args=(job.pk,)), follow=True)
    assert _messages(again) == ["This batch job has already finished (cancelled)."]


def test_a_viewer_sees_the_downloads_only_and_a_forged_post_changes_nothing(staff, org_a):
    job = _move(org_a, _job(org_a, 3), failed=[1])
    client = _client(staff[VIEWER])
    text = _page(client, job).text
    assert "Download results (CSV)" in text and "Download failed rows (CSV)" in text
    assert "Retry failed rows" not in text and "Cancel the batch" not in text
    for name in ("batch_retry_failed", "batch_cancel"):
        assert client.post(reverse(f"console:{name}", args=(job.pk,))).status_code == 403
    job = _reload(org_a, job)
    assert (job.status_id, job.failed_rows, job.pending_rows, job.cancel_requested) == (
        "processing",
        1,
        2,
        False,
    )


# -- the list of batches ------------------------------------------------------------------------


def test_batches_are_listed_newest_first_with_progress_and_filtered_by_status(staff, org_a, org_b):
    older = _move(org_a, _job(org_a, 4, file_name="old.csv"), completed=[1, 2])
    failed = _job(org_a, 1, invalid=[1], file_name="bad.csv")
    _job(org_b, 2, file_name="theirs.csv")
    client = _client(staff[VIEWER])
    response = client.get(reverse("console:batches"))
    assert [job.pk for job, _ in response.context["jobs"]] == [failed.pk, older.pk]
    text = response.text
    assert f'href="{reverse("console:batch", args=(older.pk,))}"' in text
    assert "theirs.csv" not in text and "2/4" in text
    assert 'class="ok" data-segment="ok" style="width: 50.00%"' in text
    only = client.get(reverse("console:batches"), {"status": "failed"})
    assert [job.pk for job, _ in only.context["jobs"]] == [failed.pk]
    assert "Upload a batch" not in text  # a viewer does not upload


def test_batches_come_a_page_at_a_time(staff, org_a):
    jobs = [_job(org_a, 1, file_name=f"f{n}.csv") for n in range(batch_selectors.JOB_PAGE_SIZE + 2)]
    client = _client(staff[OPERATOR])
    first = client.get(reverse("console:batches"))
    newest = [job.pk for job in reversed(jobs)]
    assert [job.pk for job, _ in first.context["jobs"]] == newest[: batch_selectors.JOB_PAGE_SIZE]
    assert "Upload a batch" in first.text
    following = client.get(reverse("console:batches") + "?" + first.context["pages"]["next"])
    assert [job.pk for job, _ in following.context["jobs"]] == newest[
        batch_selectors.JOB_PAGE_SIZE :
    ]


def test_the_list_costs_the_same_queries_for_more_batches(staff, org_a):
    client = _client(staff[OPERATOR])
    _job(org_a, 2)
    client.get(reverse("console:batches"))

    before = _page_queries(client, reverse("console:batches"))
    for n in range(3):
        _job(org_a, 2, file_name=f"more{n}.csv")
    assert _page_queries(client, reverse("console:batches")) == before


# -- the nav and the admin ----------------------------------------------------------------------


def test_the_nav_links_upload_for_operators_and_batches_for_every_role(staff, org_a):
    upload, batches = reverse("console:batch_upload"), reverse("console:batches")
    operator_page = _client(staff[OPERATOR]).get(reverse("console:home")).text
    viewer_page = _client(staff[VIEWER]).get(reverse("console:home")).text
    assert f'<a href="{upload}">Upload</a>' in operator_page
    assert f'<a href="{batches}">Batches</a>' in operator_page
    assert f'<a href="{upload}">' not in viewer_page
    assert f'<a href="{batches}">Batches</a>' in viewer_page


def test_the_admins_batch_pages_link_the_console(staff, org_a):
    job = _job(org_a, 1)
    client = _client(staff[VIEWER])
    console_url = reverse("console:batch", args=(job.pk,))
    listing = client.get(reverse("admin:workflows_batchjob_changelist")).text
    detail = client.get(reverse("admin:workflows_batchjob_change", args=(job.pk,))).text
    assert f'<a href="{console_url}">open in the console</a>' in listing
    assert f'<a href="{console_url}">open in the console</a>' in detail
    results = reverse("console:batch_results", args=(job.pk,))
    assert f'<a href="{results}" download>Download results (CSV)</a>' in detail
