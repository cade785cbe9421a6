"""Periodic jobs of the tenants app (thin: they call a service)."""

from rcm.celery import app
from tenants import services


@app.task(name="tenants.audit_event_purge")
def audit_event_purge_task() -> int:
    """Drop audit events past the retention period (never shorter than six years).

    Platform-wide, so it carries no organization: the purge runs inside a SECURITY DEFINER
    function that keeps the hash chain's anchor, not through tenant-scoped queries.
    """
    return services.audit_event_purge()
