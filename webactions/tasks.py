"""Celery tasks of the web actions (thin: ids in, a service call). The browser work goes to
the browser queue (CELERY_WEB_QUEUE); the reaper and the purge run on beat's default queue."""

from rcm.celery import OrgTask, app
from tenants.models import User
from webactions.models import PortalCredential
from webactions.services import attempts, web_actions
from webactions.services import credentials as credential_services


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
    credential_services.credential_validate(credential=credential, actor=actor)


# Acknowledged late: a worker killed mid-attempt leaves the message for another (the claim
# makes a second delivery harmless, and the reaper covers a message lost altogether).
@app.task(base=OrgTask, name=web_actions.RUN_TASK, wrap_in_transaction=False, acks_late=True)
def web_action_run_task(*, org_id: str, web_action_id: int) -> None:
    web_actions.web_action_run(web_action_id=web_action_id)


@app.task(name="webactions.web_actions_reap")
def web_actions_reap_task() -> dict:
    return web_actions.web_actions_reap()


@app.task(name="webactions.screenshot_purge")
def screenshot_purge_task() -> int:
    return attempts.screenshot_purge()
