"""The one error type services raise; rcm/api/errors.py turns it into the API's error shape."""

from typing import Any


class ApplicationError(Exception):
    """A refusal the caller can act on: a stable ``code``, a message and optional details."""

    status = 400

    def __init__(
        self,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        status: int | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        if status is not None:
            self.status = status


class NotFound(ApplicationError):
    status = 404


class Conflict(ApplicationError):
    status = 409
