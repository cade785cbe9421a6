"""How large a template's values may grow, enforced twice: when a workflow is published, on the
template's syntax tree, and while it renders, before each step that could allocate more.

A template is operator input run on shared workers, and Jinja's sandbox guards attributes, not
sizes: ``{{ 'a' * 400000000 }}`` once published and took a worker to 1.6 GB before the length
of its result was checked. Every value a template makes is now held to ``MAX_RENDERED_CHARS``
characters of the text it would print (``measure``: a list counts its items' text), and an
integer to ``MAX_INT_BITS``. A value the run's context brings as it is (a node's output read
whole) is not made by the template: it is held only where it is printed.

* **At publish** (``size_problems``) a template is refused when its text alone says it can
  pass the limit: a literal longer than it, a text or list repeated by a factor known only at
  run time or by a constant that makes it too long, a power with an exponent known only at run
  time, ``range()``, a padding width or a format width past the limit, constants joined past
  it, and the constructs that build text out of sight of the streamed output (macros, call
  and filter blocks, block assignments, recursive loops).
* **While rendering** (``BoundedEnvironment``) the operators that grow values (``*``, ``**``,
  ``%``, ``+``, and ``~`` through the code generator), every filter, and the calls of the
  ``str`` methods that pad, repeat or join are checked from their operands' sizes before they
  run, and what they made after; the output is streamed and stops at the limit
  (``templates._render_string``). Values come from the run's context, so a template that
  passed the publish check (``input.word * input.times``) is still bounded here.
"""

from __future__ import annotations

import functools
import itertools
import re
import string
from collections.abc import Callable, Iterable
from typing import Any

from jinja2 import nodes, pass_environment
from jinja2.compiler import CodeGenerator
from jinja2.filters import make_attrgetter
from jinja2.sandbox import MAX_RANGE, ImmutableSandboxedEnvironment, SecurityError

# Longest text (or list) a template may produce: configs feed portals and APIs, not documents.
MAX_RENDERED_CHARS = 100_000
# Largest integer a template may compute: Python will not even print one of more than 4,300
# digits (about 14,300 bits), so nothing larger can reach a config.
MAX_INT_BITS = 16_384
SEQUENCES = (str, bytes, list, tuple)

TOO_LONG = "{what} would make {size:,} characters or items; a template may make {limit:,}"
TOO_MANY_BITS = "{what} would make a number of some {bits:,} bits; a template may make {limit:,}"
WIDTH_FROM_VALUE = "{what} takes a width from a value, which can be of any size"
# At publish: what makes a template refused, quoted after the template.
LITERAL_TOO_LONG = "a literal of {size:,} characters; a template may make {limit:,}"
REPEAT_BY_VALUE = (
    "repeats a text or list by a factor known only at run time, which can make it longer than "
    "a template may make ({limit:,}); repeat by a constant"
)
POWER_BY_VALUE = (
    "raises to a power known only at run time, which can make a number of any size; use a "
    "constant exponent"
)
NOT_STREAMED = (
    "uses {construct}, which builds text out of sight of the output's limit; configs use "
    "expressions, filters, if and for"
)
CONSTRUCTS = {
    nodes.Macro: "a macro",
    nodes.CallBlock: "a call block",
    nodes.FilterBlock: "a filter block",
    nodes.AssignBlock: "a block assignment ({% set x %}...{% endset %})",
}

# Filters that make a new text or list of their whole value (turning it into text first, for
# most). Their value is measured before they run and what they made after; the other filters
# pick from their value (first, default, attr, length, ...) and make nothing large.
# fmt: off
TEXT_FILTERS = frozenset({
    "batch", "capitalize", "center", "dictsort", "escape", "e", "forceescape", "format",
    "indent", "join", "list", "lower", "pprint", "replace", "reverse", "slice", "sort",
    "string", "striptags", "title", "tojson", "trim", "truncate", "unique", "upper",
    "urlencode", "urlize", "wordwrap", "xmlattr",
})
# fmt: on


class ValueTooLarge(SecurityError):
    """A step of a template would make a value larger than a template may make."""


def _refuse_size(what: str, size: int) -> None:
    if size > MAX_RENDERED_CHARS:
        raise ValueTooLarge(TOO_LONG.format(what=what, size=size, limit=MAX_RENDERED_CHARS))


def _refuse_bits(what: str, bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise ValueTooLarge(TOO_MANY_BITS.format(what=what, bits=bits, limit=MAX_INT_BITS))


def measure(value: Any, seen: dict | None = None) -> int:
    """How many characters ``value`` would render to, without rendering it: a list of 1,000
    references to one 90,000-character text is 8 KB in memory and 90 MB as text, and Jinja
    turns a value into text before anything could look at the text. A list or mapping met
    again (``[[text] * 1000] * 1000``) is measured once."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int):
        return value.bit_length() * 30103 // 100000 + 2  # log10(2): digits, and a sign
    if isinstance(value, float):
        return 24
    if not isinstance(value, list | tuple | set | frozenset | dict):
        return 32  # an object the sandbox lets through (a cycler, a namespace): its name
    seen = {} if seen is None else seen
    if id(value) not in seen:
        seen[id(value)] = 0  # a value met inside itself adds nothing more
        items = value.items() if isinstance(value, dict) else ((item, None) for item in value)
        seen[id(value)] = 2 + sum(
            measure(key, seen) + (measure(item, seen) + 2 if isinstance(value, dict) else 0) + 2
            for key, item in items
        )
    return seen[id(value)]


def _checked_result(value: Any, what: str) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        _refuse_bits(what, value.bit_length())
    else:
        _refuse_size(what, measure(value))
    return value


# -- while rendering ------------------------------------------------------------------------


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _product_check(left: Any, right: Any) -> None:
    if isinstance(left, SEQUENCES) and _is_count(right):
        _refuse_size("repeating", measure(left) * max(right, 0))
    elif isinstance(right, SEQUENCES) and _is_count(left):
        _refuse_size("repeating", measure(right) * max(left, 0))
    elif _is_count(left) and _is_count(right):
        _refuse_bits("multiplying", left.bit_length() + right.bit_length())


def _power_check(base: Any, exponent: Any) -> None:
    # Floats overflow at once by themselves; only integers grow without end.
    if _is_count(base) and _is_count(exponent) and exponent > 0 and abs(base) > 1:
        _refuse_bits("raising to a power", base.bit_length() * exponent)


def _sum_check(left: Any, right: Any) -> None:
    if isinstance(left, SEQUENCES) and isinstance(right, SEQUENCES):
        _refuse_size("adding", measure(left) + measure(right))


# A printf conversion: its mapping key, width and precision ("%(name)-12.3s", "%*d", "%%").
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([a-zA-Z%])")


def _printf_check(template: Any, arguments: Any) -> None:
    """``template % arguments`` (the % operator and the ``format`` filter), from the template's
    widths and the arguments' sizes, each conversion taken to print the largest argument."""
    if not isinstance(template, str | bytes):
        return
    if isinstance(template, bytes):
        template = template.decode("latin-1")
    conversions = [match for match in _PRINTF.finditer(template) if match.group(3) != "%"]
    if any("*" in (match.group(1), match.group(2)) for match in conversions):
        raise ValueTooLarge(WIDTH_FROM_VALUE.format(what="formatting with %*"))
    widths = [int(match.group(1) or 0) + int(match.group(2) or 0) for match in conversions]
    # As % reads its right side: a tuple is the values, a mapping holds them, else one value.
    if isinstance(arguments, dict):
        values = list(arguments.values())
    elif isinstance(arguments, tuple):
        values = list(arguments)
    else:
        values = [arguments]
    largest = max((measure(value) for value in values), default=0)
    _refuse_size("formatting", len(template) + sum(widths) + len(conversions) * largest)


def _format_check(template: str, args: tuple, kwargs: dict) -> None:
    """``str.format``: from the fields' widths and the arguments' sizes."""
    specs = [
        spec or "" for _text, name, spec, _conversion in string.Formatter().parse(template)
        if name is not None  # an automatic field ("{}") is named ""
    ]  # fmt: skip
    if any("{" in spec for spec in specs):
        raise ValueTooLarge(WIDTH_FROM_VALUE.format(what="a format field"))
    widths = [max(map(int, re.findall(r"\d+", spec)), default=0) for spec in specs]
    largest = max((measure(value) for value in [*args, *kwargs.values()]), default=0)
    _refuse_size("formatting", len(template) + sum(widths) + len(specs) * largest)


def _width_check(what: str, width: Any) -> None:
    if _is_count(width):
        _refuse_size(what, width)


# These turn their value into text to count in it: a text filter's value has been measured
# first (``_filter_bounded``), and a str method's is a text already.


def _replace_check(text: Any, old: Any, new: Any, count: Any = None) -> None:
    text, old, new = str(text), str(old), str(new)
    found = text.count(old) if old else len(text) + 1
    if _is_count(count) and count >= 0:
        found = min(found, count)
    _refuse_size("replacing", len(text) + found * max(len(new) - len(old), 0))


def _indent_check(text: Any, width: Any = 4, first: bool = False, blank: bool = False) -> None:
    _width_check("indenting", width)
    pad = len(width) if isinstance(width, str) else max(width, 0) if _is_count(width) else 0
    text = str(text)
    _refuse_size("indenting", len(text) + (text.count("\n") + 1) * pad)


def _wrap_check(
    text: Any, width: Any = 79, break_long_words=True, wrapstring=None, break_on_hyphens=True
) -> None:
    text = str(text)
    lines = len(text) // max(width, 1) if _is_count(width) else len(text)
    lines += text.count("\n") + 1
    _refuse_size("wrapping", len(text) + lines * len(wrapstring or "\n"))


def _joined(separator: Any, items: Iterable, *, convert: Callable | None = str) -> str | bytes:
    """``separator.join(items)``, the items counted and measured as they come: a generator is
    never drawn past the limit, and no item is turned into text past it. ``convert`` makes
    each item a text, as the ``join`` filter does; str.join itself takes only texts (None)."""
    parts: list[Any] = []
    size = 0
    for item in itertools.islice(items, MAX_RENDERED_CHARS + 1):
        size += measure(item) + (len(separator) if parts else 0)
        _refuse_size("joining", size)
        parts.append(convert(item) if convert else item)
    _refuse_size("joining", len(parts))
    return separator.join(parts)


@pass_environment
def _join_filter(environment, value: Iterable, d: Any = "", attribute: Any = None) -> str | bytes:
    """Jinja's ``join`` as it is without autoescaping, bounded (``_joined``)."""
    if attribute is not None:
        value = map(make_attrgetter(environment, attribute), value)
    return _joined(str(d), value)


# Filters whose arguments can multiply their input: checked before they run, from their
# arguments as the filter receives them (after what Jinja passes first, if anything).
_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": lambda value, width=80: _width_check("centering", width),
    "indent": _indent_check,
    "batch": lambda value, linecount, fill_with=None: _width_check("batching", linecount),
    "slice": lambda value, slices, fill_with=None: _width_check("slicing", slices),
    "replace": _replace_check,
    "wordwrap": _wrap_check,
    "format": lambda value, *args, **kwargs: _printf_check(value, kwargs or args),
}
# str methods the sandbox lets a template call that can multiply their string.
_METHOD_CHECKS: dict[str, Callable[..., None]] = {
    "center": lambda text, width, fillchar=" ": _width_check("centering", width),
    "ljust": lambda text, width, fillchar=" ": _width_check("padding", width),
    "rjust": lambda text, width, fillchar=" ": _width_check("padding", width),
    "zfill": lambda text, width: _width_check("padding", width),
    "expandtabs": lambda text, tabsize=8: _refuse_size(
        "expanding tabs", len(text) + text.count("\t") * max(tabsize, 0)
    ),
    "replace": _replace_check,
    "format": lambda text, *args, **kwargs: _format_check(text, args, kwargs),
    "format_map": lambda text, mapping: _format_check(text, (), dict(mapping)),
}


def _filter_bounded(name: str, original: Callable) -> Callable:
    """A filter that makes a text or list (``TEXT_FILTERS``) with its value measured and its
    arguments checked before it runs, and what it made measured after; others as they are."""
    if name not in TEXT_FILTERS:
        return original
    check = _FILTER_CHECKS.get(name)
    # Context, eval context or environment filters get it first (Jinja's pass_* marker).
    skip = 1 if hasattr(original, "jinja_pass_arg") else 0

    @functools.wraps(original)
    def bounded(*args, **kwargs):
        if len(args) > skip:
            _refuse_size(f"the filter {name}", measure(args[skip]))
        if check is not None:
            check(*args[skip:], **kwargs)
        return _checked_result(original(*args, **kwargs), f"the filter {name}")

    return bounded


class _BoundedCodeGenerator(CodeGenerator):
    """Jinja compiles ``a ~ b`` to a join of its operands that no sandbox hook sees; this
    routes it through ``BoundedEnvironment.concat`` instead."""

    def visit_Concat(self, node: nodes.Concat, frame) -> None:
        self.write("environment.concat((")
        for operand in node.nodes:
            self.visit(operand, frame)
            self.write(", ")
        self.write("))")


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with every step that can grow a value checked before it runs."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "%", "+"})
    _BINOP_CHECKS = {"*": _product_check, "**": _power_check, "%": _printf_check, "+": _sum_check}

    def __init__(self, **options):
        super().__init__(finalize=self.finalize_output, **options)
        # lorem ipsum of any length; nothing a config needs.
        del self.globals["lipsum"]
        self.filters = {name: _filter_bounded(name, f) for name, f in self.filters.items()}
        self.filters["join"] = _filter_bounded("join", _join_filter)

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        self._BINOP_CHECKS[operator](left, right)
        result = super().call_binop(context, operator, left, right)
        return _checked_result(result, f"the operator {operator}")

    def call(__self, __context, __obj, *args, **kwargs):  # the sandbox's own signature
        """A call. A text's methods are checked before they run and what they made after;
        other calls give back what they were given, or values of a bounded size."""
        # str.format arrives wrapped by the sandbox (wrap_str_format); the method is inside.
        method = getattr(__obj, "__wrapped__", __obj)
        text = getattr(method, "__self__", None)
        if not isinstance(text, str | bytes):
            return super().call(__context, __obj, *args, **kwargs)
        name = method.__name__
        if name == "join" and len(args) == 1:
            return _joined(text, args[0], convert=None)
        if name in _METHOD_CHECKS:
            # Bytes (from encode) are measured as the text of the same length.
            sample = text if isinstance(text, str) else text.decode("latin-1")
            _METHOD_CHECKS[name](sample, *args, **kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        return _checked_result(result, f"calling {name}")

    def concat(self, operands: Iterable[Any]) -> str:
        # A tuple from the compiled ``a ~ b`` (_BoundedCodeGenerator); any other iterable (the
        # whole output, from Template.render) is made one, as it is read twice.
        operands = tuple(operands)
        _refuse_size("joining with ~", sum(measure(operand) for operand in operands))
        return "".join(map(str, operands))

    def finalize_output(self, value: Any) -> Any:
        """Every value printed: measured before Jinja turns it into text."""
        _refuse_size("printing", measure(value))
        return value


# -- at publish -----------------------------------------------------------------------------


def size_problems(tree: nodes.Template) -> list[str]:
    """What in a parsed template can make a value past the limits, worded to follow the
    template's text; empty when its sizes are bounded (data may still grow them at run time,
    where the environment refuses)."""
    found = unstreamed_problems(tree)
    literal = sum(len(node.data) for node in tree.find_all(nodes.TemplateData))
    if literal > MAX_RENDERED_CHARS:
        found.append(LITERAL_TOO_LONG.format(size=literal, limit=MAX_RENDERED_CHARS))
    checks: dict[type[nodes.Node], Callable[[Any], list[str]]] = {
        nodes.Const: _const_problems,
        nodes.Mul: _mul_problems,
        nodes.Pow: _pow_problems,
        nodes.Mod: _mod_problems,
        nodes.Concat: _concat_problems,
        nodes.Add: _add_problems,
        nodes.Call: _call_problems,
        nodes.Filter: _filter_problems,
    }
    for node in tree.find_all(tuple(checks)):
        found += checks[type(node)](node)
    return list(dict.fromkeys(found))


def unstreamed_problems(tree: nodes.Template) -> list[str]:
    """The constructs that build text in a buffer of their own, which the streamed output's
    limit never sees. Refused at publish, and at run time for revisions published before."""
    found = [
        NOT_STREAMED.format(construct=construct)
        for kind, construct in CONSTRUCTS.items()
        if any(True for _ in tree.find_all(kind))
    ]
    if any(loop.recursive for loop in tree.find_all(nodes.For)):
        found.append(NOT_STREAMED.format(construct="a recursive loop"))
    return found


def _const_problems(node: nodes.Const) -> list[str]:
    if isinstance(node.value, str | bytes) and len(node.value) > MAX_RENDERED_CHARS:
        return [LITERAL_TOO_LONG.format(size=len(node.value), limit=MAX_RENDERED_CHARS)]
    return []


def _constant(node: nodes.Expr) -> Any:
    """The value of a constant operand (a literal, or a list or tuple of literals), or None."""
    try:
        return node.as_const()
    except nodes.Impossible:
        return None


def _sequence_length(node: nodes.Expr) -> int | None:
    """How long an operand is if it is a text or a list: its length if known, -1 if known only
    at run time; None if it need not be a text or a list (``input.count``: a number, as a
    rule)."""
    value = _constant(node)
    if isinstance(value, SEQUENCES):
        return len(value)
    if isinstance(node, nodes.List | nodes.Tuple):
        return len(node.items)
    if isinstance(node, nodes.Concat) or (
        isinstance(node, nodes.Filter) and node.name in TEXT_FILTERS
    ):
        return -1
    if isinstance(node, nodes.Mul) and _repeated(node) is not None:
        return -1
    return None


def _repeated(node: nodes.Mul) -> tuple[int, nodes.Expr] | None:
    """(the length of the repeated text or list, the factor's node), if either operand is
    one."""
    for sequence, factor in ((node.left, node.right), (node.right, node.left)):
        length = _sequence_length(sequence)
        if length is not None:
            return length, factor
    return None


def _mul_problems(node: nodes.Mul) -> list[str]:
    repeated = _repeated(node)
    if repeated is None:
        # Two values of unknown type (input.price * input.quantity) are numbers as a rule; a
        # text among them meets the run-time check. A constant factor past the limit repeats
        # any text past it.
        counts = [_constant(node.left), _constant(node.right)]
        counts = [value for value in counts if _is_count(value)]
        if len(counts) == 1 and counts[0] > MAX_RENDERED_CHARS:
            return [TOO_LONG.format(what="repeating", size=counts[0], limit=MAX_RENDERED_CHARS)]
        return []
    length, factor_node = repeated
    factor = _constant(factor_node)
    if not _is_count(factor):
        return [REPEAT_BY_VALUE.format(limit=MAX_RENDERED_CHARS)]
    # A length known only at run time is taken as 1: the run-time check does the rest.
    size = max(length, 1) * factor
    if size > MAX_RENDERED_CHARS:
        return [TOO_LONG.format(what="repeating", size=size, limit=MAX_RENDERED_CHARS)]
    return []


def _pow_problems(node: nodes.Pow) -> list[str]:
    exponent = _constant(node.right)
    if not isinstance(exponent, int | float):
        return [POWER_BY_VALUE]
    base = _constant(node.left)
    bits = max(base.bit_length(), 2) if _is_count(base) else 2
    if _is_count(exponent) and exponent > 0 and bits * exponent > MAX_INT_BITS:
        return [TOO_MANY_BITS.format(what="the power", bits=bits * exponent, limit=MAX_INT_BITS)]
    return []


def _run_time_problem(check: Callable, *args) -> list[str]:
    """The run-time check's refusal, for operands that are all constants."""
    try:
        check(*args)
    except ValueTooLarge as exc:
        return [str(exc)]
    return []


def _mod_problems(node: nodes.Mod) -> list[str]:
    template = _constant(node.left)
    if not isinstance(template, str):
        return []
    arguments = _constant(node.right)
    return _run_time_problem(_printf_check, template, arguments if arguments is not None else ())


def _concat_problems(node: nodes.Concat) -> list[str]:
    constants = [_constant(operand) for operand in node.nodes]
    size = sum(len(str(value)) for value in constants if value is not None)
    return _run_time_problem(_refuse_size, "joining with ~", size)


def _add_problems(node: nodes.Add) -> list[str]:
    left, right = _constant(node.left), _constant(node.right)
    if isinstance(left, SEQUENCES) and isinstance(right, SEQUENCES):
        return _run_time_problem(_sum_check, left, right)
    return []


def _call_problems(node: nodes.Call) -> list[str]:
    arguments = [_constant(argument) for argument in node.args]
    if isinstance(node.node, nodes.Name) and node.node.name == "range":
        counts = [abs(value) for value in arguments if _is_count(value)]
        if counts and max(counts) > MAX_RANGE:
            return [TOO_LONG.format(what="range()", size=max(counts), limit=MAX_RANGE)]
    padding = ("center", "ljust", "rjust", "zfill")
    if isinstance(node.node, nodes.Getattr) and node.node.attr in padding and arguments:
        return _run_time_problem(_width_check, f"{node.node.attr}()", arguments[0])
    return []


def _filter_problems(node: nodes.Filter) -> list[str]:
    arguments = [_constant(argument) for argument in node.args]
    if node.name in ("center", "indent", "batch", "slice") and arguments:
        return _run_time_problem(_width_check, f"the filter {node.name}", arguments[0])
    template = _constant(node.node) if node.node is not None else None
    if node.name == "format" and isinstance(template, str) and None not in arguments:
        return _run_time_problem(_printf_check, template, tuple(arguments))
    return []
