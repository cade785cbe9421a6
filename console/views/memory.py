"""The memory browser: the organization's micro-states, each with the page it was met on, the
action that worked there, how that action has done since, and the states most like it.

The page snapshot is shown as it is stored, masked (rcm.phi masked it before it was written;
nothing here unmasks): as escaped source text, and drawn in a sandboxed frame that runs no
script and loads nothing (its own content security policy forbids every fetch).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.utils import timezone

from console import links
from console.access import WRITE_METHODS, console_view, may, page
from console.charts import Line, share_chart_svg
from memory import selectors as memory_selectors
from memory import services as memory_services
from rcm import permissions
from tenants import selectors as tenant_selectors
from workflows.selectors import authoring as authoring_selectors
from workflows.selectors.traces import state_outcome_list

PAGE_SIZE = 50
NEIGHBOURS = 10
# The success curve: the state's newest uses, each point the share of successes among the
# uses up to it within a moving window (a single early failure does not weigh forever).
CURVE_USES = 500
CURVE_WINDOW = 10
# Before a snapshot's markup: a policy that lets the frame fetch nothing at all (no image,
# style sheet, font or frame of the portal's), and inline styles only.
SNAPSHOT_POLICY = (
    '<meta http-equiv="Content-Security-Policy" '
    "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
)
RETIRED_CHOICES = (("", "Live and retired"), ("no", "Live only"), ("yes", "Retired only"))


class StateFilter(forms.Form):
    """The list's filters, each checked against the organization's own rows: another
    organization's workflow or endpoint is not a valid choice."""

    workflow = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="Any workflow", to_field_name="pk"
    )
    node = forms.ModelChoiceField(queryset=None, required=False, empty_label="Any node")
    endpoint = forms.ModelChoiceField(queryset=None, required=False, empty_label="Any endpoint")
    retired = forms.ChoiceField(choices=RETIRED_CHOICES, required=False, label="State")
    q = forms.CharField(required=False, max_length=200, label="Label contains", strip=True)
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, data):
        super().__init__(data)
        self.fields["workflow"].queryset = authoring_selectors.workflow_list().order_by("name")
        self.fields["endpoint"].queryset = tenant_selectors.endpoint_list().order_by("name")
        chosen = _uuid(data.get("workflow"))
        workflow = self.fields["workflow"].queryset.filter(pk=chosen).first() if chosen else None
        nodes = authoring_selectors.workflow_node_list(workflow=workflow).order_by("key")
        self.fields["node"].queryset = nodes if workflow is not None else nodes.none()
        self.fields["node"].label_from_instance = lambda node: node.key
        self.fields["node"].disabled = workflow is None

    def clean_node(self):
        # A node of no workflow chosen: the field is disabled and says nothing.
        return self.cleaned_data.get("node") if not self.fields["node"].disabled else None


def _uuid(value):
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


@console_view("micro_state")
def memory(request):
    form = StateFilter(request.GET)
    if not form.is_valid():
        context = {"form": form, "states": []}
        return page(request, "console/memory_list.html", context, title="Memory", status=400)
    data = form.cleaned_data
    found = memory_selectors.micro_state_page(
        size=PAGE_SIZE,
        before_id=data["before"],
        workflow_id=data["workflow"].pk if data["workflow"] else None,
        node_id=data["node"].pk if data["node"] else None,
        endpoint_id=data["endpoint"].pk if data["endpoint"] else None,
        is_retired={"yes": True, "no": False}.get(data["retired"]),
        label_contains=data["q"],
    )
    query = request.GET.copy()
    query.pop("before", None)
    context = {
        "form": form,
        "states": found.states,
        "first_url": f"?{query.urlencode()}" if data["before"] else None,
        "next_url": None,
        "retire_below": settings.MEMORY_RETIRE_BELOW,
    }
    if found.next_before is not None:
        query["before"] = str(found.next_before)
        context["next_url"] = f"?{query.urlencode()}"
    return page(request, "console/memory_list.html", context, title="Memory")


@console_view("micro_state")
def memory_state(request, state_id: int):
    state = _state(state_id)
    outcomes = state_outcome_list(state_id=state.pk, limit=CURVE_USES)
    context = {
        "state": state,
        "action_json": _pretty(state.action_json),
        "semantic_spec": _pretty(state.semantic_spec),
        "snapshot_frame": SNAPSHOT_POLICY + state.dom_snapshot,
        "snapshot_source": state.dom_snapshot,
        "uses": state.success_count + state.failure_count,
        "curve": _curve(outcomes),
        "outcomes": len(outcomes),
        "curve_uses": CURVE_USES,
        "curve_window": CURVE_WINDOW,
        "neighbours": [
            {"state": match.state, "similarity": f"{match.similarity:.3f}"}
            for match in memory_selectors.micro_state_neighbours(state=state, k=NEIGHBOURS)
        ],
        "replaced": list(memory_selectors.micro_state_replaced_list(state=state)),
        "may_retire": may(request, "micro_state", permissions.RUN),
    }
    return page(request, "console/memory_state.html", context, title=f"Micro-state {state.pk}")


@console_view("micro_state", permissions.RUN, methods=WRITE_METHODS)
def memory_state_retire(request, state_id: int):
    state = _state(state_id)
    if state.is_retired:
        messages.info(request, f"Micro-state {state.pk} was already retired.")
    else:
        memory_services.micro_state_retire(state=state)
        messages.success(
            request, f"Micro-state {state.pk} is retired: the web agent no longer finds it."
        )
    return redirect(links.state_url(state.pk))


@console_view("micro_state", permissions.RUN, methods=WRITE_METHODS)
def memory_state_unretire(request, state_id: int):
    state = _state(state_id)
    if not state.is_retired:
        messages.info(request, f"Micro-state {state.pk} is already in use.")
    else:
        memory_services.micro_state_unretire(state=state)
        messages.success(
            request,
            f"Micro-state {state.pk} is back in use; its success average starts again from "
            "its next use.",
        )
    return redirect(links.state_url(state.pk))


def _state(state_id: int):
    state = memory_selectors.micro_state_detail(state_id=state_id)
    if state is None:
        raise Http404("No such micro-state in this organization.")
    return state


def _pretty(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _curve(outcomes: list[tuple[datetime, bool]]):
    """The success share over the last CURVE_WINDOW uses at each use, oldest first; with the
    first and the last use's time under the axis."""
    if not outcomes:
        return None
    shares, window = [], []
    for _, success in outcomes:
        window = [*window[-(CURVE_WINDOW - 1) :], success]
        shares.append(sum(window) / len(window))
    labels = [""] * len(outcomes)
    labels[0] = f"{timezone.localtime(outcomes[0][0]):%Y-%m-%d %H:%M}"
    if len(outcomes) > 1:
        labels[-1] = f"{timezone.localtime(outcomes[-1][0]):%Y-%m-%d %H:%M}"
    return share_chart_svg(
        x_labels=labels,
        lines=[Line(f"success, last {CURVE_WINDOW} uses", shares)],
        label="the state's success share over its uses",
        dots=len(outcomes) <= 60,
    )
