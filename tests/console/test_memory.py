"""The memory browser: the list filtered, searched and paged by keyset; a bad filter is a
message and nothing listed; a state's page shows its masked snapshot escaped, its action, its
success curve from the traces that used it, its nearest neighbours from the organization only;
Retire and Bring back through the memory's services, operators only."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from console.views import memory as memory_views
from memory.models import MicroState
from rcm.context import org_context
from rcm.lookups import UserRole
from tests.console import factories
from tests.helpers import logged_in as _client
from tests.rcm.test_admin_security import staff  # noqa: F401 (a fixture)
from tests.workflows.test_admin import HIT, MISSED, _actions
from workflows.models import WorkflowTrace

LIST = reverse("console:memory")


def _state_page(state) -> str:
    return reverse("console:memory_state", args=(state.pk,))


def _listed(response) -> list[int]:
    return [state.pk for state in response.context["states"]]


def _reload(tenant, state) -> MicroState:
    with org_context(tenant.id):
        return MicroState.objects.get(pk=state.pk)


@pytest.mark.django_db
def test_the_list_filters_searches_and_pages_by_keyset(staff, org_a, org_b, monkeypatch):  # noqa: F811
    eligibility = factories.workflow(org_a, "Eligibility")
    claims = factories.workflow(org_a, "Claims")
    ours = [
        factories.micro_state(org_a, f"Member ID field {n}", workflow=eligibility) for n in range(3)
    ]
    button = factories.micro_state(org_a, "Search button", workflow=claims)
    theirs = factories.micro_state(org_b, "Member ID field")
    with org_context(org_a.id):
        MicroState.objects.filter(pk=ours[0].pk).update(is_retired=True)
    client = _client(staff[UserRole.VIEWER])
    everything = client.get(LIST)
    assert everything.status_code == 200
    assert _listed(everything) == [button.pk, *[state.pk for state in reversed(ours)]]
    assert theirs.pk not in _listed(everything)
    assert _listed(client.get(LIST, {"workflow": str(claims.pk)})) == [button.pk]
    assert _listed(client.get(LIST, {"retired": "yes"})) == [ours[0].pk]
    assert ours[0].pk not in _listed(client.get(LIST, {"retired": "no"}))
    assert _listed(client.get(LIST, {"q": "member id"})) == [s.pk for s in reversed(ours)]
    # Two a page: the second page starts below the first's last id, filters kept.
    monkeypatch.setattr(memory_views, "PAGE_SIZE", 2)
    first = client.get(LIST, {"q": "member"})
    assert _listed(first) == [ours[2].pk, ours[1].pk]
    assert first.context["next_url"] == f"?q=member&before={ours[1].pk}"
    second = client.get(LIST + first.context["next_url"])
    assert _listed(second) == [ours[0].pk]
    assert second.context["next_url"] is None and second.context["first_url"] == "?q=member"


@pytest.mark.django_db
def test_a_bad_filter_is_a_message_and_nothing_is_listed(staff, org_a, org_b):  # noqa: F811
    factories.micro_state(org_a, "Member ID field")
    theirs = factories.workflow(org_b, "Bayside")
    client = _client(staff[UserRole.VIEWER])
    for query in ({"workflow": str(theirs.pk)}, {"before": "soon"}, {"retired": "maybe"}):
        response = client.get(LIST, query)
        assert response.status_code == 400, query
        assert response.context["states"] == []
        assert "Nothing is listed until the filters are right." in response.text
    response = client.get(LIST, {"workflow": str(theirs.pk)})
    assert "Workflow: Select a valid choice." in response.text


@pytest.mark.django_db
def test_the_state_page_shows_the_masked_page_escaped_and_its_action(staff, org_a):  # noqa: F811
    dom = (
        "<html><body><script>alert('x')</script><label>Member ID</label>"
        "<p>Patient SSN 123-45-6789</p></body></html>"
    )
    state = factories.micro_state(org_a, "Member ID field", dom=dom)
    page = _client(staff[UserRole.VIEWER]).get(_state_page(state))
    assert page.status_code == 200
    assert "123-45-6789" not in page.text  # masked when stored; never unmasked here
    assert "<script>alert" not in page.text
    (frame,) = re.findall(r"<iframe[^>]*>", page.text)
    assert " sandbox " in frame and "allow-scripts" not in frame
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in frame
    assert "default-src &#x27;none&#x27;" in frame
    assert "&quot;label&quot;: &quot;Member ID field&quot;" in page.text  # the action's JSON
    assert "No web action has used this state yet." in page.text


@pytest.mark.django_db
def test_the_success_curve_follows_the_traces_that_used_the_state(staff, org_a):  # noqa: F811
    workflow = factories.workflow(org_a, "Eligibility")
    state, other = (factories.micro_state(org_a, label) for label in ("Member ID", "Search"))
    run = factories.run(org_a, workflow)
    start = timezone.now() - timedelta(hours=5)
    for hour, kind in enumerate((HIT, HIT, MISSED, HIT)):
        _actions(org_a, run, start + timedelta(hours=hour), kind)
    with org_context(org_a.id):
        WorkflowTrace.objects.filter(action_type__startswith="web.").update(
            action_detail={"state": state.pk}
        )
        # Another state's use, later: not this state's curve.
        _actions(org_a, run, start + timedelta(hours=4), MISSED)
        WorkflowTrace.objects.filter(created_at=start + timedelta(hours=4)).update(
            action_detail={"state": other.pk}
        )
    page = _client(staff[UserRole.VIEWER]).get(_state_page(state))
    points = re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)"', str(page.context["curve"]))
    # The share of successes among the uses so far: 1, 1, 2/3, 3/4 (TOP 16 + 180 * (1 - s)).
    assert [float(y) for y in points] == [16, 16, 76, 61]
    assert page.context["outcomes"] == 4


@pytest.mark.django_db
def test_nearest_neighbours_come_from_the_organization_only(staff, org_a, org_b):  # noqa: F811
    dom = "<html><body><form><label>Member ID</label><input name='m'></form></body></html>"
    state = factories.micro_state(org_a, "Member ID field", dom=dom)
    near = factories.micro_state(org_a, "Member ID box", dom=dom.replace("form", "div"))
    retired = factories.micro_state(org_a, "Old member ID", dom=dom.replace("Member", "Plan"))
    with org_context(org_a.id):
        MicroState.objects.filter(pk=retired.pk).update(is_retired=True)
    theirs = factories.micro_state(org_b, "Member ID field", dom=dom)
    page = _client(staff[UserRole.VIEWER]).get(_state_page(state))
    neighbours = page.context["neighbours"]
    assert [near_one["state"].pk for near_one in neighbours] == [near.pk]
    assert theirs.pk not in [one["state"].pk for one in neighbours]
    assert re.fullmatch(r"[01]\.\d{3}", neighbours[0]["similarity"])
    assert f'href="{_state_page(near)}"' in page.text


@pytest.mark.django_db
def test_an_operator_retires_a_state_and_brings_it_back(staff, org_a):  # noqa: F811
    state = factories.micro_state(org_a, "Member ID field")
    with org_context(org_a.id):
        MicroState.objects.filter(pk=state.pk).update(success_ema=0.2, failure_count=6)
    client = _client(staff[UserRole.OPERATOR])
    page = client.get(_state_page(state))
    assert reverse("console:memory_state_retire", args=(state.pk,)) in page.text
    response = client.post(reverse("console:memory_state_retire", args=(state.pk,)))
    assert response["Location"] == _state_page(state)
    assert _reload(org_a, state).is_retired
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        f"Micro-state {state.pk} is retired: the web agent no longer finds it."
    ]
    response = client.post(reverse("console:memory_state_unretire", args=(state.pk,)))
    back = _reload(org_a, state)
    assert (back.is_retired, back.success_ema, back.failure_count) == (False, 1.0, 0)
    # The last message: the first waits in the session, no redirect having been followed.
    assert [str(m) for m in get_messages(response.wsgi_request)][-1] == (
        f"Micro-state {state.pk} is back in use; its success average starts again from its "
        "next use."
    )


@pytest.mark.django_db
def test_a_viewer_sees_no_retire_button_and_cannot_retire(staff, org_a):  # noqa: F811
    state = factories.micro_state(org_a, "Member ID field")
    client = _client(staff[UserRole.VIEWER])
    retire = reverse("console:memory_state_retire", args=(state.pk,))
    assert retire not in client.get(_state_page(state)).text
    assert client.post(retire).status_code == 403
    assert not _reload(org_a, state).is_retired
