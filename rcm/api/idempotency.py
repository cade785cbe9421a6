"""``Idempotency-Key`` on creating POSTs.

The key row is inserted in the request's own transaction, before the view runs. A second
request with the same key blocks on the unique index until the first one ends: if the first
committed, the second gets the stored response; if it rolled back (any error), the key is gone
with it and the second request runs as new. So "the same key sent twice at the same moment"
yields one effect, with no lock table and no window between check and write.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import cast

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import connection
from django.utils import timezone

from rcm.errors import ApplicationError
from rcm.models import IdempotencyKey

HEADER = "Idempotency-Key"
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces
# How long a key answers with its stored response; older ones are purged by beat.
RETENTION = timedelta(hours=24)

KEY_INVALID = "Idempotency-Key must be 1 to 255 printable ASCII characters without spaces."
BODY_TOO_LARGE = "The request body is larger than this endpoint accepts."
KEY_REUSED = (
    "This Idempotency-Key was already used with a different request; use a new key for a new "
    "request."
)


class IdempotentReplay(Exception):
    """The stored response of an earlier request with the same key (answered as is)."""

    def __init__(self, status: int, body):
        super().__init__(status)
        self.status = status
        self.body = body


def _max_fingerprinted_bytes() -> int:
    # The largest body any endpoint accepts: a batch upload, plus its form fields.
    return settings.BATCH_MAX_UPLOAD_BYTES + 1024 * 1024


def request_fingerprint(request) -> str:
    """What makes two requests "the same": method, path and content.

    A JSON body is hashed as sent. A multipart upload is hashed by its fields and its files'
    names and contents, read in chunks: its raw body differs between two sends of the same
    upload (clients pick a new boundary each time), and may be too large to hold in memory.
    """
    digest = hashlib.sha256()
    media_type = (request.content_type or "").split(";")[0].strip()  # without the boundary
    for part in (request.method, request.path, media_type):
        digest.update(part.encode())
        digest.update(b"\0")
    if int(request.META.get("CONTENT_LENGTH") or 0) > _max_fingerprinted_bytes():
        # Refused before anything is read: hashing a huge body would cost what the size
        # limit exists to prevent.
        raise ApplicationError("too_large", BODY_TOO_LARGE, status=413)
    if media_type == "multipart/form-data":
        for name, value in sorted(request.data.items()):
            if isinstance(value, str):
                digest.update(f"{name}={value}\0".encode())
        for name in sorted(request.FILES):
            for upload in request.FILES.getlist(name):
                digest.update(f"{name}:{upload.name}:{upload.size}\0".encode())
                for chunk in upload.chunks():
                    digest.update(chunk)
                upload.seek(0)  # the view reads it again
    else:
        try:
            digest.update(request.body)
        except RequestDataTooBig as exc:
            raise ApplicationError("too_large", BODY_TOO_LARGE, status=413) from exc
    return digest.hexdigest()


def idempotency_claim(*, request, org_id, user_id) -> int | None:
    """Claim the request's key (None when it sent none); raise IdempotentReplay if it is known."""
    key = request.headers.get(HEADER)
    if key is None or request.method != "POST":
        return None
    if not KEY_PATTERN.match(key):
        raise ApplicationError("invalid", KEY_INVALID, {HEADER: [KEY_INVALID]})
    fingerprint = request_fingerprint(request)
    cutoff = timezone.now() - RETENTION
    # An expired key is free again: remove it first (same transaction, same lock order).
    IdempotencyKey.objects.filter(user_id=user_id, key=key, created_at__lt=cutoff).delete()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO idempotency_key (org_id, user_id, key, method, path, request_hash, "
            "created_at) VALUES (%s, %s, %s, %s, %s, %s, now()) "
            "ON CONFLICT (org_id, user_id, key) DO NOTHING RETURNING id",
            [org_id, user_id, key, request.method, request.path[:500], fingerprint],
        )
        row = cursor.fetchone()
    if row is not None:
        return row[0]
    stored = IdempotencyKey.objects.get(user_id=user_id, key=key)
    if stored.request_hash != fingerprint:
        raise ApplicationError("idempotency_key_reused", KEY_REUSED, status=422)
    # Recorded in the transaction that inserted the key: a committed key always has one.
    raise IdempotentReplay(cast(int, stored.response_status), stored.response_body)


def idempotency_record(*, key_id: int, response, redact: tuple[str, ...] = ()) -> None:
    """Store a successful response with its key (errors roll the key back with everything).
    ``redact``: fields left out (secrets are shown once, never kept)."""
    body = response.data
    if redact and isinstance(body, dict):
        body = {name: value for name, value in body.items() if name not in redact}
    IdempotencyKey.objects.filter(pk=key_id).update(
        response_status=response.status_code, response_body=body
    )


def idempotency_key_purge(*, now=None) -> int:
    """Delete expired keys of every organization (a SECURITY DEFINER sweep, run by beat)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT idempotency_key_purge(%s)", [(now or timezone.now()) - RETENTION])
        return cursor.fetchone()[0]
