"""The workflows admin: staff see only their organization's workflows and history, history is
read-only to everyone, status changes and requirement writes go through the services, the
graph pictures show every node, coloured, with nothing unescaped, and the web actions' tiers
are counted per workflow over time and listed per run."""

import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from rcm.context import NoOrganizationContext, org_context
from rcm.lookups import UserRole
from tenants.models import ChannelType
from tests.helpers import logged_in as _logged_in
from tests.helpers import messages_of as _messages
from tests.helpers import page_queries as _page_queries
from tests.helpers import staff_user as _staff
from tests.workflows.factories import entry, general, outcome, workflow_build
from workflows.admin.authoring import NO_WEB_ACTIONS, NOT_PUBLISHED
from workflows.admin.runs import NO_RUN_WEB_ACTIONS
from workflows.drawing.graph import (
    EDGE_NOT_TAKEN,
    EDGE_PLAIN,
    EDGE_TAKEN,
    ENTRY_COLOUR,
    PROBLEM_COLOUR,
    RESULT_COLOURS,
    STATUS_COLOURS,
    graph_svg,
)
from workflows.drawing.tiers import TIERS, tier_mix_svg
from workflows.models import (
    NodeRun,
    NodeRunStatus,
    OrgRequirementPolicy,
    PayerRequirement,
    RequirementChangelog,
    RunStatus,
    TaskSignature,
    Workflow,
    WorkflowRevision,
    WorkflowRun,
    WorkflowTrace,
)
from workflows.selectors.requirements import task_type_find
from workflows.selectors.traces import TierBucket, tier_mix
from workflows.services import authoring, batch, requirements, runs
from workflows.services.traces import StepTrace, step_traces_record

SVG = "{http://www.w3.org/2000/svg}"


def _url(model: str, view: str = "changelist", *args) -> str:
    return reverse(f"admin:workflows_{model}_{view}", args=args)


def _last_message(response) -> str:
    """What the last request said (earlier ones wait in the session: no redirect followed)."""
    return _messages(response)[-1]


@pytest.fixture
def staff_a(org_a):
    return _staff(org_a, "ops@acme.test")


@pytest.fixture
def viewer_staff_a(org_a):
    return _staff(org_a, "look@acme.test", UserRole.VIEWER)


def _workflow(tenant, name: str, *, publish: bool = True) -> Workflow:
    workflow, _ = workflow_build(
        org_id=tenant.id,
        name=name,
        nodes=[entry("start"), general("check"), outcome("done"), outcome("denied", "failure")],
        edges=["start -> check -> done", ("check", "denied", "error")],
        publish=publish,
    )
    return workflow


def _run(tenant, workflow: Workflow, external_id: str) -> WorkflowRun:
    """A run just started: the entry completed (with its trace), the next node ready (its
    message would go out on commit, which a test transaction never reaches)."""
    with org_context(tenant.id):
        return runs.run_start(workflow=workflow, input={"member_id": "W1"}, external_id=external_id)


def _policy(tenant, field_name: str = "referral_number") -> OrgRequirementPolicy:
    with org_context(tenant.id):
        return requirements.org_policy_create(
            org_id=tenant.id,
            task_type=task_type_find(ref="eligibility/check"),
            field_name=field_name,
            operation="add",
            spec={"field_type": "text"},
            effective_date=date(2025, 1, 1),
            reason="Our payers ask for it.",
            actor=tenant["org_admin"],
        )


def _signature(tenant, domain: str = "eligibility") -> TaskSignature:
    with org_context(tenant.id):
        return TaskSignature.objects.create(
            org_id=tenant.id, domain_id=domain, action_id="check", source_id="human"
        )


def _act(client, model: str, action: str, *objects):
    return client.post(
        _url(model), {"action": action, "_selected_action": [obj.pk for obj in objects]}
    )


def _inline_management(page) -> dict:
    """The management form of each inline, as a browser posts it back with the page."""
    data = {}
    for inline in page.context["inline_admin_formsets"]:
        form = inline.formset.management_form
        data.update({form.add_prefix(name): value for name, value in form.initial.items()})
    return data


def _reload(tenant, obj):
    with org_context(tenant.id):
        return type(obj).objects.get(pk=obj.pk)


# -- the picture ---------------------------------------------------------------------------

SNAPSHOT = {
    "nodes": [
        {"key": "start", "node_type": "entry"},
        {"key": "search", "node_type": "general", "kind": "http"},
        {"key": "route", "node_type": "decision", "kind": "decision"},
        {"key": "done", "node_type": "outcome", "config": {"result": "success"}},
        {"key": "denied", "node_type": "outcome", "config": {"result": "failure"}},
    ],
    "transitions": [
        {"from": "start", "to": "search", "label": "success"},
        {"from": "search", "to": "route", "label": "success"},
        {"from": "route", "to": "done", "label": "found"},
        {"from": "route", "to": "denied", "label": "not_found"},
        {"from": "search", "to": "denied", "label": "timeout"},
    ],
}


def _boxes(svg: str) -> dict[str, dict]:
    """Each node's rect attributes, by node key (the SVG must be well-formed XML)."""
    root = ET.fromstring(svg)
    return {
        group.get("data-key"): group.find(f"{SVG}rect").attrib
        for group in root.iter(f"{SVG}g")
        if group.get("class") == "node"
    }


def test_the_graph_is_laid_out_by_depth_with_labelled_edges_and_coloured_outcomes():
    svg = graph_svg(SNAPSHOT)
    boxes = _boxes(svg)
    depth = {key: float(box["y"]) for key, box in boxes.items()}
    # "denied" is reached from search and from route: it sits below both.
    assert depth["start"] < depth["search"] < depth["route"] < depth["done"] == depth["denied"]
    assert boxes["start"]["fill"] == ENTRY_COLOUR
    assert boxes["done"]["fill"] == RESULT_COLOURS["success"]
    assert boxes["denied"]["fill"] == RESULT_COLOURS["failure"]
    assert boxes["search"]["fill"] == "#ffffff"
    labels = {text.text for text in ET.fromstring(svg).iter(f"{SVG}text")}
    assert {"found", "not_found", "timeout", "http GET, no URL yet", "outcome: failure"} <= labels


def test_the_run_picture_colours_each_node_by_its_node_run_status():
    statuses = {
        "start": NodeRunStatus.COMPLETED,
        "search": NodeRunStatus.FAILED,
        "route": NodeRunStatus.RUNNING,
        "done": NodeRunStatus.SKIPPED,
        "denied": NodeRunStatus.CANCELLED,
    }
    boxes = _boxes(graph_svg(SNAPSHOT, statuses=statuses))
    assert {key: box["fill"] for key, box in boxes.items()} == {
        "start": "#a5d6a7",  # green
        "search": "#ef9a9a",  # red
        "route": "#ffe082",  # amber
        "done": "#e0e0e0",  # grey
        "denied": "#9e9e9e",  # dark grey
    }
    assert STATUS_COLOURS[NodeRunStatus.READY] == STATUS_COLOURS[NodeRunStatus.RUNNING]


def test_every_text_of_the_graph_is_escaped():
    key = '<script>alert("key")</script>'
    label = '"><img src=x onerror=alert(1)>'
    snapshot = {
        "nodes": [
            {"key": "start", "node_type": "entry"},
            {"key": key, "node_type": "general", "kind": "<b>kind</b>"},
        ],
        "transitions": [{"from": "start", "to": key, "label": label}],
    }
    for svg in (graph_svg(snapshot), graph_svg(snapshot, statuses={key: "<i>odd</i>"})):
        assert "<script" not in svg
        assert "<img" not in svg
        assert "<b>" not in svg and "<i>" not in svg
        assert "&lt;script&gt;" in svg
        assert set(_boxes(svg)) == {"start", key}  # well-formed, and the key read back whole


def test_a_graph_with_a_cycle_or_no_nodes_still_draws():
    cyclic = {
        "nodes": [{"key": key, "node_type": "general"} for key in ("a", "b", "c")],
        "transitions": [
            {"from": "a", "to": "b", "label": "success"},
            {"from": "b", "to": "c", "label": "success"},
            {"from": "c", "to": "b", "label": "again"},
            {"from": "c", "to": "gone", "label": "dangling"},
        ],
    }
    assert set(_boxes(graph_svg(cyclic))) == {"a", "b", "c"}
    assert _boxes(graph_svg({"nodes": [], "transitions": []})) == {}


def _node(key: str, node_type: str = "general", kind: str = "noop", **config) -> dict:
    if node_type == "outcome":
        return {"key": key, "node_type": "outcome", "config": {"result": kind}}
    if node_type == "entry":
        return {"key": key, "node_type": "entry"}
    return {"key": key, "node_type": node_type, "kind": kind, "config": config}


def _snapshot(nodes: list[dict], edges: list[tuple]) -> dict:
    return {
        "nodes": nodes,
        "transitions": [
            {"from": source, "to": target, "label": label[0] if label else "success"}
            for source, target, *label in edges
        ],
    }


CHECK_URL = "https://portal.example.com/api/v2/eligibility/check"
# Each a shape the old straight-line picture drew wrong (an edge through a box, labels struck
# through or on top of each other).
GRAPHS = {
    # check_portal -> done passes the layer of pause: it must go round pause, not through it.
    "skips a box": _snapshot(
        [
            _node("start", "entry"),
            _node("check_portal", kind="http", method="POST", url=CHECK_URL),
            _node("pause", kind="wait", seconds=3600),
            _node("done", "outcome", "success"),
        ],
        [
            ("start", "check_portal"),
            ("check_portal", "pause", "pending"),
            ("pause", "done"),
            ("check_portal", "done"),
        ],
    ),
    "diamond with parallel branches": _snapshot(
        [
            _node("start", "entry"),
            _node("split"),
            _node("left_branch"),
            _node("right_branch"),
            _node("join"),
            _node("done", "outcome", "success"),
            _node("failed", "outcome", "failure"),
        ],
        [
            ("start", "split"),
            ("split", "left_branch"),
            ("split", "right_branch"),
            ("left_branch", "join"),
            ("right_branch", "join"),
            ("join", "done"),
            ("left_branch", "failed", "error"),
            ("right_branch", "failed", "error"),
        ],
    ),
    "long skip edges": _snapshot(
        [_node("start", "entry"), *(_node(key) for key in "abcd"), _node("done", "outcome")]
        + [_node("gave_up", "outcome", "failure")],
        [
            ("start", "a"),
            ("a", "b"),
            ("b", "c"),
            ("c", "d"),
            ("d", "done"),
            ("a", "done", "shortcut_when_cached"),
            ("start", "gave_up", "error"),
            ("b", "gave_up", "error"),
        ],
    ),
    "wide fan-out with long labels": _snapshot(
        [_node("start", "entry"), _node("route", "decision", "decision")]
        + [_node(f"outcome_{number}", "outcome") for number in range(9)],
        [("start", "route")]
        + [("route", f"outcome_{n}", f"payer_category_number_{n}") for n in range(9)],
    ),
    # Publishing refuses a cycle, but a draft may hold one while it is being edited.
    "cycles": _snapshot(
        [_node("start", "entry"), *(_node(key) for key in "abc"), _node("done", "outcome")],
        [
            ("start", "a"),
            ("a", "b"),
            ("b", "c", "next"),
            ("c", "b", "again"),
            ("c", "a", "restart"),
            ("c", "done"),
            ("b", "done", "finished_early"),
        ],
    ),
    "labels merged between one pair": _snapshot(
        [
            _node("start", "entry"),
            _node("search", kind="http", url="https://p.test/m/{{ input.member_id }}"),
            _node("done", "outcome"),
            _node("denied", "outcome", "failure"),
        ],
        [
            ("start", "search"),
            ("search", "done"),
            ("search", "denied", "not_found"),
            ("search", "denied", "error"),
            ("search", "denied", "timeout"),
        ],
    ),
}


def _rect(element) -> tuple[float, float, float, float]:
    return tuple(float(element.get(name)) for name in ("x", "y", "width", "height"))


def _path_points(data: str) -> list[tuple[float, float]]:
    """The points of an SVG path of M, L and C commands, lines and curves sampled every few
    pixels (finer than any box is thin, so a crossing cannot fall between two samples)."""
    tokens = re.findall(r"[MLC]|-?\d+(?:\.\d+)?", data)
    points: list[tuple[float, float]] = []
    index = 0
    while index < len(tokens):
        command, index = tokens[index], index + 1
        count = {"M": 1, "L": 1, "C": 3}[command]
        numbers = [float(token) for token in tokens[index : index + 2 * count]]
        index += 2 * count
        given = list(zip(numbers[::2], numbers[1::2], strict=True))
        if command == "M":
            points.append(given[0])
            continue
        start = points[-1]
        controls = [start, start, given[0], given[0]] if command == "L" else [start, *given]
        for step in range(1, 201):
            t = step / 200
            weights = ((1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3)
            points.append(
                (
                    sum(w * x for w, (x, _) in zip(weights, controls, strict=True)),
                    sum(w * y for w, (_, y) in zip(weights, controls, strict=True)),
                )
            )
    return points


def _strictly_inside(point, rect, margin: float = 0.5) -> bool:
    x, y = point
    left, top, width, height = rect
    return left + margin < x < left + width - margin and top + margin < y < top + height - margin


def _on_border(point, rect, slack: float = 0.6) -> bool:
    x, y = point
    left, top, width, height = rect
    inside = left - slack <= x <= left + width + slack and top - slack <= y <= top + height + slack
    return inside and not _strictly_inside(point, rect, slack)


def _overlap(first, second) -> bool:
    x1, y1, w1, h1 = first
    x2, y2, w2, h2 = second
    return x1 < x2 + w2 and x2 < x1 + w1 and y1 < y2 + h2 and y2 < y1 + h1


def _picture(svg: str) -> tuple[dict, dict, dict]:
    """Boxes by key, edge paths by (source, target), label plates by (source, target)."""
    root = ET.fromstring(svg)
    boxes, edges, plates = {}, {}, {}
    for group in root.iter(f"{SVG}g"):
        kind, pair = group.get("class", ""), (group.get("data-source"), group.get("data-target"))
        if kind.split()[0] == "node":
            boxes[group.get("data-key")] = _rect(group.find(f"{SVG}rect"))
        elif kind == "edge":
            assert pair not in edges, f"two lines for {pair}"
            edges[pair] = _path_points(group.find(f"{SVG}path").get("d"))
        elif kind == "edge-label":
            plates[pair] = (_rect(group.find(f"{SVG}rect")), group.find(f"{SVG}text").text)
    return boxes, edges, plates


@pytest.mark.parametrize("shape", GRAPHS)
@pytest.mark.parametrize("run", [False, True], ids=["draft", "run"])
def test_edges_go_round_boxes_and_labels_sit_clear_on_their_own_edge(shape, run):
    snapshot = GRAPHS[shape]
    statuses = {node["key"]: NodeRunStatus.COMPLETED for node in snapshot["nodes"]} if run else None
    boxes, edges, plates = _picture(graph_svg(snapshot, statuses=statuses))
    pairs = {(t["from"], t["to"]) for t in snapshot["transitions"]}
    assert set(boxes) == {node["key"] for node in snapshot["nodes"]}
    assert set(edges) == set(plates) == pairs
    for (source, target), points in edges.items():
        assert _on_border(points[0], boxes[source]), (source, target, points[0])
        assert _on_border(points[-1], boxes[target]), (source, target, points[-1])
        for key, box in boxes.items():
            if key in (source, target):
                continue
            through = [point for point in points if _strictly_inside(point, box)]
            assert not through, f"{source} -> {target} passes through {key} at {through[0]}"
    for pair, (plate, text) in plates.items():
        assert any(_strictly_inside(point, plate, 0) for point in edges[pair]), (pair, "off")
        for key, box in boxes.items():
            assert not _overlap(plate, box), f"label of {pair} lies on {key}"
        for other, (other_plate, _) in plates.items():
            assert other == pair or not _overlap(plate, other_plate), (pair, other)
        labels = [t["label"] for t in snapshot["transitions"] if (t["from"], t["to"]) == pair]
        assert text == ", ".join(labels)  # whole, joined, readable
        # Wide enough for its text at the drawing's font size (a narrow sans-serif is
        # about 0.55 em a character).
        assert plate[2] >= len(text) * 11 * 0.55


def test_several_transitions_between_two_nodes_are_one_line_with_their_labels_joined():
    _, edges, plates = _picture(graph_svg(GRAPHS["labels merged between one pair"]))
    assert len(edges) == 3
    assert plates[("search", "denied")][1] == "not_found, error, timeout"


def test_an_edge_that_closes_a_cycle_is_drawn_upwards_into_its_target():
    boxes, edges, _ = _picture(graph_svg(GRAPHS["cycles"]))
    restart = edges[("c", "a")]
    assert restart[0][1] > restart[-1][1]
    assert abs(restart[-1][1] - (boxes["a"][1] + boxes["a"][3])) < 1  # into a's bottom
    assert abs(restart[0][1] - boxes["c"][1]) < 1  # out of c's top


def test_the_layers_keep_crossings_down_and_parents_over_their_children():
    boxes, _, _ = _picture(graph_svg(GRAPHS["diamond with parallel branches"]))
    centre = {key: x + width / 2 for key, (x, _, width, _) in boxes.items()}
    assert boxes["left_branch"][1] == boxes["right_branch"][1] > boxes["split"][1]
    assert centre["left_branch"] < centre["split"] < centre["right_branch"]
    # join and done stay under the branch they hang from; failed under the other.
    assert (centre["join"] < centre["failed"]) == (centre["left_branch"] < centre["right_branch"])


def test_boxes_say_what_their_node_does_and_the_tooltip_says_it_all():
    web = {
        "key": "portal",
        "node_type": "general",
        "kind": "web",
        "config": {"endpoint": 7, "actions": [{"goto": "x"}] * 5, "outcomes": {"gone": "No"}},
    }
    snapshot = _snapshot(
        [
            _node("start", "entry"),
            _node("check", kind="http", method="POST", url=CHECK_URL),
            {
                "key": "plan",
                "node_type": "decision",
                "kind": "decision",
                "config": {
                    "conditions": [{"when": "input.plan == 'gold'", "label": "gold"}],
                    "default": "basic",
                },
            },
            web,
            _node("shape", kind="transform", outputs={"member": "{{ input.member_id }}"}),
            _node("later", kind="wait", seconds=7200),
            _node("new_step", kind=""),
            _node("done", "outcome", "success"),
        ],
        [],
    )
    root = ET.fromstring(graph_svg(snapshot, endpoint_names={7: "UHC portal"}))
    lines, titles = {}, {}
    for group in root.iter(f"{SVG}g"):
        if group.get("class") == "node":
            lines[group.get("data-key")] = [text.text for text in group.iter(f"{SVG}text")][1]
            titles[group.get("data-key")] = group.find(f"{SVG}title").text
    assert lines == {
        "start": "entry: starts the run",
        "check": "http POST …/check",
        "plan": "decision on input.plan",
        "portal": "web: 5 actions on UHC portal",
        "shape": "transform into member",
        "later": "wait 2 h",
        "new_step": "general: no kind yet",
        "done": "outcome: success",
    }
    assert titles["check"] == f"check\nhttp POST {CHECK_URL}"
    assert titles["plan"] == "plan\ndecision: input.plan == 'gold' → gold; otherwise → basic"
    assert titles["portal"].endswith("; outcomes: gone")


def test_a_long_key_is_cut_in_its_box_and_whole_in_its_tooltip():
    key = "verify_member_eligibility_with_the_secondary_payer_portal"
    root = ET.fromstring(graph_svg(_snapshot([_node(key)], [])))
    group = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "node")
    shown = next(group.iter(f"{SVG}text")).text
    assert shown.endswith("…") and key.startswith(shown[:-1])
    assert group.find(f"{SVG}title").text.startswith(key)
    # The cut text fits its box at the bold key's width per character.
    assert len(shown) * 13 * 0.62 <= float(group.find(f"{SVG}rect").get("width"))


def test_a_runs_picture_draws_the_edges_that_fired_thick_and_the_others_faint():
    taken = {("start", "search"), ("search", "route"), ("route", "done")}
    root = ET.fromstring(graph_svg(SNAPSHOT, statuses={}, taken=taken))
    strokes = {
        (group.get("data-source"), group.get("data-target")): group.find(f"{SVG}path")
        for group in root.iter(f"{SVG}g")
        if group.get("class") == "edge"
    }
    for pair, path in strokes.items():
        thick, colour = (3.0, EDGE_TAKEN[0]) if pair in taken else (1.2, EDGE_NOT_TAKEN[0])
        assert (float(path.get("stroke-width")), path.get("stroke")) == (thick, colour), pair
    plain = ET.fromstring(graph_svg(SNAPSHOT))
    paths = [g.find(f"{SVG}path") for g in plain.iter(f"{SVG}g") if g.get("class") == "edge"]
    assert {path.get("stroke") for path in paths} == {EDGE_PLAIN[0]}


def test_nodes_with_problems_are_framed_in_red():
    boxes = {
        group.get("data-key"): group.find(f"{SVG}rect")
        for group in ET.fromstring(graph_svg(SNAPSHOT, marked={"route"})).iter(f"{SVG}g")
        if group.get("data-key")
    }
    assert boxes["route"].get("stroke") == PROBLEM_COLOUR
    assert {key for key, rect in boxes.items() if rect.get("stroke") == PROBLEM_COLOUR} == {"route"}


# -- one organization's rows ---------------------------------------------------------------


@pytest.mark.django_db
def test_staff_see_only_their_organizations_workflows_and_history(staff_a, org_a, org_b):
    _run(org_a, _workflow(org_a, "Acme eligibility"), "acme-1")
    theirs = _workflow(org_b, "Bayside eligibility")
    their_run = _run(org_b, theirs, "bayside-1")
    client = _logged_in(staff_a)
    for model in ("workflow", "workflowrevision", "workflowrun", "workflowtrace"):
        page = client.get(_url(model))
        assert page.status_code == 200, model
        rows = list(page.context["cl"].result_list)
        assert rows, model
        assert {row.org_id for row in rows} == {org_a.id}, model
        assert "bayside" not in page.text.lower(), model

    with org_context(org_b.id):
        revision = WorkflowRevision.objects.get(workflow=theirs)
        trace = WorkflowTrace.objects.get(run=their_run)
    for model, pk in [
        ("workflow", theirs.pk),
        ("workflowrevision", revision.pk),
        ("workflowrun", their_run.pk),
        ("workflowtrace", trace.pk),
    ]:
        assert client.get(_url(model, "change", pk)).status_code == 404, model
    _act(client, "workflow", "archive", theirs)
    _act(client, "workflowrun", "cancel", their_run)
    assert _reload(org_b, theirs).status_id == "active"
    assert _reload(org_b, their_run).status == RunStatus.RUNNING


HISTORY = ["workflowrevision", "workflowrun", "workflowtrace", "requirementchangelog"]


@pytest.mark.django_db
def test_history_is_never_added_changed_or_deleted(staff_a, sys_admin, org_a):
    run = _run(org_a, _workflow(org_a, "Eligibility"), "row-1")
    _policy(org_a)
    with org_context(org_a.id):
        rows = {
            "workflowrevision": WorkflowRevision.objects.get(),
            "workflowrun": run,
            "workflowtrace": WorkflowTrace.objects.get(),
            "requirementchangelog": RequirementChangelog.objects.get(org_id=org_a.id),
            "tasksignature": _signature(org_a),
        }
    for user in (staff_a, sys_admin):
        client = _logged_in(user)
        for model, row in rows.items():
            change = _url(model, "change", row.pk)
            assert client.get(change).context["title"].startswith("View"), model
            assert client.post(change, {"status": "completed"}).status_code == 403, model
            assert client.get(_url(model, "add")).status_code == 403, model
            delete = _url(model, "delete", row.pk)
            assert client.post(delete, {"post": "yes"}).status_code == 403, model
            assert _reload(org_a, row).pk == row.pk
    assert _reload(org_a, run).status == RunStatus.RUNNING


# -- workflows -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_publish_suspend_and_archive_go_through_the_services(staff_a, org_a):
    draft = _workflow(org_a, "Eligibility", publish=False)
    client = _logged_in(staff_a)

    response = _act(client, "workflow", "publish", draft)
    assert response.status_code == 302
    assert _last_message(response) == "Published 1 workflow."
    draft = _reload(org_a, draft)
    assert (draft.status_id, draft.published_at is not None) == ("active", True)
    with org_context(org_a.id):
        revision = WorkflowRevision.objects.get(workflow=draft)
    assert (revision.revision_num, revision.created_by_id) == (1, staff_a.pk)

    _act(client, "workflow", "suspend", draft)
    assert _reload(org_a, draft).status_id == "suspended"
    response = _act(client, "workflow", "suspend", draft)
    assert _last_message(response) == f"Eligibility: {authoring.NOT_ACTIVE}"

    _act(client, "workflow", "archive", draft)
    assert _reload(org_a, draft).status_id == "archived"
    response = _act(client, "workflow", "publish", draft)
    assert _last_message(response) == f"Eligibility: {authoring.WORKFLOW_ARCHIVED}"
    with org_context(org_a.id):
        assert WorkflowRevision.objects.filter(workflow=draft).count() == 1
    # Archived for good: its page is view-only.
    assert client.get(_url("workflow", "change", draft.pk)).context["title"].startswith("View")


@pytest.mark.django_db
def test_a_graph_that_cannot_be_published_is_a_message_listing_its_problems(staff_a, org_a):
    workflow, _ = workflow_build(
        org_id=org_a.id,
        name="Dead end",
        nodes=[entry("start"), general("check")],
        edges=["start -> check"],
        publish=False,
    )
    response = _act(_logged_in(staff_a), "workflow", "publish", workflow)
    (message,) = _messages(response)
    assert message.startswith(f"Dead end: {authoring.NOT_PUBLISHABLE}")
    assert "graph:" in message  # the graph has no outcome
    assert _reload(org_a, workflow).status_id == "draft"
    with org_context(org_a.id):
        assert not WorkflowRevision.objects.exists()


@pytest.mark.django_db
def test_a_viewer_reads_workflows_but_changes_nothing(viewer_staff_a, org_a):
    draft = _workflow(org_a, "Eligibility", publish=False)
    run = _run(org_a, _workflow(org_a, "Live"), "row-1")
    client = _logged_in(viewer_staff_a)
    page = client.get(_url("workflow"))
    assert page.status_code == 200
    assert page.context["action_form"] is None
    _act(client, "workflow", "publish", draft)
    _act(client, "workflowrun", "cancel", run)
    assert _reload(org_a, draft).status_id == "draft"
    assert _reload(org_a, run).status == RunStatus.RUNNING
    assert client.get(_url("workflow", "add")).status_code == 403
    change = _url("workflow", "change", draft.pk)
    assert client.get(change).context["title"].startswith("View")
    assert client.post(change, {"name": "Renamed"}).status_code == 403
    assert _reload(org_a, draft).name == "Eligibility"


@pytest.mark.django_db
def test_an_operator_adds_and_renames_a_workflow_and_a_stale_page_is_refused(staff_a, org_a):
    client = _logged_in(staff_a)
    response = client.post(_url("workflow", "add"), {"name": "Prior auth", "description": ""})
    assert response.status_code == 302, response.text
    with org_context(org_a.id):
        workflow = Workflow.objects.get(name="Prior auth")
    assert (workflow.org_id, workflow.status_id, workflow.created_by_id) == (
        org_a.id,
        "draft",
        staff_a.pk,
    )
    response = client.post(_url("workflow", "add"), {"name": "Prior auth", "description": ""})
    assert _last_message(response) == authoring.WORKFLOW_EXISTS

    workflow = _workflow(org_a, "Eligibility")
    url = _url("workflow", "change", workflow.pk)
    page = client.get(url)
    assert page.context["adminform"].form["based_on_version"].value() == workflow.version
    body = {
        "name": "Eligibility (UHC)",
        "description": "Checks coverage",
        "based_on_version": workflow.version,
        **_inline_management(page),
    }
    response = client.post(url, body)
    assert response.status_code == 302, response.text
    renamed = _reload(org_a, workflow)
    assert (renamed.name, renamed.version) == ("Eligibility (UHC)", workflow.version + 1)

    response = client.post(url, {**body, "name": "From a stale page"})
    assert response["Location"] == url
    assert _last_message(response) == authoring.STALE_VERSION
    assert _reload(org_a, workflow).name == "Eligibility (UHC)"


@pytest.mark.django_db
def test_the_workflow_page_shows_its_draft_graph_and_its_latest_revision(staff_a, org_a):
    workflow = _workflow(org_a, "Eligibility")
    draft = _workflow(org_a, "Draft", publish=False)
    client = _logged_in(staff_a)
    page = client.get(_url("workflow", "change", workflow.pk))
    inlines = {
        inline.formset.prefix: len(inline.formset.forms)
        for inline in page.context["inline_admin_formsets"]
    }
    assert inlines == {"nodes": 4, "transitions": 3}
    assert "Revision 1" in page.text
    for key in ("start", "check", "done", "denied"):
        assert f'data-key="{key}"' in page.text
    assert NOT_PUBLISHED in client.get(_url("workflow", "change", draft.pk)).text


# -- runs ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_run_page_pictures_each_node_in_its_status_colour(staff_a, org_a):
    run = _run(org_a, _workflow(org_a, "Eligibility"), "row-1")
    with org_context(org_a.id):
        statuses = dict(NodeRun.objects.filter(run=run).values_list("node_key", "status"))
    assert statuses["start"] == NodeRunStatus.COMPLETED
    assert statuses["check"] == NodeRunStatus.READY
    page = _logged_in(staff_a).get(_url("workflowrun", "change", run.pk))
    assert page.status_code == 200
    assert set(statuses) == {"start", "check", "done", "denied"}
    for key, status in statuses.items():
        assert f'data-key="{key}"' in page.text
        assert f'fill="{STATUS_COLOURS[status]}"' in page.text
    node_runs = page.context["inline_admin_formsets"][0].formset.forms
    assert len(node_runs) == 4
    traces = f"{_url('workflowtrace')}?run__id__exact={run.pk}"
    assert traces in page.text
    listed = _logged_in(staff_a).get(traces).context["cl"].result_list
    assert [trace.node_key for trace in listed] == ["start"]
    assert "Revision 1" in page.text


@pytest.mark.django_db
def test_an_operator_cancels_a_running_run(staff_a, org_a):
    workflow = _workflow(org_a, "Eligibility")
    live, other = _run(org_a, workflow, "row-1"), _run(org_a, workflow, "row-2")
    client = _logged_in(staff_a)
    response = _act(client, "workflowrun", "cancel", live)
    assert _last_message(response) == "Cancelled 1 run."
    assert _reload(org_a, live).status == RunStatus.CANCELLED
    assert _reload(org_a, other).status == RunStatus.RUNNING
    with org_context(org_a.id):
        left = NodeRun.objects.filter(run=live).exclude(node_key="start")
        assert set(left.values_list("status", flat=True)) == {NodeRunStatus.CANCELLED}
    response = _act(client, "workflowrun", "cancel", live)  # finished: nothing to cancel
    assert _last_message(response) == "Cancelled 0 runs."


# -- web actions and their tiers -----------------------------------------------------------

# (tier, tier_reason, success) of an action, as the web agent records them.
HIT = (1, "hit", True)
REPAIRED = (2, "validation_failed:hidden; repaired score=0.91 runner_up=0.40", True)
MATCHED = (2, "miss; matched score=1.00 runner_up=0.35", True)  # nothing remembered yet
BY_MODEL = (3, "validation_failed:missing; llm (tier 2: tie: 1.00 and 1.00 are within 0.1)", True)
MISSED = (None, "validation_failed:name; miss: best score 0.52 < 0.75", False)
GOTO = (None, "", True)  # needed no element: not counted
FAILED_GOTO = (None, "", False)  # a page that did not load: no target, not counted


def _actions(tenant, run, at, *kinds, attempt: int = 1, target: str = 'label "Member ID"'):
    """Web actions of ``run``'s node "check", numbered from 1, taken at ``at`` (moved there
    after the service wrote them now); action N took N tenths of a second, from state 40 + N.
    An action without a reason needed no element: a goto; the others fill."""
    steps = [
        StepTrace(
            action_type="web.fill" if reason else "web.goto",
            success=success,
            duration_ms=100 * number,
            detail={"action": number, "target": target, "state": 40 + number},
            tier=tier,
            tier_reason=reason,
        )
        for number, (tier, reason, success) in enumerate(kinds, start=1)
    ]
    written = timezone.now()
    with org_context(tenant.id):
        step_traces_record(run_id=run.pk, node_key="check", attempt=attempt, steps=steps)
        WorkflowTrace.objects.filter(run=run, created_at__gte=written).update(created_at=at)


def _counts(bucket) -> tuple[int, int, int, int]:
    return (bucket.tier_1, bucket.tier_2, bucket.tier_3, bucket.unresolved)


@pytest.mark.django_db
def test_the_tier_mix_counts_each_bucket_by_tier_for_one_workflow_only(org_a, org_b):
    workflow = _workflow(org_a, "Eligibility")
    run = _run(org_a, workflow, "row-1")
    since = timezone.make_aware(datetime(2025, 5, 12))
    until = since + timedelta(days=2)
    _actions(org_a, run, since - timedelta(seconds=1), HIT)  # before the window
    _actions(org_a, run, since, HIT, HIT, GOTO, FAILED_GOTO)
    _actions(org_a, run, since + timedelta(hours=11), REPAIRED, MATCHED, BY_MODEL, MISSED)
    _actions(org_a, run, since + timedelta(hours=36), HIT, MISSED, attempt=2)
    _actions(org_a, run, until, HIT)  # after it
    # A step of the engine's own, tiered or not, is not a web action.
    with org_context(org_a.id):
        WorkflowTrace.objects.create(
            org_id=org_a.id, workflow=workflow, run=run, action_type="node", success=True, tier=1
        )
        WorkflowTrace.objects.filter(action_type="node").update(created_at=since)
    other = _workflow(org_a, "Claim status")
    _actions(org_a, _run(org_a, other, "row-2"), since, HIT, MISSED)
    theirs = _workflow(org_b, "Bayside eligibility")
    _actions(org_b, _run(org_b, theirs, "bayside-1"), since, BY_MODEL)

    with org_context(org_a.id):
        buckets = tier_mix(workflow_id=workflow.pk, since=since, until=until, buckets=4)
        # Another organization's workflow is not found: nothing of it is counted.
        theirs_seen = tier_mix(workflow_id=theirs.pk, since=since, until=until, buckets=4)
    assert [_counts(bucket) for bucket in buckets] == [
        (2, 2, 1, 1),
        (0, 0, 0, 0),
        (0, 0, 0, 0),
        (1, 0, 0, 1),
    ]
    assert [bucket.start for bucket in buckets] == [
        since + timedelta(hours=12 * number) for number in range(4)
    ]
    assert buckets[-1].end == until
    assert (buckets[0].total, buckets[0].tier_1_share, buckets[1].tier_1_share) == (6, 2 / 6, None)
    assert sum(bucket.total for bucket in theirs_seen) == 0
    with pytest.raises(NoOrganizationContext):
        tier_mix(workflow_id=workflow.pk, since=since, until=until, buckets=4)


@pytest.mark.django_db
def test_tier_mix_buckets_are_calendar_days_across_a_daylight_saving_change(org_a, settings):
    settings.TIME_ZONE = "America/New_York"  # clocks went forward on Sunday 9 March 2025
    workflow = _workflow(org_a, "Eligibility")
    run = _run(org_a, workflow, "row-1")
    since = timezone.make_aware(datetime(2025, 3, 8))
    _actions(org_a, run, timezone.make_aware(datetime(2025, 3, 9, 23, 30)), HIT)
    _actions(org_a, run, timezone.make_aware(datetime(2025, 3, 10, 0, 30)), BY_MODEL)
    with org_context(org_a.id):
        buckets = tier_mix(
            workflow_id=workflow.pk, since=since, until=since + timedelta(days=3), buckets=3
        )
    assert [timezone.localtime(bucket.start).hour for bucket in buckets] == [0, 0, 0]
    # Subtracted in UTC: Python subtracts two times of one zone on their wall clock.
    assert [bucket.end.astimezone(UTC) - bucket.start.astimezone(UTC) for bucket in buckets] == [
        timedelta(hours=24),
        timedelta(hours=23),
        timedelta(hours=24),
    ]
    assert [_counts(bucket) for bucket in buckets] == [(0, 0, 0, 0), (1, 0, 0, 0), (0, 0, 1, 0)]


def _bucket(start: datetime, hours: int, *counts: int) -> TierBucket:
    fields = ("tier_1", "tier_2", "tier_3", "unresolved")
    end = start + timedelta(hours=hours)
    return TierBucket(start=start, end=end, **dict(zip(fields, counts, strict=False)))


def test_the_tier_picture_stacks_each_bucket_and_breaks_the_share_line_where_none_ran():
    start = timezone.make_aware(datetime(2025, 5, 12))
    buckets = [
        _bucket(start + timedelta(hours=6 * number), 6, *counts)
        for number, counts in enumerate([(2, 1, 1), (), (4,), (1, 1, 0, 2)])
    ]
    svg = ET.fromstring(tier_mix_svg(buckets))
    groups = [group for group in svg.iter(f"{SVG}g") if group.get("class") == "bucket"]
    heights = [
        [(rect.get("fill"), float(rect.get("height"))) for rect in group.iter(f"{SVG}rect")]
        for group in groups
    ]
    green, orange, blue, vermilion = (colour for _, _, colour in TIERS)
    # The axis goes up to the highest bar, 4, in steps of 1: 45 pixels an action.
    assert heights == [
        [(green, 90), (orange, 45), (blue, 45)],
        [],
        [(green, 180)],
        [(green, 45), (orange, 45), (vermilion, 90)],
    ]
    assert "0 tier 1 memory" in groups[1].find(f"{SVG}title").text
    assert groups[3].find(f"{SVG}title").text.endswith("(25% tier 1)")
    (share,) = [group for group in svg.iter(f"{SVG}g") if group.get("class") == "share"]
    (line,) = share.iter(f"{SVG}polyline")  # the third and fourth buckets only
    assert len(line.get("points").split()) == 2
    assert len(list(share.iter(f"{SVG}circle"))) == 3
    days = {text.text for text in svg.iter(f"{SVG}text")}
    assert "Mon 12 May" in days


def _tier_picture(page) -> ET.Element:
    (svg,) = re.findall(r'<svg[^>]*aria-label="tier mix over time".*?</svg>', page.text, re.S)
    return ET.fromstring(svg)


def _bars(svg: ET.Element) -> dict[str, tuple[int, ...]]:
    """Each bucket's counts, by its start, for the buckets with actions."""
    names = ("data-tier-1", "data-tier-2", "data-tier-3", "data-unresolved")
    bars = {
        group.get("data-start"): tuple(int(group.get(name)) for name in names)
        for group in svg.iter(f"{SVG}g")
        if group.get("class") == "bucket"
    }
    return {start: counts for start, counts in bars.items() if any(counts)}


@pytest.mark.django_db
def test_the_workflow_page_pictures_its_tier_mix_over_the_last_week(staff_a, org_a):
    workflow = _workflow(org_a, "Eligibility")
    run = _run(org_a, workflow, "row-1")
    now = timezone.now()
    _actions(org_a, run, now - timedelta(days=3), HIT, HIT, HIT, GOTO)
    _actions(org_a, run, now - timedelta(days=2), REPAIRED, BY_MODEL, MISSED)
    _actions(org_a, run, now - timedelta(days=1), HIT, MATCHED)
    _actions(org_a, run, now - timedelta(days=8), MISSED)  # a week ago: not shown
    page = _logged_in(staff_a).get(_url("workflow", "change", workflow.pk))
    assert page.status_code == 200
    svg = _tier_picture(page)
    buckets = [group for group in svg.iter(f"{SVG}g") if group.get("class") == "bucket"]
    assert len(buckets) == 28  # six hours each
    assert sorted(_bars(svg).values()) == [(0, 1, 1, 1), (1, 1, 0, 0), (3, 0, 0, 0)]
    texts = {text.text for text in svg.iter(f"{SVG}text")}
    legend = {"tier 1 memory", "tier 2 page scored", "tier 3 model", "unresolved"}
    assert legend | {"tier 1 share (right axis)", "0%", "50%", "100%"} <= texts
    # The days on the axis, in the server's time zone, the last one today.
    assert timezone.localtime(now).strftime("%a %d %b") in texts
    assert "8 web actions, 50% of them from memory (tier 1)." in page.text
    # The share of tier 1: a dot for each bucket with actions.
    (share,) = [group for group in svg.iter(f"{SVG}g") if group.get("class") == "share"]
    assert len(list(share.iter(f"{SVG}circle"))) == 3


@pytest.mark.django_db
def test_a_workflow_without_web_actions_says_so(staff_a, org_a):
    workflow = _workflow(org_a, "Eligibility")
    _run(org_a, workflow, "row-1")  # the entry's trace: not a web action
    page = _logged_in(staff_a).get(_url("workflow", "change", workflow.pk))
    assert NO_WEB_ACTIONS in page.text
    assert "tier mix over time" not in page.text


# The session, the user and their memberships, the workflow, its nodes and transitions, the
# organization, the latest revision, and the tier mix: however many actions there are.
WORKFLOW_PAGE_QUERIES = 9


@pytest.mark.django_db
def test_the_workflow_page_reads_the_tier_mix_in_one_query(
    staff_a, org_a, django_assert_max_num_queries
):
    workflow = _workflow(org_a, "Eligibility")
    run = _run(org_a, workflow, "row-1")
    now = timezone.now()
    for days in range(7):
        _actions(org_a, run, now - timedelta(days=days), HIT, REPAIRED, BY_MODEL, MISSED)
    client = _logged_in(staff_a)
    url = _url("workflow", "change", workflow.pk)
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    assert sum("width_bucket" in query["sql"] for query in queries.captured_queries) == 1
    with django_assert_max_num_queries(WORKFLOW_PAGE_QUERIES):
        assert client.get(url).status_code == 200


def _web_action_rows(page) -> list[list[str]]:
    (table,) = re.findall(r'<table class="web-actions".*?</table>', page.text, re.S)
    rows = ET.fromstring(table).iter("tr")
    return [["".join(cell.itertext()) for cell in row] for row in rows]


@pytest.mark.django_db
def test_the_run_page_lists_its_web_actions_with_their_tiers_in_order(staff_a, org_a):
    run = _run(org_a, _workflow(org_a, "Eligibility"), "row-1")
    now = timezone.now()
    target = '<script>alert("target")</script>'
    _actions(org_a, run, now - timedelta(minutes=2), GOTO, MISSED, target=target)
    _actions(org_a, run, now - timedelta(minutes=1), REPAIRED, attempt=2)
    page = _logged_in(staff_a).get(_url("workflowrun", "change", run.pk))
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&quot;target&quot;)&lt;/script&gt;" in page.text
    state = reverse("admin:memory_microstate_change", args=(41,))
    assert f'<a href="{state}">state 41</a>' in page.text
    assert _web_action_rows(page) == [
        ["node", "attempt", "action", "tool", "target", "tier"]
        + ["tier reason", "duration", "state used", "success"],
        ["check", "1", "1", "web.goto", target, "—", "", "100 ms", "state 41", "ok"],
        ["check", "1", "2", "web.fill", target, "—", MISSED[1], "200 ms", "state 42", "failed"],
        ["check", "2", "1", "web.fill", 'label "Member ID"', "2 (page scored)", REPAIRED[1]]
        + ["100 ms", "state 41", "ok"],
    ]


@pytest.mark.django_db
def test_a_run_without_web_actions_says_so(staff_a, org_a):
    run = _run(org_a, _workflow(org_a, "Eligibility"), "row-1")
    page = _logged_in(staff_a).get(_url("workflowrun", "change", run.pk))
    assert NO_RUN_WEB_ACTIONS in page.text


# -- requirements --------------------------------------------------------------------------


def _policy_form(**overrides) -> dict:
    body = {
        "task_type": task_type_find(ref="eligibility/check").pk,
        "endpoint": "",
        "field_name": "referral_number",
        "operation": "add",
        "spec": '{"field_type": "text"}',
        "effective_date": "2025-01-01",
        "end_date": "",
        "approved_by": "",
        "reason": "Our payers ask for it.",
    }
    return {**body, **overrides}


@pytest.mark.django_db
def test_policies_are_written_through_the_services_with_a_reason(staff_a, org_a, org_b):
    client = _logged_in(staff_a)
    response = client.post(_url("orgrequirementpolicy", "add"), _policy_form(reason=""))
    assert response.status_code == 200
    assert "reason" in response.context["adminform"].form.errors

    response = client.post(
        _url("orgrequirementpolicy", "add"), _policy_form(spec='{"field_type": "blob"}')
    )
    assert response.status_code == 302
    assert requirements.BAD_FIELD_TYPE in _last_message(response)
    with org_context(org_a.id):
        assert not OrgRequirementPolicy.objects.exists()

    response = client.post(_url("orgrequirementpolicy", "add"), _policy_form())
    assert response.status_code == 302, response.text
    with org_context(org_a.id):
        policy = OrgRequirementPolicy.objects.get()
    assert (policy.org_id, policy.created_by_id) == (org_a.id, staff_a.pk)

    change = _url("orgrequirementpolicy", "change", policy.pk)
    form = client.get(change).context["adminform"].form
    assert form["reason"].value() == ""  # a change states its own reason
    body = _policy_form(spec='{"field_type": "text", "label": "Referral"}', reason="Label it")
    response = client.post(change, body)
    assert response.status_code == 302, response.text
    with org_context(org_a.id):
        log = list(
            RequirementChangelog.objects.filter(record_id=policy.pk)
            .order_by("id")
            .values_list("change", "reason", "changed_by_id")
        )
    assert log == [
        ("created", "Our payers ask for it.", staff_a.pk),
        ("updated", "Label it", staff_a.pk),
    ]
    assert _reload(org_a, policy).spec == {"field_type": "text", "label": "Referral"}


@pytest.mark.django_db
def test_policy_writes_and_the_changelog_need_an_org_admin(viewer_staff_a, org_a):
    policy = _policy(org_a)
    client = _logged_in(viewer_staff_a)
    assert client.get(_url("orgrequirementpolicy")).status_code == 200
    assert client.get(_url("orgrequirementpolicy", "add")).status_code == 403
    change = _url("orgrequirementpolicy", "change", policy.pk)
    assert client.post(change, _policy_form(reason="Mine now")).status_code == 403
    assert client.get(_url("requirementchangelog")).status_code == 403


@pytest.mark.django_db
def test_payer_requirements_are_read_by_staff_and_versioned_by_sys_admin(staff_a, sys_admin):
    uhc = ChannelType.objects.get(code="uhc-portal")
    task_type = task_type_find(ref="eligibility/check")
    body = {
        "channel_type": uhc.pk,
        "task_type": task_type.pk,
        "field_name": "group_number",
        "label": "Group number",
        "field_type": "text",
        "rtype": "required",
        "validation": '{"max_length": 20}',
        "conditional_on": "null",
        "effective_date": "2025-01-01",
        "end_date": "",
        "reason": "UHC asks for the group number.",
    }
    assert _logged_in(staff_a).post(_url("payerrequirement", "add"), body).status_code == 403
    platform = _logged_in(sys_admin)
    response = platform.post(_url("payerrequirement", "add"), body)
    assert response.status_code == 302, response.text
    row = PayerRequirement.objects.get(channel_type=uhc, field_name="group_number")
    assert (row.version, row.validation) == (1, {"max_length": 20})
    with org_context(sys_admin.org_id):
        log = RequirementChangelog.objects.get(table_name="payer_requirement", record_id=row.pk)
    assert (log.org_id, log.reason) == (None, "UHC asks for the group number.")
    change = _url("payerrequirement", "change", row.pk)
    assert platform.get(change).context["title"].startswith("View")  # a new version instead
    assert platform.post(change, body).status_code == 403


# -- every page, and the query counts ------------------------------------------------------


@pytest.mark.django_db
def test_every_workflows_admin_page_renders_for_staff_and_sys_admin(staff_a, sys_admin, org_a):
    workflow = _workflow(org_a, "Eligibility")
    _run(org_a, workflow, "row-1")
    _policy(org_a)
    _signature(org_a)
    with org_context(org_a.id):
        batch.batch_job_create(
            workflow=workflow,
            revision=WorkflowRevision.objects.get(workflow=workflow),
            rows=batch.rows_numbered([{"member_id": "W1"}]),
        )
    registered = [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label == "workflows"
    ]
    for user in (staff_a, sys_admin):
        client = _logged_in(user)
        for model, model_admin in registered:
            name = model._meta.model_name
            changelist = client.get(_url(name))
            assert changelist.status_code == 200, (user.email, name)
            first = changelist.context["cl"].result_list[0]
            assert client.get(_url(name, "change", first.pk)).status_code == 200, name
            add = client.get(_url(name, "add"))
            with org_context(user.org_id):
                may_add = model_admin.has_add_permission(add.wsgi_request)
            assert add.status_code == (200 if may_add else 403), (user.email, name)


LISTS = [
    "workflow",
    "workflowrevision",
    "workflowrun",
    "workflowtrace",
    "orgrequirementpolicy",
    "requirementchangelog",
    "tasksignature",
    "fieldrequirement",
    "payerrequirement",
    "tasktype",
]


@pytest.mark.django_db
@pytest.mark.parametrize("model", LISTS)
def test_lists_run_the_same_queries_for_more_rows(staff_a, org_a, model):
    def fill(number: int) -> None:
        _run(org_a, _workflow(org_a, f"Workflow {number}"), f"row-{number}")
        _policy(org_a, f"field_{number}")
        _signature(org_a, ["eligibility", "claim", "prior_auth"][number])

    client = _logged_in(staff_a)
    fill(0)
    client.get(_url(model))  # warm the session and content-type caches

    before = _page_queries(client, _url(model))
    fill(1)
    fill(2)
    assert _page_queries(client, _url(model)) == before


def test_crossings_are_counted_as_pair_by_pair_would():
    """The layout's crossing count (inversions, Fenwick tree) against the definition: two
    edges between consecutive layers cross when their ends come in opposite orders."""
    import random
    from collections import defaultdict
    from itertools import pairwise

    from workflows.drawing.graph_layout import _crossings

    rng = random.Random(14)
    for _ in range(200):
        rows = [[f"{layer}.{n}" for n in range(rng.randint(1, 7))] for layer in range(4)]
        down = defaultdict(list)
        for upper, lower in pairwise(rows):
            for item in upper:
                down[item] += rng.sample(lower, rng.randint(0, len(lower)))
        expected = 0
        for upper, lower in pairwise(rows):
            ends = [
                (upper.index(item), lower.index(other)) for item in upper for other in down[item]
            ]
            expected += sum(1 for a, b in ends for c, d in ends if a < c and b > d)
        assert _crossings(rows, down) == expected
