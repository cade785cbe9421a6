"""The sandbox payer portal through Django's test client: log-in with a one-time code, session
expiry, patient search, the benefits and claim pages, the v2 redesign, injected faults."""

import datetime as dt
import time

import pyotp
import pytest
from django.core import signing
from django.test import Client

from webactions.sandbox import views
from webactions.sandbox.data import (
    CARCS,
    CLAIM_CATEGORIES,
    RARCS,
    patient_search,
    sandbox_patient,
    sandbox_patients,
)

CLERK = views.ACCOUNTS["clerk"]


def _patient_with(predicate):
    return next(patient for patient in sandbox_patients() if predicate(patient))


def _logged_in(layout: str = "v1", account=CLERK) -> Client:
    client = Client()
    code = pyotp.TOTP(account.totp_seed).now() if account.totp_seed else ""
    answer = client.post(
        f"/sandbox/{layout}/login/",
        {"username": account.username, "password": account.password, "code": code},
    )
    assert answer.status_code == 302, answer.content
    return client


def test_the_data_is_the_same_in_every_process_and_complete():
    patients = sandbox_patients()
    assert len(patients) == 500 and len({p.member_id for p in patients}) == 500
    assert patients[0].member_id == "W100007919"  # the seed fixes the answers tests rely on
    assert any(not p.active for p in patients) and any(p.claims for p in patients)
    assert any(not p.claims for p in patients) and any(p.authorizations for p in patients)
    # Every code the portal can describe is on some claim, so a test can find each one.
    claims = [claim for p in patients for claim in p.claims]
    adjustments = [adjustment for claim in claims for adjustment in claim.adjustments]
    assert {claim.category for claim in claims} == set(CLAIM_CATEGORIES)
    assert {adjustment.code for adjustment in adjustments} == set(CARCS)
    assert {adjustment.rarc for adjustment in adjustments} - {""} == set(RARCS)
    patient = patients[3]
    found = patient_search(
        member_id=patient.member_id.lower(),
        date_of_birth=patient.date_of_birth,
        last_name=patient.last_name.upper(),
    )
    assert found == patient
    assert (
        patient_search(
            member_id=patient.member_id,
            date_of_birth=dt.date(1900, 1, 1),
            last_name=patient.last_name,
        )
        is None
    )


def test_log_in_needs_the_password_and_the_current_code():
    client = Client()
    assert client.get("/sandbox/v1/").status_code == 302  # to the log-in page
    wrong = client.post(
        "/sandbox/v1/login/",
        {"username": "clerk", "password": CLERK.password, "code": "000000"},
    )
    assert wrong.status_code == 401 and views.LOGIN_FAILED in wrong.content.decode()
    bad_password = client.post(
        "/sandbox/v1/login/",
        {"username": "clerk", "password": "guess", "code": pyotp.TOTP(CLERK.totp_seed).now()},
    )
    assert bad_password.status_code == 401
    client = _logged_in("v1")
    assert client.get("/sandbox/v1/").status_code == 200
    # An account without a second factor logs in with its password alone.
    assert _logged_in("v1", views.ACCOUNTS["frontdesk"]).get("/sandbox/v1/").status_code == 200


def test_an_expired_session_sends_every_page_back_to_the_log_in():
    client = _logged_in("v1")
    patient = sandbox_patients()[0]
    page = f"/sandbox/v1/members/{patient.member_id}/"
    assert client.get(page).status_code == 200
    # The same session, as signed 31 minutes ago (sessions last 30).
    signed_at = signing.b62_encode(int(time.time()) - 31 * 60)
    client.cookies[f"{views.SESSION_COOKIE}_v1"] = _signed("clerk", signed_at)
    expired = client.get(page)
    assert expired.status_code == 302
    assert expired["Location"] == f"/sandbox/v1/login/?next={page}"
    client.cookies[f"{views.SESSION_COOKIE}_v1"] = _signed("clerk", signed_at)[:-2] + "xx"
    assert client.get(page).status_code == 302  # a forged one likewise


def _signed(username: str, timestamp: str) -> str:
    """A session cookie as the portal signs one, at ``timestamp`` (base62 seconds)."""
    signer = signing.TimestampSigner(salt=views._SIGNER_SALT)
    value = f"{username}{signer.sep}{timestamp}"
    return f"{value}{signer.sep}{signer.signature(value)}"


def test_search_finds_the_member_or_says_member_not_found():
    client = _logged_in("v1")
    patient = sandbox_patients()[10]
    found = client.get(
        "/sandbox/v1/",
        {
            "member_id": patient.member_id,
            "dob": patient.date_of_birth.isoformat(),
            "last_name": patient.last_name,
        },
    )
    assert found.status_code == 302
    assert found["Location"] == f"/sandbox/v1/members/{patient.member_id}/?service_type=30"
    missing = client.get(
        "/sandbox/v1/",
        {"member_id": "W000000000", "dob": "1970-01-01", "last_name": patient.last_name},
    )
    assert missing.status_code == 404 and views.NOT_FOUND in missing.content.decode()


def test_the_eligibility_page_shows_the_members_benefits():
    patient = _patient_with(lambda p: p.active and p.claims)
    page = _logged_in("v1").get(f"/sandbox/v1/members/{patient.member_id}/").content.decode()
    for text in (
        "<th>Coverage status</th><td>Active</td>",
        f"<th>Plan</th><td>{patient.plan}</td>",
        f"<th>Group number</th><td>{patient.group_number}</td>",
        f"<td>Office visit copay</td><td>${patient.copay_office}</td>",
        f"<td>Deductible</td><td>${patient.deductible}</td><td>${patient.deductible_met}</td>"
        f"<td>${patient.deductible_remaining}</td>",
        f"<th>Member ID</th><td>{patient.member_id}</td>",
    ):
        assert text in page, text
    inactive = _patient_with(lambda p: not p.active)
    page = _logged_in("v1").get(f"/sandbox/v1/members/{inactive.member_id}/").content.decode()
    assert "<th>Coverage status</th><td>Inactive</td>" in page


def test_claim_status_shows_the_277_category_and_the_adjustment_codes():
    patient = _patient_with(lambda p: any(c.category == "F2" for c in p.claims))
    claim = next(c for c in patient.claims if c.category == "F2")
    client = _logged_in("v1")
    page = client.get(f"/sandbox/v1/members/{patient.member_id}/claims/{claim.number}/")
    text = page.content.decode()
    assert page.status_code == 200
    assert "<th>Status category</th><td>F2</td>" in text
    assert claim.category_description in text
    (adjustment,) = claim.adjustments
    assert f"<td>{adjustment.code}</td>" in text and f"<td>{adjustment.rarc}</td>" in text
    absent = client.get(f"/sandbox/v1/members/{patient.member_id}/claims/C000/")
    assert absent.status_code == 404


def test_prior_authorization_status():
    patient = _patient_with(lambda p: p.authorizations)
    auth = patient.authorizations[0]
    page = _logged_in("v1").get(
        f"/sandbox/v1/members/{patient.member_id}/authorizations/{auth.number}/"
    )
    assert f"<th>Status</th><td>{auth.status.capitalize()}</td>" in page.content.decode()


def test_v2_is_a_redesign_of_the_same_data():
    patient = _patient_with(lambda p: p.active)
    v1 = _logged_in("v1").get(f"/sandbox/v1/members/{patient.member_id}/").content.decode()
    client = _logged_in("v2")
    search = client.get("/sandbox/v2/").content.decode()
    assert "Subscriber ID" in search and "Member ID" not in search
    assert 'id="member_id"' not in search  # no ids to hold on to
    v2 = client.get(f"/sandbox/v2/members/{patient.member_id}/").content.decode()
    assert f"<dt>Subscriber ID</dt><dd>{patient.member_id}</dd>" in v2
    # The group number moved from the coverage section to the plan section.
    assert v2.index("Group #") > v2.index('id="plan-h"')
    assert v1.index("Group number") < v1.index("Benefits (in network)")
    # One session per layout: v1's cookie does not open v2.
    assert _logged_in("v1").get("/sandbox/v2/").status_code == 302


def test_injected_latency_and_failures():
    down = Client().get("/sandbox/v1-fail100/login/")
    assert down.status_code == 503 and "temporarily unavailable" in down.content.decode()
    slow = _logged_in("v1-slow150")
    started = time.monotonic()
    assert slow.get("/sandbox/v1-slow150/").status_code == 200
    assert time.monotonic() - started >= 0.15
    assert Client().get("/sandbox/v9/login/").status_code == 404
    assert Client().get("/sandbox/v1-fast/login/").status_code == 404


@pytest.mark.parametrize("target", ["https://evil.test/", "/admin/", "/sandbox/v2/"])
def test_the_log_in_never_redirects_outside_its_layout(target):
    client = Client()
    answer = client.post(
        "/sandbox/v1/login/",
        {
            "username": "clerk",
            "password": CLERK.password,
            "code": pyotp.TOTP(CLERK.totp_seed).now(),
            "next": target,
        },
    )
    assert answer["Location"] == "/sandbox/v1/"


def test_the_sandbox_is_off_when_the_setting_is(settings):
    settings.RCM_SANDBOX = False
    assert Client().get("/sandbox/v1/login/").status_code == 404


def test_a_member_id_is_looked_up_whatever_its_case():
    patient = sandbox_patients()[5]
    assert sandbox_patient(patient.member_id.lower()) == patient
    assert sandbox_patient("nope") is None


@pytest.mark.parametrize(
    ("layout", "login_labels", "search_labels", "sign_in", "find"),
    [
        (
            "v1",
            ("Username", "Password", "Verification code"),
            ("Member ID", "Date of birth", "Last name"),
            "Sign in",
            "Search",
        ),
        (
            "v2",
            ("User ID", "Password", "One-time passcode"),
            ("Subscriber ID", "Patient date of birth", "Last name"),
            "Log in",
            "Find patient",
        ),
    ],
)
def test_a_real_browser_signs_in_and_finds_a_member_by_labels_alone(
    live_server, layout, login_labels, search_labels, sign_in, find
):
    """What the web agent will do: Chromium, and targets described as a person would."""
    from playwright.sync_api import sync_playwright

    from webactions import browser

    patient = _patient_with(lambda p: p.active)
    with sync_playwright() as playwright:
        chromium = browser.launch(playwright)
        try:
            page = chromium.new_page()
            page.goto(f"{live_server.url}/sandbox/{layout}/")
            code = pyotp.TOTP(CLERK.totp_seed).now()
            for label, value in zip(
                login_labels, (CLERK.username, CLERK.password, code), strict=True
            ):
                page.get_by_label(label, exact=True).fill(value)
            page.get_by_role("button", name=sign_in).click()
            values = (patient.member_id, patient.date_of_birth.isoformat(), patient.last_name)
            for label, value in zip(search_labels, values, strict=True):
                page.get_by_label(label, exact=True).fill(value)
            page.get_by_role("button", name=find).click()
            page.wait_for_url(f"**/members/{patient.member_id}/?service_type=30")
            assert patient.plan in page.content()
            assert patient.group_number in page.locator("body").inner_text()
        finally:
            chromium.close()
