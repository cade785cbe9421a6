"""Celery tasks of the engine (thin: ids in, a service call)."""

from datetime import timedelta

from django.conf import settings
from django.db import connection

from rcm.celery import OrgTask, app
from rcm.context import org_context
from workflows.engine import clock, executor


# The executor manages its own transactions: the claim commits before the kind runs (maybe
# for minutes), and the completion is another one.
@app.task(base=OrgTask, name="workflows.node_run_execute", wrap_in_transaction=False)
def node_run_execute_task(*, org_id: str, node_run_id: int) -> None:
    executor.node_run_execute(node_run_id=node_run_id)


@app.task(name="workflows.engine_reap")
def engine_reap_task() -> dict:
    return engine_reap()


def engine_reap(*, limit: int = 500) -> dict:
    """Recover stalled work in every organization; returns what it did, by kind."""
    now = clock.now()
    ready_before = now - timedelta(seconds=settings.ENGINE_REQUEUE_AFTER_S)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM engine_stalled_work(%s, %s, %s)", [now, ready_before, limit])
        rows = cursor.fetchall()
    done = {"lease": 0, "ready": 0, "deadline": 0}
    for what, org_id, item_id in rows:
        with org_context(org_id):
            if what == "lease":
                done[what] += executor.node_run_recover(node_run_id=item_id)
            elif what == "ready":
                executor.node_run_requeue(node_run_id=item_id)
                done[what] += 1
            else:
                done[what] += executor.run_expire(run_id=item_id)
    return done


@app.task(name="workflows.batch_feed")
def batch_feed_task() -> int:
    """Start pending batch rows where there is room (after uploads, as rows end, and by beat
    as a safety net for a feed message that was lost)."""
    from workflows.services.batch import FEED_BATCH, batch_feed, feed_send

    started = batch_feed()
    if started >= FEED_BATCH:
        feed_send()  # there may be room for more
    return started
