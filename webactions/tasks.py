"""Celery tasks of the web actions (thin: ids in, a service call), on the browser queue."""

from rcm.celery import OrgTask, app
from tenants.models import User
from webactions import services
from webactions.models import PortalCredential


# Its own transactions: the log-in takes seconds in the browser, and the outcome is recorded
# after it, not inside a transaction held open meanwhile.
@app.task(base=OrgTask, name="webactions.credential_validate", wrap_in_transaction=False)
def credential_validate_task(*, org_id: str, credential_id: int, user_id: str | None) -> None:
    credential = (
        PortalCredential.objects.select_related("endpoint").filter(pk=credential_id).first()
    )
    if credential is None:
        return  # deleted since it was asked for
    actor = User.objects.filter(pk=user_id).first() if user_id else None
    services.credential_validate(credential=credential, actor=actor)
