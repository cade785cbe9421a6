"""The RCM platform's v2 API from Python: ``Client``, its typed results and its errors."""

from rcm_client._version import __version__
from rcm_client.auth import TokenPair
from rcm_client.client import Client
from rcm_client.errors import (
    AuthenticationError,
    Conflict,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    RcmConnectionError,
    RcmError,
    ServerError,
    ValidationError,
)
from rcm_client.models import (
    BatchItem,
    BatchJob,
    BatchProgress,
    Endpoint,
    MicroState,
    NodeRun,
    Organization,
    Revision,
    Run,
    WebAction,
    Workflow,
)
from rcm_client.retry import RetryPolicy

__all__ = [
    "AuthenticationError",
    "BatchItem",
    "BatchJob",
    "BatchProgress",
    "Client",
    "Conflict",
    "Endpoint",
    "MicroState",
    "NodeRun",
    "NotFound",
    "Organization",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "RcmConnectionError",
    "RcmError",
    "Revision",
    "RetryPolicy",
    "Run",
    "ServerError",
    "TokenPair",
    "ValidationError",
    "WebAction",
    "Workflow",
    "__version__",
]
