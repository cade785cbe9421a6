"""``run_batch FILE --org ORG_ID --workflow WORKFLOW_ID``: upload a CSV or Excel file as a batch
job, follow it to its end with a progress bar, and print a summary.

The arguments go through the API's own input serializer and the file through its upload service
(``batch_job_upload``), so that a file the API would refuse is refused here, with the same
messages. The job has no creator (``created_by`` is empty): a command acts for an organization,
not as one of its users. Ctrl-C while waiting stops the waiting only; the job goes on.
"""

import contextlib
import os
import sys
import time
import uuid

from django.core.files.uploadedfile import UploadedFile
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from rcm.context import org_context
from rcm.errors import ApplicationError, NotFound
from rcm.lookups import JobStatus
from rcm.progress import ProgressBar
from tenants.management.arguments import acting_member, org_id_argument
from workflows.models import BatchJob, InvalidRowPolicy
from workflows.selectors import batch as selectors
from workflows.serializers.batch import BatchJobFileInput
from workflows.services import batch_upload

POLL_SECONDS = 0.5
LISTED_ROW_ERRORS = 20
# The exit status of a program stopped by SIGINT (128 + 2), as shells report it.
INTERRUPTED = 130

UNKNOWN_WORKFLOW = "The organization {org_id} has no workflow with the id {workflow_id}."
UNREADABLE_FILE = "Cannot read {path}: {reason}."
ROW_ERROR = "  Row {row}: {message}"
MORE_ROW_ERRORS = "  ({shown} of the {listed} listed errors shown)"
STOPPED_WAITING = (
    "Stopped waiting; batch job {job_id} keeps running. Follow it with GET {detail}, or cancel "
    "it with POST {cancel}."
)
# The input serializer's field names, as this command's arguments name them.
ARGUMENTS = {
    "workflow": "--workflow",
    "file": "FILE",
    "max_concurrency": "--max-concurrency",
    "on_invalid": "--on-invalid",
    "column_map": "--column-map",
}


class Command(BaseCommand):
    help = (
        "Upload a CSV or Excel file as a batch job of a workflow, checked as the API checks it; "
        "then show its progress until it ends and print a summary."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "file",
            metavar="FILE",
            help="CSV (UTF-8 or Windows-1252) or Excel .xlsx; the first row is the header.",
        )
        parser.add_argument("--org", required=True, metavar="ORG_ID", help="The organization's id.")
        parser.add_argument(
            "--workflow",
            required=True,
            metavar="WORKFLOW_ID",
            help="The id of a published, active workflow of the organization.",
        )
        parser.add_argument(
            "--max-concurrency",
            type=int,
            default=4,
            metavar="N",
            help="Rows of this job running at once (1-100, default 4).",
        )
        parser.add_argument(
            "--on-invalid",
            choices=InvalidRowPolicy.values,
            default=InvalidRowPolicy.REJECT,
            help="reject: any invalid row refuses the file, nothing is created; "
            "skip: invalid rows become failed items and the others run.",
        )
        parser.add_argument(
            "--column-map",
            metavar="JSON",
            help='File column -> field name, as a JSON object: {"Member ID": "member_id"}.',
        )
        parser.add_argument(
            "--no-wait", action="store_true", help="Return once the job is created."
        )
        parser.add_argument(
            "--as",
            dest="acting_email",
            metavar="EMAIL",
            help="Upload as this member (the job's creator); their role must allow it.",
        )

    def handle(self, *args, **options):
        org_id = org_id_argument(options["org"])
        if options.get("acting_email"):
            options["created_by"] = acting_member(
                email=options["acting_email"], org_id=org_id, resource="batch_job", action="add"
            )
        with org_context(org_id):
            job = self._upload(org_id, options)
        self.stdout.write(
            f"Created batch job {job.pk}: {job.total_rows} rows, {job.pending_rows} to run, "
            f"{job.failed_rows} failed the upload's check."
        )
        if options["no_wait"]:
            self.stdout.write(f"Follow it with GET {_api_path('batch-job-detail', job)}")
            return
        with org_context(org_id):
            job = self._wait(job, stream=options.get("stderr") or sys.stderr)
        self._summary(job)

    def _upload(self, org_id: uuid.UUID, options: dict) -> BatchJob:
        path = options["file"]
        with contextlib.ExitStack() as stack:
            try:
                handle = stack.enter_context(open(path, "rb"))
            except OSError as exc:
                raise CommandError(UNREADABLE_FILE.format(path=path, reason=exc.strerror)) from exc
            size = os.fstat(handle.fileno()).st_size
            upload = UploadedFile(handle, name=os.path.basename(path), size=size)
            return self._upload_file(org_id, upload, options)

    def _upload_file(self, org_id: uuid.UUID, upload: UploadedFile, options: dict) -> BatchJob:
        data = _validated(
            {
                "workflow": options["workflow"],
                "file": upload,
                "max_concurrency": options["max_concurrency"],
                "on_invalid": options["on_invalid"],
                **({"column_map": options["column_map"]} if options["column_map"] else {}),
            }
        )
        try:
            workflow = selectors.batch_workflow_get(workflow_id=data["workflow"])
        except NotFound as exc:
            message = UNKNOWN_WORKFLOW.format(org_id=org_id, workflow_id=data["workflow"])
            raise CommandError(message) from exc
        try:
            return batch_upload.batch_job_upload(
                workflow=workflow,
                file=data["file"],
                column_map=data.get("column_map"),
                on_invalid=data["on_invalid"],
                max_concurrency=data["max_concurrency"],
                created_by=options.get("created_by"),
            )
        except ApplicationError as error:
            # A refusal's frames hold the file's half-read rows; let them go now, while the
            # file is still open for them to let go of it.
            error.with_traceback(None)
            self._row_errors(error)
            raise CommandError(f"{error.message} ({error.code})") from error

    def _row_errors(self, error: ApplicationError) -> None:
        """The first rows refused by ``reject``, one line each (the API lists up to 100)."""
        listed = error.details.get("rows") if error.code == "invalid_rows" else None
        if not listed:
            return
        for entry in listed[:LISTED_ROW_ERRORS]:
            self.stderr.write(ROW_ERROR.format(**entry))
        if len(listed) > LISTED_ROW_ERRORS:
            self.stderr.write(MORE_ROW_ERRORS.format(shown=LISTED_ROW_ERRORS, listed=len(listed)))

    def _wait(self, job: BatchJob, *, stream) -> BatchJob:
        """Poll the job's counters until it has ended, drawing processed / total rows."""
        try:
            with ProgressBar(job.total_rows, f"batch job {job.pk}", stream=stream) as bar:
                while True:
                    job = selectors.batch_job_list().get(pk=job.pk)
                    # Negative after a retry of failed rows: they are to be processed again.
                    bar.advance(job.processed_rows - bar.done)
                    if job.completed_at is not None:
                        return job
                    time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:
            self.stderr.write(
                STOPPED_WAITING.format(
                    job_id=job.pk,
                    detail=_api_path("batch-job-detail", job),
                    cancel=_api_path("batch-job-cancel", job),
                )
            )
            raise SystemExit(INTERRUPTED) from None

    def _summary(self, job: BatchJob) -> None:
        progress = selectors.batch_job_progress(job=job)
        ran = (job.completed_at - job.started_at).total_seconds() if job.started_at else 0.0
        rate = "-" if progress.rows_per_second is None else f"{progress.rows_per_second:,.1f}"
        style = self.style.SUCCESS if job.status_id == JobStatus.COMPLETED else self.style.WARNING
        self.stdout.write(style(f"Batch job {job.pk}: {job.status_id}"))
        for name, value in (
            ("rows", job.total_rows),
            ("successful", job.successful_rows),
            ("failed", job.failed_rows),
            ("cancelled", job.cancelled_rows),
            ("duration", f"{ran:.1f} s (first row started to last row ended)"),
            ("rows/s", rate),
            ("results", f"GET {_api_path('batch-job-results', job)}"),
        ):
            self.stdout.write(f"  {name}: {value}")


def _validated(data: dict) -> dict:
    """The arguments checked by the upload endpoint's input serializer, errors named as the
    command's arguments."""
    serializer = BatchJobFileInput(data=data)
    if serializer.is_valid():
        return serializer.validated_data
    problems = [
        f"{ARGUMENTS.get(name, name)}: {' '.join(str(message) for message in messages)}"
        for name, messages in serializer.errors.items()
    ]
    raise CommandError("; ".join(problems))


def _api_path(name: str, job: BatchJob) -> str:
    return reverse(name, args=(job.pk,))
