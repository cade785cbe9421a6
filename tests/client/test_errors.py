"""What the platform refuses arrives as an exception carrying its status, code, message and
details; another organization's objects are simply not found."""

import pytest
from rcm_client import NotFound, PayloadTooLarge, PermissionDenied, RcmError, ValidationError

from tests.client.conftest import echo_workflow


def test_a_file_without_a_required_column_is_refused_with_the_missing_columns(connect, org_a):
    client = connect(org_a)
    with pytest.raises(ValidationError) as refused:
        client.upload_batch(b"name\nAda\n", workflow=echo_workflow(org_a), filename="rows.csv")
    error = refused.value
    assert (error.status, error.code) == (400, "missing_columns")
    assert error.details["missing_columns"] == ["member_id"]
    assert error.message and str(error).startswith("400 missing_columns: ")


def test_a_bad_field_is_refused_naming_the_field(connect, org_a):
    client = connect(org_a)
    with pytest.raises(ValidationError) as refused:
        client.upload_batch(b"member_id\nW1\n", workflow=echo_workflow(org_a), max_concurrency=0)
    assert (refused.value.status, refused.value.code) == (400, "invalid")
    assert list(refused.value.fields) == ["max_concurrency"]
    assert isinstance(refused.value, RcmError)


def test_a_workbook_that_is_not_one_is_refused(connect, org_a):
    client = connect(org_a)
    with pytest.raises(ValidationError) as refused:
        client.upload_batch(
            b"PK\x03\x04 not a zip", workflow=echo_workflow(org_a), filename="a.xlsx"
        )
    assert refused.value.code == "invalid_xlsx"


def test_a_file_over_the_row_limit_is_too_large(connect, org_a, settings):
    settings.BATCH_MAX_ROWS = 2
    client = connect(org_a)
    with pytest.raises(PayloadTooLarge) as refused:
        client.upload_batch(b"member_id\n1\n2\n3\n", workflow=echo_workflow(org_a))
    assert (refused.value.status, refused.value.code) == (413, "too_many_rows")
    assert refused.value.details["limit_rows"] == 2


def test_another_organizations_batch_is_not_found_by_any_call(connect, org_a, org_b):
    job_b = connect(org_b).upload_rows([{"member_id": "B1"}], workflow=echo_workflow(org_b))
    client = connect(org_a)
    calls = (
        lambda: client.batch_job(job_b.id),
        lambda: list(client.batch_items(job_b.id)),
        lambda: client.batch_results(job_b.id),
        lambda: client.cancel_batch(job_b.id),
        lambda: client.retry_failed(job_b.id),
        lambda: client.upload_rows([{"member_id": "A1"}], workflow=job_b.workflow_id),
    )
    for call in calls:
        with pytest.raises(NotFound) as missing:
            call()
        assert (missing.value.status, missing.value.code) == (404, "not_found")
    assert list(client.batch_jobs()) == []
    assert connect(org_b).batch_job(job_b.id).status == "pending"


def test_a_viewer_may_read_but_not_upload(connect, org_a):
    workflow = echo_workflow(org_a)
    viewer = connect(org_a, "viewer")
    assert [flow.id for flow in viewer.workflows()] == [str(workflow.pk)]
    with pytest.raises(PermissionDenied) as refused:
        viewer.upload_rows([{"member_id": "W1"}], workflow=workflow)
    assert (refused.value.status, refused.value.code) == (403, "permission_denied")
