"""Micro-states in the admin: staff see their organization's states with a success bar;
operators retire and revive them through the services; viewers only look."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from memory import services
from memory.models import MicroState
from rcm.context import org_context
from rcm.lookups import UserRole
from tests.helpers import logged_in as _logged_in
from tests.helpers import staff_user as _staff
from tests.workflows.test_admin import _last_message

pytestmark = pytest.mark.django_db
LIST = reverse("admin:memory_microstate_changelist")


def _state(tenant, label: str, vector_at: int = 0) -> MicroState:
    with org_context(tenant.id):
        return services.micro_state_store(
            dom_snapshot=f"<main><h1>{label}</h1><button>Go</button></main>",
            action_json={"tool": "click"},
            label=label,
            text_emb=[1.0 if i == vector_at else 0.0 for i in range(768)],
        ).state


def test_staff_see_only_their_organizations_states_with_a_success_bar(org_a, org_b):
    mine = _state(org_a, "Eligibility <results>")
    _state(org_b, "Their page")
    client = _logged_in(_staff(org_a, "ops@acme.test", UserRole.OPERATOR))
    page = client.get(LIST).content.decode()
    assert "Eligibility &lt;results&gt;" in page and "Their page" not in page
    assert "background: #2e7d32" in page and "1.00" in page
    assert client.get(reverse("admin:memory_microstate_change", args=[mine.pk])).status_code == 200
    assert client.get(reverse("admin:memory_microstate_add")).status_code == 403


def test_the_list_costs_the_same_queries_for_more_states(org_a):
    client = _logged_in(_staff(org_a, "ops@acme.test", UserRole.OPERATOR))
    _state(org_a, "one")
    with CaptureQueriesContext(connection) as one:
        client.get(LIST)
    for n in range(1, 6):
        _state(org_a, f"page {n}", vector_at=n)
    with CaptureQueriesContext(connection) as six:
        client.get(LIST)
    assert len(six) == len(one)


def test_operators_retire_and_revive_viewers_cannot(org_a):
    state = _state(org_a, "Claim status")
    operator = _logged_in(_staff(org_a, "ops@acme.test", UserRole.OPERATOR))
    response = operator.post(LIST, {"action": "retire", "_selected_action": [state.pk]})
    assert _last_message(response) == "Retired 1 micro-state."
    with org_context(org_a.id):
        assert MicroState.objects.get(pk=state.pk).is_retired
    operator.post(LIST, {"action": "unretire", "_selected_action": [state.pk]})
    with org_context(org_a.id):
        assert not MicroState.objects.get(pk=state.pk).is_retired
    viewer = _logged_in(_staff(org_a, "look@acme.test", UserRole.VIEWER))
    assert 'value="retire"' not in viewer.get(LIST).content.decode()
    viewer.post(LIST, {"action": "retire", "_selected_action": [state.pk]})
    with org_context(org_a.id):
        assert not MicroState.objects.get(pk=state.pk).is_retired
