"""Writes of workflow authoring: workflows, their draft graph, publishing and status.

The draft (the workflow's own fields, its workflow_node and workflow_transition rows) is
guarded by ``user_workflow.version``. Every draft change names the version it was based on and
claims the next one with ``UPDATE ... WHERE version = <given>``. The row lock that UPDATE takes
makes a concurrent editor wait, and PostgreSQL re-checks the condition once the first edit
commits, so of two edits based on one version exactly one wins and the other gets 409
``stale_version``. The change is made in the same transaction, so a refused change (400)
leaves the version, and everything else, as it was.

A draft may be incomplete (no outcome yet, a config still to fill in) but never malformed:
structural problems refuse the save, publish problems only refuse publishing
(``workflows.validation.graph``). Publishing freezes the draft into an immutable
workflow_revision.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from rcm.errors import ApplicationError, Conflict
from rcm.lookups import WorkflowStatus
from tenants import selectors as tenant_selectors
from tenants.models import Endpoint, User
from workflows.engine import kinds
from workflows.engine.graph import Edge
from workflows.models import (
    NodeType,
    TaskType,
    TriggerRule,
    Workflow,
    WorkflowNode,
    WorkflowRevision,
    WorkflowTransition,
)
from workflows.selectors import authoring as selectors
from workflows.selectors.requirements import task_type_find
from workflows.validation.graph import (
    Problem,
    duplicate_key_problem,
    duplicate_transition_problem,
    edge_problems,
    graph_problems,
    node_problems,
    structure_problems,
)

STALE_VERSION = "The workflow changed since you read it; reload it and apply your change again."
WORKFLOW_ARCHIVED = "This workflow is archived; it can no longer be edited or published."
WORKFLOW_EXISTS = "A workflow with this name already exists."
WORKFLOW_PUBLISHED = "A workflow that was published cannot be deleted; archive it instead."
NOT_ACTIVE = "Only an active workflow can be suspended."
INVALID_GRAPH = "The graph has problems that keep it from being saved; nothing was saved."
NOT_PUBLISHABLE = "The workflow cannot be published; every problem is listed."
UNKNOWN_TASK_TYPE = "No task type has this id or domain/action."
UNKNOWN_ENDPOINT = "Your organization has no endpoint with this id."

WORKFLOW_FIELDS = ("name", "description", "required_data", "task_type", "endpoint_id")
NODE_FIELDS = (
    "key",
    "node_type",
    "kind",
    "config",
    "retry_policy",
    "trigger_rule",
    "timeout_s",
    "position",
)
DECISION_KIND = "decision"  # what a decision node uses when it names no kind


# -- workflows -----------------------------------------------------------------------------


@transaction.atomic
def workflow_create(
    *,
    org_id: uuid.UUID,
    created_by: User | None,
    name: str,
    description: str = "",
    required_data: list[str] | None = None,
    task_type: str | None = None,
    endpoint_id: int | None = None,
) -> Workflow:
    """A new draft workflow with an empty graph.

    ``task_type``: a task type's id or ``domain/action``; ``endpoint_id``: one of the
    organization's endpoints (another organization's is refused as unknown).
    """
    workflow = Workflow(
        org_id=org_id,
        name=name,
        description=description,
        required_data=list(required_data or []),
        status_id=WorkflowStatus.DRAFT,
        task_type=_task_type(task_type),
        endpoint=_endpoint(org_id=org_id, endpoint_id=endpoint_id),
        created_by=created_by,
    )
    _save_named(workflow, force_insert=True)
    return workflow


@transaction.atomic
def workflow_update(*, workflow: Workflow, version: int, **fields) -> Workflow:
    """Change the draft's name, description, required_data, task_type or endpoint_id."""
    _editable_check(fields, WORKFLOW_FIELDS)
    _draft_claim(workflow=workflow, version=version)
    for name in ("name", "description", "required_data"):
        if name in fields:
            setattr(workflow, name, fields[name])
    if "task_type" in fields:
        workflow.task_type = _task_type(fields["task_type"])
    if "endpoint_id" in fields:
        workflow.endpoint = _endpoint(org_id=workflow.org_id, endpoint_id=fields["endpoint_id"])
    _save_named(workflow, update_fields=[*_model_fields(fields), "updated_at"])
    return workflow


@transaction.atomic
def workflow_delete(*, workflow: Workflow) -> None:
    """Delete a workflow that was never published (runs and history point at revisions)."""
    if WorkflowRevision.objects.filter(workflow=workflow).exists():
        raise Conflict("workflow_published", WORKFLOW_PUBLISHED)
    workflow.delete()


def _model_fields(fields) -> list[str]:
    return ["endpoint" if name == "endpoint_id" else name for name in fields]


def _save_named(workflow: Workflow, **save_options) -> None:
    taken = Workflow.objects.filter(org_id=workflow.org_id, name=workflow.name)
    conflict = Conflict("workflow_exists", WORKFLOW_EXISTS, {"name": [workflow.name]})
    if taken.exclude(pk=workflow.pk).exists():
        raise conflict
    try:
        with transaction.atomic():
            workflow.save(**save_options)
    except IntegrityError as exc:  # a concurrent create took the name after the check
        raise conflict from exc


def _task_type(value: str | None) -> TaskType | None:
    if value is None:
        return None
    task_type = task_type_find(ref=value)
    if task_type is None:
        raise ApplicationError(
            "unknown_task_type", UNKNOWN_TASK_TYPE, {"task_type": [UNKNOWN_TASK_TYPE]}
        )
    return task_type


def _endpoint(*, org_id: uuid.UUID, endpoint_id: int | None) -> Endpoint | None:
    if endpoint_id is None:
        return None
    # Another organization's endpoint is as unknown as one that does not exist.
    endpoint = tenant_selectors.endpoint_list().filter(pk=endpoint_id, org_id=org_id).first()
    if endpoint is None:
        raise ApplicationError(
            "unknown_endpoint", UNKNOWN_ENDPOINT, {"endpoint_id": [UNKNOWN_ENDPOINT]}
        )
    return endpoint


def _editable_check(fields, editable) -> None:
    """Refuse (400) an update naming a field it may not change, before the draft is claimed."""
    unknown = sorted(set(fields) - set(editable))
    if unknown:
        raise ApplicationError("invalid", f"Not editable: {', '.join(unknown)}.")


def _draft_claim(*, workflow: Workflow, version: int) -> None:
    """Move the draft from ``version`` to the next one, or refuse (409): stale or archived."""
    now = timezone.now()
    claimed = (
        Workflow.objects.filter(pk=workflow.pk, version=version)
        .exclude(status_id=WorkflowStatus.ARCHIVED)
        .update(version=F("version") + 1, draft_updated_at=now, updated_at=now)
    )
    if not claimed:
        current = Workflow.objects.filter(pk=workflow.pk).values("version", "status_id").get()
        if current["status_id"] == WorkflowStatus.ARCHIVED:
            raise Conflict("workflow_archived", WORKFLOW_ARCHIVED)
        raise Conflict(
            "stale_version",
            STALE_VERSION,
            {"current_version": current["version"], "given_version": version},
        )
    workflow.version = version + 1
    workflow.draft_updated_at = workflow.updated_at = now


def _refuse(problems: list[Problem]) -> None:
    if problems:
        raise ApplicationError(
            "invalid_graph", INVALID_GRAPH, {"problems": [p.as_dict() for p in problems]}
        )


# -- nodes and transitions -----------------------------------------------------------------


def _node_row(workflow: Workflow, fields: Mapping[str, Any]) -> WorkflowNode:
    """An unsaved node of ``workflow`` from ``fields`` (some of NODE_FIELDS), the model's
    defaults for the rest."""
    _editable_check(fields, NODE_FIELDS)
    node = WorkflowNode(org_id=workflow.org_id, workflow=workflow, **fields)
    _node_complete(node)
    return node


def _node_complete(node: WorkflowNode) -> None:
    """Fill in what a node left unsaid: a decision node's kind, and a mapping given as None."""
    if node.node_type == NodeType.DECISION and not node.kind:
        node.kind = DECISION_KIND
    for name in ("config", "retry_policy", "position"):
        if getattr(node, name) is None:
            setattr(node, name, {})


@transaction.atomic
def workflow_node_create(
    *,
    workflow: Workflow,
    version: int,
    key: str,
    node_type: str,
    kind: str = "",
    config: dict | None = None,
    retry_policy: dict | None = None,
    trigger_rule: str = TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
    timeout_s: int | None = None,
    position: dict | None = None,
) -> WorkflowNode:
    """Add a node to the draft (a decision node without a kind gets ``decision``)."""
    _draft_claim(workflow=workflow, version=version)
    node = WorkflowNode(
        org_id=workflow.org_id,
        workflow=workflow,
        key=key,
        node_type=node_type,
        kind=kind,
        config=config,
        retry_policy=retry_policy,
        trigger_rule=trigger_rule,
        timeout_s=timeout_s,
        position=position,
    )
    _node_complete(node)
    problems = node_problems(selectors.graph_node(node))
    if WorkflowNode.objects.filter(workflow=workflow, key=node.key).exists():
        problems.append(duplicate_key_problem(node.key))
    _refuse(problems)
    node.save(force_insert=True)
    return node


@transaction.atomic
def workflow_node_update(*, node: WorkflowNode, version: int, **fields) -> WorkflowNode:
    """Change some of a node's ``NODE_FIELDS`` (a new key keeps its transitions)."""
    _editable_check(fields, NODE_FIELDS)
    _draft_claim(workflow=node.workflow, version=version)
    for name, value in fields.items():
        setattr(node, name, value)
    _node_complete(node)
    problems = node_problems(selectors.graph_node(node))
    siblings = WorkflowNode.objects.filter(workflow_id=node.workflow_id).exclude(pk=node.pk)
    if siblings.filter(key=node.key).exists():
        problems.append(duplicate_key_problem(node.key))
    _refuse(problems)
    node.save()
    return node


@transaction.atomic
def workflow_node_delete(*, node: WorkflowNode, version: int) -> Workflow:
    """Remove a node and its transitions; returns the workflow at its new version."""
    return _draft_row_delete(node, version=version)


@transaction.atomic
def workflow_transition_create(
    *, workflow: Workflow, version: int, source: str, target: str, label: str = kinds.SUCCESS
) -> WorkflowTransition:
    """Add a transition between two nodes of ``workflow``, named by their keys."""
    _draft_claim(workflow=workflow, version=version)
    nodes = {
        node.key: node
        for node in WorkflowNode.objects.filter(workflow=workflow, key__in=[source, target])
    }
    edge = Edge(source=source, target=target, label=label)
    problems = edge_problems(edge, nodes)
    if not problems and (
        WorkflowTransition.objects.filter(
            from_node=nodes[source], to_node=nodes[target], action_label=label
        ).exists()
    ):
        problems.append(duplicate_transition_problem(edge))
    _refuse(problems)
    return WorkflowTransition.objects.create(
        org_id=workflow.org_id,
        workflow=workflow,
        from_node=nodes[source],
        to_node=nodes[target],
        action_label=label,
    )


@transaction.atomic
def workflow_transition_delete(*, transition: WorkflowTransition, version: int) -> Workflow:
    """Remove a transition; returns the workflow at its new version."""
    return _draft_row_delete(transition, version=version)


def _draft_row_delete(row: WorkflowNode | WorkflowTransition, *, version: int) -> Workflow:
    workflow = row.workflow
    _draft_claim(workflow=workflow, version=version)
    row.delete()
    return workflow


@transaction.atomic
def workflow_graph_replace(
    *,
    workflow: Workflow,
    version: int,
    nodes: list[dict],
    transitions: list[dict],
    required_data: list[str] | None = None,
) -> Workflow:
    """Replace the whole draft graph at once: ``nodes`` as for ``workflow_node_create``,
    ``transitions`` as ``{"from": key, "to": key, "label": ...}``.

    Nodes are matched by key and transitions by (from, to, label): rows that stay keep their
    ids (and a transition its traversal count), the rest are deleted or created. Structural
    problems refuse the whole change.
    """
    _draft_claim(workflow=workflow, version=version)
    rows = [_node_row(workflow, item) for item in nodes]
    edges = [
        Edge(source=item["from"], target=item["to"], label=item.get("label", kinds.SUCCESS))
        for item in transitions
    ]
    _refuse(structure_problems([selectors.graph_node(row) for row in rows], edges))

    existing = {node.key: node for node in WorkflowNode.objects.filter(workflow=workflow)}
    WorkflowNode.objects.filter(workflow=workflow).exclude(
        key__in=[row.key for row in rows]
    ).delete()
    created, changed = [], []
    now = timezone.now()
    for row in rows:
        node = existing.get(row.key)
        values = {name: getattr(row, name) for name in NODE_FIELDS}
        if node is None:
            created.append(row)
        elif any(getattr(node, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(node, name, value)
            node.updated_at = now
            changed.append(node)
    WorkflowNode.objects.bulk_create(created)
    WorkflowNode.objects.bulk_update(changed, [*NODE_FIELDS, "updated_at"])
    ids = {row.key: existing[row.key].pk if row.key in existing else row.pk for row in rows}

    current = {
        (t.from_node_id, t.to_node_id, t.action_label): t.pk
        for t in WorkflowTransition.objects.filter(workflow=workflow)
    }
    wanted_edges = dict.fromkeys((ids[e.source], ids[e.target], e.label) for e in edges)
    WorkflowTransition.objects.filter(
        pk__in=[pk for triple, pk in current.items() if triple not in wanted_edges]
    ).delete()
    WorkflowTransition.objects.bulk_create(
        WorkflowTransition(
            org_id=workflow.org_id,
            workflow=workflow,
            from_node_id=source,
            to_node_id=target,
            action_label=label,
        )
        for source, target, label in wanted_edges
        if (source, target, label) not in current
    )
    if required_data is not None:
        workflow.required_data = list(required_data)
        workflow.save(update_fields=["required_data", "updated_at"])
    return workflow


# -- publishing and status -----------------------------------------------------------------


@transaction.atomic
def workflow_publish(
    *,
    workflow: Workflow,
    created_by: User | None,
    comment: str = "",
    version: int | None = None,
) -> WorkflowRevision:
    """Validate the draft and freeze it as the next revision; the workflow becomes active.

    ``version``, if given, must be the draft's current one: what was reviewed is what is
    published. Any problem refuses the publish (400 with all of them) and changes nothing.
    """
    # The lock orders this publish with draft edits (their UPDATE waits for it) and with a
    # concurrent publish (which would take the same revision number).
    locked = Workflow.objects.select_for_update().get(pk=workflow.pk)
    if locked.status_id == WorkflowStatus.ARCHIVED:
        raise Conflict("workflow_archived", WORKFLOW_ARCHIVED)
    if version is not None and version != locked.version:
        raise Conflict(
            "stale_version",
            STALE_VERSION,
            {"current_version": locked.version, "given_version": version},
        )
    graph = selectors.workflow_graph(workflow=locked)
    problems = graph_problems(graph)
    if problems:
        raise ApplicationError(
            "not_publishable", NOT_PUBLISHABLE, {"problems": [p.as_dict() for p in problems]}
        )
    last = WorkflowRevision.objects.filter(workflow=locked).aggregate(last=Max("revision_num"))
    revision = WorkflowRevision.objects.create(
        org_id=locked.org_id,
        workflow=locked,
        revision_num=(last["last"] or 0) + 1,
        graph=graph.to_snapshot(),
        comment=comment,
        created_by=created_by,
    )
    now = timezone.now()
    Workflow.objects.filter(pk=locked.pk).update(
        status_id=WorkflowStatus.ACTIVE, published_at=now, updated_at=now
    )
    workflow.status_id, workflow.published_at, workflow.updated_at = (
        WorkflowStatus.ACTIVE,
        now,
        now,
    )
    # Not a field but workflow_list's annotation, which the caller's object may carry.
    workflow.latest_revision_num = revision.revision_num  # type: ignore[attr-defined]
    return revision


@transaction.atomic
def workflow_suspend(*, workflow: Workflow) -> Workflow:
    """Active -> suspended: new runs are refused until it is published again."""
    now = timezone.now()
    suspended = Workflow.objects.filter(pk=workflow.pk, status_id=WorkflowStatus.ACTIVE).update(
        status_id=WorkflowStatus.SUSPENDED, updated_at=now
    )
    if not suspended:
        status = Workflow.objects.filter(pk=workflow.pk).values_list("status_id", flat=True).get()
        raise Conflict("not_active", NOT_ACTIVE, {"status": status})
    workflow.status_id, workflow.updated_at = WorkflowStatus.SUSPENDED, now
    return workflow


@transaction.atomic
def workflow_archive(*, workflow: Workflow) -> Workflow:
    """Any status -> archived, for good: no more edits, publishes or runs."""
    now = timezone.now()
    Workflow.objects.filter(pk=workflow.pk).update(
        status_id=WorkflowStatus.ARCHIVED, updated_at=now
    )
    workflow.status_id, workflow.updated_at = WorkflowStatus.ARCHIVED, now
    return workflow
