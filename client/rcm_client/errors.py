"""The API's one error shape, ``{"error": {"code", "message", "details"}}``, as exceptions.

Catch ``RcmError`` for everything the platform refused, or a subclass for one status. A
request that never got an answer (no connection, a timeout) after its retries is an
``RcmConnectionError``, whose ``status`` is None.
"""

from __future__ import annotations

from typing import Any

import httpx

from rcm_client.retry import retry_after_seconds


class RcmError(Exception):
    """The platform answered with an error (or could not be reached: ``status`` None)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "error",
        details: dict[str, Any] | None = None,
        response: httpx.Response | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details or {}
        self.response = response

    @property
    def fields(self) -> dict[str, list[str]]:
        """Field name -> its messages, for the errors that name fields (``400 invalid``)."""
        return {
            name: value
            for name, value in self.details.items()
            if isinstance(value, list) and all(isinstance(item, str) for item in value)
        }

    def __str__(self) -> str:
        prefix = f"{self.status} {self.code}" if self.status else self.code
        return f"{prefix}: {self.message}"


class ValidationError(RcmError):
    """400 or 422: the request was read and refused (see ``details`` and ``fields``)."""


class AuthenticationError(RcmError):
    """401: no credentials, or they are wrong, expired or revoked."""


class PermissionDenied(RcmError):
    """403: your role in this organization does not allow it."""


class NotFound(RcmError):
    """404: no such object in your organization (another organization's is not found either)."""


class Conflict(RcmError):
    """409: the change conflicts with the current state (a stale version, a duplicate)."""


class PayloadTooLarge(RcmError):
    """413: a body, file or row count over the platform's limit (``details`` names it)."""


class RateLimited(RcmError):
    """429: too many requests; ``retry_after`` is the server's advice, in seconds."""

    @property
    def retry_after(self) -> float | None:
        if self.response is None:
            return None
        return retry_after_seconds(self.response.headers.get("Retry-After"))


class ServerError(RcmError):
    """5xx: the platform failed (or was unavailable) on every attempt."""


class RcmConnectionError(RcmError):
    """No answer: the connection failed or timed out on every attempt."""


_BY_STATUS: dict[int, type[RcmError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationError,
    429: RateLimited,
}


def error_from_response(response: httpx.Response) -> RcmError:
    """The exception for an error answer; a body not in the API's shape (a proxy's HTML page)
    still gives its status, with ``http_<status>`` as the code."""
    status = response.status_code
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else RcmError)
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
        details = error.get("details") or {}
    except (ValueError, KeyError, TypeError):
        code = f"http_{status}"
        message = response.reason_phrase or "HTTP error"
        details = {}
    if not isinstance(details, dict):
        details = {"detail": details}
    return kind(message, status=status, code=code, details=details, response=response)
