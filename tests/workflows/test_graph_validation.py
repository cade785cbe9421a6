"""The publish rules of a workflow graph, one test each, and the structural checks that refuse a
draft. Pure functions over an engine Graph: no database."""

from __future__ import annotations

import pytest

from workflows.engine import template_bounds as bounds
from workflows.engine.graph import MAX_NODE_TIMEOUT_S, Edge, Graph, Node
from workflows.validation.graph import (
    Code,
    graph_problems,
    structure_problems,
)

from .factories import decision, entry, general, outcome, transitions

HTTP = {"url": "https://portal.test/members/{{ input.member_id }}"}


def build(nodes: list[dict], edges: list, required_data=("member_id",)) -> Graph:
    return Graph(
        nodes={item["key"]: _node(item) for item in nodes},
        edges=_edges(edges),
        required_data=list(required_data),
    )


def _node(item: dict) -> Node:
    return Node(**{name: value for name, value in item.items() if name != "position"})


def _edges(edges: list) -> list[Edge]:
    return [Edge(item["from"], item["to"], item["label"]) for item in transitions(edges)]


def codes(problems, code: str) -> list[str | None]:
    """The nodes named by the problems with ``code``."""
    return [problem.node for problem in problems if problem.code == code]


def test_a_complete_graph_has_no_problems():
    graph = build(
        [
            entry(),
            general("search", "http", {**HTTP, "status_labels": {"404": "not_found"}}),
            general("elig", "transform", {"outputs": {"pid": "{{ nodes.search.output.body }}"}}),
            general("benefits", "noop", retry_policy={"maximum_attempts": 5}, timeout_s=60),
            decision("route", [("nodes.elig.output.pid != ''", "found")], "odd"),
            general("join", "noop", trigger_rule="all_done"),
            outcome("done"),
            outcome("missing", result="failure"),
        ],
        [
            "start -> search -> elig -> route -[found]-> join -> done",
            "search -> benefits -> join",
            "search -[not_found]-> missing",
            "search -[error]-> missing",
            "route -[odd]-> missing",
        ],
    )
    assert graph_problems(graph) == []


# -- one entry, reachability, outcomes, cycles ---------------------------------------------


def test_a_graph_without_an_entry_is_refused():
    problems = graph_problems(build([general("a"), outcome()], ["a -> done"]))
    assert codes(problems, Code.NO_ENTRY) == [None]


def test_two_entries_are_refused_naming_both():
    graph = build([entry("start"), entry("other"), outcome()], ["start -> done", "other -> done"])
    problems = graph_problems(graph)
    assert codes(problems, Code.MULTIPLE_ENTRIES) == ["start", "other"]
    assert "start, other" in problems[0].message


def test_a_node_the_entry_cannot_reach_is_named():
    graph = build([entry(), general("island"), outcome()], ["start -> done", "island -> done"])
    assert codes(graph_problems(graph), Code.UNREACHABLE) == ["island"]


def test_a_node_that_cannot_reach_an_outcome_is_named():
    # start's success fires both branches; "stuck" goes nowhere.
    graph = build(
        [entry(), general("a"), general("stuck"), outcome()],
        ["start -> a -> done", "start -> stuck"],
    )
    problems = graph_problems(graph)
    assert codes(problems, Code.NO_PATH_TO_OUTCOME) == ["stuck"]
    assert codes(problems, Code.UNCOVERED_LABEL) == ["stuck"]


def test_a_graph_without_an_outcome_is_refused():
    problems = graph_problems(build([entry(), general("a")], ["start -> a"]))
    assert codes(problems, Code.NO_OUTCOME) == [None]


def test_a_cycle_names_its_nodes_and_points_to_retry_policies():
    graph = build(
        [entry(), general("login"), general("search", "http", HTTP), outcome()],
        ["start -> login -> search -> done", "search -[error]-> login"],
    )
    problems = graph_problems(graph)
    assert codes(problems, Code.CYCLE) == ["login"]
    message = problems[[p.code for p in problems].index(Code.CYCLE)].message
    assert "login -> search -> login" in message
    assert "retry_policy" in message


def test_every_cycle_is_reported_and_nodes_looping_together_are_all_named():
    graph = build(
        [entry(), general("a"), general("b"), general("c"), general("x"), general("y"), outcome()],
        [
            "start -> a -> b -> done",
            "b -[error]-> a",
            "a -[error]-> c -> b",
            "start -> x -> y -> x",
        ],
    )
    problems = [p for p in graph_problems(graph) if p.code == Code.CYCLE]
    assert [p.node for p in problems] == ["a", "x"]
    assert "c loop" in problems[0].message  # a -> b -> a is the cycle shown; c is on it too


def test_a_long_chain_is_checked_without_recursion():
    keys = [f"n{number}" for number in range(3000)]
    graph = build(
        [entry(), *(general(key) for key in keys), outcome()],
        [" -> ".join(["start", *keys, "done"])],
    )
    assert graph_problems(graph) == []


# -- labels --------------------------------------------------------------------------------


def test_every_label_a_node_can_emit_must_lead_somewhere():
    graph = build(
        [entry(), general("search", "http", {**HTTP, "status_labels": {"404": "not_found"}})]
        + [outcome()],
        ["start -> search -> done"],
    )
    problems = graph_problems(graph)
    assert codes(problems, Code.UNCOVERED_LABEL) == ["search"]
    assert "'not_found'" in problems[0].message


def test_a_transition_on_a_label_the_node_never_emits_is_refused():
    graph = build([entry(), general("a"), outcome()], ["start -> a -> done", "a -[maybe]-> done"])
    problems = graph_problems(graph)
    assert codes(problems, Code.UNKNOWN_LABEL) == ["a"]
    assert "'maybe'" in problems[0].message


def test_an_error_transition_is_allowed_on_general_nodes_only():
    graph = build(
        [entry(), general("a"), decision("route", [("input.member_id", "yes")], "no"), outcome()],
        ["start -> a -> route -[yes]-> done", "a -[error]-> done"]
        + ["route -[no]-> done", "route -[error]-> done"],
    )
    assert codes(graph_problems(graph), Code.UNKNOWN_LABEL) == ["route"]


def test_a_decision_must_cover_each_condition_and_its_default():
    graph = build(
        [entry(), decision("route", [("input.member_id", "yes"), ("1", "maybe")], "no")]
        + [outcome()],
        ["start -> route -[yes]-> done"],
    )
    problems = [p for p in graph_problems(graph) if p.code == Code.UNCOVERED_LABEL]
    assert len(problems) == 2
    assert {"'maybe'" in p.message or "'no'" in p.message for p in problems} == {True}


def test_an_outcome_has_no_transitions():
    graph = build([entry(), outcome("done"), outcome("other")], ["start -> done -> other"])
    assert codes(graph_problems(graph), Code.OUTCOME_HAS_TRANSITIONS) == ["done"]


# -- configs, kinds, retry policies --------------------------------------------------------


def test_each_config_must_be_valid_for_its_kind():
    graph = build(
        [entry(), general("search", "http", {"method": "FETCH"}), outcome()],
        ["start -> search -> done"],
    )
    problems = [p for p in graph_problems(graph) if p.code == Code.INVALID_CONFIG]
    assert {p.node for p in problems} == {"search"}
    assert {"url is required", "method must be one of GET, POST, PUT, PATCH, DELETE"} <= {
        p.message for p in problems
    }


def test_entry_and_outcome_configs_are_checked():
    graph = build(
        [{**entry(), "config": {"x": 1}}, outcome("done", result="maybe")], ["start -> done"]
    )
    assert codes(graph_problems(graph), Code.INVALID_CONFIG) == ["start", "done"]


def test_kinds_must_be_registered_chosen_and_fit_the_node_type():
    graph = build(
        [
            {**entry(), "kind": "noop"},
            general("mystery", "teleport"),
            general("blank", ""),
            general("misfit", "decision", {"conditions": [], "default": "x"}),
            outcome(),
        ],
        ["start -> mystery -> blank -> misfit -> done"],
    )
    problems = graph_problems(graph)
    assert codes(problems, Code.UNKNOWN_KIND) == ["mystery"]
    assert codes(problems, Code.MISSING_KIND) == ["blank"]
    assert codes(problems, Code.KIND_NOT_ALLOWED) == ["start", "misfit"]


def test_retry_policies_timeouts_and_trigger_rules_are_checked():
    graph = build(
        [
            entry(),
            general("a", retry_policy={"maximum_attempts": 0, "backoff": 2}),
            general("b", timeout_s=MAX_NODE_TIMEOUT_S + 1, trigger_rule="whenever"),
            outcome(),
        ],
        ["start -> a -> b -> done"],
    )
    problems = graph_problems(graph)
    assert codes(problems, Code.INVALID_RETRY_POLICY) == ["a", "a"]
    assert codes(problems, Code.INVALID_TIMEOUT) == ["b"]
    assert codes(problems, Code.UNKNOWN_TRIGGER_RULE) == ["b"]


# -- template references -------------------------------------------------------------------


def test_input_references_must_be_required_data_fields():
    config = {"url": "https://p.test/{{ input.member_id }}/{{ input.dob }}"}
    graph = build(
        [
            entry(),
            general("search", "http", config),
            general("dump", "transform", {"outputs": {"row": "{{ input }}"}}),
            outcome(),
        ],
        ["start -> search -> dump -> done"],
    )
    problems = graph_problems(graph)
    assert codes(problems, Code.UNKNOWN_INPUT_FIELD) == ["search"]
    assert "'dob'" in problems[0].message
    assert codes(problems, Code.INVALID_REFERENCE) == ["dump"]  # the whole row, not a field


def test_node_references_must_name_an_upstream_node_and_its_output_or_label():
    transform = {
        "outputs": {
            "ok": "{{ nodes.search.output.body }} {{ nodes.search.label }}",
            "later": "{{ nodes.after.output.x }}",
            "ghost": "{{ nodes.ghost.output.x }}",
            "sideways": "{{ nodes.side.output.x }}",
            "internals": "{{ nodes.search.attempts }}",
        }
    }
    graph = build(
        [
            entry(),
            general("search", "http", HTTP),
            general("side"),
            general("use", "transform", transform),
            general("after"),
            outcome(),
        ],
        ["start -> search -> use -> after -> done", "start -> side -> done"],
    )
    problems = graph_problems(graph)
    not_upstream = [p.message for p in problems if p.code == Code.NOT_UPSTREAM]
    assert codes(problems, Code.NOT_UPSTREAM) == ["use"] * 3
    assert any("after does not run before use" in m for m in not_upstream)
    assert any("there is no node 'ghost'" in m for m in not_upstream)
    assert any("side does not run before use" in m for m in not_upstream)
    assert codes(problems, Code.INVALID_REFERENCE) == ["use"]


def test_a_steps_identity_is_read_by_its_four_names_only():
    headers = {
        "Idempotency-Key": "{{ step.idempotency_key }}",
        "X-Step": "{{ run.id }}-{{ node.key }}-{{ attempt + 1 }}",
    }
    wrong = {"outputs": {"a": "{{ run.created_at }}", "b": "{{ step }}", "c": "{{ node.kind }}"}}
    graph = build(
        [
            entry(),
            general("call", "http", {**HTTP, "headers": headers}),
            general("peek", "transform", wrong),
            outcome(),
        ],
        ["start -> call -> peek -> done"],
    )
    problems = graph_problems(graph)
    assert codes(problems, Code.INVALID_REFERENCE) == ["peek"] * 3
    assert "run.id, node.key, attempt, step.idempotency_key" in problems[0].message


def test_decision_expressions_are_checked_like_templates():
    graph = build(
        [entry(), decision("route", [("input.plan == 'gold'", "gold")], "other"), outcome()],
        ["start -> route -[gold]-> done", "route -[other]-> done"],
    )
    problems = graph_problems(graph)
    assert codes(problems, Code.UNKNOWN_INPUT_FIELD) == ["route"]


# -- template sizes ---------------------------------------------------------------------------


def _shaped(template: str) -> Graph:
    """start -> search (http) -> shape (a transform of ``template``) -> done."""
    return build(
        [
            entry(),
            general("search", "http", HTTP),
            general("shape", "transform", {"outputs": {"x": template}}),
            outcome(),
        ],
        ["start -> search -> shape -> done"],
        required_data=("member_id", "word", "times"),
    )


def test_a_repeated_string_past_the_limit_is_refused_at_publish_naming_node_and_template():
    problems = graph_problems(_shaped("{{ 'a' * 400000000 }}"))
    assert [(p.node, p.code) for p in problems] == [("shape", Code.INVALID_CONFIG)]
    expected = bounds.TOO_LONG.format(what="repeating", size=400_000_000, limit=100_000)
    assert problems[0].message == f"\"{{{{ 'a' * 400000000 }}}}\": {expected}"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ input.word * 400000000 }}", "repeating would make 400,000,000"),
        ("{{ 'ab' * input.times }}", bounds.REPEAT_BY_VALUE.format(limit=100_000)),
        ("{{ ('x' ~ input.word) * input.times }}", bounds.REPEAT_BY_VALUE.format(limit=100_000)),
        ("{{ [input.word] * input.times }}", bounds.REPEAT_BY_VALUE.format(limit=100_000)),
        ("{{ 2 ** input.times }}", bounds.POWER_BY_VALUE),
        ("{{ 10 ** 100000 }}", "the power would make a number of some 400,000 bits"),
        ("{{ range(1000000)|join }}", "range() would make 1,000,000"),
        ("{{ input.word|center(400000000) }}", "the filter center would make 400,000,000"),
        ("{{ input.word.ljust(400000000) }}", "ljust() would make 400,000,000"),
        ("{{ '%400000000d' % 1 }}", "formatting would make 400,000,013"),
        ("{{ '" + "a" * 60_000 + "' ~ '" + "b" * 60_000 + "' }}", "joining with ~ would make"),
        ("{{ '" + "a" * 100_001 + "' }}", "a literal of 100,001 characters"),
        (
            "{% macro twice(s) %}{{ s }}{{ s }}{% endmacro %}{{ twice(input.word) }}",
            bounds.NOT_STREAMED.format(construct="a macro"),
        ),
        (
            "{% filter upper %}{{ input.word }}{% endfilter %}",
            bounds.NOT_STREAMED.format(construct="a filter block"),
        ),
    ],
)
def test_a_template_that_can_pass_the_size_limit_is_refused_at_publish(template, expected):
    problems = graph_problems(_shaped(template))
    assert [(p.node, p.code) for p in problems] == [("shape", Code.INVALID_CONFIG)]
    assert expected in problems[0].message, problems[0].message


@pytest.mark.parametrize(
    "template",
    [
        "{{ input.member_id }}",
        "{{ nodes.search.output.body.count * 2 }}",
        "{{ input.times * input.times }}",
        "{{ input.word * 3 }}",
        "{{ 'ab' * 3 }} {{ ['-'] * 10 }}",
        "{{ input.word ~ '-' ~ input.member_id }}",
        "{{ '%05d' % input.times }} {{ '{:>8}'.format(input.word) }}",
        "{% for c in input.word %}{{ c }}{% endfor %}",
        "{{ input.word|upper|center(20) }} {{ range(10)|join(',') }} {{ 1.05 ** 2 }}",
    ],
)
def test_ordinary_templates_pass_the_size_check(template):
    assert graph_problems(_shaped(template)) == []


def test_a_decision_expression_is_size_checked_too():
    graph = build(
        [entry(), decision("route", [("'a' * input.times == 'b'", "yes")], "no"), outcome()],
        ["start -> route -[yes]-> done", "route -[no]-> done"],
        required_data=("times",),
    )
    problems = graph_problems(graph)
    assert [(p.node, p.code) for p in problems] == [("route", Code.INVALID_CONFIG)]
    assert bounds.REPEAT_BY_VALUE.format(limit=100_000) in problems[0].message


# -- every problem at once, and the structure a draft must have ----------------------------


def test_all_problems_are_reported_not_just_the_first():
    graph = build(
        [entry("a"), entry("b"), general("c", "teleport"), general("d", "http", {})],
        ["a -> c", "b -> d"],
    )
    problems = graph_problems(graph)
    assert {Code.MULTIPLE_ENTRIES, Code.UNKNOWN_KIND, Code.INVALID_CONFIG, Code.NO_OUTCOME} <= {
        p.code for p in problems
    }
    assert {"a", "b", "c", "d", None} == {p.node for p in problems}


def test_structure_problems_name_each_bad_node_and_transition():
    nodes = [
        _node(entry()),
        _node(general("a")),
        _node(general("a")),
        _node({"key": "bad key!", "node_type": "general", "kind": "noop"}),
        _node({"key": "b", "node_type": "junction"}),
        _node({**general("c"), "config": ["not", "an", "object"]}),
    ]
    edges = _edges(["start -> a -> nowhere", "a -> a", "start -> a"])
    problems = structure_problems(nodes, edges)
    assert codes(problems, Code.DUPLICATE_KEY) == ["a"]
    assert codes(problems, Code.INVALID_KEY) == ["bad key!"]
    assert codes(problems, Code.UNKNOWN_NODE_TYPE) == ["b"]
    assert codes(problems, Code.CONFIG_NOT_OBJECT) == ["c"]
    assert codes(problems, Code.DANGLING_TRANSITION) == ["nowhere"]
    assert codes(problems, Code.SELF_LOOP) == ["a"]
    assert codes(problems, Code.DUPLICATE_TRANSITION) == ["start"]
    self_loop = next(p for p in problems if p.code == Code.SELF_LOOP)
    assert "retry_policy" in self_loop.message


def test_an_incomplete_draft_has_no_structure_problems():
    nodes = [_node(entry()), _node(general("search", "http", {})), _node(general("todo", ""))]
    assert structure_problems(nodes, _edges(["start -> search"])) == []
