"""HTTP endpoints of batch jobs: upload, list, detail, items, results.csv, cancel, retry."""

from django.http import StreamingHttpResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from rcm.api.pagination import CreatedCursorPagination
from rcm.api.parsers import CheckedJSONParser
from rcm.api.renderers import CsvRenderer
from rcm.api.views import OrgScopedAPIView
from rcm.permissions import RUN
from workflows.models import BatchJob
from workflows.selectors import batch as selectors
from workflows.serializers import batch as io
from workflows.services import batch as services
from workflows.services import batch_upload
from workflows.validation.files import MULTIPART_SLACK_BYTES, upload_size_check

UPLOAD_DESCRIPTION = (
    "Upload a batch: multipart/form-data with a `file` (CSV in UTF-8, with or without BOM, or "
    "Windows-1252; or Excel .xlsx), or a JSON body with `rows`. Every row is checked against "
    "the workflow's required data and its task's effective requirements. Errors: 400 "
    "`invalid_rows` (on_invalid=reject; up to 100 errors listed as row, field, message; rows "
    "are numbered from 1, the first row under the header), 400 naming a bad file "
    "(`empty_file`, `no_rows`, `blank_header`, `duplicate_header`, `ragged_row`, "
    "`undecodable`, `missing_columns`, ...), 400 naming a workbook that costs more to read "
    "than its size promises (`xlsx_compression_ratio`, `xlsx_compression_method`, "
    "`xlsx_oversized_xml`, `xlsx_directory_too_large`), 413 `file_too_large` / "
    "`too_many_rows` (blank rows count) / `xlsx_too_large`, 404 for a workflow that is not "
    "yours, 409 for one that is not active or never published."
)
RESULTS_DESCRIPTION = (
    "The job's rows as CSV (UTF-8 with BOM), streamed: row_number, the input columns (the "
    "workflow's required_data first, then the others alphabetically), the output columns "
    "(alphabetically), status, error. Cells a spreadsheet would run as formulas (starting "
    "with = + - @, tab or carriage return, plain numbers aside) are prefixed with a quote."
)


class BatchJobBase(OrgScopedAPIView):
    resource = "batch_job"

    def base_queryset(self):
        return BatchJob.objects.all()


class ItemCursorPagination(CreatedCursorPagination):
    # Items in file order: row_number is unique within a job, so the cursor is stable.
    ordering = ("row_number",)


class BatchJobListCreateApi(BatchJobBase):
    # JSON rows or a multipart file; uploads above FILE_UPLOAD_MAX_MEMORY_SIZE are spooled to
    # a temporary file by Django and read from there in chunks.
    parser_classes = [CheckedJSONParser, MultiPartParser]

    def base_queryset(self):
        filters = self.validated_query(io.BatchJobListFilter)
        return selectors.batch_job_list(
            workflow_id=filters.get("workflow"),
            status=filters.get("status"),
            since=filters.get("since"),
            until=filters.get("until"),
        )

    @extend_schema(
        parameters=[io.BatchJobListFilter],
        responses={200: io.BatchJobOutput(many=True)},
    )
    def get(self, request):
        return self.list_response(io.BatchJobOutput)

    @extend_schema(
        description=UPLOAD_DESCRIPTION,
        request={
            "multipart/form-data": io.BatchJobFileInput,
            "application/json": io.BatchJobRowsInput,
        },
        responses={201: io.BatchJobOutput},
    )
    def post(self, request):
        multipart = (request.content_type or "").startswith("multipart/")
        # Before the body is parsed: an oversized file is refused before it is spooled.
        upload_size_check(
            size=_content_length(request),
            slack=MULTIPART_SLACK_BYTES if multipart else 0,
        )
        data = self.validated(io.BatchJobFileInput if multipart else io.BatchJobRowsInput)
        job = batch_upload.batch_job_upload(
            workflow=selectors.batch_workflow_get(workflow_id=data["workflow"]),
            file=data.get("file"),
            rows=data.get("rows"),
            column_map=data.get("column_map"),
            on_invalid=data["on_invalid"],
            max_concurrency=data["max_concurrency"],
            prompt=data["prompt"],
            created_by=request.user,
        )
        return Response(io.BatchJobOutput(job).data, status=status.HTTP_201_CREATED)


def _content_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class BatchJobDetailApi(BatchJobBase):
    @extend_schema(responses={200: io.BatchJobOutput})
    def get(self, request, pk):
        return Response(io.BatchJobOutput(self.get_object()).data)


class BatchJobItemListApi(BatchJobBase):
    pagination_class = ItemCursorPagination

    @extend_schema(
        parameters=[io.BatchJobItemFilter],
        responses={200: io.BatchJobItemOutput(many=True)},
    )
    def get(self, request, pk):
        filters = self.validated_query(io.BatchJobItemFilter)
        items = selectors.batch_job_item_list(job=self.get_object(), status=filters.get("status"))
        return self.list_response(io.BatchJobItemOutput, items)


class BatchJobResultsApi(BatchJobBase):
    renderer_classes = [JSONRenderer, CsvRenderer]

    def base_queryset(self):
        return BatchJob.objects.select_related("revision")

    @extend_schema(
        operation_id="batch_jobs_results_csv",
        description=RESULTS_DESCRIPTION,
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR)},
    )
    def get(self, request, pk):
        job = self.get_object()
        rows = selectors.batch_job_result_rows(org_id=self.org_id, job=job)
        response = StreamingHttpResponse(
            io.results_csv_lines(rows), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="batch-{job.pk}-results.csv"'
        return response


class BatchJobCancelApi(BatchJobBase):
    actions = {"POST": RUN}

    @extend_schema(request=None, responses={200: io.BatchJobOutput})
    def post(self, request, pk):
        job = services.batch_job_cancel(job=self.get_object())
        return Response(io.BatchJobOutput(job).data)


class BatchJobRetryFailedApi(BatchJobBase):
    actions = {"POST": RUN}

    @extend_schema(request=None, responses={202: io.BatchJobOutput})
    def post(self, request, pk):
        retried = services.batch_job_retry_failed(job=self.get_object())
        return Response(io.BatchJobOutput(retried.job).data, status=status.HTTP_202_ACCEPTED)


urlpatterns = [
    path("batch-jobs/", BatchJobListCreateApi.as_view(), name="batch-job-list"),
    path("batch-jobs/<int:pk>/", BatchJobDetailApi.as_view(), name="batch-job-detail"),
    path("batch-jobs/<int:pk>/items/", BatchJobItemListApi.as_view(), name="batch-job-items"),
    path(
        "batch-jobs/<int:pk>/results.csv",
        BatchJobResultsApi.as_view(),
        name="batch-job-results",
    ),
    path("batch-jobs/<int:pk>/cancel/", BatchJobCancelApi.as_view(), name="batch-job-cancel"),
    path(
        "batch-jobs/<int:pk>/retry-failed/",
        BatchJobRetryFailedApi.as_view(),
        name="batch-job-retry-failed",
    ),
]
