"""The action language and its executor, on real Chromium against the sandbox portal: an
eligibility check by semantic targets on both layouts, and every refusal named."""

import re
import socket
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import sync_playwright

from rcm import addresses
from tests.webactions.factories import patient_row as _row
from webactions import actions, browser
from webactions.executor import ActionFailed, guard_addresses, run_actions, trusted_prefixes
from webactions.sandbox import views
from webactions.sandbox.data import sandbox_patients
from workflows.engine import templates

CLERK = views.ACCOUNTS["clerk"]
SECRETS = {"username": CLERK.username, "password": CLERK.password, "totp_seed": CLERK.totp_seed}


def eligibility_actions(layout: str) -> list[dict]:
    """Log in, search, read the benefits: v1 and v2 differ only in their words."""
    words = {
        "v1": ("Username", "Verification code", "Sign in", "Member ID", "Date of birth", "Search",
               "Plan", "Group number", "Coverage status"),
        "v2": ("User ID", "One-time passcode", "Log in", "Subscriber ID", "Patient date of birth",
               "Find patient", "Health plan", "Group #", "Eligibility"),
    }[layout]  # fmt: skip
    user, code, sign_in, member, born, find, plan, group, status = words
    return [
        {"tool": "goto", "url": f"/sandbox/{layout}/"},
        {"tool": "fill", "target": {"label": user}, "value": "{{ credential.username }}"},
        {"tool": "fill", "target": {"label": "Password"}, "value": "{{ credential.password }}"},
        {"tool": "totp", "target": {"label": code}},
        {"tool": "click", "target": {"role": "button", "name": sign_in}},
        {"tool": "fill", "target": {"label": member}, "value": "{{ input.member_id }}"},
        {"tool": "fill", "target": {"label": born}, "value": "{{ input.dob }}"},
        {"tool": "fill", "target": {"label": "Last name"}, "value": "{{ input.last_name }}"},
        {"tool": "click", "target": {"role": "button", "name": find}},
        {
            "tool": "extract",
            "fields": {
                "plan": {"label": plan},
                "group": {"label": group},
                "status": {"label": status},
            },
        },
    ]


@pytest.fixture(scope="module")
def chromium():
    with sync_playwright() as playwright:
        started = browser.launch(playwright)
        yield started
        started.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context()
    yield context.new_page()
    context.close()


def _run(page, portal, action_list, row, **kwargs):
    context = {"input": row, "nodes": {}, "credential": SECRETS}
    return run_actions(
        page,
        action_list,
        render=lambda text: templates.render_value(text, context),
        base_url=portal,
        allowed_hosts={urlsplit(portal).hostname},
        secrets=SECRETS,
        **kwargs,
    )


@pytest.mark.parametrize("layout", ["v1", "v2"])
def test_an_eligibility_check_by_semantic_targets_on_both_layouts(page, portal, layout):
    assert actions.action_problems(eligibility_actions(layout)) == []
    patient = next(p for p in sandbox_patients() if p.active)
    outcome = _run(page, portal, eligibility_actions(layout), _row(patient))
    assert outcome.outputs["plan"].endswith(patient.plan)
    assert outcome.outputs["group"] == patient.group_number
    assert outcome.outputs["status"] in ("Active", "Active coverage")
    assert [result.tool for result in outcome.results][:2] == ["goto", "fill"]
    assert all(result.success for result in outcome.results)
    assert (
        outcome.results[4].resolved
        == f'role button "{eligibility_actions(layout)[4]["target"]["name"]}"'
    )
    # No filled value in anything kept of the actions (traces are made from these).
    kept = repr(outcome.results)
    assert CLERK.password not in kept and patient.member_id not in kept


@pytest.mark.parametrize(
    ("layout", "service", "oon", "deductible"),
    [
        ("v1", "Service type", "Show out-of-network benefits", "Deductible"),
        ("v2", "Type of service", "Include out-of-network", "OON deductible"),
    ],
)
def test_select_and_check_choose_what_the_portal_shows(
    page, portal, layout, service, oon, deductible
):
    patient = sandbox_patients()[3]
    search = eligibility_actions(layout)[:8]
    options = [
        {"tool": "select", "target": {"label": service}, "value": "98 - {{ input.service }}"},
        {"tool": "check", "target": {"label": oon}},
        eligibility_actions(layout)[8],
    ]
    table = {"oon": {"table": "oonTable"}} if layout == "v1" else {"oon": {"label": deductible}}
    fields = {"service": {"label": service}, **table}
    row = {**_row(patient), "service": "Professional (physician) visit - office"}
    outcome = _run(page, portal, [*search, *options, {"tool": "extract", "fields": fields}], row)
    assert outcome.outputs["service"] == "98 - Professional (physician) visit - office"
    amount = f"${patient.out_of_network_deductible}"
    if layout == "v1":
        assert {"Benefit": "Deductible", "Amount": amount} in outcome.outputs["oon"]
    else:
        assert outcome.outputs["oon"] == amount
    # Unchecked, the page has no out-of-network section.
    unchecked = [*options[:1], {"tool": "check", "target": {"label": oon}, "checked": False}]
    page.goto(f"{portal}/sandbox/{layout}/")
    _run(page, portal, [*search[5:8], *unchecked, options[2]], row)
    assert page.get_by_role("heading", name=re.compile("out.of.network", re.I)).count() == 0
    assert page.get_by_role("heading", name=re.compile("benefits|plan", re.I)).count()


def test_a_target_that_matches_twice_is_refused_and_nothing_is_clicked(page, portal):
    patient = next(p for p in sandbox_patients() if len(p.claims) >= 2)
    login = eligibility_actions("v1")[:10]
    ambiguous = [*login, {"tool": "click", "target": {"role": "link"}}]
    with pytest.raises(ActionFailed) as refused:
        _run(page, portal, ambiguous, _row(patient), timeout_ms=2000)
    assert refused.value.kind == "target_ambiguous"
    assert "elements are the link on" in str(refused.value) and "nothing was done" in str(
        refused.value
    )
    assert urlsplit(page.url).path.endswith(f"/members/{patient.member_id}/")  # still where it was


def test_a_target_not_on_the_page_is_named(page, portal):
    missing = [
        {"tool": "goto", "url": "/sandbox/v2/login/"},
        {"tool": "fill", "target": {"label": "Username"}, "value": "x"},
    ]
    with pytest.raises(ActionFailed) as refused:
        _run(page, portal, missing, {}, timeout_ms=500)
    assert refused.value.kind == "target_not_found"
    assert 'no element is label "Username"' in str(refused.value)
    assert [r.success for r in refused.value.results] == [True, False]


def test_goto_another_host_is_refused(page, portal):
    with pytest.raises(ActionFailed) as refused:
        _run(page, portal, [{"tool": "goto", "url": "https://evil.test/steal"}], {})
    assert refused.value.kind == "forbidden_host" and not refused.value.transient


def test_a_portal_that_fails_or_does_not_answer_is_transient(page, portal):
    with pytest.raises(ActionFailed) as down:
        _run(page, portal, [{"tool": "goto", "url": "/sandbox/v1-fail100/login/"}], {})
    assert down.value.kind == "http_5xx" and down.value.transient
    slow = [{"tool": "goto", "url": "/sandbox/v1-slow2000/login/", "timeout_ms": 300}]
    with pytest.raises(ActionFailed) as late:
        _run(page, portal, slow, {})
    assert late.value.kind == "page_timeout" and late.value.transient


def test_a_portal_that_is_down_is_unreachable_and_transient(page, portal):
    closed = f"http://127.0.0.1:{_closed_port()}/login/"
    with pytest.raises(ActionFailed) as down:
        _run(page, portal, [{"tool": "goto", "url": closed}], {})
    assert down.value.kind == "page_unreachable" and down.value.transient
    assert "ERR_CONNECTION_REFUSED at 127.0.0.1" in str(down.value)


def test_no_request_reaches_a_private_address_but_the_own_sandbox(page, portal, settings):
    settings.ENGINE_HTTP_ALLOW_PRIVATE = False
    guard_addresses(page.context)
    with pytest.raises(ActionFailed) as refused:
        _run(page, portal, [{"tool": "goto", "url": "/sandbox/v1/login/"}], {})
    assert refused.value.kind == "forbidden_address" and not refused.value.transient
    assert str(refused.value) == "action 1 (goto): refused at 127.0.0.1: not a public address"
    # The platform's own sandbox, and only its /sandbox/ pages. (A new page: the refused one
    # is still loading Chromium's error page.)
    settings.PUBLIC_BASE_URL = portal
    page = page.context.new_page()
    outcome = _run(page, portal, [{"tool": "goto", "url": "/sandbox/v1/login/"}], {})
    assert outcome.results[0].success
    with pytest.raises(ActionFailed) as api:
        _run(page, portal, [{"tool": "goto", "url": "/api/v2/schema/"}], {})
    assert api.value.kind == "forbidden_address"
    # What a portal page asks for on its own (an image from the cloud's metadata service) is
    # aborted before it leaves the browser.
    failed = []
    page = page.context.new_page()
    page.on("requestfailed", lambda request: failed.append((request.url, request.failure)))
    page.set_content('<img src="http://169.254.169.254/latest/meta-data/">')
    page.wait_for_load_state("load")
    [(url, failure)] = failed
    assert url == "http://169.254.169.254/latest/meta-data/"
    assert failure.startswith("net::ERR_BLOCKED_BY_CLIENT")


def test_requests_to_the_checked_origin_skip_the_guard_and_others_do_not(
    chromium, portal, settings, monkeypatch
):
    settings.ENGINE_HTTP_ALLOW_PRIVATE = False
    settings.PUBLIC_BASE_URL = portal
    trusted = trusted_prefixes(f"{portal}/sandbox/v1/")
    assert trusted == (f"{portal}/sandbox/",)
    asked = []
    own_sandbox = addresses.own_sandbox
    monkeypatch.setattr(addresses, "own_sandbox", lambda url: asked.append(url) or own_sandbox(url))
    context = browser.new_context(chromium, trusted=trusted)
    try:
        outcome = _run(
            context.new_page(), portal, [{"tool": "goto", "url": "/sandbox/v1/login/"}], {}
        )
        assert outcome.results[0].success and asked == []  # never intercepted
        with pytest.raises(ActionFailed) as api:
            _run(context.new_page(), portal, [{"tool": "goto", "url": "/api/v2/schema/"}], {})
        assert api.value.kind == "forbidden_address" and asked == [f"{portal}/api/v2/schema/"]
    finally:
        context.close()
    # A public origin as Chromium writes it (no default port); a name that does not resolve
    # (no DNS here) is checked request by request.
    assert trusted_prefixes("HTTPS://93.184.215.14:443/portal/") == ("https://93.184.215.14/",)
    assert trusted_prefixes("https://portal.invalid/") == ()
    settings.ENGINE_HTTP_ALLOW_PRIVATE = True
    assert trusted_prefixes(f"{portal}/sandbox/v1/") == ()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_member_not_found_is_readable_from_the_page(page, portal):
    login = eligibility_actions("v1")[:9]
    row = {"member_id": "W000000000", "dob": "1970-01-01", "last_name": "Nobody"}
    outcome = _run(
        page,
        portal,
        [*login, {"tool": "assert_text", "text": "Member not found"}],
        row,
    )
    assert outcome.results[-1].success


@pytest.mark.parametrize(
    ("action_list", "problem"),
    [
        ([{"tool": "hover", "target": {"label": "x"}}], "action 1: unknown tool 'hover'"),
        ([{"tool": "click", "target": {"css": "#go"}}], "describe the target by label, role"),
        ([{"tool": "click", "target": {}}], "describe the target by label, role"),
        ([{"tool": "fill", "target": {"label": "x"}}], "action 1 (fill): value is required"),
        (
            [{"tool": "fill", "target": {"label": "x"}, "value": "{{ credential.pin }}"}],
            "credential.pin is not a credential field",
        ),
        ([{"tool": "click", "target": {"role": "blink", "name": "x"}}], "unknown role 'blink'"),
        ([{"tool": "extract", "fields": {"a b": {"label": "x"}}}], "must be an identifier"),
        ([{"tool": "goto", "url": "{{ input.x "}], "invalid template"),
        ([], "actions must be a non-empty list"),
    ],
)
def test_bad_action_lists_are_refused_naming_the_action(action_list, problem):
    problems = actions.action_problems(action_list)
    assert any(problem in found for found in problems), problems


def test_the_run_context_paths_an_action_list_reads():
    found = {str(ref) for ref in actions.references(eligibility_actions("v1"))}
    assert found == {"input.member_id", "input.dob", "input.last_name"}


@pytest.mark.parametrize(
    ("markup", "kind"),
    [
        ('<div style="opacity: 0"><button onclick="clicked()">Go</button></div>', "target_hidden"),
        ('<button disabled onclick="clicked()">Go</button>', "target_disabled"),
        (
            '<fieldset disabled><button onclick="clicked()">Go</button></fieldset>',
            "target_disabled",
        ),
        (
            '<button onclick="clicked()">Go</button>'
            '<div style="position: fixed; inset: 0; background: white">Please wait</div>',
            "target_covered",
        ),
    ],
)
def test_an_element_a_person_could_not_use_is_refused_and_nothing_happens(page, markup, kind):
    page.set_content(
        f"<script>window.clicks = 0; function clicked() {{ clicks++ }}</script>{markup}"
    )
    with pytest.raises(ActionFailed) as refused:
        run_actions(
            page,
            [{"tool": "click", "target": {"role": "button", "name": "Go"}, "timeout_ms": 300}],
            render=str,
            base_url="https://portal.example/",
            allowed_hosts=set(),
        )
    assert refused.value.kind == kind and "nothing was done" in str(refused.value)
    assert page.evaluate("clicks") == 0


def test_a_control_under_its_own_label_and_one_below_the_fold_are_usable(page):
    page.set_content(
        '<div style="height: 3000px"></div>'
        '<label style="position: relative"><input type="checkbox" id="c" '
        'style="position: absolute; opacity: 0"> Include out-of-network</label>'
    )
    outcome = run_actions(
        page,
        [{"tool": "check", "target": {"label": "Include out-of-network"}}],
        render=str,
        base_url="https://portal.example/",
        allowed_hosts=set(),
    )
    assert outcome.results[0].success and page.is_checked("#c")


def test_the_v3_trap_a_button_named_search_that_shows_reset_is_never_clicked(page, portal):
    """Layout v3: the search button lost its text and its name went to the Reset button beside
    it. Matching by name alone finds Reset; the executor refuses it and nothing is reset."""
    patient = sandbox_patients()[0]
    login = [{**action, "url": "/sandbox/v3/"} if action["tool"] == "goto" else action
             for action in eligibility_actions("v1")[:5]]  # fmt: skip
    search = [
        {"tool": "fill", "target": {"label": "Member ID"}, "value": "{{ input.member_id }}"},
        {"tool": "click", "target": {"role": "button", "name": "Search"}},
    ]
    with pytest.raises(ActionFailed) as refused:
        _run(page, portal, [*login, *search], _row(patient))
    assert refused.value.kind == "target_mislabelled"
    assert "nothing was done" in str(refused.value)
    assert page.input_value("#member_id") == patient.member_id  # the form was not reset
    assert urlsplit(page.url).path == "/sandbox/v3/"
