"""Uploading a batch in the console, in three steps on one route:

1. **Choose** a workflow and a file. The file is checked as the API checks an upload (size,
   type, header) and staged on the server for this organization and user
   (``workflows/services/batch_staging.py``); the page then carries only its token.
2. **Map** the file's columns to the task's fields (guessed from their names, each editable),
   then **check** every row: the invalid ones are listed in words, the valid ones counted.
3. **Start**: the batch is created by the API's own upload service, with the mapping as its
   ``column_map`` and the invalid-row policy chosen, and the browser goes to its page.

Nothing is written before Start but the staged file, and a refused file is not even staged.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.utils.http import urlencode

from console.access import console_view, page
from rcm import permissions
from rcm.context import require_org_id
from rcm.errors import ApplicationError, NotFound
from workflows.models import InvalidRowPolicy, Workflow
from workflows.selectors import batch_upload as selectors
from workflows.selectors.batch import FAILED_ROW_EXTRA, RESULT_FIXED
from workflows.serializers.batch import BatchJobCreateInput
from workflows.services import batch_staging
from workflows.services import batch_upload as upload_service
from workflows.validation.files import upload_limits

KEEP, IGNORE = "__keep__", "__ignore__"
NO_FILE = "Choose a CSV or Excel (.xlsx) file to upload."
NO_WORKFLOW = "Choose one of your organization's active, published workflows."
WORKFLOW_GONE = "The workflow of this upload is no longer there; choose the file again."
UNKNOWN_STEP = "That step does not exist; start again from the file."
UNKNOWN_FILL = "Choose what column {column} fills from the list."
UNFILLED = "No column fills {fields}: choose a column for each, or add the column to the file."
STARTED = "Batch {job_id} started with {rows} rows{skipped}."
SKIPPED = " ({count} invalid row{s} recorded as failed)"
# The columns a results or failed-rows file adds to the rows: left out when one is uploaded.
PLATFORM_COLUMNS = frozenset(RESULT_FIXED) | frozenset(FAILED_ROW_EXTRA)


class WorkflowField(forms.ModelChoiceField):
    """A workflow of the list: an id that is not one (malformed, unknown, another
    organization's, not runnable) gets the same one answer."""

    def to_python(self, value):
        try:
            return super().to_python(value)
        except ValidationError:
            raise ValidationError(NO_WORKFLOW, code="invalid_choice") from None


class ChooseForm(forms.Form):
    workflow = WorkflowField(
        queryset=None,  # the organization's, set per request (no context at import)
        error_messages={"required": NO_WORKFLOW, "invalid_choice": NO_WORKFLOW},
    )
    file = forms.FileField(
        allow_empty_file=True,  # the upload service says what is wrong with an empty file
        error_messages={"required": NO_FILE, "invalid": NO_FILE, "missing": NO_FILE},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Another organization's workflow is not in the list: choosing it is an unknown choice.
        self.fields["workflow"].queryset = selectors.batch_workflow_choices()


@console_view("batch_job", permissions.ADD, methods=("GET", "HEAD", "POST"))
def batch_upload(request):
    if request.method != "POST":
        token = request.GET.get("upload")
        if token:
            return _map_page(request, token)
        return _choose_page(request, ChooseForm())
    step = request.POST.get("step")
    if step == "choose":
        return _choose(request)
    if step in ("check", "start"):
        return _map_page(request, request.POST.get("upload", ""), step=step)
    messages.error(request, UNKNOWN_STEP)
    return _choose_page(request, ChooseForm(), status=400)


# -- step 1: choose -------------------------------------------------------------------------


def _choose(request):
    form = ChooseForm(request.POST, request.FILES)
    if not form.is_valid():
        return _choose_page(request, form, status=400)
    try:
        staged = batch_staging.batch_upload_stage(
            org_id=require_org_id(),
            user_id=request.user.pk,
            workflow=form.cleaned_data["workflow"],
            file=form.cleaned_data["file"],
        )
    except ApplicationError as error:
        form.add_error("file", error.message)
        return _choose_page(request, form, status=error.status)
    return redirect(f"{request.path}?{urlencode({'upload': staged.token})}")


def _choose_page(request, form: ChooseForm, *, status: int = 200):
    limit_bytes, limit_rows = upload_limits()
    return page(
        request,
        "console/batch_upload.html",
        {
            "step": "choose",
            "form": form,
            "workflows": form.fields["workflow"].queryset,
            "limit_bytes": limit_bytes,
            "limit_mb": f"{limit_bytes / (1024 * 1024):g}",
            "limit_rows": f"{limit_rows:,}",
        },
        title="Upload a batch",
        status=status,
    )


# -- steps 2 and 3: map, check, start ----------------------------------------------------------


@dataclass
class Upload:
    """A staged file on its way: its workflow, the fields its columns may fill, and what each
    column fills (a field, itself, or None: left out)."""

    staged: batch_staging.StagedUpload
    workflow: Workflow
    fields: list[selectors.UploadField]
    fills: dict[str, str | None]

    @property
    def column_map(self) -> dict[str, str | None]:
        return selectors.column_map_of(self.fills)


def _map_page(request, token: str, *, step: str = "map"):
    try:
        staged = batch_staging.batch_upload_staged(
            token=token, org_id=require_org_id(), user_id=request.user.pk
        )
        workflow = _workflow(staged)
        fields = selectors.batch_upload_fields(workflow=workflow)
    except ApplicationError as error:
        messages.error(request, error.message)
        return _choose_page(request, ChooseForm(), status=error.status)
    if step == "map":
        upload = Upload(staged, workflow, fields, _guessed_fills(staged.columns, fields))
        return _render_map(request, upload, step="map")
    fills, problems = _chosen_fills(request.POST, staged.columns, fields)
    upload = Upload(staged, workflow, fields, fills)
    clashes, unfilled = selectors.column_fill_problems(fills=fills, fields=fields)
    problems += clashes
    if unfilled:
        problems.append(UNFILLED.format(fields=", ".join(field.label for field in unfilled)))
    if problems:
        for problem in problems:
            messages.error(request, problem)
        return _render_map(request, upload, step="map", status=400)
    if step == "start":
        return _start(request, upload)
    return _check(request, upload)


def _check(request, upload: Upload, *, status: int = 200):
    """Every row read and checked as the upload will, nothing written; the start options
    follow, the policy offered first depending on whether rows are invalid."""
    try:
        with batch_staging.batch_upload_open(staged=upload.staged) as file:
            check = selectors.batch_upload_check(
                workflow=upload.workflow, file=file, column_map=upload.column_map
            )
    except ApplicationError as error:
        messages.error(request, error.message)
        return _render_map(request, upload, step="map", status=400)
    policy = InvalidRowPolicy.SKIP if check.invalid_rows else InvalidRowPolicy.REJECT
    start = {"on_invalid": policy, "max_concurrency": 4, "prompt": ""}
    if request.POST.get("step") == "start":  # a refused start shows what was asked again
        start = {key: request.POST.get(key, value) for key, value in start.items()}
    return _render_map(request, upload, step="check", check=check, start=start, status=status)


def _start(request, upload: Upload):
    """The batch, by the API's upload service and its input serializer's limits."""
    options = BatchJobCreateInput(
        data={
            "workflow": upload.staged.workflow_id,
            "on_invalid": request.POST.get("on_invalid", InvalidRowPolicy.REJECT),
            "max_concurrency": request.POST.get("max_concurrency") or 4,
            "prompt": request.POST.get("prompt", ""),
        }
    )
    if not options.is_valid():
        for name, errors in options.errors.items():
            messages.error(request, f"{name.replace('_', ' ').capitalize()}: {' '.join(errors)}")
        return _check(request, upload, status=400)
    try:
        with batch_staging.batch_upload_claim(staged=upload.staged) as file:
            job = upload_service.batch_job_upload(
                workflow=upload.workflow,
                file=file,
                column_map=upload.column_map,
                on_invalid=options.validated_data["on_invalid"],
                max_concurrency=options.validated_data["max_concurrency"],
                prompt=options.validated_data["prompt"],
                created_by=request.user,
            )
    except NotFound as error:
        # Started by another request meanwhile (a second click on Start): its batch is there.
        messages.error(request, error.message)
        return redirect("console:batches")
    except ApplicationError as error:
        messages.error(request, error.message)
        return _check(request, upload, status=error.status)
    messages.success(request, _started(job))
    return redirect("console:batch", job_id=job.pk)


def _started(job) -> str:
    skipped = ""
    if job.failed_rows:
        count = job.failed_rows
        skipped = SKIPPED.format(count=count, s="" if count == 1 else "s")
    return STARTED.format(job_id=job.pk, rows=job.total_rows, skipped=skipped)


def _render_map(request, upload: Upload, *, step: str, status: int = 200, **extra):
    _, unfilled = selectors.column_fill_problems(fills=upload.fills, fields=upload.fields)
    names = {field.name for field in upload.fields}
    return page(
        request,
        "console/batch_upload.html",
        {
            "step": step,
            "staged": upload.staged,
            "workflow": upload.workflow,
            "fields": upload.fields,
            "columns": [
                (index, column, _choice(upload.fills.get(column), names))
                for index, column in enumerate(upload.staged.columns)
            ],
            "keep": KEEP,
            "ignore": IGNORE,
            "unfilled": unfilled,
            "required_fields": [
                {"name": field.name, "label": field.label}
                for field in upload.fields
                if field.required
            ],
            "policies": InvalidRowPolicy,
            **extra,
        },
        title="Upload a batch",
        status=status,
    )


# -- what each column fills -------------------------------------------------------------------


def _workflow(staged: batch_staging.StagedUpload) -> Workflow:
    workflow = selectors.batch_workflow_choices().filter(pk=staged.workflow_id).first()
    if workflow is None:
        raise ApplicationError("workflow_gone", WORKFLOW_GONE)
    return workflow


def _guessed_fills(columns: list[str], fields) -> dict[str, str | None]:
    """column -> the field it fills (None: left out), as guessed from the names: a column
    with no guess is kept under its own name (as the API keeps it), except the columns a
    results or failed-rows file adds, which are left out."""
    guesses = selectors.batch_columns_suggest(columns=columns, fields=fields)
    return {
        column: guess if guess is not None else (None if column in PLATFORM_COLUMNS else column)
        for column, guess in guesses.items()
    }


def _chosen_fills(data, columns: list[str], fields) -> tuple[dict[str, str | None], list[str]]:
    """column -> the field chosen for it; and a sentence for each choice not in the list."""
    names = {field.name for field in fields}
    fills: dict[str, str | None] = {}
    unknown = []
    for index, column in enumerate(columns):
        chosen = data.get(f"column-{index}", KEEP)
        if chosen == KEEP:
            fills[column] = column
        elif chosen == IGNORE:
            fills[column] = None
        elif chosen in names:
            fills[column] = chosen
        else:
            fills[column] = column
            unknown.append(UNKNOWN_FILL.format(column=column))
    return fills, unknown


def _choice(fill: str | None, names: set[str]) -> str:
    """The select's value for what a column fills."""
    if fill is None:
        return IGNORE
    return fill if fill in names else KEEP
