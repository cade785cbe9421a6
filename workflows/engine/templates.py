"""Templates over a run's context, evaluated in Jinja2's sandbox.

A run's context is ``{"input": {...}, "nodes": {key: {"output": {...}, "label": "..."}}}``.
Configs refer to it as ``{{ input.member_id }}`` or ``{{ nodes.search.output.patient_id }}``;
conditions are bare expressions (``nodes.elig.output.status == 'active'``). The sandbox refuses
attribute access to Python internals, and a template may not run for long or build huge
strings: it is operator input, executed on shared workers.

A value that is exactly one ``{{ ... }}`` keeps its type (a number stays a number); anything
else renders as text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, UndefinedError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

# Longest text a template may produce: configs feed portals and APIs, not documents.
MAX_RENDERED_CHARS = 100_000
# Largest integer power a template may compute (2 ** 4096 already has 1,234 digits).
MAX_POWER_BITS = 4096
TOO_LONG = "the result would be longer than {limit} characters"
REPETITION = "repeats a text or list {factor}: the result could be longer than {limit} characters"
HUGE_LITERAL = "a literal longer than {limit} characters"
HUGE_POWER = "a power whose result would have more than {limit} bits"


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, refusing an operation whose result would pass the length limit before it
    is computed: ``'a' * 400000000`` would otherwise allocate 400 MB on a worker shared by
    every organization before any check after rendering could run."""

    intercepted_binops = frozenset({"*", "+", "**", "%"})

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (Jinja's signature)
        # Text methods that pad or substitute: their size is known from their arguments.
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str) and _text_call_too_long(owner, __obj.__name__, args, kwargs):
            raise SecurityError(TOO_LONG.format(limit=MAX_RENDERED_CHARS))
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value):
        # str.format and format_map are wrapped when they are looked up, not in call().
        wrapped = super().wrap_str_format(value)
        if wrapped is not None and _format_too_wide(value.__self__):
            raise SecurityError(TOO_LONG.format(limit=MAX_RENDERED_CHARS))
        return wrapped

    def call_binop(self, context, operator, left, right):
        if operator == "%" and isinstance(left, str) and _format_too_wide(left):
            raise SecurityError(TOO_LONG.format(limit=MAX_RENDERED_CHARS))
        if operator == "*":
            for seq, factor in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(factor, int)
                if sized and len(seq) * factor > MAX_RENDERED_CHARS:
                    raise SecurityError(TOO_LONG.format(limit=MAX_RENDERED_CHARS))
        elif operator == "+" and _joined_too_long(left, right):
            raise SecurityError(TOO_LONG.format(limit=MAX_RENDERED_CHARS))
        elif operator == "**" and _power_too_large(left, right):
            raise SecurityError(HUGE_POWER.format(limit=MAX_POWER_BITS))
        return super().call_binop(context, operator, left, right)


_PADDING = {"center", "ljust", "rjust", "zfill", "expandtabs", "format"}
_NUMBER = re.compile(r"\d+")


def _format_too_wide(text: str) -> bool:
    """A format string (``%`` or ``str.format``) naming a width or precision past the limit."""
    return any(int(number) > MAX_RENDERED_CHARS for number in _NUMBER.findall(text))


def _replaced_too_long(text: str, old, new) -> bool:
    if not isinstance(old, str) or not isinstance(new, str):
        return False
    count = len(text) + 1 if old == "" else text.count(old)
    return len(text) + count * (len(new) - len(old)) > MAX_RENDERED_CHARS


def _text_call_too_long(text: str, method: str, args, kwargs) -> bool:
    values = [*args, *kwargs.values()]
    if method == "replace" and len(args) >= 2:
        return _replaced_too_long(text, args[0], args[1])
    if method == "format":
        return _format_too_wide(text)
    return method in _PADDING and any(
        isinstance(value, int) and value > MAX_RENDERED_CHARS for value in values
    )


def _bounded_filter(name: str, too_long):
    """A built-in filter refusing, before it runs, arguments that would pass the limit."""
    original = _ENV.filters[name]
    # A filter declared @pass_eval_context (replace) takes the context first: keep the mark
    # so that Jinja still passes it, and check the arguments after it.
    passes_context = hasattr(original, "jinja_pass_arg")

    def bounded(*args, **kwargs):
        checked = args[1:] if passes_context else args
        if too_long(*checked, **kwargs):
            raise SecurityError(TOO_LONG.format(limit=MAX_RENDERED_CHARS))
        return original(*args, **kwargs)

    if passes_context:
        bounded.jinja_pass_arg = original.jinja_pass_arg
    _ENV.filters[name] = bounded


def _width_past_limit(value, width=80, *args, **kwargs) -> bool:
    lines = str(value).count("\n") + 1
    return isinstance(width, int) and width * lines > MAX_RENDERED_CHARS


def _joined_too_long(left, right) -> bool:
    sequences = isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple)
    return sequences and len(left) + len(right) > MAX_RENDERED_CHARS


def _power_too_large(base, exponent) -> bool:
    integers = isinstance(base, int) and isinstance(exponent, int)
    return integers and abs(base) > 1 and exponent * abs(base).bit_length() > MAX_POWER_BITS


_ENV = _BoundedSandbox(undefined=StrictUndefined, autoescape=False)
_bounded_filter("center", _width_past_limit)
_bounded_filter("indent", _width_past_limit)
_bounded_filter("replace", lambda value, old, new, *rest: _replaced_too_long(str(value), old, new))
_bounded_filter("format", lambda value, *args, **kwargs: _format_too_wide(str(value)))
_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)
ROOTS = ("input", "nodes")


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
            result = _render_bounded(text, context)
    except TemplateError:
        raise
    except (UndefinedError, SecurityError, TemplateSyntaxError) as exc:
        raise TemplateError(f"{text!r}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - a template's own error (1/0, a bad call)
        raise TemplateError(f"{text!r}: {type(exc).__name__}: {exc}") from exc
    if isinstance(result, Undefined):
        # A bare expression returns StrictUndefined instead of raising: a missing value, or
        # an attribute the sandbox refused.
        raise TemplateError(f"{text!r}: {result._undefined_message}")
    if isinstance(result, str) and len(result) > MAX_RENDERED_CHARS:
        raise TemplateError(f"{text!r} rendered more than {MAX_RENDERED_CHARS} characters")
    return result


def _render_bounded(text: str, context: dict) -> str:
    """Rendered piece by piece, stopping as soon as the text passes the limit (a loop of
    short pieces never builds the whole)."""
    pieces, length = [], 0
    for piece in _ENV.from_string(text).generate(**context):
        length += len(piece)
        if length > MAX_RENDERED_CHARS:
            raise TemplateError(f"{text!r} rendered more than {MAX_RENDERED_CHARS} characters")
        pieces.append(piece)
    return "".join(pieces)


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


def check_syntax(value: Any) -> list[str]:
    """Problems with the templates inside ``value``, without rendering them."""
    problems = []
    for text in _strings(value):
        if "{{" in text or "{%" in text:
            try:
                tree = _ENV.parse(text)
            except TemplateSyntaxError as exc:
                problems.append(f"invalid template {text!r}: {exc.message}")
                continue
            problems += [f"template {_short(text)}: {problem}" for problem in _size_problems(tree)]
    return problems


def check_expression(expression: str) -> list[str]:
    try:
        tree = _ENV.parse("{{ " + expression + " }}")
    except TemplateSyntaxError as exc:
        return [f"invalid expression {expression!r}: {exc.message}"]
    return [f"expression {_short(expression)}: {problem}" for problem in _size_problems(tree)]


def _short(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _size_problems(tree) -> list[str]:
    """What in a template could make a result past the length limit, found at publish time
    (the sandbox refuses the same at run time; this says so before anything runs): a text or
    list repeated by anything but a small constant, a huge literal, a huge constant power."""
    problems = []
    for node in tree.find_all(nodes.Const):
        if isinstance(node.value, str) and len(node.value) > MAX_RENDERED_CHARS:
            problems.append(HUGE_LITERAL.format(limit=MAX_RENDERED_CHARS))
    for node in tree.find_all(nodes.Mul):
        for seq, factor in ((node.left, node.right), (node.right, node.left)):
            length = _literal_length(seq)
            if length is None:
                continue
            constant = isinstance(factor, nodes.Const) and isinstance(factor.value, int)
            if not constant:
                problems.append(
                    REPETITION.format(
                        factor="by a value known only at run time", limit=MAX_RENDERED_CHARS
                    )
                )
            elif length * factor.value > MAX_RENDERED_CHARS:
                problems.append(
                    REPETITION.format(factor=f"{factor.value} times", limit=MAX_RENDERED_CHARS)
                )
    for node in tree.find_all(nodes.Pow):
        constants = isinstance(node.left, nodes.Const) and isinstance(node.right, nodes.Const)
        if constants and _power_too_large(node.left.value, node.right.value):
            problems.append(HUGE_POWER.format(limit=MAX_POWER_BITS))
    return problems


def _literal_length(node) -> int | None:
    """The length of a text or list literal, else None."""
    if isinstance(node, nodes.Const) and isinstance(node.value, str):
        return len(node.value)
    if isinstance(node, nodes.List | nodes.Tuple):
        return len(node.items)
    return None


def references(value: Any, *, expression: bool = False) -> set[Reference]:
    """The context paths the templates (or, with ``expression``, the bare expressions) inside
    ``value`` read. Publishing checks them against required_data and upstream nodes."""
    found: set[Reference] = set()
    for text in _strings(value):
        source = "{{ " + text + " }}" if expression else text
        if not expression and "{{" not in text and "{%" not in text:
            continue
        try:
            tree = _ENV.parse(source)
        except TemplateSyntaxError:
            continue  # reported by check_syntax
        for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
            path = _path_of(node)
            if path and path[0] in ROOTS:
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
