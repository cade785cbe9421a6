"""Workflows and their editor: the list with a "New workflow" form, and one workflow's draft
graph drawn, its nodes and transitions in tables, forms to change them, validation with each
problem next to its node, and publishing.

Every change goes through the authoring services the API uses, with the draft version the page
was read at; each is a POST-only route asking ``workflow`` ``change`` (publishing: ``run``,
creating: ``add``). A refused change renders the page again with the reasons next to the
fields and writes nothing; an accepted one redirects back, so the picture is drawn anew.

Validating asks ``workflow`` ``view``, as the API's validate does: it changes nothing, and a
viewer who reads a draft may as well see what keeps it from being published.
"""

from __future__ import annotations

from collections import defaultdict

from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse

from console.access import WRITE_METHODS, console_view, may, page
from console.forms.workflows import (
    STALE,
    TRIGGER_RULES,
    EdgeForm,
    NodeEditForm,
    NodeForm,
    PublishForm,
    RemoveForm,
    WorkflowCreateForm,
)
from rcm import permissions
from rcm.context import require_org_id
from rcm.errors import ApplicationError
from rcm.lookups import WorkflowStatus
from tenants import selectors as tenant_selectors
from workflows.drawing.graph import graph_svg, node_summary, retry_summary
from workflows.models import Workflow
from workflows.selectors import authoring as selectors
from workflows.selectors.requirements import task_type_list
from workflows.services import authoring
from workflows.validation.graph import Problem, graph_problems

RESOURCE = "workflow"
RULE_MEANINGS = dict(TRIGGER_RULES)
NO_PROBLEMS = "No problems: this draft can be published."
PROBLEMS_FOUND = "This draft cannot be published yet: {problems}, each listed by its node."
NOT_PUBLISHED = "Nothing was published: {problems}, each listed by its node."
PUBLISHED = (
    "Published revision {revision} of {name}. New runs use it; runs already started keep theirs."
)
CREATED = "Workflow {name} created. Add an entry node to start from and an outcome to end in."
NODE_ADDED = "Node {key} added."
NODE_SAVED = "Node {key} saved."
NODE_REMOVED = "Node {key} removed, with its transitions."
EDGE_ADDED = "Transition {source} -[{label}]-> {target} added."
EDGE_REMOVED = "Transition {source} -[{label}]-> {target} removed."


# -- the list ------------------------------------------------------------------------------


@console_view(RESOURCE)
def workflows(request):
    return _list_page(request, _create_form(request))


@console_view(RESOURCE, permissions.ADD, methods=WRITE_METHODS)
def workflow_create(request):
    form = _create_form(request, request.POST)
    if form.is_valid():
        try:
            workflow = authoring.workflow_create(
                org_id=require_org_id(),
                created_by=request.user,
                name=form.cleaned_data["name"],
                task_type=form.cleaned_data["task_type"] or None,
            )
        except ApplicationError as error:
            form.refused(error)
            return _list_page(request, form, status=error.status)
        messages.success(request, CREATED.format(name=workflow.name))
        return _to_editor(workflow)
    return _list_page(request, form, status=400)


def _create_form(request, data=None) -> WorkflowCreateForm:
    task_types = [(str(task_type), task_type.display_name) for task_type in task_type_list()]
    return WorkflowCreateForm(data, task_types=task_types)


def _list_page(request, form: WorkflowCreateForm, *, status: int = 200):
    rows = selectors.workflow_list().select_related("status").order_by("name")
    return page(
        request,
        "console/workflows.html",
        {
            "workflows": rows,
            "create_form": form if may(request, RESOURCE, permissions.ADD) else None,
        },
        title="Workflows",
        status=status,
    )


# -- the editor ----------------------------------------------------------------------------


@console_view(RESOURCE)
def workflow_editor(request, workflow_id):
    workflow = _workflow(workflow_id)
    editing = request.GET.get("edit")
    node_form = None
    if editing is not None:
        node = _row(selectors.workflow_node_get, workflow, node_id=editing)
        node_form = NodeEditForm.for_node(node, version=workflow.version)
    return _editor(request, workflow, node_form=node_form)


@console_view(RESOURCE)
def workflow_validate(request, workflow_id):
    workflow = _workflow(workflow_id)
    return _editor(request, workflow, validated=True)


@console_view(RESOURCE, permissions.CHANGE, methods=WRITE_METHODS)
def workflow_node_add(request, workflow_id):
    def add(form) -> str:
        node = authoring.workflow_node_create(workflow=workflow, **form.service_fields())
        return NODE_ADDED.format(key=node.key)

    workflow = _workflow(workflow_id)
    return _submitted(request, workflow, NodeForm(request.POST), add, shown_as="node_form")


@console_view(RESOURCE, permissions.CHANGE, methods=WRITE_METHODS)
def workflow_node_edit(request, workflow_id):
    def save(form) -> str:
        node = _row(selectors.workflow_node_get, workflow, node_id=form.cleaned_data["node"])
        node = authoring.workflow_node_update(node=node, **form.service_fields())
        return NODE_SAVED.format(key=node.key)

    workflow = _workflow(workflow_id)
    return _submitted(request, workflow, NodeEditForm(request.POST), save, shown_as="node_form")


@console_view(RESOURCE, permissions.CHANGE, methods=WRITE_METHODS)
def workflow_node_remove(request, workflow_id):
    def remove(form) -> str:
        node = _row(selectors.workflow_node_get, workflow, node_id=form.cleaned_data["row"])
        authoring.workflow_node_delete(node=node, version=form.cleaned_data["version"])
        return NODE_REMOVED.format(key=node.key)

    workflow = _workflow(workflow_id)
    return _submitted(request, workflow, RemoveForm(request.POST), remove, shown_as="remove_form")


@console_view(RESOURCE, permissions.CHANGE, methods=WRITE_METHODS)
def workflow_edge_add(request, workflow_id):
    def add(form) -> str:
        data = form.cleaned_data
        authoring.workflow_transition_create(
            workflow=workflow,
            version=data["version"],
            source=data["source"],
            target=data["target"],
            label=data["label"],
        )
        return EDGE_ADDED.format(**data)

    workflow = _workflow(workflow_id)
    form = EdgeForm(request.POST, keys=_keys(workflow))
    return _submitted(request, workflow, form, add, shown_as="edge_form")


@console_view(RESOURCE, permissions.CHANGE, methods=WRITE_METHODS)
def workflow_edge_remove(request, workflow_id):
    def remove(form) -> str:
        transition = _row(
            selectors.workflow_transition_get, workflow, transition_id=form.cleaned_data["row"]
        )
        authoring.workflow_transition_delete(
            transition=transition, version=form.cleaned_data["version"]
        )
        return EDGE_REMOVED.format(
            source=transition.from_node.key,
            label=transition.action_label,
            target=transition.to_node.key,
        )

    workflow = _workflow(workflow_id)
    return _submitted(request, workflow, RemoveForm(request.POST), remove, shown_as="remove_form")


def _submitted(request, workflow: Workflow, form, change, *, shown_as: str):
    """One of the editor's forms, posted: if it is valid, ``change(form)`` makes the change
    through the authoring services and says what it did, and the editor opens again; what the
    form or a service refuses (a stale version, a clash) is shown beside its field, on the
    editor with the form as it was sent, and nothing is written."""
    if form.is_valid():
        try:
            done = change(form)
        except ApplicationError as error:
            form.refused(error)
        else:
            messages.success(request, done)
            return _to_editor(workflow)
    return _editor(request, workflow, **{shown_as: form}, status=form.status)


@console_view(RESOURCE, permissions.RUN, methods=WRITE_METHODS)
def workflow_publish(request, workflow_id):
    workflow = _workflow(workflow_id)
    form = PublishForm(request.POST)
    if form.is_valid():
        try:
            revision = authoring.workflow_publish(
                workflow=workflow,
                created_by=request.user,
                comment=form.cleaned_data["comment"],
                version=form.cleaned_data["version"],
            )
        except ApplicationError as error:
            if error.code != "not_publishable":
                form.refused(error)
                return _editor(request, workflow, publish_form=form, status=form.status)
            problems = [Problem(**problem) for problem in error.details["problems"]]
            messages.error(request, NOT_PUBLISHED.format(problems=_problems(len(problems))))
            return _editor(request, workflow, problems=problems, status=400)
        messages.success(
            request, PUBLISHED.format(revision=revision.revision_num, name=workflow.name)
        )
        return _to_editor(workflow)
    return _editor(request, workflow, publish_form=form, status=400)


# -- reading and drawing -------------------------------------------------------------------


def _workflow(workflow_id) -> Workflow:
    """The organization's workflow; another organization's is not found."""
    workflow = selectors.workflow_list().select_related("status").filter(pk=workflow_id).first()
    if workflow is None:
        raise Http404("No such workflow.")
    return workflow


def _row(selector, workflow: Workflow, **ids):
    """A node or transition of ``workflow``; any other (or a malformed id) is not found."""
    try:
        return selector(workflow=workflow, **{name: int(value) for name, value in ids.items()})
    except (ApplicationError, TypeError, ValueError) as error:
        raise Http404("No such row in this workflow.") from error


def _problems(count: int) -> str:
    return "1 problem" if count == 1 else f"{count} problems"


def _keys(workflow: Workflow) -> list[str]:
    return list(
        selectors.workflow_node_list(workflow=workflow).order_by("id").values_list("key", flat=True)
    )


def _to_editor(workflow: Workflow) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("console:workflow_editor", args=(workflow.pk,)))


def _editor(
    request,
    workflow: Workflow,
    *,
    node_form=None,
    edge_form=None,
    remove_form=None,
    publish_form=None,
    problems: list[Problem] | None = None,
    validated: bool = False,
    status: int = 200,
):
    """The editor page: the draft drawn, its tables, and (for those who may change it) the
    forms, bound ones showing why they were refused."""
    graph = selectors.workflow_graph(workflow=workflow)
    if validated:
        problems = graph_problems(graph)
        if problems:
            messages.warning(request, PROBLEMS_FOUND.format(problems=_problems(len(problems))))
        else:
            messages.success(request, NO_PROBLEMS)
    by_node: dict[str | None, list[str]] = defaultdict(list)
    for problem in problems or ():
        by_node[problem.node if problem.node in graph.nodes else None].append(problem.message)
    endpoint_names = dict(tenant_selectors.endpoint_list().values_list("id", "name"))
    rows = list(selectors.workflow_node_list(workflow=workflow).order_by("id"))
    nodes = [
        {
            "row": row,
            "summary": node_summary(graph.nodes[row.key], endpoint_names),
            "retry": retry_summary(graph.nodes[row.key]),
            "rule": RULE_MEANINGS.get(row.trigger_rule, row.trigger_rule),
            "problems": by_node.get(row.key, []),
        }
        for row in rows
    ]
    archived = workflow.status_id == WorkflowStatus.ARCHIVED
    can_change = may(request, RESOURCE, permissions.CHANGE) and not archived
    can_publish = may(request, RESOURCE, permissions.RUN) and not archived
    version = {"version": workflow.version}
    keys = [row.key for row in rows]
    bound = [f for f in (node_form, edge_form, remove_form, publish_form) if f is not None]
    node_form = node_form or NodeForm(initial=version)
    context = {
        "workflow": workflow,
        "picture": graph_svg(
            graph.to_snapshot(), marked=set(by_node) - {None}, endpoint_names=endpoint_names
        ),
        "nodes": nodes,
        "transitions": selectors.workflow_transition_list(workflow=workflow).order_by("id"),
        "graph_problems": by_node.get(None, []),
        "archived": archived,
        "version": workflow.version,
        "latest_revision": workflow.latest_revision_num,
        "stale": STALE if any(form.stale for form in bound) else "",
        # Why a form was refused, when the page does not show its fields (the buttons of a
        # row, publishing, or a form the workflow no longer offers: it was archived).
        "notices": [
            error
            for form in bound
            if form in (remove_form, publish_form) or not can_change
            for errors in form.errors.values()
            for error in errors
        ],
        "editing": node_form["key"].value() if isinstance(node_form, NodeEditForm) else "",
    }
    if can_change:
        context["node_form"] = node_form
        context["edge_form"] = edge_form or EdgeForm(initial=version, keys=keys)
        context["remove_form"] = remove_form
    if can_publish:
        context["publish_form"] = publish_form or PublishForm(initial=version)
    return page(
        request, "console/workflow_editor.html", context, title=workflow.name, status=status
    )
