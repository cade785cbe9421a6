"""Batch jobs in the admin: staff see only their organization's jobs and rows, each job with an
escaped progress bar; rows filter by status and search by number; history is read-only; the
cancel and retry actions go through the services, for operators and above only; lists cost
the same queries for more rows."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from rcm import clock
from rcm.context import org_context
from rcm.lookups import UserRole
from tests.helpers import batch_items_move as _batch_items_move
from tests.helpers import batch_job_reload as _reload
from tests.helpers import logged_in as _logged_in
from tests.helpers import page_queries as _page_queries
from tests.helpers import staff_user as _staff
from tests.workflows.engine_helpers import published
from tests.workflows.test_admin import _act, _last_message, _url
from workflows.models import BatchJob, BatchJobItem, WorkflowRun
from workflows.services import batch, runs

pytestmark = pytest.mark.django_db

MISSING = "Member ID is required."


@pytest.fixture
def staff_a(org_a):
    return _staff(org_a, "ops@acme.test", UserRole.OPERATOR)


@pytest.fixture
def viewer_staff_a(org_a):
    return _staff(org_a, "look@acme.test", UserRole.VIEWER)


def _job(tenant, rows: int, *, invalid=(), file_name: str = "march.csv") -> BatchJob:
    """A job of ``rows`` rows, the ``invalid`` ones failed at upload (skip); no row has started
    (a test transaction never commits, so the feed never goes out)."""
    workflow, revision = published(tenant.id, "start>done", required_data=["member_id"])
    data = [{"member_id": f"W{n}"} for n in range(1, rows + 1)]
    with org_context(tenant.id):
        return batch.batch_job_create(
            workflow=workflow,
            revision=revision,
            rows=batch.rows_numbered(data, errors=dict.fromkeys(invalid, MISSING)),
            file_name=file_name,
            on_invalid="skip",
        )


def _move(tenant, job: BatchJob, **rows_by_status) -> BatchJob:
    """The job ten seconds under way, with a speed to show."""
    return _batch_items_move(
        tenant, job, error="portal down", started_ago=dt.timedelta(seconds=10), **rows_by_status
    )


def _shown(page: str, field: str) -> str:
    """What a change page shows for one read-only field."""
    found = re.search(rf'field-{field}".*?<div class="readonly">(.*?)</div>', page, re.DOTALL)
    assert found, field
    return found.group(1)


def _items_page(client, **params) -> list[int]:
    response = client.get(_url("batchjobitem"), params)
    assert response.status_code == 200
    return [item.row_number for item in response.context["cl"].result_list]


# -- who sees what -------------------------------------------------------------------------


def test_staff_see_only_their_organizations_jobs_and_rows(staff_a, org_a, org_b):
    mine = _job(org_a, 2)
    theirs = _job(org_b, 3)
    client = _logged_in(staff_a)
    listed = client.get(_url("batchjob")).context["cl"].result_list
    assert [job.pk for job in listed] == [mine.pk]
    assert client.get(_url("batchjob", "change", mine.pk)).status_code == 200
    # Another organization's job is not there, as a job that never existed: not found.
    assert client.get(_url("batchjob", "change", theirs.pk)).status_code == 404
    assert _items_page(client) == [1, 2]
    assert _items_page(client, batch_job__id__exact=theirs.pk) == []
    with org_context(org_b.id):
        their_item = BatchJobItem.objects.filter(batch_job=theirs).first()
    assert client.get(_url("batchjobitem", "change", their_item.pk)).status_code == 404


def test_every_batch_page_renders_for_sys_admin(sys_admin, org_a):
    job = _move(org_a, _job(org_a, 2), completed=[1])
    with org_context(org_a.id):
        item = BatchJobItem.objects.get(batch_job=job, row_number=1)
    client = _logged_in(sys_admin)
    for url in (
        _url("batchjob"),
        _url("batchjob", "change", job.pk),
        _url("batchjobitem"),
        _url("batchjobitem", "change", item.pk),
    ):
        assert client.get(url).status_code == 200, url


# -- the list and the detail ---------------------------------------------------------------


def test_each_job_shows_a_progress_bar_of_its_counters_and_text_is_escaped(staff_a, org_a):
    job = _move(org_a, _job(org_a, 4, file_name="<b>march</b>.csv"), completed=[1, 2], failed=[3])
    page = _logged_in(staff_a).get(_url("batchjob")).content.decode()
    assert '<div class="batch-progress" title="2 successful, 1 failed, 0 cancelled of 4 rows"' in (
        page
    )
    assert '<span style="width: 50.00%; background: #43a047"></span>' in page  # green
    assert '<span style="width: 25.00%; background: #e53935"></span>' in page  # red
    assert '<span style="width: 0.00%; background: #9e9e9e"></span>' in page  # grey
    assert "75.0% (3/4)" in page
    assert "&lt;b&gt;march&lt;/b&gt;.csv" in page and "<b>march</b>" not in page
    assert job.status_id == "processing"


def test_the_list_filters_jobs_by_status(staff_a, org_a):
    failed = _job(org_a, 1, invalid=[1])
    pending = _job(org_a, 1)
    client = _logged_in(staff_a)

    def listed(**params) -> list[int]:
        return [job.pk for job in client.get(_url("batchjob"), params).context["cl"].result_list]

    assert listed(status__status__exact="failed") == [failed.pk]
    assert listed(status__status__exact="pending") == [pending.pk]


def test_the_job_page_shows_counters_speed_and_links_to_its_rows_by_status(
    staff_a, org_a, monkeypatch
):
    now = clock.now()
    monkeypatch.setattr(clock, "now", lambda: now)
    job = _move(org_a, _job(org_a, 5, invalid=[5]), completed=[1, 2], running=[3])
    page = _logged_in(staff_a).get(_url("batchjob", "change", job.pk))
    assert page.status_code == 200
    text = page.content.decode()
    rows = _url("batchjobitem")
    assert f'<a href="{rows}?batch_job__id__exact={job.pk}">all (5)</a>' in text
    failed_link = f"{rows}?batch_job__id__exact={job.pk}&amp;status__exact=failed"
    assert f'<a href="{failed_link}">failed (1)</a>' in text
    assert "pending (1)" in text and "running (1)" in text and "completed (2)" in text
    assert "cancelled (" not in text  # no link to a status no row has
    assert "60.0% (3/5)" in text
    # 2 rows ran in the 10 s since the first started (the invalid row never ran, so it is no
    # speed); 2 to go at that speed.
    assert _shown(text, "rows_per_second") == "0.2"
    assert _shown(text, "eta") == "10"
    assert f"/api/v2/batch-jobs/{job.pk}/results.csv" in text


def test_rows_filter_by_status_and_search_by_row_number(staff_a, org_a):
    job = _move(org_a, _job(org_a, 13, invalid=[2]), completed=[1, 3, 12], failed=[13])
    client = _logged_in(staff_a)
    mine = {"batch_job__id__exact": job.pk}
    assert _items_page(client, **mine, status__exact="failed") == [2, 13]
    assert _items_page(client, **mine, status__exact="completed") == [1, 3, 12]
    assert _items_page(client, **mine, q="3") == [3]  # not 13
    assert _items_page(client, **mine, q="row 3") == []
    with org_context(org_a.id):
        item = BatchJobItem.objects.get(batch_job=job, row_number=2)
    page = client.get(_url("batchjobitem", "change", item.pk)).content.decode()
    assert MISSING in page and "&quot;member_id&quot;: &quot;W2&quot;" in page


# -- read-only history ---------------------------------------------------------------------


def test_jobs_and_rows_are_never_added_changed_or_deleted_here(staff_a, org_a):
    job = _job(org_a, 1)
    with org_context(org_a.id):
        item = BatchJobItem.objects.get(batch_job=job)
    client = _logged_in(staff_a)
    for model, obj in (("batchjob", job), ("batchjobitem", item)):
        assert client.get(_url(model, "add")).status_code == 403
        assert client.post(_url(model, "delete", obj.pk)).status_code == 403
        assert client.post(_url(model, "change", obj.pk), {"max_concurrency": 9}).status_code == 403
        refused = _act(client, model, "delete_selected", obj)  # not one of the actions
        assert _last_message(refused) == "No action selected."
    assert _reload(org_a, job).max_concurrency == 4
    with org_context(org_a.id):
        assert BatchJobItem.objects.filter(pk=item.pk).exists()


# -- actions -------------------------------------------------------------------------------


def test_an_operator_cancels_a_job_and_a_finished_one_is_left_alone(staff_a, org_a):
    live = _job(org_a, 3)
    finished = _job(org_a, 1, invalid=[1])
    client = _logged_in(staff_a)
    assert "action_checkbox" in client.get(_url("batchjob")).context["cl"].list_display
    response = _act(client, "batchjob", "cancel", live, finished)
    assert _last_message(response) == "Cancelled 1 batch job."
    live = _reload(org_a, live)
    assert (live.status_id, live.cancelled_rows, live.cancel_requested) == ("cancelled", 3, True)
    assert _reload(org_a, finished).status_id == "failed"


def test_an_operator_retries_failed_rows_and_hears_why_others_cannot_be(staff_a, org_a):
    job = _move(org_a, _job(org_a, 3), completed=[1], failed=[2, 3])
    upload_failures = _job(org_a, 1, invalid=[1])
    response = _act(_logged_in(staff_a), "batchjob", "retry_failed", job, upload_failures)
    messages = [str(message) for message in response.wsgi_request._messages]
    assert messages == [
        f"Batch job {upload_failures.pk}: {batch.NOTHING_TO_RETRY}",
        "Retrying the failed rows of 1 batch job.",
    ]
    job = _reload(org_a, job)
    assert (job.status_id, job.pending_rows, job.failed_rows) == ("processing", 2, 0)


def test_viewers_have_no_actions(viewer_staff_a, org_a):
    job = _job(org_a, 2)
    client = _logged_in(viewer_staff_a)
    page = client.get(_url("batchjob"))
    assert page.status_code == 200 and "action_checkbox" not in page.context["cl"].list_display
    _act(client, "batchjob", "cancel", job)
    assert _reload(org_a, job).status_id == "pending"


# -- queries -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["batchjob", "batchjobitem"])
def test_lists_run_the_same_queries_for_more_rows(staff_a, org_a, model):
    client = _logged_in(staff_a)
    _move(org_a, _job(org_a, 2), completed=[1])
    client.get(_url(model))  # warm the session and content-type caches

    before = _page_queries(client, _url(model))
    _move(org_a, _job(org_a, 3, invalid=[2]), completed=[1])
    _job(org_a, 2)
    assert _page_queries(client, _url(model)) == before


def test_a_runs_page_links_its_batch_row_and_job_and_tells_times_to_the_second(staff_a, org_a):
    job = _job(org_a, 1)
    with org_context(org_a.id):
        item = BatchJobItem.objects.get(batch_job=job)
        run = runs.run_start(workflow=job.workflow, input={"member_id": "W1"})
        WorkflowRun.objects.filter(pk=run.pk).update(batch_job_item=item)
    page = _logged_in(staff_a).get(_url("workflowrun", "change", run.pk)).text
    assert f'href="{_url("batchjobitem", "change", item.pk)}">row 1</a>' in page
    assert f'href="{_url("batchjob", "change", job.pk)}">batch job {job.pk}</a>' in page
    created = timezone.localtime(run.created_at).strftime("%Y-%m-%d %H:%M:%S")
    assert created in page
