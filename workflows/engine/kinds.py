"""Node kinds: what a node does, behind one registry.

The engine knows node kinds only through this registry. Built-ins: ``noop``, ``transform``,
``decision``, ``http`` and ``wait``; ``webactions`` registers ``web`` from its AppConfig.ready().

A kind validates its config (on publish), says which labels it can emit and which context
values it reads (so publishing can check them), and executes. Execution ends in one of:

* a ``NodeResult`` (label + output): success, or a business outcome such as "not_found";
* ``BusinessFailure``: an expected failure, which becomes a label and is never retried;
* ``TransientError``: a system failure (timeout, 5xx, 429, a crash) retried per the policy;
* ``PermanentError``: a system failure no retry can fix (a template that reads a missing
  value); the node fails at once;
* ``WaitUntil``: not done yet, come back at a time (does not count as an attempt).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from rcm import addresses
from workflows.engine import templates
from workflows.engine.templates import Reference, TemplateError

SUCCESS = "success"
ERROR_LABEL = "error"  # fired by a node that failed for good, if an edge takes it
MAX_WAIT_S = 7 * 24 * 3600
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
MAX_HTTP_TIMEOUT_S = 120
MAX_RESPONSE_BYTES = 1_000_000


@dataclass(frozen=True)
class NodeResult:
    label: str = SUCCESS
    output: dict = field(default_factory=dict)


class BusinessFailure(Exception):  # noqa: N818 - an outcome, not a bug
    def __init__(self, label: str, message: str = "", output: dict | None = None):
        super().__init__(message or label)
        self.label = label
        self.output = output or {}


class TransientError(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class PermanentError(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class WaitUntil(Exception):  # noqa: N818 - a signal to the engine
    def __init__(self, when: dt.datetime):
        super().__init__(when.isoformat())
        self.when = when


@dataclass
class ExecutionContext:
    """What a kind sees while it runs one attempt of one node."""

    org_id: Any
    run_id: int
    node_run_id: int
    node_key: str
    attempt: int
    idempotency_key: str  # the step's, the same on every attempt (NodeRun.idempotency_key)
    config: dict
    context: dict  # {"input": ..., "nodes": {...}}
    deadline: dt.datetime  # the attempt must be done by then
    first_started_at: dt.datetime
    now: dt.datetime

    @property
    def template_context(self) -> dict:
        """What templates read: the run's context and this step's identity
        (``templates.IDENTITY_ROOTS``)."""
        return {
            **self.context,
            "run": {"id": self.run_id},
            "node": {"key": self.node_key},
            "attempt": self.attempt,
            "step": {"idempotency_key": self.idempotency_key},
        }

    def render(self, value: Any) -> Any:
        try:
            return templates.render_value(value, self.template_context)
        except TemplateError as exc:
            raise PermanentError("template_error", str(exc)) from exc

    def seconds_left(self) -> float:
        return max(0.0, (self.deadline - self.now).total_seconds())


class NodeKind:
    """Base of every kind. Subclasses set ``name`` and override what they need."""

    name: str = ""
    # Node types that may use this kind.
    node_types: tuple[str, ...] = ("general",)

    def validate_config(self, config: dict) -> list[str]:
        return [] if isinstance(config, dict) else ["config must be an object"]

    def labels(self, config: dict) -> set[str]:
        return {SUCCESS}

    def references(self, config: dict) -> set[Reference]:
        return templates.references(config)

    def execute(self, ctx: ExecutionContext) -> NodeResult:
        raise NotImplementedError


_REGISTRY: dict[str, NodeKind] = {}


def register(kind: NodeKind) -> NodeKind:
    if not kind.name:
        raise ValueError("a node kind needs a name")
    _REGISTRY[kind.name] = kind
    return kind


def get(name: str) -> NodeKind | None:
    return _REGISTRY.get(name)


def names() -> list[str]:
    return sorted(_REGISTRY)


# -- built-ins ----------------------------------------------------------------------------


def _unknown_keys(config: dict, allowed: Iterable[str]) -> list[str]:
    extra = sorted(set(config) - set(allowed))
    return [f"unknown config key {key!r}" for key in extra]


class NoopKind(NodeKind):
    """Does nothing and succeeds: a placeholder step, and the engine benchmark's unit."""

    name = "noop"

    def validate_config(self, config):
        return super().validate_config(config) or _unknown_keys(config, ())

    def execute(self, ctx):
        return NodeResult()


class TransformKind(NodeKind):
    """Computes outputs from templates over the run context: {"outputs": {name: template}}."""

    name = "transform"

    def validate_config(self, config):
        problems = super().validate_config(config) or _unknown_keys(config, ("outputs",))
        outputs = config.get("outputs") if isinstance(config, dict) else None
        if not isinstance(outputs, dict) or not outputs:
            problems.append("outputs must be a non-empty object of name: template")
        else:
            problems += templates.template_problems(outputs)
        return problems

    def execute(self, ctx):
        return NodeResult(output=ctx.render(ctx.config["outputs"]))


class DecisionKind(NodeKind):
    """The first condition that holds gives the label, else the default.

    {"conditions": [{"when": "<expression>", "label": "<label>"}, ...], "default": "<label>"}
    """

    name = "decision"
    node_types = ("decision",)

    def validate_config(self, config):
        problems = super().validate_config(config)
        if problems:
            return problems
        problems = _unknown_keys(config, ("conditions", "default"))
        conditions = config.get("conditions")
        if not isinstance(conditions, list) or not conditions:
            problems.append("conditions must be a non-empty list")
            conditions = []
        for number, condition in enumerate(conditions, start=1):
            if not isinstance(condition, dict) or set(condition) != {"when", "label"}:
                problems.append(f"condition {number} must be {{'when': ..., 'label': ...}}")
                continue
            if not isinstance(condition["label"], str) or not condition["label"]:
                problems.append(f"condition {number} needs a label")
            if not isinstance(condition["when"], str) or not condition["when"].strip():
                problems.append(f"condition {number} needs an expression in 'when'")
            else:
                problems += templates.expression_problems(condition["when"])
        if not isinstance(config.get("default"), str) or not config.get("default"):
            problems.append("default must name the label used when no condition holds")
        return problems

    def labels(self, config):
        found = {c.get("label") for c in config.get("conditions", []) if isinstance(c, dict)}
        return {label for label in found | {config.get("default")} if isinstance(label, str)}

    def references(self, config):
        whens = [c.get("when", "") for c in config.get("conditions", []) if isinstance(c, dict)]
        return templates.references(whens, expression=True)

    def execute(self, ctx):
        for condition in ctx.config["conditions"]:
            try:
                holds = templates.evaluate(condition["when"], ctx.template_context)
            except TemplateError as exc:
                raise PermanentError("template_error", str(exc)) from exc
            if holds:
                return NodeResult(label=condition["label"], output={"matched": condition["when"]})
        return NodeResult(label=ctx.config["default"], output={"matched": None})


class HttpKind(NodeKind):
    """A JSON request with a templated URL, headers and body.

    {"method": "POST", "url": "...", "headers": {...}, "body": {...}, "timeout_s": 10,
     "status_labels": {"404": "not_found"}}

    2xx: success with {"status", "body"}. A status in ``status_labels``: that label (a business
    outcome). 5xx, 429, timeouts and connection errors: transient. Other 4xx: permanent.
    """

    name = "http"
    ALLOWED = ("method", "url", "headers", "body", "timeout_s", "status_labels")

    def validate_config(self, config):
        problems = super().validate_config(config)
        if problems:
            return problems
        problems = _unknown_keys(config, self.ALLOWED)
        if config.get("method", "GET") not in HTTP_METHODS:
            problems.append(f"method must be one of {', '.join(HTTP_METHODS)}")
        url = config.get("url")
        if not isinstance(url, str) or not url:
            problems.append("url is required")
        elif "{{" not in url.split("://", 1)[0] and not url.startswith(("http://", "https://")):
            problems.append("url must start with http:// or https://")
        timeout = config.get("timeout_s", 10)
        if not isinstance(timeout, int | float) or not 0 < timeout <= MAX_HTTP_TIMEOUT_S:
            problems.append(f"timeout_s must be a number in (0, {MAX_HTTP_TIMEOUT_S}]")
        headers = config.get("headers", {})
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            problems.append("headers must be an object of strings")
        labels = config.get("status_labels", {})
        if not isinstance(labels, dict) or not all(
            str(code).isdigit() and 400 <= int(code) < 500 and isinstance(label, str) and label
            for code, label in labels.items()
        ):
            problems.append("status_labels maps 4xx status codes to labels")
        problems += templates.template_problems(
            {k: config.get(k) for k in ("url", "headers", "body")}
        )
        return problems

    def labels(self, config):
        return {SUCCESS, *config.get("status_labels", {}).values()}

    def execute(self, ctx):
        config = ctx.config
        method = config.get("method", "GET")
        url = ctx.render(config["url"])
        headers = ctx.render(config.get("headers", {}))
        body = ctx.render(config["body"]) if "body" in config else None
        timeout = min(float(config.get("timeout_s", 10)), max(ctx.seconds_left(), 0.1))
        # Errors name the method and host, never the URL: a rendered URL may carry patient
        # data (a member ID in its path), and error texts are stored in runs and traces.
        where = f"{method} {_host(url)}"
        _refuse_internal_address(url, where)
        try:
            response = httpx.request(
                method, url, headers=headers, json=body, timeout=timeout, follow_redirects=False
            )
        except httpx.TimeoutException as exc:
            raise TransientError("timeout", f"{where}: no answer within {timeout:.1f}s") from exc
        except httpx.TransportError as exc:
            raise TransientError("connection", f"{where}: {type(exc).__name__}") from exc
        status = response.status_code
        payload = _body(response)
        if 200 <= status < 300:
            return NodeResult(output={"status": status, "body": payload})
        label = config.get("status_labels", {}).get(str(status))
        if label:
            raise BusinessFailure(label, f"HTTP {status}", {"status": status, "body": payload})
        if status >= 500 or status == 429:
            raise TransientError(f"http_{status}", f"{where} answered {status}")
        raise PermanentError(f"http_{status}", f"{where} answered {status}")


def _refuse_internal_address(url: str, where: str) -> None:
    """A non-public address is refused (rcm/addresses.py says why and when not)."""
    if addresses.private_allowed():
        return
    try:
        internal = addresses.internal_host(_host(url))
    except addresses.Unresolved as exc:
        raise TransientError("dns", f"{where}: the host name does not resolve") from exc
    if internal:
        raise PermanentError("forbidden_address", f"{where}: not a public address")


def _host(url: str) -> str:
    try:
        return httpx.URL(url).host or "?"
    except (httpx.InvalidURL, TypeError):
        return "?"


def _body(response: httpx.Response) -> Any:
    content = response.content[:MAX_RESPONSE_BYTES]
    try:
        return json.loads(content)
    except ValueError:
        return content.decode(errors="replace")


class WaitKind(NodeKind):
    """Waits ``seconds`` from the node's first start, without holding a worker meanwhile."""

    name = "wait"

    def validate_config(self, config):
        problems = super().validate_config(config) or _unknown_keys(config, ("seconds",))
        seconds = config.get("seconds") if isinstance(config, dict) else None
        if not isinstance(seconds, int | float) or not 0 <= seconds <= MAX_WAIT_S:
            problems.append(f"seconds must be a number in [0, {MAX_WAIT_S}]")
        return problems

    def execute(self, ctx):
        until = ctx.first_started_at + dt.timedelta(seconds=float(ctx.config["seconds"]))
        if ctx.now < until:
            raise WaitUntil(until)
        return NodeResult(output={"waited_s": float(ctx.config["seconds"])})


for _kind in (NoopKind(), TransformKind(), DecisionKind(), HttpKind(), WaitKind()):
    register(_kind)
