"""The web agent's tiers on real Chromium against the sandbox portal: a step learnt the first
time (tier 2 by its description), found in memory by the next rows (tier 1), repaired when the
portal's layout drifts (tier 2, written back, so that the rows after are tier 1 again), and
refused rather than done on the wrong element."""

import pytest

from memory.models import MicroState
from rcm.context import org_context
from tenants import services as tenant_services
from tenants.models import ChannelType
from tests.webactions.test_executor import SECRETS
from webactions.executor import ActionFailed
from webactions.sandbox.data import sandbox_patients
from webactions.services import attempts
from webactions.services import credentials as credential_services
from webactions.services.agent_memory import MemoryScope

LOGIN = {
    "actions": [
        {"tool": "goto", "url": "login/"},
        {"tool": "fill", "target": {"label": "Username"}, "value": "{{ credential.username }}"},
        {"tool": "fill", "target": {"label": "Password"}, "value": "{{ credential.password }}"},
        {"tool": "totp", "target": {"label": "Verification code"}},
        {"tool": "click", "target": {"role": "button", "name": "Sign in"}},
    ],
    "page": {"label": "Password"},
}
# Written for layout v1, relative to the endpoint's address: the same list runs on v2 when the
# endpoint moves there (the portal's redesign).
SEARCH = [
    {"tool": "goto", "url": "./"},
    {"tool": "fill", "target": {"label": "Member ID"}, "value": "{{ input.member_id }}"},
    {"tool": "fill", "target": {"label": "Date of birth"}, "value": "{{ input.dob }}"},
    {"tool": "fill", "target": {"label": "Last name"}, "value": "{{ input.last_name }}"},
    {"tool": "click", "target": {"role": "button", "name": "Search"}},
    {
        "tool": "extract",
        "fields": {
            "plan": {"label": "Plan"},
            "group": {"label": "Group number"},
            "status": {"label": "Coverage status"},
        },
    },
]
TARGETED = ("fill", "totp", "click", "extract")


def _endpoint(tenant, portal: str, layout: str = "v1"):
    with org_context(tenant.id):
        endpoint = tenant_services.endpoint_create(
            org_id=tenant.id,
            name=f"Sandbox {layout}",
            channel_type=ChannelType.objects.get(code="uhc-portal"),
            base_url=f"{portal}/sandbox/{layout}/",
            config={"login": LOGIN},
        )
        credential = credential_services.credential_create(
            org_id=tenant.id,
            actor=tenant["org_admin"],
            endpoint_id=endpoint.pk,
            name="Clerk",
            credential_type="user_pass",
            secrets=SECRETS,
        )
    return endpoint, credential


def _move(tenant, endpoint, portal: str, layout: str):
    """The portal's redesign: the endpoint's address now serves another layout."""
    with org_context(tenant.id):
        return tenant_services.endpoint_update(
            endpoint=endpoint, actor=tenant["org_admin"], base_url=f"{portal}/sandbox/{layout}/"
        )


def _row(patient) -> dict:
    return {
        "member_id": patient.member_id,
        "dob": patient.date_of_birth.isoformat(),
        "last_name": patient.last_name,
    }


def _attempt(tenant, endpoint, credential, row, actions=SEARCH):
    with org_context(tenant.id):
        browse, answer = attempts.browser_attempt(
            endpoint=endpoint,
            credential=credential,
            actions=actions,
            outcomes={},
            context={"input": row, "nodes": {}},
            budget_s=60,
            scope=MemoryScope(endpoint=endpoint),
        )
    return browse, answer


def _reasons(browse) -> str:
    return "\n".join(f"{r.tool} {r.target}: {r.tier} {r.tier_reason}" for r in _targeted(browse))


def _targeted(browse) -> list:
    return [result for _, result in browse.results if result.tool in TARGETED]


@pytest.fixture
def patients():
    return iter([p for p in sandbox_patients() if p.active and not p.term])


def test_a_step_is_learnt_found_in_memory_repaired_after_a_redesign_and_found_again(
    org_a, portal, patients
):
    endpoint, credential = _endpoint(org_a, portal)
    # Cold: every target by its description (tier 2, score 1), learnt.
    first = next(patients)
    browse, answer = _attempt(org_a, endpoint, credential, _row(first))
    assert not isinstance(answer, ActionFailed), answer
    assert answer.outputs == {"plan": first.plan, "group": first.group_number, "status": "Active"}
    cold = _targeted(browse)
    assert len(cold) == 9  # 4 of the log-in, 5 of the search
    assert all(r.tier == 2 and r.tier_reason.startswith("miss; matched") for r in cold)
    # Warm: another patient, the same pages, every target from memory (tier 1).
    second = next(patients)
    browse, answer = _attempt(org_a, endpoint, credential, _row(second))
    assert answer.outputs["plan"] == second.plan
    warm = _targeted(browse)
    assert [(r.tier, r.tier_reason) for r in warm] == [(1, "hit")] * 5
    assert all(r.similarity >= 0.8 and r.resolve_ms is not None for r in warm)
    # The redesign (v2: new markup, reworded labels and buttons): repaired, each repair
    # written back with its evidence.
    endpoint = _move(org_a, endpoint, portal, "v2")
    third = next(patients)
    browse, answer = _attempt(org_a, endpoint, credential, _row(third))
    assert not isinstance(answer, ActionFailed), _reasons(browse)
    assert answer.outputs == {
        "plan": f"{third.payer} · {third.plan}",
        "group": third.group_number,
        "status": "Active coverage",
    }
    # The portal asked for a log-in first: the search's first target was looked for on the
    # log-in page, which is not the remembered page, and nothing was done there.
    refused, *drift = _targeted(browse)
    assert (refused.success, refused.tier) == (False, None)
    assert refused.tier_reason.startswith("miss: the page is not the remembered one")
    assert all(r.success and r.tier == 2 for r in drift), _reasons(browse)
    repaired = [r for r in drift if "repaired" in r.tier_reason]
    assert {r.target for r in repaired if r.tool != "extract"} >= {
        'label "Username"',
        'label "Verification code"',
        'the button "Sign in"',
        'label "Member ID"',
        'label "Date of birth"',
        'the button "Search"',
    }
    search = next(r for r in repaired if r.target == 'the button "Search"')
    assert search.repair["after"].startswith('button "Find patient"')
    assert search.repair["score"] >= 0.75 and search.repair["screenshot"]
    assert any(c.reason == "repair" for c in browse.captures)
    # Healed: the next row on v2 is tier 1 again.
    fourth = next(patients)
    browse, answer = _attempt(org_a, endpoint, credential, _row(fourth))
    assert answer.outputs["group"] == fourth.group_number
    assert [(r.tier, r.tier_reason) for r in _targeted(browse)] == [(1, "hit")] * 5
    with org_context(org_a.id):
        states = MicroState.objects.filter(endpoint=endpoint)
        # No row's values in any state: the key, the page, the action.
        stored = repr(list(states.values("step_key", "dom_snapshot", "action_json", "label")))
        for patient in (first, second, third, fourth):
            assert patient.member_id not in stored and patient.last_name not in stored
        assert SECRETS["password"] not in stored and SECRETS["username"] not in stored
