"""HTTP endpoints of runs and traces."""

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from rcm.api.views import OrgScopedAPIView
from rcm.permissions import RUN
from workflows.models import Workflow
from workflows.selectors import runs as selectors
from workflows.serializers import runs as io
from workflows.services import runs as services


class RunBase(OrgScopedAPIView):
    resource = "run"

    def base_queryset(self):
        return selectors.run_detail_queryset()


class WorkflowRunStartApi(OrgScopedAPIView):
    """Start a run of a workflow (asynchronous: the answer is the run, not yet finished)."""

    resource = "run"

    def base_queryset(self):
        return Workflow.objects.all()

    @extend_schema(request=io.RunStartInput, responses={202: io.RunOutput})
    def post(self, request, pk):
        data = self.validated(io.RunStartInput)
        run = services.run_start(
            workflow=self.get_object(),
            input=data["input"],
            created_by=request.user,
            external_id=data.get("external_id"),
            timeout_s=data.get("timeout_s"),
        )
        return Response(io.RunOutput(run).data, status=status.HTTP_202_ACCEPTED)


class RunListApi(RunBase):
    def base_queryset(self):
        filters = self.validated_query(io.RunListFilter)
        return selectors.run_list(
            workflow_id=filters.get("workflow"),
            status=filters.get("status"),
            since=filters.get("since"),
            until=filters.get("until"),
        )

    @extend_schema(
        parameters=[io.RunListFilter],
        responses={200: io.RunOutput(many=True)},
    )
    def get(self, request):
        return self.list_response(io.RunOutput)


class RunDetailApi(RunBase):
    @extend_schema(responses={200: io.RunDetailOutput})
    def get(self, request, pk):
        return Response(io.RunDetailOutput(self.get_object()).data)


class RunCancelApi(RunBase):
    actions = {"POST": RUN}

    @extend_schema(request=None, responses={200: io.RunOutput})
    def post(self, request, pk):
        run = services.run_cancel(run=self.get_object())
        return Response(io.RunOutput(run).data)


class RunRerunApi(RunBase):
    actions = {"POST": RUN}

    @extend_schema(request=io.RunRerunInput, responses={202: io.RunOutput})
    def post(self, request, pk):
        data = self.validated(io.RunRerunInput)
        run = services.run_rerun(
            run=self.get_object(), created_by=request.user, use_current=data["use_current"]
        )
        return Response(io.RunOutput(run).data, status=status.HTTP_202_ACCEPTED)


class TraceListApi(OrgScopedAPIView):
    resource = "trace"

    def base_queryset(self):
        filters = self.validated_query(io.TraceListFilter)
        return selectors.trace_list(
            run_id=filters.get("run"),
            workflow_id=filters.get("workflow"),
            since=filters.get("since"),
            until=filters.get("until"),
        )

    @extend_schema(
        parameters=[io.TraceListFilter],
        responses={200: io.TraceOutput(many=True)},
    )
    def get(self, request):
        return self.list_response(io.TraceOutput)


urlpatterns = [
    path("workflows/<uuid:pk>/runs/", WorkflowRunStartApi.as_view(), name="workflow-run-start"),
    path("runs/", RunListApi.as_view(), name="run-list"),
    path("runs/<int:pk>/", RunDetailApi.as_view(), name="run-detail"),
    path("runs/<int:pk>/cancel/", RunCancelApi.as_view(), name="run-cancel"),
    path("runs/<int:pk>/rerun/", RunRerunApi.as_view(), name="run-rerun"),
    path("traces/", TraceListApi.as_view(), name="trace-list"),
]
