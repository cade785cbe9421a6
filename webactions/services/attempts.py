"""One browser attempt on an endpoint, for the web node kind and the web-actions API alike.

The credential is checked and its secrets opened (a logged retrieval), a kept log-in is
reused, the actions run in the process's browser thread (webactions/pool.py), and afterwards,
back in the task's thread where the database may be used, the log-in is kept or dropped and
the attempt's screenshots are stored: PHI, per organization, the failing page's DOM masked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from memory.embeddings import embedder
from rcm import phi
from tenants import services as tenant_services
from tenants.models import Endpoint
from webactions.agent import Memory
from webactions.browse import LOGIN_REFUSED, Browse, Capture
from webactions.executor import ActionFailed, Outcome, trusted_prefixes
from webactions.models import PortalCredential, WebAction, WebScreenshot
from webactions.pool import browser_thread
from webactions.relay import Relay
from webactions.services import credentials
from webactions.services.agent_memory import MemoryScope

# What a browser job may take beyond its own budget before the task stops waiting for it.
JOB_GRACE_S = 10
# The longest one action may wait for its page or target, whatever the attempt's budget.
MAX_ACTION_TIMEOUT_MS = 30_000
# How often a waiting task asks whether the attempt was cancelled.
CANCEL_POLL_S = 1.0


def credential_problem(credential: PortalCredential) -> tuple[str, str] | None:
    """Why ``credential`` may not be used now, as (kind, message); None when it may."""
    if not credential.is_active:
        return "credential_inactive", f"credential {credential.pk} is inactive"
    if credential.expires_at is not None and credential.expires_at <= timezone.now():
        return "credential_expired", f"credential {credential.pk} has expired"
    return None


def browser_attempt(
    *,
    endpoint: Endpoint,
    credential: PortalCredential | None,
    actions: list,
    outcomes: dict,
    context: dict,
    budget_s: float,
    scope: MemoryScope,
    run_id: int | None = None,
    actor=None,
    cancelled: Callable[[], bool] | None = None,
) -> tuple[Browse, Outcome | ActionFailed]:
    """Carry ``actions`` out on ``endpoint``, logged in with ``credential`` where the endpoint
    says how; the attempt (its traces' material, captures, the outcome shown) and its answer.
    The secrets' retrieval is logged against ``run_id`` (a workflow run, or a web action) and
    ``actor`` (who asked for the web action).

    ``context`` is what the templates read; the credential's secrets are added to it here and
    never leave this call. ``scope`` is where the web agent's memory of these pages lives
    (webactions/agent.py); its searches and writes are carried out here, in this thread,
    while the browser waits. ``cancelled`` is asked while waiting: once it says yes, the
    actions stop before the next one. Raises TimeoutError when the browser has not answered
    within ``budget_s`` and a grace (the browser is told to stop).
    """
    secrets = (
        credentials.credential_secrets(credential=credential, actor=actor, run_id=run_id)
        if credential is not None
        else {}
    )
    login = endpoint.config.get("login") if credential is not None else None
    # The credential whose log-in is kept between attempts: only where the endpoint says how
    # to log in (a browser log-in and its refusal happen only then).
    login_credential = credential if login else None
    state = (
        credentials.browser_session_state(credential=login_credential)
        if login_credential is not None
        else None
    )
    relay = Relay()
    browse = Browse(
        endpoint=endpoint,
        login=login,
        actions=actions,
        outcomes=outcomes,
        context={**context, "credential": secrets},
        secrets=secrets,
        timeout_ms=min(max(1000, int(budget_s * 1000)), MAX_ACTION_TIMEOUT_MS),
        logged_in=state is not None,
        memory=Memory(
            relay=relay,
            scope=scope,
            embedder=embedder(),
            declared=context.get("input") or {},
            secrets=_secret_values(secrets),
        ),
    )
    key = context_key(login_credential, endpoint) if login_credential is not None else None
    trusted = trusted_prefixes(endpoint.effective_base_url)
    future = browser_thread().submit(browse.run, storage_state=state, key=key, trusted=trusted)
    answer = answer_serving(
        future, relay=relay, stop=browse.stop, wait_s=budget_s + JOB_GRACE_S, cancelled=cancelled
    )
    if login_credential is None:
        return browse, answer  # no log-in, so no session to keep or forget
    if browse.new_state is not None:
        credentials.browser_session_store(credential=login_credential, state=browse.new_state)
    if isinstance(answer, ActionFailed) and answer.kind == LOGIN_REFUSED:
        credentials.browser_session_forget(credential=login_credential)
        browser_thread().forget(key)
    return browse, answer


def context_key(credential: PortalCredential, endpoint: Endpoint) -> tuple:
    """Which kept browser context a login's attempts share in a worker process: the
    organization's, that credential's, as long as its secrets and settings and the endpoint's
    address are unchanged (a rotation or a move gives the next attempt a new context)."""
    return (
        str(credential.org_id),
        credential.pk,
        credential.updated_at.isoformat(),
        endpoint.effective_base_url,
    )


def answer_serving(
    future,
    *,
    relay: Relay,
    stop: threading.Event,
    wait_s: float,
    cancelled: Callable[[], bool] | None = None,
):
    """A browser job's answer, its memory calls served meanwhile (``relay``); every
    CANCEL_POLL_S ``cancelled`` is asked, and once it says yes (or ``wait_s`` has passed)
    ``stop`` tells the browser thread to end before its next action."""
    future.add_done_callback(lambda _: relay.wake())
    deadline = time.monotonic() + wait_s
    while not future.done():
        left = deadline - time.monotonic()
        if left <= 0:
            stop.set()  # the browser thread gives up at the next action
            raise TimeoutError(f"the browser did not answer within {wait_s:.0f}s")
        relay.serve(timeout=min(left, CANCEL_POLL_S))
        if not future.done() and cancelled is not None and cancelled():
            stop.set()
    relay.drain()  # what the last actions taught, written before the attempt is recorded
    return future.result()


@transaction.atomic
def screenshots_store(
    *,
    org_id,
    captures: list[Capture],
    attempt: int,
    declared: dict[str, Any],
    secrets: tuple[str, ...] = (),
    node_run_id: int | None = None,
    web_action: WebAction | None = None,
) -> list[WebScreenshot]:
    """The attempt's screenshots, kept for the organization alone. A failing page's DOM is
    masked (rcm/phi.py) with the row's own values declared, so that its member ID, name and
    date of birth are masked wherever they appear."""
    if not captures:
        return []  # most attempts: no transaction for nothing
    return WebScreenshot.objects.bulk_create(
        WebScreenshot(
            org_id=org_id,
            node_run_id=node_run_id,
            web_action=web_action,
            attempt=attempt,
            name=capture.name[:100],
            reason=capture.reason,
            page=phi.mask(capture.page, declared=declared)[:500],
            image=capture.image,
            masked_dom=phi.mask(phi.mask(capture.dom, declared=declared), declared=secrets)
            if capture.dom
            else "",
        )
        for capture in captures
    )


def secret_values(browse: Browse) -> tuple[str, ...]:
    """The secrets' values, to be masked wherever a page shows them (a username echoed)."""
    return _secret_values(browse.secrets)


def _secret_values(secrets: dict) -> tuple[str, ...]:
    values = []
    for value in secrets.values():
        if isinstance(value, dict):
            values += [str(extra) for extra in value.values()]
        elif value:
            values.append(str(value))
    return tuple(values)


# -- screenshots: access and retention -------------------------------------------------------

SCREENSHOT_VIEWED = "screenshot.viewed"


def screenshot_image(*, screenshot: WebScreenshot, actor, ip_address: str | None) -> bytes:
    """The picture, for the organization's own member; the access is an audit event."""
    tenant_services.audit_event_record(
        action=SCREENSHOT_VIEWED,
        org_id=screenshot.org_id,
        actor=actor,
        object_type="web_screenshot",
        object_id=str(screenshot.pk),
        ip_address=ip_address,
        details={
            "web_action": screenshot.web_action_id,
            "node_run": screenshot.node_run_id,
            "reason": screenshot.reason,
        },
    )
    return bytes(WebScreenshot.objects.values_list("image", flat=True).get(pk=screenshot.pk))


def screenshot_purge(*, now=None) -> int:
    """Delete every organization's screenshots older than WEB_SCREENSHOT_RETENTION_DAYS."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.WEB_SCREENSHOT_RETENTION_DAYS)
    with connection.cursor() as cursor:
        cursor.execute("SELECT web_screenshot_purge(%s)", [cutoff])
        return cursor.fetchone()[0]
