"""Templates at run time: every step that could grow a value past the limit is refused before
it allocates, whatever the values the run's context brings. Pure functions: no database."""

from __future__ import annotations

import tracemalloc

import pytest

from workflows.engine import template_bounds as bounds
from workflows.engine.templates import RENDERED_TOO_LONG, TemplateError, render_value

# A row of the issue: a factor taken from the input, and a text near the limit.
CONTEXT = {
    "input": {"word": "ab", "times": 300_000_000, "n": 21, "text": "x" * 90_000},
    "nodes": {},
}
# What a refused render may allocate: the run's context is already in memory.
MEMORY_CEILING = 2 * 1024 * 1024


def _refused(template: str) -> tuple[str, int]:
    """The error and the peak traced memory of rendering ``template`` against CONTEXT."""
    tracemalloc.start()
    try:
        with pytest.raises(TemplateError) as refused:
            render_value(template, CONTEXT)
        return str(refused.value), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_repetition_by_a_factor_from_the_input_fails_before_allocating():
    template = "{{ input.word * input.times }}"
    error, peak = _refused(template)
    expected = bounds.TOO_LONG.format(what="repeating", size=600_000_000, limit=100_000)
    assert error == f"{template!r}: {expected}"
    assert peak < MEMORY_CEILING, peak


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Dear {{ input.word * input.times }}", "repeating would make 600,000,000"),
        ("{{ [input.text] * 1000 }}", "repeating would make 90,004,000"),
        ("{{ ([input.text] * 1000)|join }}", "repeating would make 90,004,000"),
        ("{{ [input.text, input.text]|join }}", "the filter join would make 180,006"),
        ("{{ range(3)|join(input.text) }}", "joining would make 180,00"),
        ("{{ input.text ~ input.text }}", "joining with ~ would make 180,000"),
        ("{{ input.text + input.text }}", "adding would make 180,000"),
        ("{{ input.n ** input.times }}", "raising to a power would make a number of some"),
        ("{{ input.text|center(input.times) }}", "centering would make 300,000,000"),
        ("{{ input.word.rjust(input.times) }}", "padding would make 300,000,000"),
        ("{{ input.text|replace('x', input.text) }}", "replacing would make 8,100,000,000"),
        ("{{ input.text|indent(input.times) }}", "indenting would make 300,000,000"),
        ("{{ ('{:>' ~ input.times ~ '}').format(1) }}", "formatting would make 300,000,0"),
        ("{{ ('%' ~ input.times ~ 'd') % 1 }}", "formatting would make 300,000,0"),
        ("{{ [1]|batch(input.times)|list }}", "batching would make 300,000,000"),
        (
            "{% set ns = namespace(v='x') %}{% for i in range(40) %}"
            "{% set ns.v = ns.v ~ ns.v %}{% endfor %}{{ ns.v|length }}",
            "joining with ~ would make 131,072",
        ),
        # Published before macros were refused: refused when it runs all the same.
        (
            "{% macro twice(s) %}{{ s }}{{ s }}{% endmacro %}{{ twice(input.text) }}",
            bounds.NOT_STREAMED.format(construct="a macro"),
        ),
        ("{{ lipsum(input.times) }}", "'lipsum' is undefined"),
    ],
)
def test_a_step_that_would_pass_the_limit_is_refused_before_it_runs(template, expected):
    error, peak = _refused(template)
    assert expected in error, error
    assert error.startswith(repr(template)), error
    assert peak < MEMORY_CEILING, peak


def test_output_is_streamed_and_stops_at_the_limit():
    template = "{% for i in range(100000) %}{{ input.text }}{% endfor %}"
    error, peak = _refused(template)
    assert error == RENDERED_TOO_LONG.format(text=repr(template), limit=100_000)
    assert peak < MEMORY_CEILING, peak


@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        ("{{ input.n * 2 }}", 42),
        ("{{ input.word * 3 }}", "ababab"),
        ("Hello {{ input.word|upper }} {{ input.n }}", "Hello AB 21"),
        (
            "{{ ['a', 'b']|join('-') }} {{ '%03d' % input.n }} {{ '{:>4}'.format(input.word) }}",
            "a-b 021   ab",
        ),
        ("{{ input.text|length }}", 90_000),
        ("{{ (input.text ~ 'y')[-2:] }}", "xy"),
    ],
)
def test_ordinary_templates_render_as_before(template, rendered):
    assert render_value(template, CONTEXT) == rendered


def test_a_value_of_the_context_passes_through_whole_however_large():
    """Read as it is (a node's output handed on), a value is not one the template made."""
    rows = ["x" * 1_000] * 200  # 200,000 characters as text
    context = {"input": {"rows": rows}, "nodes": {}}
    assert render_value("{{ input.rows|default([]) }}", context) is rows
    assert render_value("{{ input.rows|first|length }}", context) == 1_000
