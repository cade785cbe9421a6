"""The web agent's tiers on real Chromium against the sandbox portal: a step learnt the first
time (tier 2 by its description), found in memory by the next rows (tier 1), repaired when the
portal's layout drifts (tier 2, written back, so that the rows after are tier 1 again), and
refused rather than done on the wrong element."""

import threading

import pytest
from django.db import OperationalError

from memory.embeddings import embedder
from memory.models import MicroState
from rcm.context import org_context
from tenants import services as tenant_services
from tenants.models import ChannelType
from tests.webactions.factories import patient_row as _row
from tests.webactions.llm_stub import TOTAL_TOKENS
from tests.webactions.test_executor import SECRETS
from tests.webactions.test_web_kind import _endpoint_and_credential
from webactions import kinds
from webactions.agent import Agent, Memory
from webactions.executor import ActionFailed, run_actions
from webactions.management.commands.seed_sandbox_demo import LOGIN, SEARCH
from webactions.pool import BrowserThread
from webactions.relay import Relay
from webactions.sandbox.data import sandbox_patients
from webactions.services import agent_memory, attempts
from webactions.services.agent_memory import MemoryScope
from workflows.engine import templates

# The demo's log-in and search, written for layout v1 relative to the endpoint's address: the
# same lists run on v2 when the endpoint moves there (the portal's redesign).
TARGETED = ("fill", "totp", "click", "extract")


def _endpoint(tenant, portal: str, layout: str = "v1"):
    return _endpoint_and_credential(tenant, f"{portal}/sandbox/{layout}/", login=LOGIN)


def _move(tenant, endpoint, portal: str, layout: str):
    """The portal's redesign: the endpoint's address now serves another layout."""
    with org_context(tenant.id):
        return tenant_services.endpoint_update(
            endpoint=endpoint, actor=tenant["org_admin"], base_url=f"{portal}/sandbox/{layout}/"
        )


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
    assert answer.outputs == {"coverage": "Active", "plan": first.plan, "group": first.group_number}
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
        "coverage": "Active coverage",
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


# -- the tiers' refusals, on pages made for them ---------------------------------------------

FORM = """<!doctype html><title>Patient search</title><h1>Patient search</h1>
<form>
  <p><label for="member_id">Member ID</label><input id="member_id" name="member_id"></p>
  <p><label for="dob">Date of birth</label><input id="dob" name="dob" type="date"></p>
  <p><label for="last_name">Last name</label><input id="last_name" name="last_name"></p>
  <p><label for="service">Service type</label><select id="service"><option>30</option></select></p>
  <button type="submit" id="btnSearch">Search</button>
</form>"""
FILL_MEMBER = [{"tool": "fill", "target": {"label": "Member ID"}, "value": "W123456789"}]
CLICK_SEARCH = [{"tool": "click", "target": {"role": "button", "name": "Search"}}]


@pytest.fixture(scope="module")
def browser():
    return BrowserThread()


@pytest.fixture
def endpoints(org_a, org_b):
    """An endpoint in each organization (their memories are scoped by it)."""
    made = {}
    for tenant in (org_a, org_b):
        with org_context(tenant.id):
            made[tenant.id] = tenant_services.endpoint_create(
                org_id=tenant.id,
                name="Portal",
                channel_type=ChannelType.objects.get(code="uhc-portal"),
                base_url="https://portal.example/",
                config={},
            )
    return made


def _on_page(browser, tenant, endpoint, html: str, actions: list, declared=None):
    """``actions`` carried out by the agent on a page of ``html``, its memory served by this
    thread (the task's, in the organization's context), as a worker's attempt does."""
    declared = declared or {}
    relay = Relay()
    memory = Memory(
        relay=relay,
        scope=MemoryScope(endpoint=endpoint),
        embedder=embedder(),
        declared=declared,
        secrets=("s3cret-Passw0rd",),
    )
    agent = Agent(memory=memory, phase="actions")

    def job(slot):
        slot.page.set_content(html)
        try:
            outcome = run_actions(
                slot.page,
                actions,
                render=lambda text: str(templates.render_value(text, {"input": declared})),
                base_url="https://portal.example/",
                allowed_hosts={"portal.example"},
                agent=agent,
            )
        except ActionFailed as failure:
            return failure
        return outcome

    stop = threading.Event()
    with org_context(tenant.id):
        answer = attempts.answer_serving(browser.submit(job), relay=relay, stop=stop, wait_s=60)
    results = answer.results
    return answer, results[-1]


def _states(tenant, endpoint):
    with org_context(tenant.id):
        return list(MicroState.objects.filter(endpoint=endpoint).order_by("id"))


def test_a_remembered_element_now_hidden_fails_validation_and_is_repaired_and_replaced(
    browser, org_a, endpoints
):
    endpoint = endpoints[org_a.id]
    answer, learnt = _on_page(browser, org_a, endpoint, FORM, FILL_MEMBER)
    assert (learnt.tier, learnt.tier_reason[:13]) == (2, "miss; matched")
    [old] = _states(org_a, endpoint)
    assert old.action_json["element"]["css"] == "#member_id"
    # The remembered selector now finds a hidden input; the field is another one.
    moved = FORM.replace(
        '<label for="member_id">Member ID</label><input id="member_id" name="member_id">',
        '<input id="member_id" style="display:none"><label for="mid">Member ID</label>'
        '<input id="mid" name="member_id">',
    )
    answer, repaired = _on_page(browser, org_a, endpoint, moved, FILL_MEMBER)
    assert repaired.success and repaired.tier == 2
    assert repaired.tier_reason.startswith("validation_failed:hidden; repaired score=1.00")
    assert repaired.state == old.pk
    # Written back: the old state retired, aliased to the new one; the next row is tier 1.
    old_now, new = _states(org_a, endpoint)
    assert (old_now.is_retired, old_now.aliased_to_id) == (True, new.pk)
    assert new.action_json["element"]["css"] == "#mid"
    answer, again = _on_page(browser, org_a, endpoint, moved, FILL_MEMBER)
    assert (again.tier, again.tier_reason, again.state) == (1, "hit", new.pk)


def test_two_equally_good_candidates_are_a_tie_and_nothing_is_done(browser, org_a, endpoints):
    endpoint = endpoints[org_a.id]
    _on_page(browser, org_a, endpoint, FORM, FILL_MEMBER)
    # Two fields that both mean "member ID" to the portal vocabulary, neither called so.
    twins = FORM.replace(
        '<label for="member_id">Member ID</label><input id="member_id" name="member_id">',
        '<label for="s">Subscriber ID</label><input id="s" name="subscriber">'
        '<label for="m">Member number</label><input id="m" name="member_no">',
    )
    answer, refused = _on_page(browser, org_a, endpoint, twins, FILL_MEMBER)
    assert isinstance(answer, ActionFailed) and answer.kind == "target_ambiguous"
    assert refused.tier is None
    assert "miss: tie: 1.00 and 1.00" in refused.tier_reason


def test_another_page_entirely_is_not_repaired_onto(browser, org_a, endpoints):
    endpoint = endpoints[org_a.id]
    _on_page(browser, org_a, endpoint, FORM, FILL_MEMBER)
    # A claim-status page with a field a repair would take for the member ID: the gate stops
    # it, the page is not the remembered one.
    other = """<!doctype html><title>Claim status</title><h1>Claim status inquiry</h1>
    <table><tr><th>Claim #</th><td>C-1</td></tr><tr><th>Billed</th><td>$120.00</td></tr></table>
    <p><label for="sub">Subscriber number</label><input id="sub"></p>
    <p><label for="icn">Claim number</label><input id="icn"></p><button>Check status</button>"""
    answer, refused = _on_page(browser, org_a, endpoint, other, FILL_MEMBER)
    assert isinstance(answer, ActionFailed) and answer.kind == "target_not_found"
    assert refused.tier is None
    assert refused.tier_reason.startswith("miss: the page is not the remembered one")


def test_another_organizations_identical_page_in_memory_is_never_used(
    browser, org_a, org_b, endpoints
):
    _on_page(browser, org_b, endpoints[org_b.id], FORM, FILL_MEMBER)
    _on_page(browser, org_b, endpoints[org_b.id], FORM, FILL_MEMBER)
    [theirs] = _states(org_b, endpoints[org_b.id])
    # The same page in organization A: nothing remembered there (not B's state, at 1.00).
    answer, first = _on_page(browser, org_a, endpoints[org_a.id], FORM, FILL_MEMBER)
    assert first.tier == 2 and first.tier_reason.startswith("miss; matched")
    assert first.state is None
    [ours] = _states(org_a, endpoints[org_a.id])
    assert ours.pk != theirs.pk


def test_two_rows_with_different_patients_meet_the_same_state(browser, org_a, endpoints):
    endpoint = endpoints[org_a.id]
    filled = [{"tool": "fill", "target": {"label": "Member ID"}, "value": "{{ input.member_id }}"}]
    echoed = FORM.replace("<h1>Patient search</h1>", "<h1>Patient search</h1><p>{echo}</p>")
    rows = [
        {"member_id": "W100000001", "last_name": "Okonkwo"},
        {"member_id": "W200000002", "last_name": "Lindqvist"},
    ]
    seen = []
    for row in rows:
        # The page shows the row's own patient (as a portal's header does).
        page = echoed.replace("{echo}", f"Last patient: {row['last_name']} {row['member_id']}")
        answer, result = _on_page(browser, org_a, endpoint, page, filled, row)
        seen.append(result)
    assert [(r.tier, r.tier_reason[:4]) for r in seen] == [(2, "miss"), (1, "hit")]
    [state] = _states(org_a, endpoint)
    assert "Okonkwo" not in state.dom_snapshot and "W100000001" not in state.dom_snapshot
    assert "Okonkwo" not in state.step_key and "W1" not in state.step_key


# -- tier 3: a model, when one is configured ---------------------------------------------------

ROW = {"member_id": "W123456789", "last_name": "Okonkwo", "dob": "1980-04-30"}
TWINS = FORM.replace(
    '<label for="member_id">Member ID</label><input id="member_id" name="member_id">',
    "<p>Patient: Okonkwo, W123456789, born 04/30/1980; signed in as s3cret-Passw0rd</p>"
    '<label for="s">Subscriber ID</label><input id="s" name="subscriber">'
    '<label for="m">Member number</label><input id="m" name="member_no">',
)
FILL_ROW = [{"tool": "fill", "target": {"label": "Member ID"}, "value": "{{ input.member_id }}"}]


def test_when_tier_2_refuses_the_model_names_a_candidate_and_sees_nothing_of_the_row(
    browser, org_a, endpoints, provider
):
    endpoint = endpoints[org_a.id]
    _on_page(browser, org_a, endpoint, FORM, FILL_ROW, ROW)
    answer, chosen = _on_page(browser, org_a, endpoint, TWINS, FILL_ROW, ROW)
    assert not isinstance(answer, ActionFailed), chosen.tier_reason
    # The stub names "c2": the second best-scored candidate, the member number.
    assert chosen.tier == 3 and chosen.tier_reason.startswith("validation_failed:missing; llm")
    assert "tie" in chosen.tier_reason and chosen.resolved.startswith('model: textbox "Member')
    assert chosen.llm["model"] == "stub-model" and chosen.llm["tokens"] == TOTAL_TOKENS
    [request] = provider.requests
    question = provider.question()
    assert question["candidates"][1]["name"] == "Member number"
    # Nothing of the row or the credential in what left the platform, nor in the trace.
    trace = kinds.step_trace("actions", chosen, {})
    sent = request.raw + repr(request.headers) + trace.llm_prompt + trace.llm_response
    for value in ("W123456789", "Okonkwo", "04/30/1980", "1980-04-30", "s3cret-Passw0rd"):
        assert value not in sent
    assert (trace.tier, trace.llm_model, trace.llm_tokens_used) == (3, "stub-model", TOTAL_TOKENS)
    # Written back: the next row on this page is tier 1, no model asked.
    answer, again = _on_page(browser, org_a, endpoint, TWINS, FILL_ROW, ROW)
    assert (again.tier, again.tier_reason) == (1, "hit")
    assert len(provider.requests) == 1


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        ("prose", "llm_bad_answer"),
        ("unknown", "llm_unknown_candidate"),
        ("slow", "llm_timeout"),
    ],
)
def test_a_model_that_answers_prose_an_unknown_candidate_or_too_late_fails_the_action(
    browser, org_a, endpoints, provider, settings, mode, kind
):
    settings.WEB_LLM_TIMEOUT_S = 0.2
    provider.mode = mode
    endpoint = endpoints[org_a.id]
    _on_page(browser, org_a, endpoint, FORM, FILL_ROW, ROW)
    answer, refused = _on_page(browser, org_a, endpoint, TWINS, FILL_ROW, ROW)
    assert isinstance(answer, ActionFailed) and answer.kind == kind
    assert refused.tier is None and "llm failed" in refused.tier_reason
    assert refused.llm["prompt"] and "Member ID" in str(answer)
    assert answer.transient == (kind == "llm_timeout")


def test_the_v3_trap_is_refused_from_memory_too_never_a_click_on_reset(org_a, portal, patients):
    endpoint, credential = _endpoint(org_a, portal)
    browse, answer = _attempt(org_a, endpoint, credential, _row(next(patients)))
    assert not isinstance(answer, ActionFailed), answer
    # v3: the search button lost its text (an icon), and its name went to the Reset button.
    endpoint = _move(org_a, endpoint, portal, "v3")
    browse, answer = _attempt(org_a, endpoint, credential, _row(next(patients)))
    assert isinstance(answer, ActionFailed), _reasons(browse)
    click = next(
        r for r in _targeted(browse) if r.tool == "click" and r.target.endswith('"Search"')
    )
    assert not click.success and click.tier is None
    assert click.tier_reason.startswith("validation_failed:missing; miss: ")
    assert answer.kind in ("target_ambiguous", "target_mislabelled"), answer
    # Named, with a picture of the page it was refused on.
    assert 'the button "Search" was not found' in str(answer)
    assert [c.reason for c in browse.captures] == ["failure"]
    # The fills before it came from memory (v3 is v1's page otherwise), after the log-in the
    # new address asked for.
    fills = [r for phase, r in browse.results if phase == "actions" and r.tool == "fill"]
    assert [(r.tier, r.tier_reason) for r in fills[-3:]] == [(1, "hit")] * 3


def test_a_memory_that_cannot_be_searched_fails_the_action_as_transient(
    browser, org_a, endpoints, monkeypatch
):
    def unreachable(**_):
        raise OperationalError("the database went away")

    monkeypatch.setattr(agent_memory, "state_recall", unreachable)
    answer, failed = _on_page(browser, org_a, endpoints[org_a.id], FORM, FILL_MEMBER)
    assert isinstance(answer, ActionFailed) and answer.kind == "memory_unavailable"
    assert answer.transient and not failed.success
    assert "OperationalError" in str(answer) and "went away" not in str(answer)
