"""What the platform reads of an HTTP request the same way everywhere: the API, the admin, the
console's and the sign-in pages."""


def client_ip(request) -> str | None:
    """The caller's address, for audit events and log-in throttling."""
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy rewrites
    # it, and throttling by a forged address would let an attacker dodge the limit.
    return request.META.get("REMOTE_ADDR") or None
