"""The Celery application, and the contract every task follows for its organization.

A task that acts for an organization takes ``org_id`` and is declared with
``@app.task(base=OrgTask)``: the context is set before it runs and cleared after, so nothing
is left for the next task on the same worker process or thread.
"""

import os

from celery import Celery, Task
from celery.signals import task_prerun

from rcm.context import org_context

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rcm.settings.base")

app = Celery("rcm")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fix-up closes the database connection before and after every task unless
# told to reuse it; a new connection costs a SCRAM handshake, several times a no-op node's
# own work. Reused for 500 tasks, then recycled (Django's health checks catch a dead one).
app.conf.CELERY_DB_REUSE_MAX = 500


@task_prerun.connect
def _drop_dead_connections(**kwargs) -> None:
    """With connections reused across tasks, one the database dropped (a restart) must be
    noticed before a task uses it, as Django does between requests."""
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        connection.close_if_unusable_or_obsolete()


app.autodiscover_tasks()


class OrgTask(Task):
    """A task that runs inside one organization's context (its ``org_id`` keyword).

    By default the task is also one transaction. A task that manages its own transactions
    (the engine commits a claim before doing slow work) says ``wrap_in_transaction=False``;
    the organization context is set either way, and each of its transactions applies it.
    """

    wrap_in_transaction = True

    def __call__(self, *args, **kwargs):
        if "org_id" not in kwargs:
            raise TypeError(f"{self.name} must be called with org_id=...")
        from django.db import transaction

        with org_context(kwargs["org_id"]):
            if not self.wrap_in_transaction:
                return super().__call__(*args, **kwargs)
            with transaction.atomic():
                return super().__call__(*args, **kwargs)


@app.task(name="rcm.ping")
def ping() -> str:
    return "pong"
