"""The ``web`` node kind: an action list carried out in a browser on one of the
organization's endpoints, logged in with one of its credentials.

An endpoint that needs a log-in says how in its config (``login``: the actions, and a target
only its log-in page shows). The log-in's cookies are kept per credential (encrypted, for
WEB_SESSION_TTL) and reused by the next rows; a portal that shows its log-in page again gets
a new log-in, once per attempt.

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

from rcm import addresses
from tenants.models import Endpoint
from webactions import actions as language
from webactions.browse import endpoint_hosts
from webactions.executor import ActionFailed
from webactions.models import PortalCredential
from webactions.services import attempts
from webactions.services.agent_memory import MemoryScope
from workflows import public as engine
from workflows.models import Workflow, WorkflowNode, WorkflowRun
from workflows.public import BusinessFailure, NodeResult, PermanentError, TransientError
from workflows.services import traces

ALLOWED = ("endpoint", "credential", "actions", "outcomes")


class WebKind(engine.NodeKind):
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
            isinstance(label, str) and label and label != engine.SUCCESS and isinstance(text, str)
            and text for label, text in outcomes.items()
        ):  # fmt: skip
            problems.append("outcomes maps labels (not 'success') to texts the page shows")
        if _needs_secrets(config) and "credential" not in config:
            problems.append("the actions use the credential (a credential.* value or totp)")
        if not problems:
            problems += _ownership_problems(config)
        return problems

    def labels(self, config):
        return {engine.SUCCESS, *config.get("outcomes", {})}

    def references(self, config):
        return language.references(config.get("actions"))

    def execute(self, ctx):
        config = ctx.config
        endpoint = Endpoint.objects.filter(pk=config["endpoint"]).first()
        if endpoint is None:
            raise PermanentError("endpoint_missing", f"endpoint {config['endpoint']} is gone")
        browse, answer = attempts.browser_attempt(
            endpoint=endpoint,
            credential=_credential(config, endpoint),
            actions=config["actions"],
            outcomes=config.get("outcomes", {}),
            context=ctx.template_context,
            budget_s=ctx.seconds_left(),
            scope=_memory_scope(ctx, endpoint),
            run_id=ctx.run_id,
        )
        screenshots = attempts.screenshots_store(
            org_id=ctx.org_id,
            captures=browse.captures,
            attempt=ctx.attempt,
            declared=ctx.context.get("input") or {},
            secrets=attempts.secret_values(browse),
            node_run_id=ctx.node_run_id,
        )
        _traced(ctx, endpoint, browse.results, {shot.name: shot.pk for shot in screenshots})
        if isinstance(answer, ActionFailed):
            if browse.shown:
                label = browse.shown
                raise BusinessFailure(label, browse.outcomes[label], output={"outcome": label})
            if answer.transient:
                raise TransientError(answer.kind, str(answer))
            raise PermanentError(answer.kind, str(answer))
        return NodeResult(output=answer.outputs)


def _memory_scope(ctx, endpoint) -> MemoryScope:
    """The web agent's memory for this node: the run's workflow, the draft graph's node of
    that key (states outlive revisions: a republished node keeps what it learnt) and the
    endpoint."""
    workflow_id = (
        WorkflowRun.objects.filter(pk=ctx.run_id).values_list("workflow_id", flat=True).get()
    )
    return MemoryScope(
        workflow=Workflow.objects.get(pk=workflow_id),
        node=WorkflowNode.objects.filter(workflow_id=workflow_id, key=ctx.node_key).first(),
        endpoint=endpoint,
    )


def _traced(ctx, endpoint, results, screenshots: dict[str, int]) -> None:
    """One trace per action: what it was, how its target was found (tier, reason, state,
    latency), how it ended. No value typed or read is in them (ActionResult holds none)."""
    traces.step_traces_record(
        run_id=ctx.run_id,
        node_key=ctx.node_key,
        attempt=ctx.attempt,
        endpoint_id=endpoint.pk,
        steps=[step_trace(phase, result, screenshots) for phase, result in results],
    )


def step_trace(phase: str, result, screenshots: dict[str, int]) -> traces.StepTrace:
    """An action's result as its trace (the web-actions API shows the same)."""
    llm = result.llm or {}
    return traces.StepTrace(
        action_type=f"web.{result.tool}",
        success=result.success,
        duration_ms=result.duration_ms,
        detail=action_detail(phase, result, screenshots),
        error=result.error,
        tier=result.tier,
        tier_reason=result.tier_reason,
        llm_prompt=llm.get("prompt", ""),
        llm_response=llm.get("response", ""),
        llm_model=llm.get("model", ""),
        llm_tokens_used=llm.get("tokens"),
    )


def action_detail(phase: str, result, screenshots: dict[str, int]) -> dict:
    detail = {
        "phase": phase,
        "action": result.number,
        "target": result.target,
        "resolved": result.resolved,
        "error_kind": result.error_kind,
        "state": result.state,
        "similarity": result.similarity,
        "resolve_ms": result.resolve_ms,
        "resolve_parts": result.resolve_parts,
    }
    if result.repair:
        repair = dict(result.repair)
        if "screenshot" in repair:
            repair["screenshot"] = screenshots.get(repair["screenshot"])
        detail["repair"] = repair
    return detail


def _needs_secrets(config) -> bool:
    listed = config.get("actions") if isinstance(config.get("actions"), list) else []
    return any(
        isinstance(action, dict)
        and (
            action.get("tool") == "totp"
            or any(
                engine.references(action.get(key), roots=("credential",))
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
    login = endpoint.config.get("login")
    problems = _address_problems(endpoint) + _host_problems(endpoint, config["actions"])
    problems += _login_problems(login) if login is not None else []
    if "credential" not in config:
        return problems + (
            ["the endpoint logs in (config.login): name its credential"] if login else []
        )
    credential = PortalCredential.objects.filter(pk=config["credential"]).first()
    if credential is None:
        return [f"no credential {config['credential']} in this organization"]
    if credential.endpoint_id != endpoint.pk:
        return [*problems, f"credential {credential.pk} belongs to another endpoint"]
    return problems


def _host_problems(endpoint, actions) -> list[str]:
    """A goto to a written-out address on another host than the endpoint's (or those its
    config.allowed_hosts lists) is refused now; one built from a template is checked when it
    runs (webactions/executor.py)."""
    problems = []
    hosts = endpoint_hosts(endpoint)
    for number, action in enumerate(actions, start=1):
        url = action.get("url", "") if action.get("tool") == "goto" else ""
        if "{{" in url or not urlsplit(url).scheme:
            continue
        host = urlsplit(url).hostname or ""
        if host not in hosts:
            problems.append(
                f"action {number} (goto): {host or url!r} is not a host of endpoint "
                f"{endpoint.pk} (allowed: {', '.join(sorted(hosts))}; more through its "
                "config.allowed_hosts)"
            )
    return problems


def _address_problems(endpoint) -> list[str]:
    """An endpoint on a non-public address is refused on publish already (the browser would
    refuse every page of it; rcm/addresses.py)."""
    base_url = endpoint.effective_base_url
    host = urlsplit(base_url).hostname
    if not host or addresses.private_allowed() or addresses.own_sandbox(base_url):
        return []
    try:
        internal = addresses.internal_host(host)
    except addresses.Unresolved:
        return []  # maybe only from here; the attempt will say
    if internal:
        return [f"endpoint {endpoint.pk}'s address {base_url} is not a public address"]
    return []


def _login_problems(login) -> list[str]:
    """An endpoint's log-in: ``{"actions": [...], "page": <a target only its log-in page
    shows>}``, checked like a node's actions."""
    if not isinstance(login, dict) or set(login) != {"actions", "page"}:
        return ['the endpoint\'s config.login is {"actions": [...], "page": <target>}']
    problems = [
        f"config.login: {problem}" for problem in language.action_problems(login["actions"])
    ]
    return problems + language.target_problems(login["page"], "config.login.page")


def _credential(config, endpoint) -> PortalCredential | None:
    if "credential" not in config:
        return None
    credential = PortalCredential.objects.filter(
        pk=config["credential"], endpoint_id=endpoint.pk
    ).first()
    if credential is None:
        raise PermanentError("credential_missing", f"credential {config['credential']} is gone")
    problem = attempts.credential_problem(credential)
    if problem is not None:
        raise PermanentError(*problem)
    return credential
