"""The ``web`` node kind: an action list carried out in a browser on one of the
organization's endpoints, logged in with one of its credentials.

    {"endpoint": 3, "credential": 7,
     "actions": [...],                              # webactions/actions.py
     "outcomes": {"not_found": "Member not found"}} # label -> what the page says then

The extracted fields are the node's output. A page that shows an outcome's text when the
actions stop (a search that found nobody) ends the node with that label, a business outcome
the engine never retries. A page that failed (5xx, 429) or did not answer in time is a
transient failure, retried per the node's policy; a target not found or ambiguous, a host the
endpoint does not allow, an inactive or expired credential are permanent.

The credential's secrets are decrypted in the worker for the attempt (each decryption in the
credential's access log) and exist only in the template context of the actions: they never
enter the run's context, the node's output, a trace or an error message.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

from tenants.models import Endpoint
from webactions import actions as language
from webactions import services
from webactions.executor import ActionFailed, run_actions
from webactions.models import PortalCredential
from webactions.pool import browser_thread
from workflows.engine import kinds, templates
from workflows.engine.kinds import BusinessFailure, NodeResult, PermanentError, TransientError
from workflows.services import traces

ALLOWED = ("endpoint", "credential", "actions", "outcomes")
# What a browser job may take beyond the node's own timeout before the task stops waiting.
JOB_GRACE_S = 10
# How every target is found in this release: by its description alone, no memory yet (the
# trace's tier stays empty; tiers 1-3 are memory, repair and model).
DIRECT = "direct: exact semantic match"


class WebKind(kinds.NodeKind):
    name = "web"

    @property
    def queue(self) -> str:
        # Browser work on a queue of its own: slow pages never hold the engine's workers.
        return settings.CELERY_WEB_QUEUE

    def validate_config(self, config):
        problems = super().validate_config(config)
        if problems:
            return problems
        problems = [f"unknown key {key!r}" for key in config if key not in ALLOWED]
        if not isinstance(config.get("endpoint"), int):
            problems.append("endpoint must be the id of one of the organization's endpoints")
        if "credential" in config and not isinstance(config["credential"], int):
            problems.append("credential must be the id of a credential of that endpoint")
        problems += language.action_problems(config.get("actions"))
        outcomes = config.get("outcomes", {})
        if not isinstance(outcomes, dict) or not all(
            isinstance(label, str) and label and label != kinds.SUCCESS and isinstance(text, str)
            and text for label, text in outcomes.items()
        ):  # fmt: skip
            problems.append("outcomes maps labels (not 'success') to texts the page shows")
        if _needs_secrets(config) and "credential" not in config:
            problems.append("the actions use the credential (a credential.* value or totp)")
        if not problems:
            problems += _ownership_problems(config)
        return problems

    def labels(self, config):
        return {kinds.SUCCESS, *config.get("outcomes", {})}

    def references(self, config):
        return language.references(config.get("actions"))

    def execute(self, ctx):
        config = ctx.config
        endpoint = Endpoint.objects.filter(pk=config["endpoint"]).first()
        if endpoint is None:
            raise PermanentError("endpoint_missing", f"endpoint {config['endpoint']} is gone")
        secrets = _secrets(config, endpoint, ctx.run_id)
        base_url = endpoint.effective_base_url
        hosts = {urlsplit(base_url).hostname, *endpoint.config.get("allowed_hosts", [])}
        context = {**ctx.template_context, "credential": secrets}
        outcomes = config.get("outcomes", {})
        timeout_ms = max(1000, int(ctx.seconds_left() * 1000))

        def job(browser_context):
            page = browser_context.new_page()
            try:
                return run_actions(
                    page,
                    config["actions"],
                    render=lambda text: _rendered(text, context),
                    base_url=base_url,
                    allowed_hosts={host for host in hosts if host},
                    secrets=secrets,
                    timeout_ms=min(timeout_ms, 30_000),
                ), None
            except ActionFailed as failure:
                return failure, _outcome_shown(page, outcomes)

        answer, shown = browser_thread().run(job, timeout=ctx.seconds_left() + JOB_GRACE_S)
        _traced(ctx, endpoint, answer.results)
        if isinstance(answer, ActionFailed):
            if shown:
                raise BusinessFailure(shown, outcomes[shown], output={"outcome": shown})
            if answer.transient:
                raise TransientError(answer.kind, str(answer))
            raise PermanentError(answer.kind, str(answer))
        return NodeResult(output=answer.outputs)


def _traced(ctx, endpoint, results) -> None:
    """One trace per action: what it was, how its target was found, how long, how it ended.
    No value typed or read is in them (ActionResult holds none)."""
    traces.step_traces_record(
        run_id=ctx.run_id,
        node_key=ctx.node_key,
        attempt=ctx.attempt,
        endpoint_id=endpoint.pk,
        steps=[
            traces.StepTrace(
                action_type=f"web.{result.tool}",
                success=result.success,
                duration_ms=result.duration_ms,
                detail={
                    "action": result.number,
                    "target": result.target,
                    "resolved": result.resolved,
                    "error_kind": result.error_kind,
                },
                error=result.error,
                tier_reason=DIRECT,
            )
            for result in results
        ],
    )


def _rendered(text: str, context: dict) -> str:
    try:
        return str(templates.render_value(text, context))
    except templates.TemplateError as exc:
        raise ActionFailed("template_error", str(exc)) from exc


def _outcome_shown(page, outcomes: dict) -> str | None:
    """The label whose text the page shows, if any (read in the browser thread)."""
    for label, text in outcomes.items():
        if page.get_by_text(text).count():
            return label
    return None


def _needs_secrets(config) -> bool:
    listed = config.get("actions") if isinstance(config.get("actions"), list) else []
    return any(
        isinstance(action, dict)
        and (
            action.get("tool") == "totp"
            or any(
                templates.references(action.get(key), roots=("credential",))
                for key in ("value", "url", "text", "key")
                if isinstance(action.get(key), str)
            )
        )
        for action in listed
    )


def _ownership_problems(config) -> list[str]:
    """The endpoint and credential named must be the organization's own (publishing runs in its
    context; another organization's are simply not found)."""
    endpoint = Endpoint.objects.filter(pk=config["endpoint"]).first()
    if endpoint is None:
        return [f"no endpoint {config['endpoint']} in this organization"]
    if "credential" not in config:
        return []
    credential = PortalCredential.objects.filter(pk=config["credential"]).first()
    if credential is None:
        return [f"no credential {config['credential']} in this organization"]
    if credential.endpoint_id != endpoint.pk:
        return [f"credential {credential.pk} belongs to another endpoint"]
    return []


def _secrets(config, endpoint, run_id) -> dict:
    if "credential" not in config:
        return {}
    credential = PortalCredential.objects.filter(
        pk=config["credential"], endpoint_id=endpoint.pk
    ).first()
    if credential is None:
        raise PermanentError("credential_missing", f"credential {config['credential']} is gone")
    if not credential.is_active:
        raise PermanentError("credential_inactive", f"credential {credential.pk} is inactive")
    if credential.expires_at is not None and credential.expires_at <= timezone.now():
        raise PermanentError("credential_expired", f"credential {credential.pk} has expired")
    return services.credential_secrets(credential=credential, run_id=run_id)
