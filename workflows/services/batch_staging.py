"""An uploaded file waiting between the console's steps: chosen, mapped, checked, started.

The browser sends the file once; it waits on the server, under ``BATCH_STAGING_DIR``, named by
a random token. The page carries only the token, and the token alone opens nothing: a staged
file belongs to the organization and the user who sent it, and to no one else, which the
metadata beside it records and every read checks. A staged file holds patient data, so it lives
only as long as it is needed: it is deleted when its batch starts; any staged file older
than ``BATCH_STAGING_TTL_S`` is refused when asked for, and deleted the next time a file is
staged or by beat's periodic purge (``workflows.batch_upload_staging_purge``), whichever comes
first; and a user keeps at most ``STAGED_PER_USER`` files waiting (staging another deletes
their oldest), so that nobody fills the disk by choosing files without starting them.

A file is checked as it is staged, by the upload service's own reading (size, type, header):
a file that could never become a batch is refused at once and nothing is kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from rcm.errors import ApplicationError, NotFound
from workflows.models import Workflow
from workflows.selectors.runs import runnable_revision
from workflows.validation.files import UNSUPPORTED_FILE, upload_size_check, upload_table_read

TOKEN_BYTES = 32
# What secrets.token_urlsafe(TOKEN_BYTES) gives: a token that is not this shape is not looked
# up at all, so no path can be smuggled into the file name.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")
READ_CHUNK_BYTES = 64 * 1024
STAGED_PER_USER = 5
# A person picks a file by its name: anything else is the wrong file, whatever its bytes say
# (a PDF reads as Windows-1252 text, and would show its first line as columns).
FILE_SUFFIXES = (".csv", ".xlsx")
STAGED_GONE = (
    "This upload is no longer waiting (it was started, or it waited too long); choose the file "
    "again."
)


@dataclass(frozen=True)
class StagedUpload:
    """A staged file's metadata: whose it is, for which workflow, and its columns."""

    token: str
    org_id: str
    user_id: str
    workflow_id: str
    file_name: str
    size: int
    columns: list[str]
    staged_at: float


def batch_upload_stage(*, org_id, user_id, workflow: Workflow, file: UploadedFile) -> StagedUpload:
    """Check the file as an upload would be checked (size, type, header) and keep it for its
    organization and user. Nothing is kept when the file is refused."""
    if not (file.name or "").lower().endswith(FILE_SUFFIXES):
        raise ApplicationError("unsupported_file_type", UNSUPPORTED_FILE)
    size = cast(int, file.size)  # an uploaded file's is always known
    upload_size_check(size=size)
    runnable_revision(workflow=workflow)
    columns = upload_table_read(upload=file).columns
    batch_upload_staging_purge()
    _oldest_of_user_remove(org_id=str(org_id), user_id=str(user_id))
    staged = StagedUpload(
        token=secrets.token_urlsafe(TOKEN_BYTES),
        org_id=str(org_id),
        user_id=str(user_id),
        workflow_id=str(workflow.pk),
        file_name=(file.name or "")[:255],
        size=size,
        columns=columns,
        staged_at=time.time(),
    )
    directory = _directory()
    data_path, meta_path = _paths(staged.token)
    file.seek(0)
    # Created for this user alone (0600), never following an existing name.
    with os.fdopen(os.open(data_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        for chunk in file.chunks(READ_CHUNK_BYTES):
            out.write(chunk)
    # The metadata last: a staged file is found only once it is whole.
    partial = directory / f"{staged.token}.meta.partial"
    partial.write_text(json.dumps(asdict(staged)))
    partial.chmod(0o600)
    partial.replace(meta_path)
    return staged


def batch_upload_staged(*, token: str, org_id, user_id) -> StagedUpload:
    """The staged file of this organization and user under ``token``; another's, an expired
    one or one already started is not found (the same answer, so nothing is learnt)."""
    if not isinstance(token, str) or not TOKEN_SHAPE.fullmatch(token):
        raise NotFound("staged_upload_gone", STAGED_GONE)
    _, meta_path = _paths(token)
    try:
        staged = StagedUpload(**json.loads(meta_path.read_text()))
    except (OSError, ValueError, TypeError):
        raise NotFound("staged_upload_gone", STAGED_GONE) from None
    owner = (staged.org_id, staged.user_id)
    if owner != (str(org_id), str(user_id)) or _expired(staged.staged_at):
        raise NotFound("staged_upload_gone", STAGED_GONE)
    return staged


@contextlib.contextmanager
def batch_upload_open(*, staged: StagedUpload) -> Iterator[UploadedFile]:
    """The staged file as an upload, for the upload service to read (it seeks and rereads)."""
    data_path, _ = _paths(staged.token)
    try:
        handle = data_path.open("rb")
    except OSError:
        raise NotFound("staged_upload_gone", STAGED_GONE) from None
    with handle:
        yield UploadedFile(file=handle, name=staged.file_name, size=staged.size)


@contextlib.contextmanager
def batch_upload_claim(*, staged: StagedUpload) -> Iterator[UploadedFile]:
    """The staged file for starting its batch, taken by one request alone: a double click on
    Start (two requests at once) makes one batch, and the other request finds the upload gone.
    The metadata's rename is the claim (atomic: only one rename of a name succeeds). A start
    that fails puts the upload back, to be tried again; one that succeeds deletes it."""
    data_path, meta_path = _paths(staged.token)
    claimed = meta_path.with_suffix(".starting")
    try:
        meta_path.rename(claimed)
    except OSError:
        raise NotFound("staged_upload_gone", STAGED_GONE) from None
    try:
        with batch_upload_open(staged=staged) as file:
            yield file
    except BaseException:
        with contextlib.suppress(OSError):
            claimed.rename(meta_path)
        raise
    data_path.unlink(missing_ok=True)
    claimed.unlink(missing_ok=True)


def _directory() -> Path:
    directory = Path(settings.BATCH_STAGING_DIR)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory


def _paths(token: str) -> tuple[Path, Path]:
    directory = _directory()
    return directory / f"{token}.upload", directory / f"{token}.meta"


def _expired(staged_at: float) -> bool:
    return time.time() - staged_at > settings.BATCH_STAGING_TTL_S


def batch_upload_staging_purge() -> int:
    """Delete what waited too long (an upload never started), by the files' own times, so
    that a half-written or unreadable entry goes too. Returns how many files went."""
    removed = 0
    for path in _directory().iterdir():
        with contextlib.suppress(OSError):
            if _expired(path.stat().st_mtime):
                path.unlink()
                removed += 1
    return removed


def _oldest_of_user_remove(*, org_id: str, user_id: str) -> None:
    """Make room for one more of this user's uploads: past ``STAGED_PER_USER - 1`` waiting,
    the oldest go (their pages then say the upload is no longer waiting)."""
    waiting = []
    for meta_path in _directory().glob("*.meta"):
        with contextlib.suppress(OSError, ValueError, TypeError):
            staged = StagedUpload(**json.loads(meta_path.read_text()))
            if (staged.org_id, staged.user_id) == (org_id, user_id):
                waiting.append(staged)
    waiting.sort(key=lambda staged: staged.staged_at)
    for staged in waiting[: max(len(waiting) - (STAGED_PER_USER - 1), 0)]:
        for path in reversed(_paths(staged.token)):
            path.unlink(missing_ok=True)
