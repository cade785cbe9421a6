"""Templates over a run's context, evaluated in Jinja2's sandbox.

A run's context is ``{"input": {...}, "nodes": {key: {"output": {...}, "label": "..."}}}``.
Configs refer to it as ``{{ input.member_id }}`` or ``{{ nodes.search.output.patient_id }}``,
and to the step being run as ``{{ run.id }}``, ``{{ node.key }}``, ``{{ attempt }}`` and
``{{ step.idempotency_key }}`` (``IDENTITY_ROOTS``);
conditions are bare expressions (``nodes.elig.output.status == 'active'``). The sandbox refuses
attribute access to Python internals, and no value a template makes may grow past
``MAX_RENDERED_CHARS``, checked at publish and before each step while it renders
(``template_bounds``): it is operator input, executed on shared workers.

A value that is exactly one ``{{ ... }}`` keeps its type (a number stays a number); anything
else renders as text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, UndefinedError, nodes
from jinja2.sandbox import SecurityError

from workflows.engine.template_bounds import (
    MAX_RENDERED_CHARS,
    BoundedEnvironment,
    size_problems,
    unstreamed_problems,
)

_ENV = BoundedEnvironment(undefined=StrictUndefined, autoescape=False)
_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)
# The step's identity, beside the run's context: {{ run.id }}, {{ node.key }}, {{ attempt }} (1 on
# the first try) and {{ step.idempotency_key }} (the same on every attempt of the step, for an
# Idempotency-Key header). Each root's one valid path:
IDENTITY_ROOTS = {
    "run": ("run", "id"),
    "node": ("node", "key"),
    "attempt": ("attempt",),
    "step": ("step", "idempotency_key"),
}
ROOTS = ("input", "nodes", *IDENTITY_ROOTS)
RENDERED_TOO_LONG = "{text!r} rendered more than {limit} characters"
# How much of a template an error quotes: the message is stored with the node's run.
QUOTED_CHARS = 200


class TemplateError(Exception):
    """A template that does not compile, refers to a missing value, or breaks the sandbox."""


@dataclass(frozen=True)
class Reference:
    """A path a template reads: ("input", "member_id") or ("nodes", "search", "output", ...)."""

    path: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join(self.path)


def _compile_expression(source: str):
    try:
        return _ENV.compile_expression(source, undefined_to_none=False)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"invalid expression {source!r}: {exc.message}") from exc


def render_value(value: Any, context: dict) -> Any:
    """Render every string inside ``value`` (dicts and lists recursively) against ``context``."""
    if isinstance(value, str):
        return _render_string(value, context)
    if isinstance(value, dict):
        return {key: render_value(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [render_value(item, context) for item in value]
    return value


def _render_string(text: str, context: dict) -> Any:
    if "{{" not in text and "{%" not in text:
        return text
    try:
        single = _SINGLE_EXPRESSION.match(text)
        if single and "{{" not in single.group("expr"):
            result = _compile_expression(single.group("expr"))(**context)
        else:
            result = _streamed(_template_compiled(text), context, text)
    except TemplateError:
        raise
    except (UndefinedError, SecurityError, TemplateSyntaxError) as exc:
        raise TemplateError(f"{_quoted(text)}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - a template's own error (1/0, a bad call)
        raise TemplateError(f"{_quoted(text)}: {type(exc).__name__}: {exc}") from exc
    if isinstance(result, Undefined):
        # A bare expression returns StrictUndefined instead of raising: a missing value, or
        # an attribute the sandbox refused.
        raise TemplateError(f"{_quoted(text)}: {result._undefined_message}")
    if isinstance(result, str) and len(result) > MAX_RENDERED_CHARS:
        raise TemplateError(RENDERED_TOO_LONG.format(text=_quoted(text), limit=MAX_RENDERED_CHARS))
    return result


def _template_compiled(text: str):
    """The template, unless it uses a construct that builds text out of sight of the streamed
    output: a revision published before they were refused must not run one either."""
    tree = _ENV.parse(text)
    problems = unstreamed_problems(tree)
    if problems:
        raise TemplateError(f"{_quoted(text)}: {problems[0]}")
    return _ENV.from_string(tree)


def _streamed(template, context: dict, text: str) -> str:
    """The rendered text, piece by piece, stopped as soon as it passes the limit: a loop
    printing a bounded value many times never adds up to more than the limit in memory."""
    pieces, size = [], 0
    for piece in template.generate(**context):
        size += len(piece)
        if size > MAX_RENDERED_CHARS:
            message = RENDERED_TOO_LONG.format(text=_quoted(text), limit=MAX_RENDERED_CHARS)
            raise TemplateError(message)
        pieces.append(piece)
    return "".join(pieces)


def _quoted(text: str) -> str:
    if len(text) <= QUOTED_CHARS:
        return repr(text)
    return repr(text[:QUOTED_CHARS]) + f"... ({len(text):,} characters)"


def evaluate(expression: str, context: dict) -> Any:
    """The value of a bare expression (a decision's condition)."""
    try:
        result = _compile_expression(expression)(**context)
    except TemplateError:
        raise
    except (UndefinedError, SecurityError) as exc:
        raise TemplateError(f"{expression!r}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001
        raise TemplateError(f"{expression!r}: {type(exc).__name__}: {exc}") from exc
    if isinstance(result, Undefined):
        raise TemplateError(f"{expression!r}: {result._undefined_message}")
    return result


def template_problems(value: Any) -> list[str]:
    """Problems with the templates inside ``value``, without rendering them: syntax, and
    sizes that can pass the limits (``template_bounds.size_problems``)."""
    problems = []
    for text in _strings(value):
        if "{{" in text or "{%" in text:
            try:
                tree = _ENV.parse(text)
            except TemplateSyntaxError as exc:
                problems.append(f"invalid template {_quoted(text)}: {exc.message}")
                continue
            problems += [f"{_quoted(text)}: {problem}" for problem in size_problems(tree)]
    return problems


def expression_problems(expression: str) -> list[str]:
    try:
        tree = _ENV.parse("{{ " + expression + " }}")
    except TemplateSyntaxError as exc:
        return [f"invalid expression {expression!r}: {exc.message}"]
    return [f"{_quoted(expression)}: {problem}" for problem in size_problems(tree)]


def references(
    value: Any, *, expression: bool = False, roots: tuple[str, ...] = ROOTS
) -> set[Reference]:
    """The context paths the templates (or, with ``expression``, the bare expressions) inside
    ``value`` read, under ``roots``. Publishing checks them against required_data and upstream
    nodes; a kind with values of its own (the web kind's credential) asks for those too."""
    found: set[Reference] = set()
    for text in _strings(value):
        source = "{{ " + text + " }}" if expression else text
        if not expression and "{{" not in text and "{%" not in text:
            continue
        try:
            tree = _ENV.parse(source)
        except TemplateSyntaxError:
            continue  # reported by template_problems
        for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
            path = _path_of(node)
            if path and path[0] in roots:
                found.add(Reference(path))
    # Keep only the longest paths: input.a.b implies input.a.
    return {
        ref
        for ref in found
        if not any(other != ref and other.path[: len(ref.path)] == ref.path for other in found)
    }


def _path_of(node) -> tuple[str, ...] | None:
    parts: list[str] = []
    while True:
        if isinstance(node, nodes.Getattr):
            parts.append(node.attr)
            node = node.node
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            parts.append(str(node.arg.value))
            node = node.node
        elif isinstance(node, nodes.Name):
            parts.append(node.name)
            return tuple(reversed(parts))
        else:
            return None


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
