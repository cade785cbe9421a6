"""Which addresses the platform's outbound requests may reach.

Operators write the URLs the http and web node kinds call: without this check a node could
read the cloud metadata service (169.254.169.254), the platform's own internals or anything
else on the private network, and store the answer in a run's output or a screenshot.

Loopback, private, link-local and reserved addresses are refused unless
ENGINE_HTTP_ALLOW_PRIVATE is set (the tests and an on-premises portal need it). The check
resolves the name first; a name that resolves differently a moment later (DNS rebinding) is
not covered: a proxy that pins the address would be the next step.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class Unresolved(Exception):
    """The host name does not resolve (now): for the caller to treat as transient."""


def internal_host(host: str) -> bool:
    """Whether ``host`` (a name or an address) is or resolves to a non-public address.

    Raises Unresolved when the name does not resolve.
    """
    try:
        # An IP family's address is text (typeshed allows an int for the other families).
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError) as exc:
        raise Unresolved(host) from exc
    return any(not ipaddress.ip_address(address.split("%")[0]).is_global for address in addresses)


def private_allowed() -> bool:
    return settings.ENGINE_HTTP_ALLOW_PRIVATE


def own_sandbox(url: str) -> bool:
    """Whether ``url`` is a page of this platform's own sandbox portal (served at
    PUBLIC_BASE_URL when RCM_SANDBOX is on): the demo's endpoint is on a loopback address, and
    only its /sandbox/ pages are let through, not the platform's API or admin."""
    if not settings.RCM_SANDBOX:
        return False
    return origin(url) == origin(settings.PUBLIC_BASE_URL) and urlsplit(url).path.startswith(
        "/sandbox/"
    )


def origin(url: str) -> str:
    """``scheme://host[:port]`` as a browser writes it in a request's URL: the host in lower
    case, no default port (so that two spellings of one address compare equal)."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{(parts.hostname or '').lower()}{port}"
