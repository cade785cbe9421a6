"""Finished batch jobs written as history: exact counters, the history's own times, masked
traces and errors, and a refusal that writes nothing."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from rcm.context import org_context
from rcm.errors import ApplicationError
from tenants import services as tenant_services
from tenants.models import ChannelType
from tests.workflows.factories import entry, general, outcome, workflow_build
from workflows.models import BatchJob, BatchJobItem, WorkflowTrace
from workflows.services import history
from workflows.services.history import ItemRecord, TraceRecord

DAY = timedelta(days=1)
ROW = {"member_id": "W123456789", "patient_last_name": "Okonkwo", "patient_dob": "1980-04-30"}


@pytest.fixture
def flow(org_a):
    workflow, revision = workflow_build(
        org_id=org_a.id,
        nodes=[entry(), general("check"), outcome()],
        edges=["start -> check -> done"],
        name="Eligibility history",
    )
    return org_a, workflow, revision


def item(row_number: int, status: str = "completed", *, ended, traces=(), **fields) -> ItemRecord:
    return ItemRecord(
        row_number=row_number,
        input_data={**ROW, "row": row_number},
        status=status,
        completed_at=ended,
        traces=tuple(traces),
        **fields,
    )


def step(at, **fields) -> TraceRecord:
    values = {"node_key": "check", "action_type": "web.click", "success": True, "duration_ms": 420}
    return TraceRecord(at=at, **{**values, **fields})


def record(flow, items, **fields):
    tenant, workflow, revision = flow
    uploaded = timezone.now() - timedelta(days=3)
    with org_context(tenant.id):
        return history.batch_job_record_history(
            workflow=workflow,
            revision=revision,
            items=items,
            created_at=fields.pop("created_at", uploaded),
            created_by=tenant["operator"],
            **fields,
        )


def test_a_finished_job_keeps_its_rows_times_and_counters(flow):
    tenant = flow[0]
    uploaded = timezone.now() - timedelta(days=3)
    started = uploaded + timedelta(minutes=2)
    ends = [started + timedelta(seconds=seconds) for seconds in (5, 9, 14, 20)]
    items = [
        item(1, ended=ends[0], output_data={"coverage_status": "active"}, traces=[step(ends[0])]),
        item(2, ended=ends[1], traces=[step(ends[1], tier=2), step(ends[1], tier=3)]),
        item(3, "failed", ended=ends[2], error_message="Member not found", attempts=1),
        item(4, "cancelled", ended=ends[3], error_message="cancelled", attempts=0),
    ]

    job = record(flow, items, created_at=uploaded, started_at=started)

    counters = (job.total_rows, job.successful_rows, job.failed_rows, job.cancelled_rows)
    assert counters == (4, 2, 1, 1)
    assert (job.pending_rows, job.running_rows, job.processed_rows) == (0, 0, 4)
    assert job.status_id == "cancelled" and job.cancel_requested
    assert (job.created_at, job.started_at, job.completed_at) == (uploaded, started, ends[3])
    with org_context(tenant.id):
        rows = {row.row_number: row for row in BatchJobItem.objects.filter(batch_job=job)}
        traces = list(WorkflowTrace.objects.filter(batch_job_item__batch_job=job).order_by("id"))
    assert {number: row.status for number, row in rows.items()} == {
        1: "completed",
        2: "completed",
        3: "failed",
        4: "cancelled",
    }
    assert rows[1].output_data == {"coverage_status": "active"} and rows[1].run_id is None
    assert rows[3].error_message == "Member not found"
    assert all(row.created_at == uploaded for row in rows.values())
    assert [row.completed_at for row in rows.values()] == ends
    assert rows[2].member_id_key == "w123456789"  # the generated search columns are filled
    assert [(trace.batch_job_item_id, trace.tier) for trace in traces] == [
        (rows[1].pk, None),
        (rows[2].pk, 2),
        (rows[2].pk, 3),
    ]
    assert traces[0].created_at == ends[0] and traces[0].run_id is None
    assert {trace.workflow_id for trace in traces} == {flow[1].pk}
    assert {trace.user_id for trace in traces} == {tenant["operator"].pk}


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["completed", "completed"], "completed"),
        (["failed", "failed"], "failed"),
        (["completed", "failed"], "partially_completed"),
    ],
)
def test_the_jobs_status_follows_its_rows(flow, statuses, expected):
    ended = timezone.now() - timedelta(hours=1)
    rows = [item(number, status, ended=ended) for number, status in enumerate(statuses, 1)]

    assert record(flow, rows).status_id == expected


def test_rows_stream_in_chunks_and_every_chunk_counts(flow, monkeypatch):
    monkeypatch.setattr(history, "CHUNK", 3)
    ended = timezone.now() - timedelta(hours=1)
    rows = (
        item(number, "completed" if number % 4 else "failed", ended=ended, traces=[step(ended)])
        for number in range(1, 12)
    )

    job = record(flow, rows)

    assert (job.total_rows, job.successful_rows, job.failed_rows) == (11, 9, 2)
    with org_context(flow[0].id):
        assert BatchJobItem.objects.filter(batch_job=job).count() == 11
        assert WorkflowTrace.objects.filter(batch_job_item__batch_job=job).count() == 11


def test_patient_data_is_masked_out_of_traces_and_errors_and_kept_in_the_row(flow):
    ended = timezone.now() - timedelta(hours=1)
    leaky = step(
        ended,
        success=False,
        detail={"typed": "Okonkwo", "page": "Member ID: W123456789"},
        error="No member Okonkwo born 04/30/1980",
        tier=3,
        tier_reason="llm chose the row for OKONKWO",
        llm_prompt="Which row shows W123456789?",
    )
    rows = [item(1, "failed", ended=ended, error_message="Okonkwo not found", traces=[leaky])]

    job = record(flow, rows)

    with org_context(flow[0].id):
        row = BatchJobItem.objects.get(batch_job=job)
        trace = WorkflowTrace.objects.get(batch_job_item=row)
    assert row.input_data == {**ROW, "row": 1}
    assert row.error_message == "[PATIENT_LAST_NAME] not found"
    assert trace.action_detail == {"typed": "[PATIENT_LAST_NAME]", "page": "Member ID: [MEMBER_ID]"}
    assert trace.error_detail == "No member [PATIENT_LAST_NAME] born [PATIENT_DOB]"
    assert trace.tier_reason == "llm chose the row for [PATIENT_LAST_NAME]"
    assert trace.llm_prompt == "Which row shows [MEMBER_ID]?"


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        (lambda ended: item(5, "running", ended=ended), "Row 5: status 'running' is not a final"),
        (lambda ended: item(2, ended=ended), "Row 2 appears twice."),
        (lambda ended: item(0, ended=ended), "Row 0: row numbers start at 1."),
        (
            lambda ended: item(5, ended=timezone.now() + timedelta(minutes=5)),
            "Row 5: it ended before the job was created, or after now.",
        ),
        (
            lambda ended: item(5, ended=ended, traces=[step(ended, tier=4)]),
            "Row 5, trace 1: tier is 1, 2, 3 or none.",
        ),
        (
            lambda ended: item(5, ended=ended, traces=[step(ended, action_type="")]),
            "Row 5, trace 1: action_type is 1-64 characters.",
        ),
    ],
)
def test_one_bad_row_in_a_later_chunk_refuses_the_job_and_writes_nothing(
    flow, monkeypatch, bad_row, message
):
    monkeypatch.setattr(history, "CHUNK", 2)
    ended = timezone.now() - timedelta(hours=1)
    rows = [item(number, ended=ended, traces=[step(ended)]) for number in (1, 2, 3, 4)]

    with pytest.raises(ApplicationError, match=message.replace("(", r"\(")) as refused:
        record(flow, [*rows, bad_row(ended)])

    assert refused.value.code == "invalid_history"
    with org_context(flow[0].id):
        assert not BatchJob.objects.exists()
        assert not BatchJobItem.objects.exists() and not WorkflowTrace.objects.exists()


def test_no_rows_a_start_before_the_upload_or_another_workflows_revision_is_refused(flow, org_a):
    _, other_revision = workflow_build(
        org_id=org_a.id, nodes=[entry(), outcome()], edges=["start -> done"], name="Other"
    )
    ended = timezone.now() - timedelta(hours=1)

    with pytest.raises(ApplicationError, match=history.NO_ROWS):
        record(flow, [])
    with pytest.raises(ApplicationError, match=history.BAD_TIMES):
        uploaded = ended - timedelta(minutes=5)
        record(flow, [item(1, ended=ended)], created_at=uploaded, started_at=uploaded - DAY)
    with pytest.raises(ApplicationError, match=history.WRONG_REVISION):
        tenant, workflow, _ = flow
        record((tenant, workflow, other_revision), [item(1, ended=ended)])


def test_a_step_on_a_portal_is_linked_to_its_endpoint_and_read_by_rcm_trace(flow):
    tenant = flow[0]
    ended = timezone.now() - DAY
    with org_context(tenant.id):
        portal = ChannelType.objects.order_by("pk").first()
        endpoint = tenant_services.endpoint_create(
            org_id=tenant.id, name="Payer portal", channel_type=portal
        )
    items = [
        item(1, ended=ended, traces=[step(ended, endpoint_id=endpoint.pk), step(ended)]),
        item(2, ended=ended, traces=[step(ended, endpoint_id=endpoint.pk)]),
    ]

    record(flow, items)

    with org_context(tenant.id), connection.cursor() as cursor:
        cursor.execute("SELECT batch_job_item_id, portal_id FROM rcm_trace ORDER BY id")
        seen = cursor.fetchall()
        row_of = dict(BatchJobItem.objects.values_list("pk", "row_number"))
    assert [(row_of[item_id], code) for item_id, code in seen] == [
        (1, portal.code),
        (1, None),
        (2, portal.code),
    ]
