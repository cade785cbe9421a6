"""Reads: every kind of object as its frozen dataclass, and lists followed page by page."""

import dataclasses
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from rcm_client import (
    BatchItem,
    BatchJob,
    Endpoint,
    MicroState,
    NodeRun,
    Revision,
    Run,
    WebAction,
    Workflow,
)

from memory.services import micro_state_store
from rcm.context import org_context
from tenants import services as tenant_services
from tenants.models import ChannelType
from tests.client.conftest import echo_workflow
from webactions.models import WebAction as WebActionRow
from workflows.services import runs as run_services

PAGES = Path(__file__).resolve().parent.parent / "fixtures" / "portal"
RUNS = "/api/v2/runs/"


def start_runs(tenant, workflow, count: int) -> list[int]:
    with org_context(tenant.id):
        return [
            run_services.run_start(workflow=workflow, input={"member_id": f"M{n}"}).pk
            for n in range(count)
        ]


def test_lists_are_followed_through_every_cursor_page(connect, org_a, org_b, recorder):
    workflow = echo_workflow(org_a)
    started = start_runs(org_a, workflow, 7)
    start_runs(org_b, echo_workflow(org_b), 2)  # never seen
    client = connect(org_a, transport=recorder)
    runs = list(client.runs(page_size=2))
    assert [run.id for run in runs] == sorted(started, reverse=True)  # newest first
    pages = [urlsplit(str(item.url)) for item in recorder.log if item.path == RUNS]
    assert len(pages) == 4
    assert parse_qs(pages[0].query) == {"page_size": ["2"]}
    cursors = [parse_qs(page.query)["cursor"][0] for page in pages[1:]]
    assert len(set(cursors)) == 3
    # Iteration is lazy: a caller that stops early asks for no further page.
    recorder.log.clear()
    assert next(iter(client.runs(workflow=workflow, page_size=2))).id
    assert len([item for item in recorder.log if item.path == RUNS]) == 1


def test_runs_workflows_and_revisions_are_typed(connect, org_a):
    workflow = echo_workflow(org_a, name="Eligibility")
    [run_id] = start_runs(org_a, workflow, 1)
    client = connect(org_a)
    [listed] = client.workflows()
    assert isinstance(listed, Workflow) and listed.name == "Eligibility"
    assert listed.required_data == ["member_id"] and listed.nodes is None
    assert isinstance(listed.created_at, datetime) and listed.created_at.tzinfo is not None
    detail = client.workflow(workflow.pk)
    assert detail.id == str(workflow.pk) and isinstance(detail.nodes, list)
    [revision] = client.revisions(workflow)
    assert isinstance(revision, Revision) and revision.revision_num == 1
    assert revision.graph is None
    nodes = client.revision(workflow, 1).graph["nodes"]
    assert {node["key"] for node in nodes} == {"start", "shape", "done"}

    run = client.run(run_id)
    assert isinstance(run, Run) and run.input == {"member_id": "M0"}
    assert run.status == "running" and not run.finished  # no worker here: it stays so
    assert all(isinstance(node, NodeRun) for node in run.nodes)
    assert {node.node_key for node in run.nodes} == {"start", "shape", "done"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.status = "completed"


def test_batch_jobs_and_items_are_typed(connect, org_a):
    workflow = echo_workflow(org_a)
    client = connect(org_a)
    created = client.upload_rows([{"member_id": "A1"}, {"member_id": "A2"}], workflow=workflow)
    [job] = client.batch_jobs(workflow=workflow)
    assert isinstance(job, BatchJob) and job == created
    assert (job.total_rows, job.pending_rows, job.status) == (2, 2, "pending")
    assert job.progress.percent_done == 0.0 and not job.finished
    items = list(client.batch_items(job.id, page_size=1))
    assert all(isinstance(item, BatchItem) for item in items)
    assert [item.row_number for item in items] == [1, 2]
    assert items[1].input == {"member_id": "A2"}


def test_endpoints_micro_states_and_web_actions_are_typed(connect, org_a):
    with org_context(org_a.id):
        endpoint = tenant_services.endpoint_create(
            org_id=org_a.id, name="UHC", channel_type=ChannelType.objects.get(code="uhc-portal")
        )
        stored = micro_state_store(
            dom_snapshot=(PAGES / "patient_search.html").read_text(),
            action_json={"tool": "click", "target": {"role": "button", "name": "Search"}},
            url="https://portal.example/search",
        )
        action = WebActionRow.objects.create(
            org_id=org_a.id, endpoint=endpoint, actions=[{"tool": "goto", "url": "/"}]
        )
    client = connect(org_a)
    [listed_endpoint] = client.endpoints()
    assert isinstance(listed_endpoint, Endpoint) and listed_endpoint.channel_type == "uhc-portal"
    assert client.endpoint(endpoint.pk) == listed_endpoint

    [state] = client.micro_states()
    assert isinstance(state, MicroState) and state.id == stored.state.pk
    assert state.text_emb is None
    assert len(client.micro_state(state.id, include_embedding=True).text_emb) == 768

    [listed_action] = client.web_actions(status="pending")
    assert isinstance(listed_action, WebAction) and listed_action.id == action.pk
    assert listed_action.actions is None
    assert client.web_action(action.pk).actions == [{"tool": "goto", "url": "/"}]


def test_fields_a_newer_server_adds_are_tolerated_and_kept_in_raw(connect, org_a):
    workflow = echo_workflow(org_a)
    [run_id] = start_runs(org_a, workflow, 1)
    answer = dict(connect(org_a).run(run_id).raw)
    answer["priority"] = "high"  # a field this client does not know
    run = Run.from_api(answer)
    assert run.id == run_id and run.raw["priority"] == "high"
    assert not hasattr(run, "priority")
