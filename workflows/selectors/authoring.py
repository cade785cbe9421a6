"""Reads of workflow authoring: workflows, their draft graph, revisions, and the draft read as
an engine ``Graph`` (what validation checks and publishing freezes).

All of them go through the tenant-scoped managers: call them inside an organization context.
"""

from __future__ import annotations

import uuid

from django.db.models import Max, Prefetch, QuerySet

from rcm.errors import NotFound
from workflows.engine.graph import Edge, Graph, Node
from workflows.models import (
    Workflow,
    WorkflowNode,
    WorkflowRevision,
    WorkflowTransition,
)
from workflows.validation.graph import Problem, graph_problems

NOT_FOUND = "Not found."


def workflow_list(*, status: str | None = None) -> QuerySet[Workflow]:
    """Workflows with their task type and the number of their latest revision (or None)."""
    workflows = Workflow.objects.select_related("task_type").annotate(
        latest_revision_num=Max("revisions__revision_num")
    )
    return workflows.filter(status_id=status) if status else workflows


def workflow_list_with_graph() -> QuerySet[Workflow]:
    """``workflow_list`` with the draft's nodes and transitions prefetched (three queries)."""
    return workflow_list().prefetch_related(
        Prefetch("nodes", queryset=WorkflowNode.objects.order_by("id")),
        Prefetch(
            "transitions",
            queryset=WorkflowTransition.objects.select_related("from_node", "to_node").order_by(
                "id"
            ),
        ),
    )


def workflow_with_graph(*, workflow_id: uuid.UUID) -> Workflow:
    return workflow_list_with_graph().get(pk=workflow_id)


def workflow_node_list(*, workflow: Workflow) -> QuerySet[WorkflowNode]:
    return WorkflowNode.objects.filter(workflow=workflow)


def workflow_node_get(*, workflow: Workflow, node_id: int) -> WorkflowNode:
    node = workflow_node_list(workflow=workflow).select_related("workflow").filter(pk=node_id)
    return _one(node)


def workflow_transition_list(*, workflow: Workflow) -> QuerySet[WorkflowTransition]:
    return WorkflowTransition.objects.select_related("from_node", "to_node").filter(
        workflow=workflow
    )


def workflow_transition_get(*, workflow: Workflow, transition_id: int) -> WorkflowTransition:
    transition = workflow_transition_list(workflow=workflow).select_related("workflow")
    return _one(transition.filter(pk=transition_id))


def workflow_revision_list(*, workflow: Workflow) -> QuerySet[WorkflowRevision]:
    return WorkflowRevision.objects.filter(workflow=workflow)


def workflow_revision_get(*, workflow: Workflow, revision_num: int) -> WorkflowRevision:
    return _one(workflow_revision_list(workflow=workflow).filter(revision_num=revision_num))


def workflow_graph(*, workflow: Workflow) -> Graph:
    """The draft as the engine reads a graph (two queries); ``to_snapshot()`` freezes it."""
    nodes = {
        node.key: graph_node(node) for node in workflow_node_list(workflow=workflow).order_by("id")
    }
    edges = [
        Edge(
            source=transition.from_node.key,
            target=transition.to_node.key,
            label=transition.action_label,
            id=transition.pk,
        )
        for transition in workflow_transition_list(workflow=workflow).order_by("id")
    ]
    return Graph(
        nodes=nodes,
        edges=edges,
        required_data=list(workflow.required_data),
        task_type_id=str(workflow.task_type_id) if workflow.task_type_id else None,
        endpoint_id=workflow.endpoint_id,
    )


def graph_node(node: WorkflowNode) -> Node:
    """A draft row (saved or not) as the engine's node."""
    return Node(
        key=node.key,
        node_type=node.node_type,
        kind=node.kind,
        config=node.config,
        retry_policy=node.retry_policy,
        trigger_rule=node.trigger_rule,
        timeout_s=node.timeout_s,
        id=node.pk,
    )


def workflow_problems(*, workflow: Workflow) -> list[Problem]:
    """Everything that keeps the draft from being published (empty: publishable)."""
    return graph_problems(workflow_graph(workflow=workflow))


def _one(queryset: QuerySet):
    found = queryset.first()
    if found is None:
        raise NotFound("not_found", NOT_FOUND)
    return found
