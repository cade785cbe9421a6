"""Ad-hoc web actions: an action list run once on an endpoint through the API, outside any
workflow (``POST /api/v2/web-actions/``).

The request is checked like a web node's config on publish (the same WebKind rules: tools,
targets, templates, the endpoint and credential being the organization's own) and the
templates may read only ``input`` fields the request gives. The row is saved, then a message
on the browser queue runs it (best-effort after the commit: the reaper sends it again when it
is lost). An attempt is claimed with one conditional update; a transient failure (a 5xx, a
page that did not answer) is tried again after a backoff, up to ``max_attempts``; a killed
worker's attempt is taken back by the reaper when its lease runs out. Cancelling stops the
actions before the next one; what the attempt did is kept.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from rcm import messaging, phi
from rcm.celery import app
from rcm.context import org_context
from rcm.errors import ApplicationError, Conflict
from tenants.models import Endpoint, User
from webactions import actions as language
from webactions import crypto
from webactions.executor import ActionFailed
from webactions.kinds import WebKind, action_detail
from webactions.models import (
    WEB_ACTION_ACTIVE,
    PortalCredential,
    WebAction,
    WebActionStatus,
)
from webactions.services import attempts
from webactions.services.agent_memory import MemoryScope

logger = logging.getLogger(__name__)

RUN_TASK = "webactions.web_action_run"
# The lease of an attempt beyond its budget: past it, the reaper takes the attempt back.
LEASE_GRACE_S = 30
# A transient failure waits 2, 4, 8... seconds (at most this) before the next attempt.
MAX_BACKOFF_S = 60
MAX_INPUT_FIELDS = 50
MAX_INPUT_CHARS = 1000

INVALID = "The web action cannot be run; every problem is listed."
NOT_CANCELLABLE = "Only a pending or running web action can be cancelled."


# -- creating ---------------------------------------------------------------------------------


@transaction.atomic
def web_action_create(
    *,
    org_id,
    actor: User | None,
    endpoint_id: int,
    credential_id: int | None = None,
    actions: list,
    outcomes: dict,
    input: dict[str, Any],
    max_attempts: int,
    timeout_s: int,
) -> WebAction:
    """Check the request, save it, and send it to the browser queue once committed.

    Every problem is reported at once (``details.problems``), as publishing a workflow does;
    nothing is saved when there is one.
    """
    config = {"endpoint": endpoint_id, "actions": actions, "outcomes": outcomes}
    if credential_id is not None:
        config["credential"] = credential_id
    problems = WebKind().validate_config(config) + _input_problems(actions, input)
    credential = None
    if credential_id is not None and not problems:
        credential = PortalCredential.objects.get(pk=credential_id)
        problem = attempts.credential_problem(credential)
        if problem is not None:
            problems.append(problem[1])
    if problems:
        raise ApplicationError("web_action_invalid", INVALID, {"problems": problems})
    web_action = WebAction.objects.create(
        org_id=org_id,
        endpoint_id=endpoint_id,
        credential=credential,
        actions=actions,
        outcomes=outcomes,
        input=input,
        max_attempts=max_attempts,
        timeout_s=timeout_s,
        created_by=actor,
    )
    _send_after_commit(web_action)
    return web_action


def _input_problems(actions: list, input: dict[str, Any]) -> list[str]:
    """The templates may read ``input.<field>`` of the request's own input, nothing else (an
    ad-hoc list has no run, no earlier nodes)."""
    problems = []
    if len(input) > MAX_INPUT_FIELDS:
        problems.append(f"input: at most {MAX_INPUT_FIELDS} fields")
    for name, value in input.items():
        if not isinstance(value, str | int | float | bool) or len(str(value)) > MAX_INPUT_CHARS:
            problems.append(f"input.{name}: a text or number of at most {MAX_INPUT_CHARS} chars")
    for reference in sorted(language.references(actions), key=str):
        if reference.path[0] != "input" or len(reference.path) != 2:
            problems.append(f"{reference}: an ad-hoc action list reads input.<field> only")
        elif reference.path[1] not in input:
            problems.append(f"{reference}: not a field of the input")
    return problems


def _send_after_commit(web_action: WebAction, countdown: float = 0) -> None:
    messaging.send_after_commit(
        app.signature(RUN_TASK),
        kwargs={"org_id": str(web_action.org_id), "web_action_id": web_action.pk},
        queue=settings.CELERY_WEB_QUEUE,
        countdown=countdown,
    )


# -- cancelling -------------------------------------------------------------------------------


@transaction.atomic
def web_action_cancel(*, web_action: WebAction) -> WebAction:
    """Pending: it never runs. Running: its actions stop before the next one (the worker asks
    every second); the row says cancelled at once, and the attempt's results are kept."""
    changed = WebAction.objects.filter(pk=web_action.pk, status__in=WEB_ACTION_ACTIVE).update(
        status=WebActionStatus.CANCELLED,
        error_kind="cancelled",
        error="cancelled through the API",
        finished_at=timezone.now(),
        lease_expires_at=None,
    )
    web_action.refresh_from_db()
    if not changed:
        raise Conflict("web_action_finished", NOT_CANCELLABLE, {"status": [web_action.status]})
    return web_action


# -- running ----------------------------------------------------------------------------------


def web_action_run(*, web_action_id: int) -> None:
    """One attempt of the web action, if it is pending and due (a duplicate message, or one
    for an action cancelled or done meanwhile, finds nothing to claim)."""
    web_action = _claim(web_action_id)
    if web_action is None:
        return
    attempt = web_action.attempt
    endpoint = (
        Endpoint.objects.filter(pk=web_action.endpoint_id).first()
        if web_action.endpoint_id is not None
        else None
    )
    credential = web_action.credential
    problem = None
    if endpoint is None:
        problem = ("endpoint_missing", "the endpoint was deleted")
    elif credential is None and endpoint.config.get("login"):
        # Named when the row was made (the endpoint logs in), deleted since.
        problem = ("credential_missing", "the credential was deleted")
    elif credential is not None:
        problem = attempts.credential_problem(credential)
    if problem is not None:
        _finish(web_action, attempt, failure=ActionFailed(*problem), results=[])
        return
    try:
        browse, answer = attempts.browser_attempt(
            endpoint=cast(Endpoint, endpoint),  # a missing one is a problem (above)
            credential=credential,
            actions=web_action.actions,
            outcomes=web_action.outcomes,
            context={"input": web_action.input, "nodes": {}},
            budget_s=web_action.timeout_s,
            # No workflow: its states are the endpoint's, per step of the action list.
            scope=MemoryScope(endpoint=endpoint),
            run_id=web_action.pk,
            actor=web_action.created_by,
            cancelled=lambda: _cancelled(web_action.pk),
        )
    except TimeoutError as exc:
        _finish(web_action, attempt, failure=ActionFailed("page_timeout", str(exc)), results=[])
        return
    except crypto.CredentialUnreadable as exc:
        _finish(web_action, attempt, failure=ActionFailed("credential_unreadable", str(exc)),
                results=[])  # fmt: skip
        return
    except Exception as exc:  # noqa: BLE001 - the browser could not start or crashed
        # Transient (a browser that did not start may start on the next attempt). The
        # error's name only, here and in the log: its text may quote a page's address.
        failure = ActionFailed("browser_error", f"the browser failed: {type(exc).__name__}")
        _finish(web_action, attempt, failure=failure, results=[])
        logger.warning("web action %s: the browser failed: %s", web_action.pk, failure)
        return
    screenshots = attempts.screenshots_store(
        org_id=web_action.org_id,
        captures=browse.captures,
        attempt=attempt,
        declared=web_action.input,
        secrets=attempts.secret_values(browse),
        web_action=web_action,
    )
    # Masked like a trace: a value of the row may have reached a message or an address.
    results = phi.mask_json(
        [
            _result_json(phase, result, {shot.name: shot.pk for shot in screenshots})
            for phase, result in browse.results
        ],
        declared=web_action.input,
    )
    if isinstance(answer, ActionFailed):
        failure = ActionFailed(answer.kind, phi.mask(str(answer), declared=web_action.input))
        _finish(web_action, attempt, failure=failure, results=results, label=browse.shown or "")
    else:
        _finish(web_action, attempt, outputs=answer.outputs, results=results)


def _claim(web_action_id: int) -> WebAction | None:
    now = timezone.now()
    with transaction.atomic():
        web_action = (
            WebAction.objects.select_for_update(skip_locked=True)
            .filter(pk=web_action_id, status=WebActionStatus.PENDING)
            .first()
        )
        if web_action is None or (web_action.not_before and web_action.not_before > now):
            return None
        WebAction.objects.filter(pk=web_action.pk).update(
            status=WebActionStatus.RUNNING,
            attempt=F("attempt") + 1,
            started_at=web_action.started_at or now,
            lease_expires_at=now
            + timedelta(seconds=web_action.timeout_s + attempts.JOB_GRACE_S + LEASE_GRACE_S),
        )
    web_action.refresh_from_db()
    return web_action


def _cancelled(web_action_id: int) -> bool:
    return WebAction.objects.filter(pk=web_action_id, status=WebActionStatus.CANCELLED).exists()


def _result_json(phase: str, result, screenshots: dict[str, int]) -> dict:
    """An action's result as the API shows it: what a web node's trace holds."""
    return {
        **action_detail(phase, result, screenshots),
        "tool": result.tool,
        "duration_ms": result.duration_ms,
        "success": result.success,
        "tier": result.tier,
        "tier_reason": result.tier_reason,
        "error": result.error,
    }


@transaction.atomic
def _finish(
    web_action: WebAction,
    attempt: int,
    *,
    results: list,
    outputs: dict | None = None,
    failure: ActionFailed | None = None,
    label: str = "",
) -> None:
    """Record the attempt, if it is still this attempt's to record (not cancelled, not taken
    back by the reaper meanwhile). A transient failure with attempts left goes back to
    pending, due after its backoff."""
    now = timezone.now()
    mine = WebAction.objects.filter(
        pk=web_action.pk, status=WebActionStatus.RUNNING, attempt=attempt
    )
    common = {
        "results": results,
        "lease_expires_at": None,
        # Set when the first attempt was claimed (_claim).
        "duration_ms": int((now - cast(datetime, web_action.started_at)).total_seconds() * 1000),
    }
    if (
        failure is not None
        and failure.transient
        and not label
        and attempt < web_action.max_attempts
    ):
        backoff = min(2**attempt, MAX_BACKOFF_S)
        if mine.update(
            **common,
            status=WebActionStatus.PENDING,
            not_before=now + timedelta(seconds=backoff),
            error_kind=failure.kind,
            error=str(failure),
        ):
            _send_after_commit(web_action, countdown=backoff)
        return
    ending: dict[str, Any]
    if failure is None:
        ending = {"status": WebActionStatus.SUCCEEDED, "outputs": outputs}
    elif label:
        # A business answer ("Member not found"): the actions did their job.
        ending = {
            "status": WebActionStatus.SUCCEEDED,
            "label": label,
            "outputs": {"outcome": label},
        }
    else:
        ending = {
            "status": WebActionStatus.FAILED,
            "error_kind": failure.kind,
            "error": str(failure),
        }
    if not mine.update(**common, **ending, finished_at=now):
        # Cancelled meanwhile: it keeps what it did, its results, without changing its status.
        WebAction.objects.filter(
            pk=web_action.pk, status=WebActionStatus.CANCELLED, attempt=attempt
        ).update(results=results)


# -- recovering ---------------------------------------------------------------------------------


def web_actions_reap(*, limit: int = 500) -> dict:
    """Every organization's stalled web actions: a pending one whose message was lost is sent
    again; a running one whose lease ran out (its worker died) goes back to pending, or fails
    as ``lost`` when it had no attempt left."""
    now = timezone.now()
    pending_before = now - timedelta(seconds=settings.ENGINE_REQUEUE_AFTER_S)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT * FROM web_actions_stalled(%s, %s, %s)", [now, pending_before, limit]
        )
        rows = cursor.fetchall()
    done = {"lease": 0, "pending": 0}
    for what, org_id, web_action_id in rows:
        with org_context(org_id), transaction.atomic():
            web_action = WebAction.objects.filter(pk=web_action_id).first()
            if web_action is None:
                continue
            if what == "lease":
                done[what] += _take_back(web_action, now)
            else:
                # Its due time moves on, so that the next pass does not send it again at once.
                WebAction.objects.filter(pk=web_action.pk, status=WebActionStatus.PENDING).update(
                    not_before=now
                )
                _send_after_commit(web_action)
                done[what] += 1
    return done


def _take_back(web_action: WebAction, now) -> int:
    running = WebAction.objects.filter(
        pk=web_action.pk,
        status=WebActionStatus.RUNNING,
        attempt=web_action.attempt,
        lease_expires_at__lt=now,
    )
    if web_action.attempt < web_action.max_attempts:
        taken = running.update(
            status=WebActionStatus.PENDING,
            lease_expires_at=None,
            not_before=now,
            error_kind="lost",
            error=f"attempt {web_action.attempt}: its worker stopped answering",
        )
        if taken:
            _send_after_commit(web_action)
        return taken
    return running.update(
        status=WebActionStatus.FAILED,
        lease_expires_at=None,
        finished_at=now,
        error_kind="lost",
        error=f"attempt {web_action.attempt}: its worker stopped answering; no attempt left",
    )
