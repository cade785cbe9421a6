"""Portal credentials: storing, changing, rotating, deleting and using their secrets.

Every touch of a secret is written to ``credential_access_log`` in the same transaction as the
change it records (a failed decryption too, in a transaction of its own, since the caller's
will not commit). Secrets are checked here, by credential type, before they are sealed; no
message here quotes a secret value, only the names of the fields at fault.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from rcm.context import org_context
from rcm.errors import ApplicationError, Conflict
from tenants.models import Endpoint, User
from webactions import crypto
from webactions.browse import Browse
from webactions.executor import ActionFailed
from webactions.models import (
    AccessType,
    BrowserSession,
    CredentialAccessLog,
    CredentialType,
    PortalCredential,
    RotationStatus,
)
from webactions.pool import browser_thread
from webactions.totp import seed_is_valid

# The secret fields of each credential type: required, then optional. ``extra`` (a flat
# object of strings: a practice id, a security answer) may come with any of them.
SECRET_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    CredentialType.USER_PASS: (("username", "password"), ("totp_seed",)),
    CredentialType.TOKEN: (("token",), ()),
    CredentialType.OAUTH2: (("client_id", "client_secret", "token_url"), ("scope",)),
}
MAX_SECRET_CHARS = 4096
MAX_EXTRA_FIELDS = 20

UNKNOWN_ENDPOINT = "No endpoint of this organization has this id."
DUPLICATE_NAME = "This endpoint already has a credential with this name."
SECRET_MISSING = "Required for a {type} credential."
SECRET_UNKNOWN = "Not a secret of a {type} credential (those are: {fields}, extra)."
SECRET_NOT_TEXT = "Must be a non-empty text of at most 4096 characters."
TOTP_INVALID = (
    "Not a TOTP seed: expected the base32 secret (16 or more characters) an authenticator app "
    "is given."
)
TOKEN_URL_INVALID = "Must be an https URL."
EXTRA_INVALID = "Must be an object of at most 20 text values."


# -- secrets --------------------------------------------------------------------------------


def secrets_check(*, credential_type: str, secrets) -> dict:
    """The secrets, checked for ``credential_type``; an ApplicationError naming each field at
    fault (the field, never its value)."""
    if not isinstance(secrets, dict):
        raise ApplicationError(
            "invalid", "Secrets must be an object.", {"secrets": ["Expected an object."]}
        )
    required, optional = SECRET_FIELDS[credential_type]
    problems: dict[str, list[str]] = {}
    for name in required:
        if name not in secrets:
            problems[name] = [SECRET_MISSING.format(type=credential_type)]
    allowed = {*required, *optional, "extra"}
    for name, value in secrets.items():
        if name not in allowed:
            fields = ", ".join((*required, *optional))
            problems[str(name)[:64]] = [SECRET_UNKNOWN.format(type=credential_type, fields=fields)]
        elif name == "extra":
            if not _extra_ok(value):
                problems[name] = [EXTRA_INVALID]
        elif not isinstance(value, str) or not value or len(value) > MAX_SECRET_CHARS:
            problems[name] = [SECRET_NOT_TEXT]
    if (
        "totp_seed" in secrets
        and "totp_seed" not in problems
        and not seed_is_valid(secrets["totp_seed"])
    ):
        problems["totp_seed"] = [TOTP_INVALID]
    if "token_url" in secrets and "token_url" not in problems and not _https(secrets["token_url"]):
        problems["token_url"] = [TOKEN_URL_INVALID]
    if problems:
        raise ApplicationError(
            "invalid", "The secrets are invalid; see details for each field.", {"secrets": problems}
        )
    return secrets


def _extra_ok(value) -> bool:
    return (
        isinstance(value, dict)
        and len(value) <= MAX_EXTRA_FIELDS
        and all(
            isinstance(key, str)
            and 0 < len(key) <= 64
            and isinstance(item, str)
            and len(item) <= MAX_SECRET_CHARS
            for key, item in value.items()
        )
    )


def _https(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.hostname)


# -- the log --------------------------------------------------------------------------------


def _logged(
    credential_id: int,
    *,
    org_id: uuid.UUID,
    access_type: str,
    actor: User | None = None,
    run_id: int | None = None,
    success: bool = True,
    error: str = "",
) -> None:
    CredentialAccessLog.objects.create(
        org_id=org_id,
        credential_id=credential_id,
        access_type=access_type,
        actor_user=actor,
        actor_run_id=run_id,
        success=success,
        error=error[:2000],
    )


# -- writes ---------------------------------------------------------------------------------


@transaction.atomic
def credential_create(
    *,
    org_id: uuid.UUID,
    actor: User | None,
    endpoint_id: int,
    name: str,
    credential_type: str,
    secrets: dict,
    account_id: str = "",
    expires_at=None,
) -> PortalCredential:
    endpoint = Endpoint.objects.filter(org_id=org_id, pk=endpoint_id).first()
    if endpoint is None:
        raise ApplicationError("invalid", UNKNOWN_ENDPOINT, {"endpoint_id": [UNKNOWN_ENDPOINT]})
    _refuse_duplicate(org_id=org_id, endpoint_id=endpoint.pk, name=name)
    secrets = secrets_check(credential_type=credential_type, secrets=secrets)
    credential = PortalCredential.objects.create(
        org_id=org_id,
        endpoint=endpoint,
        name=name,
        account_id=account_id,
        credential_type=credential_type,
        encrypted_credential=crypto.seal(secrets),
        expires_at=expires_at,
        created_by=actor,
    )
    _logged(credential.pk, org_id=org_id, access_type=AccessType.STORE, actor=actor)
    return credential


@transaction.atomic
def credential_update(
    *, credential: PortalCredential, actor: User | None, **fields
) -> PortalCredential:
    """Metadata only (name, account_id, expires_at, is_active): secrets change by rotation."""
    if "name" in fields:
        _refuse_duplicate(
            org_id=credential.org_id,
            endpoint_id=credential.endpoint_id,
            name=fields["name"],
            exclude=credential.pk,
        )
    for name, value in fields.items():
        setattr(credential, name, value)
    credential.save()
    return credential


@transaction.atomic
def credential_rotate(
    *, credential: PortalCredential, actor: User | None, secrets: dict
) -> PortalCredential:
    """New secrets (the portal's password was changed): stored, and to be validated."""
    secrets = secrets_check(credential_type=credential.credential_type, secrets=secrets)
    credential.encrypted_credential = crypto.seal(secrets)
    credential.last_rotation_at = timezone.now()
    credential.rotation_status = RotationStatus.PENDING
    credential.validation_error = ""
    credential.save()
    # A log-in kept from the old secrets is not a proof that the new ones work.
    BrowserSession.objects.filter(credential=credential).delete()
    _logged(credential.pk, org_id=credential.org_id, access_type=AccessType.ROTATE, actor=actor)
    return credential


@transaction.atomic
def credential_delete(*, credential: PortalCredential, actor: User | None) -> None:
    credential_id, org_id = credential.pk, credential.org_id
    credential.delete()
    _logged(credential_id, org_id=org_id, access_type=AccessType.DELETE, actor=actor)


def _refuse_duplicate(*, org_id, endpoint_id: int, name: str, exclude: int | None = None) -> None:
    taken = PortalCredential.objects.filter(org_id=org_id, endpoint_id=endpoint_id, name=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    if taken.exists():
        raise Conflict("credential_exists", DUPLICATE_NAME, {"name": [DUPLICATE_NAME]})


# -- using the secrets ----------------------------------------------------------------------


def credential_secrets(
    *, credential: PortalCredential, actor: User | None = None, run_id: int | None = None
) -> dict:
    """The decrypted secrets, for the executor's login alone; the retrieval is logged, and so
    is a failed one (a token no key opens: ``crypto.CredentialUnreadable``). The executor calls
    this outside any transaction, so a failure's record is not rolled back with its caller."""
    failure: crypto.CredentialUnreadable | None = None
    try:
        secrets = crypto.unseal(credential.encrypted_credential, credential_id=credential.pk)
    except crypto.CredentialUnreadable as exc:
        failure = exc
    _logged(
        credential.pk,
        org_id=credential.org_id,
        access_type=AccessType.RETRIEVE,
        actor=actor,
        run_id=run_id,
        success=failure is None,
        error=str(failure or ""),
    )
    if failure is not None:
        raise failure
    return secrets


# -- keys -----------------------------------------------------------------------------------


def credential_keys_rotate(*, on_progress: Callable[[int, int], None] | None = None) -> dict:
    """Re-encrypt every organization's credentials with the newest key (RCM_CREDENTIAL_KEYS'
    first); afterwards the older keys may be removed. Returns counts: rotated, unreadable.

    One transaction per credential: a run over thousands of rows holds no lock for long, and a
    crash half-way leaves every row readable (under the old key or the new).
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT org_id, credential_id FROM portal_credentials_all()")
        rows = cursor.fetchall()
    done = {"rotated": 0, "unreadable": 0}
    for position, (org_id, credential_id) in enumerate(rows, start=1):
        with org_context(org_id), transaction.atomic():
            credential = (
                PortalCredential.objects.select_for_update().filter(pk=credential_id).first()
            )
            if credential is not None:
                try:
                    credential.encrypted_credential = crypto.reseal(
                        credential.encrypted_credential, credential_id=credential.pk
                    )
                except crypto.CredentialUnreadable as exc:
                    done["unreadable"] += 1
                    _logged(
                        credential.pk,
                        org_id=org_id,
                        access_type=AccessType.ROTATE,
                        success=False,
                        error=str(exc),
                    )
                else:
                    credential.save(update_fields=["encrypted_credential", "updated_at"])
                    done["rotated"] += 1
                    _logged(credential.pk, org_id=org_id, access_type=AccessType.ROTATE)
        if on_progress is not None:
            on_progress(position, len(rows))
    return done


# -- log-in sessions ------------------------------------------------------------------------


def browser_session_state(*, credential: PortalCredential) -> dict | None:
    """The stored log-in of ``credential``, if one is still fresh (Playwright's storage
    state: cookies and local storage)."""
    session = BrowserSession.objects.filter(
        credential=credential, expires_at__gt=timezone.now()
    ).first()
    if session is None:
        return None
    try:
        return crypto.unseal(session.encrypted_state, credential_id=credential.pk)
    except crypto.CredentialUnreadable:
        return None  # sealed under a key since removed: log in again


@transaction.atomic
def browser_session_store(*, credential: PortalCredential, state: dict) -> None:
    BrowserSession.objects.update_or_create(
        credential=credential,
        defaults={
            "org_id": credential.org_id,
            "encrypted_state": crypto.seal(state),
            "expires_at": timezone.now() + settings.WEB_SESSION_TTL,
        },
    )


def browser_session_forget(*, credential: PortalCredential) -> None:
    BrowserSession.objects.filter(credential=credential).delete()


@transaction.atomic
def credential_validation_record(
    *, credential: PortalCredential, actor: User | None, error: str
) -> PortalCredential:
    """The outcome of a log-in tried with the credential's secrets (``error`` empty: it
    worked). A rotation waiting for its first log-in is settled by it."""
    credential.last_validated_at = timezone.now()
    credential.validation_error = error[:2000]
    if credential.rotation_status == RotationStatus.PENDING:
        credential.rotation_status = RotationStatus.FAILED if error else RotationStatus.VALIDATED
    credential.save(
        update_fields=["last_validated_at", "validation_error", "rotation_status", "updated_at"]
    )
    _logged(
        credential.pk,
        org_id=credential.org_id,
        access_type=AccessType.VALIDATE,
        actor=actor,
        success=not error,
        error=error,
    )
    return credential


NO_LOGIN = "The endpoint has no config.login to try this credential with."
VALIDATE_TIMEOUT_S = 90


def credential_validate_check(*, credential: PortalCredential) -> None:
    """What must hold before a validation is sent: the endpoint says how to log in."""
    if not credential.endpoint.config.get("login"):
        raise ApplicationError("no_login", NO_LOGIN, {"endpoint": [NO_LOGIN]}, status=422)


def credential_validate(*, credential: PortalCredential, actor: User | None) -> PortalCredential:
    """Log in to the portal with the credential's secrets, in a fresh browser (no kept
    session), and record how it went; a log-in that works is kept for the next rows. Never
    retried: a refused password tried again and again locks portal accounts."""
    credential_validate_check(credential=credential)
    secrets = credential_secrets(credential=credential, actor=actor)
    endpoint = credential.endpoint
    browse = Browse(
        endpoint=endpoint,
        login=endpoint.config["login"],
        actions=[],
        outcomes={},
        context={"input": {}, "nodes": {}, "credential": secrets},
        secrets=secrets,
        timeout_ms=30_000,
        logged_in=False,
    )
    answer = browser_thread().run(browse.run, timeout=VALIDATE_TIMEOUT_S)
    error = str(answer) if isinstance(answer, ActionFailed) else ""
    if error:
        browser_session_forget(credential=credential)
    elif browse.new_state is not None:
        browser_session_store(credential=credential, state=browse.new_state)
    return credential_validation_record(credential=credential, actor=actor, error=error)
