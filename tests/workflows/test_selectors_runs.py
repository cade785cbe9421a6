"""Reads of runs: which edges of its graph a run took, as the engine decided them."""

from __future__ import annotations

import pytest

from rcm.context import org_context
from tests.workflows.engine_helpers import published, published_transform
from tests.workflows.test_engine import finished, start
from workflows.selectors.runs import run_edges_taken

DECISION = {"conditions": [{"when": "input.plan == 'gold'", "label": "gold"}], "default": "basic"}


def _taken(org_id, run):
    with org_context(org_id):
        return run_edges_taken(run=run)


@pytest.mark.celery_worker
def test_a_run_took_the_edges_its_nodes_labels_fired(celery_worker, org_a):
    workflow, _ = published(
        org_a.id,
        "start>pick, pick>premium:gold, pick>standard:basic, premium>done, standard>done",
        decisions={"pick": DECISION},
    )
    gold = finished(org_a.id, start(org_a.id, workflow, plan="gold").pk)
    basic = finished(org_a.id, start(org_a.id, workflow, plan="tin").pk)
    assert _taken(org_a.id, gold) == {("start", "pick"), ("pick", "premium"), ("premium", "done")}
    assert _taken(org_a.id, basic) == {
        ("start", "pick"),
        ("pick", "standard"),
        ("standard", "done"),
    }


@pytest.mark.celery_worker
def test_a_node_that_failed_took_its_error_edge_and_no_other(celery_worker, org_a):
    # Repeating a word 300 million times is refused before it is made: a failure no retry can
    # fix, so the node fails at its first attempt.
    workflow, _ = published_transform(
        org_a.id,
        {"x": "{{ input.word * input.times }}"},
        edges="start>shape, shape>done, shape>fail:error",
    )
    run = finished(org_a.id, start(org_a.id, workflow, word="ab", times=300_000_000).pk)
    assert _taken(org_a.id, run) == {("start", "shape"), ("shape", "fail")}


def test_a_run_just_started_took_only_the_entrys_edges(db, org_a):
    workflow, _ = published(org_a.id, "start>a, a>done")
    run = start(org_a.id, workflow)  # its next message waits for a commit that never comes
    assert _taken(org_a.id, run) == {("start", "a")}
