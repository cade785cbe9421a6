"""One error shape for every failure: ``{"error": {"code", "message", "details"}}``."""

import logging

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response

from rcm.api.idempotency import IdempotentReplay
from rcm.errors import ApplicationError

logger = logging.getLogger(__name__)

NOT_FOUND_MESSAGE = "Not found."

_CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "throttled",
    500: "server_error",
    503: "database_unavailable",
}


# The statuses any operation may answer in this shape, as the schema documents them
# (rcm/api/schema.py).
ERROR_STATUSES = {
    400: "The request is invalid: see details for each field or parameter.",
    401: "No credentials, or they are not valid (anymore).",
    403: "Your role in this organization does not allow this.",
    404: "Not found (another organization's objects are not found either).",
    406: "The Accept header names no media type this operation answers with.",
    409: "The change conflicts with the current state (a stale version, a duplicate).",
    413: "The body or the file is larger than the limit named in the message.",
    415: "The Content-Type is not one this operation reads.",
    422: "The request is well-formed but cannot be carried out.",
    429: "Too many requests: Retry-After says when to try again.",
    503: "The database cannot be reached at the moment; nothing was done. Retry-After says "
    "when to try again.",
}
# Seconds a client is asked to wait when the database is out of reach: a restart or a
# fail-over takes a few.
DATABASE_RETRY_AFTER_S = 5


def error_body(code: str, message: str, details=None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _message_and_details(exc: exceptions.APIException):
    detail = exc.detail
    if isinstance(detail, dict):
        return "The request is invalid; see details for each field.", detail
    if isinstance(detail, list):
        return "The request is invalid.", {"non_field_errors": detail}
    return str(detail), {}


def exception_handler(exc, context):
    if isinstance(exc, IdempotentReplay):
        return Response(exc.body, status=exc.status, headers={"Idempotent-Replayed": "true"})
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(NOT_FOUND_MESSAGE)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, IntegrityError):
        # A constraint the serializers did not foresee (a race between two requests, mostly).
        logger.info("integrity error turned into 409: %s", exc)
        exc = exceptions.APIException("The change conflicts with existing data.")
        exc.status_code = status.HTTP_409_CONFLICT
    if not isinstance(exc, exceptions.APIException):
        return None  # Django's 500 handler (rcm.api.errors.server_error) answers
    message, details = _message_and_details(exc)
    code = _CODES.get(exc.status_code, "error")
    if isinstance(exc, exceptions.ValidationError):
        code = "invalid"
    elif isinstance(exc.detail, str) and hasattr(exc.detail, "code") and exc.status_code != 404:
        code = exc.detail.code or code
    headers = {}
    # DRF's Throttled sets wait (seconds or None); its stubs leave it out.
    wait = exc.wait if isinstance(exc, exceptions.Throttled) else None  # type: ignore[attr-defined]
    if wait is not None:
        headers["Retry-After"] = str(int(wait) + 1)
        details = {"retry_after_seconds": int(wait) + 1}
    # Set by DRF's APIView on an authentication failure, when the authenticator names a scheme.
    auth_header = getattr(exc, "auth_header", None)
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    return Response(error_body(code, message, details), status=exc.status_code, headers=headers)


def _json_error(status_code: int, message: str) -> JsonResponse:
    return JsonResponse(error_body(_CODES[status_code], message), status=status_code)


def database_unavailable() -> JsonResponse:
    """The answer while the database cannot be reached: a 503 that says to retry, not a 500
    (the request wrote nothing: its transaction never reached the database)."""
    response = _json_error(
        503, "The database cannot be reached at the moment; nothing was done. Try again shortly."
    )
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
    return response


# Pages people open in a browser (the admin, the console) answer a refusal with a page; the
# API and everything else with the one JSON error shape.
PAGE_PREFIX = "/admin/"


def _is_page(request) -> bool:
    return request.path.startswith(PAGE_PREFIX)


def not_found(request, exception=None):
    if _is_page(request):
        return defaults.page_not_found(request, exception)
    return _json_error(404, NOT_FOUND_MESSAGE)


def server_error(request):
    return _json_error(500, "An internal error occurred; it has been logged.")


def bad_request(request, exception=None):
    return _json_error(400, "Bad request.")


def permission_denied(request, exception=None):
    if _is_page(request):
        return defaults.permission_denied(request, exception)
    return _json_error(403, "You do not have permission to perform this action.")
