"""Templates cannot build huge results: refused at publish where the template says so, and
refused by the sandbox at run time before the result is allocated."""

import tracemalloc

import pytest

from workflows.engine import templates
from workflows.engine.templates import MAX_RENDERED_CHARS, TemplateError
from workflows.services.graph_validation import graph_problems

from .factories import decision, entry, general, outcome
from .test_graph_validation import build


def _publish_problems(outputs: dict) -> list[str]:
    graph = build(
        [entry(), general("shape", "transform", {"outputs": outputs}), outcome("done")],
        ["start -> shape -> done"],
        required_data=("member_id", "width"),
    )
    return [(problem.node, problem.message) for problem in graph_problems(graph)]


@pytest.mark.parametrize(
    "template",
    [
        "{{ 'a' * 400000000 }}",
        "{{ 400000000 * 'a' }}",
        "{{ [1, 2] * 100000 }}",
        "{{ '-' * input.width }}",
        "{{ 2 ** 100000 }}",
        "{{ '" + "z" * (MAX_RENDERED_CHARS + 1) + "' }}",
    ],
)
def test_a_template_that_could_pass_the_limit_is_refused_at_publish_naming_its_node(template):
    problems = _publish_problems({"out": template})
    assert problems and all(node == "shape" for node, _ in problems), problems


def test_a_decision_condition_is_checked_the_same_way():
    graph = build(
        [entry(), decision("route", [("'a' * 10 ** 9 == ''", "yes")], "no"), outcome("done")],
        ["start -> route -[yes]-> done", "route -[no]-> done"],
    )
    assert any(problem.node == "route" for problem in graph_problems(graph))


@pytest.mark.parametrize(
    "template", ["{{ input.member_id }}", "{{ input.width * 2 }}", "{{ '-' * 40 }}"]
)
def test_ordinary_templates_publish(template):
    assert _publish_problems({"out": template}) == []


@pytest.mark.parametrize(
    ("template", "context"),
    [
        ("{{ input.text * input.times }}", {"input": {"text": "a", "times": 400_000_000}}),
        ("{{ input.times * input.list }}", {"input": {"list": [1], "times": 400_000_000}}),
        ("x{{ input.text + input.text }}", {"input": {"text": "a" * 60_000}}),
        ("{{ input.base ** input.power }}", {"input": {"base": 10, "power": 10_000_000}}),
        ("{% for i in range(99999) %}{{ input.text }}{% endfor %}", {"input": {"text": "abc"}}),
        ("{{ input.text|center(400000000) }}", {"input": {"text": "a"}}),
        ("{{ input.text|indent(400000000) }}", {"input": {"text": "a\nb"}}),
        ("{{ input.text.ljust(400000000) }}", {"input": {"text": "a"}}),
        (
            "{{ input.big|replace('a', input.text) }}",
            {"input": {"big": "a" * 30_000, "text": "bbbb"}},
        ),
        (
            "{{ input.big.replace('', input.text) }}",
            {"input": {"big": "a" * 30_000, "text": "bbbb"}},
        ),
        ("{{ '%400000000s' % input.text }}", {"input": {"text": "a"}}),
        ("{{ '{:>400000000}'.format(input.text) }}", {"input": {"text": "a"}}),
        ("{{ '%400000000s'|format(input.text) }}", {"input": {"text": "a"}}),
    ],
)
def test_at_run_time_the_sandbox_refuses_before_allocating(template, context):
    # Each of these would allocate hundreds of megabytes on a worker shared by everyone.
    tracemalloc.start()
    try:
        with pytest.raises(TemplateError):
            templates.render_value(template, {"nodes": {}, **context})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 1024 * 1024  # the result was never built


def test_the_bounded_filters_and_methods_still_work_within_the_limit():
    context = {"nodes": {}, "input": {"text": "ab", "n": 3}}
    rendered = templates.render_value(
        "{{ input.text|center(6) }}|{{ input.text.ljust(4) }}|{{ input.text|replace('a', 'x') }}"
        "|{{ '%03d' % input.n }}|{{ '{:>3}'.format(input.n) }}|{{ input.text * 2 }}",
        context,
    )
    assert rendered == "  ab  |ab  |xb|003|  3|abab"
