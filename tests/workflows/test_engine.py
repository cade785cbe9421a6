"""The engine on a real Celery worker: branches, joins, skips, labels, retries, outcomes."""

import json

import pytest

from rcm.context import org_context
from tests.conftest import wait_for
from tests.workflows.engine_helpers import (
    published,
    published_http,
    published_transform,
    published_wait,
)
from workflows.engine.template_bounds import TOO_LONG
from workflows.models import NodeRun, Workflow, WorkflowRun, WorkflowTrace
from workflows.models.runs import RUN_TERMINAL
from workflows.services import runs

pytestmark = pytest.mark.celery_worker


def finished(org_id, run_id, timeout=20.0) -> WorkflowRun:
    def done():
        with org_context(org_id):
            run = WorkflowRun.objects.get(pk=run_id)
        return run if run.status in RUN_TERMINAL else None

    return wait_for(done, timeout=timeout)


def node_states(org_id, run_id) -> dict:
    with org_context(org_id):
        return {nr.node_key: (nr.status, nr.label) for nr in NodeRun.objects.filter(run_id=run_id)}


def start(org_id, workflow, **input_):
    with org_context(org_id):
        return runs.run_start(workflow=workflow, input=input_)


def patient_search(org_id, url: str, retry: dict | None = None) -> Workflow:
    """A workflow whose node ``search`` asks ``url`` for the patient: a 404 is the label
    not_found, which ends the run in the outcome fail_missing."""
    workflow, _ = published_http(
        org_id,
        url,
        key="search",
        edges="start>search, search>done, search>fail_missing:not_found",
        status_labels={"404": "not_found"},
        retry=retry,
    )
    return workflow


def failed_call_run(org_id, http_server, edges: str, **http_config) -> WorkflowRun:
    """A run of ``edges``, to its end, whose node ``call`` asks ``http_server``'s /down
    (``http_config`` more of its config) and gets a 500 at its only attempt."""
    http_server.respond("/down", status=500, times=10)
    workflow, _ = published_http(
        org_id, http_server.url("/down"), edges=edges, retry={"maximum_attempts": 1}, **http_config
    )
    return finished(org_id, start(org_id, workflow).pk)


def test_fan_out_and_join_run_every_node_once(celery_worker, org_a):
    workflow, _ = published(
        org_a.id, "start>a, start>b, start>c, a>join, b>join, c>join, join>done"
    )
    run = finished(org_a.id, start(org_a.id, workflow).pk)
    assert (run.status, run.result, run.outcome) == ("completed", "success", "done")
    states = node_states(org_a.id, run.pk)
    assert all(status == "completed" for status, _ in states.values())
    with org_context(org_a.id):
        traces = WorkflowTrace.objects.filter(run=run)
        assert traces.count() == 6 and all(t.success for t in traces)
        assert run.duration_ms is not None and run.started_at and run.ended_at


def test_a_decision_picks_a_branch_and_the_other_is_skipped(celery_worker, org_a):
    decision = {
        "conditions": [{"when": "input.plan == 'gold'", "label": "gold"}],
        "default": "basic",
    }
    workflow, _ = published(
        org_a.id,
        "start>pick, pick>premium:gold, pick>standard:basic, premium>done, standard>done",
        decisions={"pick": decision},
    )
    run = finished(org_a.id, start(org_a.id, workflow, plan="gold").pk)
    states = node_states(org_a.id, run.pk)
    assert states["pick"] == ("completed", "gold")
    assert states["premium"][0] == "completed" and states["standard"][0] == "skipped"
    assert run.status == "completed"


def test_transform_outputs_flow_into_the_context(celery_worker, org_a):
    outputs = {"greeting": "Hello {{ input.name }}", "n": "{{ input.n * 2 }}"}
    workflow, _ = published_transform(org_a.id, outputs)
    run = finished(org_a.id, start(org_a.id, workflow, name="Ada", n=21).pk)
    assert run.context["nodes"]["shape"]["output"] == {"greeting": "Hello Ada", "n": 42}


def test_a_business_failure_is_a_label_and_never_retried(celery_worker, org_a, http_server):
    http_server.respond("/patients", status=404, body={"error": "no such patient"})
    retry = {"maximum_attempts": 5, "initial_interval_s": 0.01}
    workflow = patient_search(org_a.id, http_server.url("/patients"), retry=retry)
    run = finished(org_a.id, start(org_a.id, workflow).pk)
    assert (run.status, run.result, run.outcome) == ("completed", "failure", "fail_missing")
    assert http_server.hits("/patients") == 1
    with org_context(org_a.id):
        assert NodeRun.objects.get(run=run, node_key="search").attempt == 1


def test_a_system_failure_is_retried_then_succeeds(celery_worker, org_a, http_server):
    http_server.respond("/flaky", status=503, times=2)
    http_server.respond("/flaky", status=200, body={"ok": True})
    workflow, _ = published_http(
        org_a.id,
        http_server.url("/flaky"),
        retry={"maximum_attempts": 4, "initial_interval_s": 0.05, "jitter": 0},
    )
    run = finished(org_a.id, start(org_a.id, workflow).pk)
    assert run.status == "completed"
    with org_context(org_a.id):
        node_run = NodeRun.objects.get(run=run, node_key="call")
        traces = list(WorkflowTrace.objects.filter(node_run=node_run).order_by("attempt"))
    assert node_run.attempt == 3 and node_run.output["body"] == {"ok": True}
    assert [(t.attempt, t.success) for t in traces] == [(1, False), (2, False), (3, True)]
    assert traces[0].action_detail["error_kind"] == "http_503"


def test_a_step_sends_the_same_idempotency_key_on_every_attempt(celery_worker, org_a, http_server):
    http_server.respond("/claims", status=503, times=1)
    http_server.respond("/claims", status=200, body={"ok": True})
    headers = {
        "Idempotency-Key": "{{ step.idempotency_key }}",
        "X-Step": "{{ run.id }}/{{ node.key }}/{{ attempt }}",
    }
    workflow, _ = published_http(
        org_a.id,
        http_server.url("/claims"),
        headers=headers,
        retry={"maximum_attempts": 3, "initial_interval_s": 0.05, "jitter": 0},
    )
    first = finished(org_a.id, start(org_a.id, workflow).pk)
    second = finished(org_a.id, start(org_a.id, workflow).pk)
    assert first.status == second.status == "completed"
    sent = [(h["Idempotency-Key"], h["X-Step"]) for h in http_server.headers("/claims")]
    with org_context(org_a.id):
        keys = [
            str(NodeRun.objects.get(run=run, node_key="call").idempotency_key)
            for run in (first, second)
        ]
    # The first run's two attempts carry its step's key; the second run's step has its own.
    assert sent == [
        (keys[0], f"{first.pk}/call/1"),
        (keys[0], f"{first.pk}/call/2"),
        (keys[1], f"{second.pk}/call/1"),
    ]
    assert keys[0] != keys[1]


def test_retries_exhausted_fail_the_node_and_the_run(celery_worker, org_a, http_server):
    http_server.respond("/down", status=500, times=10)
    workflow, _ = published_http(
        org_a.id,
        http_server.url("/down"),
        retry={"maximum_attempts": 2, "initial_interval_s": 0.01, "jitter": 0},
    )
    run = finished(org_a.id, start(org_a.id, workflow).pk)
    assert run.status == "failed" and "call" in run.error
    assert node_states(org_a.id, run.pk)["done"][0] == "skipped"
    assert http_server.hits("/down") == 2


def test_an_error_edge_handles_a_node_that_failed_for_good(celery_worker, org_a, http_server):
    run = failed_call_run(org_a.id, http_server, "start>call, call>done, call>fail_portal:error")
    assert (run.status, run.result, run.outcome) == ("completed", "failure", "fail_portal")


@pytest.mark.parametrize(
    ("rule", "join_status"),
    [
        ("none_failed_min_one_success", "skipped"),
        ("all_success", "skipped"),
        ("all_done", "completed"),
    ],
)
def test_a_failing_branch_and_the_join_trigger_rules(
    celery_worker, org_a, http_server, rule, join_status
):
    http_server.respond("/down", status=500, times=10)
    workflow, _ = published(
        org_a.id,
        "start>ok, start>bad, ok>join, bad>join, join>done",
        kinds={"bad": "http"},
        configs={"bad": {"url": http_server.url("/down")}},
        retry={"bad": {"maximum_attempts": 1}},
        rules={"join": rule},
    )
    run = finished(org_a.id, start(org_a.id, workflow).pk)
    states = node_states(org_a.id, run.pk)
    assert states["bad"][0] == "failed" and states["ok"][0] == "completed"
    assert states["join"][0] == join_status
    assert run.status == ("completed" if join_status == "completed" else "failed")


def test_a_run_without_required_input_is_refused(db, org_a):
    from rcm.errors import ApplicationError

    workflow, _ = published(org_a.id, "start>done", required_data=["member_id", "dob"])
    with pytest.raises(ApplicationError) as refused:
        start(org_a.id, workflow, member_id="A1")
    assert refused.value.details == {"missing": ["dob"]}
    with org_context(org_a.id):
        assert not WorkflowRun.objects.exists()


def test_cancel_lets_running_nodes_finish_and_starts_nothing_new(celery_worker, org_a):
    workflow, _ = published_wait(org_a.id, 0.5, edges="start>pause, pause>after, after>done")
    run = start(org_a.id, workflow)
    wait_for(lambda: node_states(org_a.id, run.pk)["pause"][0] in ("ready", "running"))
    with org_context(org_a.id):
        runs.run_cancel(run=run)
    run = finished(org_a.id, run.pk)
    assert run.status == "cancelled"
    states = node_states(org_a.id, run.pk)
    assert states["after"][0] in ("cancelled", "skipped") and states["done"][0] != "completed"


def test_an_error_edge_and_a_label_edge_to_one_node_reach_it(celery_worker, org_a, http_server):
    run = failed_call_run(
        org_a.id,
        http_server,
        "start>call, call>done, call>fail_x:not_found, call>fail_x:error",
        status_labels={"404": "not_found"},
    )
    assert (run.status, run.result, run.outcome) == ("completed", "failure", "fail_x")
    with org_context(org_a.id):
        error = NodeRun.objects.get(run=run, node_key="call").error
    assert "127.0.0.1" in error and "/down" not in error  # the host, never the path


def test_an_error_quoting_the_row_is_stored_masked(celery_worker, org_a):
    """A template that fails on a row quotes the row's value in its error; the node run, its
    trace and the run keep the error with the value masked."""
    workflow, _ = published_transform(org_a.id, {"x": "{{ {}[input.member_id] ~ '' }}"})
    run = finished(org_a.id, start(org_a.id, workflow, member_id="W123456789").pk)
    with org_context(org_a.id):
        node_run = NodeRun.objects.get(run=run, node_key="shape")
        trace = WorkflowTrace.objects.filter(node_run=node_run).get()
    assert run.status == "failed"
    for text in (node_run.error, trace.error_detail, run.error):
        assert "W123456789" not in text and "[MEMBER_ID]" in text, text


PATIENT = {"member_id": "W123456789", "dob": "1980-01-05", "name": "Maria Lopez"}


def test_outputs_and_traces_are_stored_masked_while_later_nodes_read_the_values(
    celery_worker, org_a, api
):
    """A node echoing the row: its node run's output and every trace keep the values masked;
    the run's context keeps them, so the decision after it still compares the real ones."""
    workflow, _ = published(
        org_a.id,
        "start>echo, echo>check, check>done:same, check>fail:different",
        kinds={"echo": "transform"},
        configs={
            "echo": {
                "outputs": {
                    "member": "{{ input.member_id }}",
                    "born": "{{ input.dob }}",
                    "who": "Patient {{ input.name }}, DOB 01/05/1980",
                }
            }
        },
        decisions={
            "check": {
                "conditions": [
                    {"when": "nodes.echo.output.member == input.member_id", "label": "same"}
                ],
                "default": "different",
            }
        },
    )
    run = finished(org_a.id, start(org_a.id, workflow, **PATIENT).pk)
    assert (run.status, run.result, run.outcome) == ("completed", "success", "done")
    assert run.context["nodes"]["echo"]["output"]["member"] == PATIENT["member_id"]
    with org_context(org_a.id):
        outputs = dict(NodeRun.objects.filter(run=run).values_list("node_key", "output"))
        details = list(
            WorkflowTrace.objects.filter(run=run).values_list("action_detail", flat=True)
        )
    assert outputs["echo"] == {
        "member": "[MEMBER_ID]",
        "born": "[DOB]",
        "who": "Patient [NAME], DOB [DOB]",
    }
    stored = json.dumps([outputs, details]).lower()
    for value in (*PATIENT.values(), "01/05/1980", "maria", "lopez"):
        assert value.lower() not in stored, value
    # The API shows the node outputs of the context as the node runs keep them.
    shown = api(org_a, "viewer").get(f"/api/v2/runs/{run.pk}/").json()
    assert shown["context"]["nodes"]["echo"]["output"] == outputs["echo"]
    assert [node["output"] for node in shown["nodes"] if node["node_key"] == "echo"] == [
        outputs["echo"]
    ]


def test_a_portal_answer_quoting_the_patient_is_stored_masked(celery_worker, org_a, http_server):
    """A business failure's output is the portal's answer, which often quotes the request."""
    http_server.respond(
        "/patients",
        status=404,
        body={"error": "No member W123456789 (Maria Lopez, born 01/05/1980)", "code": "E17"},
    )
    workflow = patient_search(org_a.id, http_server.url("/patients"))
    run = finished(org_a.id, start(org_a.id, workflow, **PATIENT).pk)
    assert run.outcome == "fail_missing"
    with org_context(org_a.id):
        node_run = NodeRun.objects.get(run=run, node_key="search")
        trace = WorkflowTrace.objects.get(node_run=node_run)
    assert node_run.output == {
        "status": 404,
        "body": {"error": "No member [MEMBER_ID] ([NAME], born [DOB])", "code": "E17"},
    }
    assert trace.action_detail == {
        "node_type": "general",
        "label": "not_found",
        "business_failure": True,
    }
    assert "W123456789" in run.context["nodes"]["search"]["output"]["body"]["error"]


def test_a_template_growing_past_the_limit_fails_its_node_before_allocating(celery_worker, org_a):
    """A factor taken from the row: the publish check cannot see it; the worker refuses the
    repetition before making it (it once grew to 1.6 GB first), and the run says where."""
    workflow, _ = published_transform(org_a.id, {"x": "{{ input.word * input.times }}"})
    run = finished(org_a.id, start(org_a.id, workflow, word="ab", times=300_000_000).pk)
    with org_context(org_a.id):
        node_run = NodeRun.objects.get(run=run, node_key="shape")
    assert (run.status, node_run.status) == ("failed", "failed")
    expected = TOO_LONG.format(what="repeating", size=600_000_000, limit=100_000)
    assert node_run.error == f"'{{{{ input.word * input.times }}}}': {expected}"
    assert run.error.startswith("shape: ")
