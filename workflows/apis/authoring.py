"""HTTP endpoints of workflow authoring: workflows, their draft graph (node by node, transition
by transition, or the whole graph at once), validation, publishing, revisions, suspend and
archive. Viewers read; operators author and publish.

Optimistic locking: every draft change carries the ``version`` of the workflow the client last
read, in the JSON body of POST, PUT and PATCH and as the ``?version=`` query parameter of
DELETE (a DELETE has no body). A stale one is refused with 409 ``stale_version`` and the
current version in ``details.current_version``; an accepted change answers with the new one
(``version`` or ``workflow_version``).

Views parse input, call one service or selector, serialize the result; the organization, the
role check and the scoping belong to OrgScopedAPIView, so another organization's workflow is
not found (404).
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from rcm.api.serializers import PageQuery
from rcm.api.views import OrgScopedAPIView
from rcm.permissions import CHANGE, RUN, VIEW
from workflows.selectors import authoring as selectors
from workflows.serializers import authoring as io
from workflows.services import authoring as services

# -- workflows -----------------------------------------------------------------------------


class WorkflowBase(OrgScopedAPIView):
    resource = "workflow"

    def base_queryset(self):
        return selectors.workflow_list()


class WorkflowListApi(WorkflowBase):
    def base_queryset(self):
        return selectors.workflow_list(
            status=self.validated_query(io.WorkflowListFilter).get("status")
        )

    @extend_schema(
        parameters=[io.WorkflowListFilter], responses={200: io.WorkflowOutput(many=True)}
    )
    def get(self, request):
        return self.list_response(io.WorkflowOutput)

    @extend_schema(request=io.WorkflowCreateInput, responses={201: io.WorkflowOutput})
    def post(self, request):
        data = self.validated(io.WorkflowCreateInput)
        workflow = services.workflow_create(org_id=self.org_id, created_by=request.user, **data)
        return Response(io.WorkflowOutput(workflow).data, status=status.HTTP_201_CREATED)


class WorkflowDetailApi(WorkflowBase):
    def base_queryset(self):
        return selectors.workflow_list_with_graph()

    @extend_schema(responses={200: io.WorkflowDetailOutput})
    def get(self, request, pk):
        return Response(io.WorkflowDetailOutput(self.get_object()).data)

    @extend_schema(request=io.WorkflowUpdateInput, responses={200: io.WorkflowDetailOutput})
    def patch(self, request, pk):
        data = self.validated(io.WorkflowUpdateInput)
        workflow = services.workflow_update(workflow=self.get_object(), **data)
        return Response(io.WorkflowDetailOutput(workflow).data)

    @extend_schema(
        responses={204: None},
        description="Only a workflow that was never published; archive a published one.",
    )
    def delete(self, request, pk):
        services.workflow_delete(workflow=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


# -- the draft graph -----------------------------------------------------------------------


class WorkflowNodeListApi(WorkflowBase):
    actions = {"POST": CHANGE}  # a part of the draft graph: the workflow changes

    @extend_schema(parameters=[PageQuery], responses={200: io.NodeOutput(many=True)})
    def get(self, request, pk):
        self.validated_query(PageQuery)
        return self.list_response(
            io.NodeOutput, selectors.workflow_node_list(workflow=self.get_object())
        )

    @extend_schema(request=io.NodeCreateInput, responses={201: io.NodeChangeOutput})
    def post(self, request, pk):
        data = self.validated(io.NodeCreateInput)
        node = services.workflow_node_create(workflow=self.get_object(), **data)
        return Response(io.NodeChangeOutput(node).data, status=status.HTTP_201_CREATED)


class WorkflowNodeDetailApi(WorkflowBase):
    actions = {"DELETE": CHANGE}  # a part of the draft graph: the workflow changes

    def node(self):
        return selectors.workflow_node_get(
            workflow=self.get_object(), node_id=self.kwargs["node_id"]
        )

    @extend_schema(responses={200: io.NodeOutput})
    def get(self, request, pk, node_id):
        return Response(io.NodeOutput(self.node()).data)

    @extend_schema(request=io.NodeUpdateInput, responses={200: io.NodeChangeOutput})
    def patch(self, request, pk, node_id):
        data = self.validated(io.NodeUpdateInput)
        node = services.workflow_node_update(node=self.node(), **data)
        return Response(io.NodeChangeOutput(node).data)

    @extend_schema(
        parameters=[io.VersionQuery],
        responses={200: io.VersionOutput},
        description="Removes the node and its transitions.",
    )
    def delete(self, request, pk, node_id):
        version = self.validated_query(io.VersionQuery)["version"]
        workflow = services.workflow_node_delete(node=self.node(), version=version)
        return Response(io.VersionOutput(workflow).data)


class WorkflowTransitionListApi(WorkflowBase):
    actions = {"POST": CHANGE}  # a part of the draft graph: the workflow changes

    @extend_schema(parameters=[PageQuery], responses={200: io.TransitionOutput(many=True)})
    def get(self, request, pk):
        self.validated_query(PageQuery)
        return self.list_response(
            io.TransitionOutput, selectors.workflow_transition_list(workflow=self.get_object())
        )

    @extend_schema(request=io.TransitionCreateInput, responses={201: io.TransitionChangeOutput})
    def post(self, request, pk):
        data = self.validated(io.TransitionCreateInput)
        transition = services.workflow_transition_create(
            workflow=self.get_object(),
            version=data["version"],
            source=data["from"],
            target=data["to"],
            label=data["label"],
        )
        return Response(io.TransitionChangeOutput(transition).data, status=status.HTTP_201_CREATED)


class WorkflowTransitionDetailApi(WorkflowBase):
    actions = {"DELETE": CHANGE}  # a part of the draft graph: the workflow changes

    def transition(self):
        return selectors.workflow_transition_get(
            workflow=self.get_object(), transition_id=self.kwargs["transition_id"]
        )

    @extend_schema(responses={200: io.TransitionOutput})
    def get(self, request, pk, transition_id):
        return Response(io.TransitionOutput(self.transition()).data)

    @extend_schema(parameters=[io.VersionQuery], responses={200: io.VersionOutput})
    def delete(self, request, pk, transition_id):
        version = self.validated_query(io.VersionQuery)["version"]
        workflow = services.workflow_transition_delete(
            transition=self.transition(), version=version
        )
        return Response(io.VersionOutput(workflow).data)


class WorkflowGraphApi(WorkflowBase):
    def base_queryset(self):
        return selectors.workflow_list_with_graph()

    @extend_schema(responses={200: io.GraphOutput})
    def get(self, request, pk):
        return Response(io.GraphOutput(self.get_object()).data)

    @extend_schema(
        request=io.GraphInput,
        responses={200: io.GraphOutput},
        description="Replaces the draft's nodes and transitions at once (and required_data, "
        "if given). Nodes are matched by key and transitions by (from, to, label): those "
        "that stay keep their ids. A structural problem (duplicate key, unknown node_type or "
        "kind, dangling transition, self-loop, ...) refuses the whole change with 400 "
        "invalid_graph listing every problem by node; an incomplete graph is saved "
        "(validate and publish report what it lacks).",
    )
    def put(self, request, pk):
        data = self.validated(io.GraphInput)
        workflow = services.workflow_graph_replace(workflow=self.get_object(), **data)
        return Response(io.GraphOutput(selectors.workflow_with_graph(workflow_id=workflow.pk)).data)


# -- validation, publishing, revisions, status ---------------------------------------------


class WorkflowValidateApi(WorkflowBase):
    actions = {"POST": VIEW}  # a POST that changes nothing: whoever reads may check

    @extend_schema(
        request=None,
        responses={200: io.ValidationOutput},
        description="Every problem that would refuse publishing the draft, each naming its "
        "node (null: the graph as a whole).",
    )
    def post(self, request, pk):
        problems = selectors.workflow_problems(workflow=self.get_object())
        body = {"valid": not problems, "problems": [problem.as_dict() for problem in problems]}
        return Response(io.ValidationOutput(body).data)


class WorkflowPublishApi(WorkflowBase):
    actions = {"POST": RUN}

    @extend_schema(
        request=io.PublishInput,
        responses={201: io.RevisionOutput},
        description="Validates the draft and freezes it as the next revision; the workflow "
        "becomes active. Any problem: 400 not_publishable listing them all, nothing changed.",
    )
    def post(self, request, pk):
        data = self.validated(io.PublishInput)
        revision = services.workflow_publish(
            workflow=self.get_object(), created_by=request.user, **data
        )
        return Response(io.RevisionOutput(revision).data, status=status.HTTP_201_CREATED)


class WorkflowRevisionListApi(WorkflowBase):
    @extend_schema(
        parameters=[PageQuery],
        responses={200: io.RevisionOutput(many=True)},
        description="Newest first.",
    )
    def get(self, request, pk):
        self.validated_query(PageQuery)
        return self.list_response(
            io.RevisionOutput, selectors.workflow_revision_list(workflow=self.get_object())
        )


class WorkflowRevisionDetailApi(WorkflowBase):
    @extend_schema(responses={200: io.RevisionDetailOutput})
    def get(self, request, pk, revision_num):
        revision = selectors.workflow_revision_get(
            workflow=self.get_object(), revision_num=revision_num
        )
        return Response(io.RevisionDetailOutput(revision).data)


class WorkflowSuspendApi(WorkflowBase):
    actions = {"POST": RUN}

    @extend_schema(
        request=None,
        responses={200: io.WorkflowOutput},
        description="Active -> suspended: new runs are refused until it is published again.",
    )
    def post(self, request, pk):
        return Response(
            io.WorkflowOutput(services.workflow_suspend(workflow=self.get_object())).data
        )


class WorkflowArchiveApi(WorkflowBase):
    actions = {"POST": RUN}

    @extend_schema(
        request=None,
        responses={200: io.WorkflowOutput},
        description="Any status -> archived, for good: no more edits, publishes or runs.",
    )
    def post(self, request, pk):
        return Response(
            io.WorkflowOutput(services.workflow_archive(workflow=self.get_object())).data
        )


WORKFLOW = "workflows/<uuid:pk>/"

urlpatterns = [
    path("workflows/", WorkflowListApi.as_view(), name="workflow-list"),
    path(WORKFLOW, WorkflowDetailApi.as_view(), name="workflow-detail"),
    path(f"{WORKFLOW}nodes/", WorkflowNodeListApi.as_view(), name="workflow-node-list"),
    path(
        f"{WORKFLOW}nodes/<int:node_id>/",
        WorkflowNodeDetailApi.as_view(),
        name="workflow-node-detail",
    ),
    path(
        f"{WORKFLOW}transitions/",
        WorkflowTransitionListApi.as_view(),
        name="workflow-transition-list",
    ),
    path(
        f"{WORKFLOW}transitions/<int:transition_id>/",
        WorkflowTransitionDetailApi.as_view(),
        name="workflow-transition-detail",
    ),
    path(f"{WORKFLOW}graph/", WorkflowGraphApi.as_view(), name="workflow-graph"),
    path(f"{WORKFLOW}validate/", WorkflowValidateApi.as_view(), name="workflow-validate"),
    path(f"{WORKFLOW}publish/", WorkflowPublishApi.as_view(), name="workflow-publish"),
    path(f"{WORKFLOW}revisions/", WorkflowRevisionListApi.as_view(), name="workflow-revision-list"),
    path(
        f"{WORKFLOW}revisions/<int:revision_num>/",
        WorkflowRevisionDetailApi.as_view(),
        name="workflow-revision-detail",
    ),
    path(f"{WORKFLOW}suspend/", WorkflowSuspendApi.as_view(), name="workflow-suspend"),
    path(f"{WORKFLOW}archive/", WorkflowArchiveApi.as_view(), name="workflow-archive"),
]
