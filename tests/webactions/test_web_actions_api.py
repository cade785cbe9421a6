"""The web-actions API: an ad-hoc action list run on a real browser worker against the sandbox
portal (results, outputs, screenshots, each picture's fetch audited), its refusals, cancelling,
retries, the reaper, and the screenshots' retention."""

from datetime import timedelta

import pytest
from django.utils import timezone

from rcm.context import org_context
from tenants.models import AuditEvent
from tests.conftest import wait_for
from tests.webactions.factories import patient_row as _row
from tests.webactions.test_web_kind import SEARCH, _endpoint_and_credential
from webactions.models import PortalCredential, WebAction, WebScreenshot
from webactions.sandbox.data import sandbox_patients
from webactions.services import attempts, web_actions

URL = "/api/v2/web-actions/"
NOBODY = {"member_id": "W000000000", "dob": "1970-01-01", "last_name": "Nobody"}


def _body(endpoint, credential, **overrides) -> dict:
    return {
        "endpoint_id": endpoint.pk,
        "credential_id": credential.pk,
        "actions": [*SEARCH, {"tool": "screenshot", "name": "benefits"}],
        "outcomes": {"not_found": "Member not found"},
        "input": _row(next(p for p in sandbox_patients() if p.active)),
        **overrides,
    }


def _finished(client, pk: int) -> dict:
    found = {}

    def done() -> bool:
        found.update(client.get(f"{URL}{pk}/").json())
        return found["status"] in ("succeeded", "failed", "cancelled")

    wait_for(done, timeout=120, interval=0.3)
    return found


def test_an_action_list_runs_in_the_browser_with_its_results_and_screenshots(
    worker_processes, api, org_a, portal
):
    endpoint, credential = _endpoint_and_credential(org_a, portal)
    worker_processes(concurrency=1)
    operator = api(org_a, "operator")
    patient = next(p for p in sandbox_patients() if p.active)
    accepted = operator.post(URL, _body(endpoint, credential), format="json")
    assert accepted.status_code == 202, accepted.content
    assert accepted.json()["status"] == "pending"
    done = _finished(operator, accepted.json()["id"])
    assert done["status"] == "succeeded", done
    assert done["outputs"] == {
        "plan": patient.plan,
        "group": patient.group_number,
        "status": "Active",
    }
    # Each action: the log-in's and the list's, with duration and tier, and no value in them.
    assert [r["phase"] for r in done["results"]].count("login") == 5
    assert all(r["success"] and r["duration_ms"] >= 0 for r in done["results"])
    # A first time: every target found by its description (tier 2, score 1) and learnt.
    targeted = [r for r in done["results"] if r["tool"] not in ("goto", "screenshot")]
    assert {r["tier"] for r in targeted} == {2}
    assert all(r["tier_reason"].startswith("miss; matched score=1.00") for r in targeted)
    assert {(r["tier"], r["tier_reason"]) for r in done["results"] if r not in targeted} == {
        (None, "")
    }
    assert patient.member_id not in str(done["results"])
    [shot] = done["screenshots"]
    assert (shot["name"], shot["reason"], shot["attempt"]) == ("benefits", "requested", 1)
    image = operator.get(shot["image_url"])
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert image.content.startswith(b"\x89PNG") and image["Cache-Control"] == "private, no-store"
    with org_context(org_a.id):
        viewed = AuditEvent.objects.filter(action="screenshot.viewed", object_id=str(shot["id"]))
        assert viewed.count() == 1 and viewed.get().actor_id == org_a["operator"].pk
    # Not found is the page's answer, not a failure; a missing target is a failure with a
    # picture of the page and its DOM, masked.
    missing = operator.post(URL, _body(endpoint, credential, input=NOBODY), format="json")
    answer = _finished(operator, missing.json()["id"])
    assert (answer["status"], answer["label"], answer["outputs"]) == (
        "succeeded",
        "not_found",
        {"outcome": "not_found"},
    )
    # Another patient, the same pages: the search's targets come from memory (tier 1).
    searched = [r for r in answer["results"] if r["phase"] == "actions" and r["tool"] == "fill"]
    assert [(r["tier"], r["tier_reason"]) for r in searched] == [(1, "hit")] * 3
    assert all(r["state"] and r["similarity"] >= 0.8 for r in searched)
    broken = [*SEARCH[:-1], {"tool": "click", "target": {"role": "button", "name": "Nowhere"}}]
    failing = operator.post(URL, _body(endpoint, credential, actions=broken), format="json")
    failed = _finished(operator, failing.json()["id"])
    assert (failed["status"], failed["error_kind"], failed["attempt"]) == (
        "failed",
        "target_not_found",
        1,
    )
    [picture] = failed["screenshots"]
    assert picture["reason"] == "failure"
    assert picture["page"].endswith("/sandbox/v1/members/[MEMBER_ID]/")
    detail = operator.get(f"/api/v2/screenshots/{picture['id']}/").json()
    assert "<html" in detail["masked_dom"]
    assert patient.member_id not in detail["masked_dom"]
    assert patient.last_name not in detail["masked_dom"]


@pytest.mark.parametrize(
    ("action", "kind"),
    [
        ({"tool": "goto", "url": "/sandbox/v1-fail100/"}, "http_5xx"),
        # A portal that never answers in time.
        ({"tool": "goto", "url": "/sandbox/v1-slow2000/login/", "timeout_ms": 300}, "page_timeout"),
    ],
)
def test_a_portal_failing_is_retried_then_failed_with_its_kind(
    worker_processes, api, org_a, portal, action, kind
):
    endpoint, credential = _endpoint_and_credential(org_a, portal)
    worker_processes(concurrency=1)
    operator = api(org_a, "operator")
    body = _body(endpoint, credential, actions=[action], max_attempts=2, input={})
    failed = _finished(operator, operator.post(URL, body, format="json").json()["id"])
    assert (failed["status"], failed["error_kind"], failed["attempt"]) == ("failed", kind, 2)


def test_cancelling_stops_the_actions_before_the_next_one(worker_processes, api, org_a, portal):
    endpoint, credential = _endpoint_and_credential(org_a, portal)
    worker_processes(concurrency=1)
    operator = api(org_a, "operator")
    slow = [{"tool": "goto", "url": "/sandbox/v1-slow1500/login/"}] * 8
    body = _body(endpoint, credential, actions=slow, input={}, timeout_s=60)
    pk = operator.post(URL, body, format="json").json()["id"]
    wait_for(lambda: operator.get(f"{URL}{pk}/").json()["status"] == "running", timeout=60)
    cancelled = operator.post(f"{URL}{pk}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

    def results_kept() -> bool:
        return bool(operator.get(f"{URL}{pk}/").json()["results"])

    wait_for(results_kept, timeout=60, interval=0.3)
    done = operator.get(f"{URL}{pk}/").json()
    assert done["status"] == "cancelled"
    assert done["results"][-1]["error_kind"] == "cancelled"
    assert len(done["results"]) < 8 + 5
    assert operator.post(f"{URL}{pk}/cancel/").status_code == 409


@pytest.mark.django_db
def test_bad_requests_are_refused_naming_each_problem_and_write_nothing(api, org_a, org_b):
    endpoint, credential = _endpoint_and_credential(org_a, "https://portal.example/")
    _, other_credential = _endpoint_and_credential(org_b, "https://portal.example/")
    operator = api(org_a, "operator")

    def refused(expected: str, **overrides):
        answer = operator.post(URL, _body(endpoint, credential, **overrides), format="json")
        assert answer.status_code == 400, answer.content
        problems = answer.json()["error"]["details"].get("problems") or [
            str(answer.json()["error"]["details"])
        ]
        assert any(expected in problem for problem in problems), problems

    refused("unknown tool 'hover'", actions=[{"tool": "hover"}])
    refused("describe the target", actions=[{"tool": "click", "target": {}}])
    refused("input.member_id: not a field of the input", input={})
    refused("reads input.<field> only", actions=[{"tool": "goto", "url": "/{{ nodes.a.b }}"}])
    refused(
        "'evil.test' is not a host of endpoint",
        actions=[{"tool": "goto", "url": "https://evil.test/steal"}],
    )
    refused(f"no credential {other_credential.pk} in this organization",
            credential_id=other_credential.pk)  # fmt: skip
    refused("max_attempts", max_attempts=9)
    with org_context(org_a.id):
        PortalCredential.objects.filter(pk=credential.pk).update(is_active=False)
    refused(f"credential {credential.pk} is inactive")
    with org_context(org_a.id):
        PortalCredential.objects.filter(pk=credential.pk).update(
            is_active=True, expires_at=timezone.now() - timedelta(days=1)
        )
    refused(f"credential {credential.pk} has expired")
    with org_context(org_a.id):
        assert not WebAction.objects.exists()
    # Viewers read nothing here, and another organization's action is not found.
    assert api(org_a, "viewer").post(URL, {}, format="json").status_code == 403


@pytest.mark.django_db
def test_the_reaper_sends_lost_messages_again_and_takes_back_dead_workers_attempts(org_a, settings):
    endpoint, credential = _endpoint_and_credential(org_a, "https://portal.example/")
    long_ago = timezone.now() - timedelta(minutes=10)
    with org_context(org_a.id):
        lost_message = web_actions.web_action_create(
            org_id=org_a.id, actor=None, endpoint_id=endpoint.pk, credential_id=credential.pk,
            actions=SEARCH, outcomes={}, input=_row(sandbox_patients()[0]), max_attempts=2,
            timeout_s=30,
        )  # fmt: skip
        WebAction.objects.filter(pk=lost_message.pk).update(created_at=long_ago)
        dead_worker = WebAction.objects.create(
            org_id=org_a.id, endpoint=endpoint, credential=credential, actions=SEARCH,
            status="running", attempt=1, max_attempts=2, started_at=long_ago,
            lease_expires_at=long_ago,
        )  # fmt: skip
        last_attempt = WebAction.objects.create(
            org_id=org_a.id, endpoint=endpoint, credential=credential, actions=SEARCH,
            status="running", attempt=2, max_attempts=2, started_at=long_ago,
            lease_expires_at=long_ago,
        )  # fmt: skip
    assert web_actions.web_actions_reap() == {"lease": 2, "pending": 1}
    with org_context(org_a.id):
        dead_worker.refresh_from_db()
        last_attempt.refresh_from_db()
        lost_message.refresh_from_db()
    assert (dead_worker.status, dead_worker.error_kind) == ("pending", "lost")
    assert (last_attempt.status, last_attempt.error_kind) == ("failed", "lost")
    assert lost_message.status == "pending" and lost_message.not_before is not None
    # Sent again once, not on every pass.
    assert web_actions.web_actions_reap() == {"lease": 0, "pending": 0}


@pytest.mark.django_db
def test_screenshots_are_purged_after_their_retention_in_every_organization(org_a, org_b, settings):
    settings.WEB_SCREENSHOT_RETENTION_DAYS = 30
    kept = {}
    for tenant in (org_a, org_b):
        endpoint, credential = _endpoint_and_credential(tenant, "https://portal.example/")
        with org_context(tenant.id):
            action = WebAction.objects.create(
                org_id=tenant.id, endpoint=endpoint, credential=credential, actions=SEARCH
            )
            old, new = attempts.screenshots_store(
                org_id=tenant.id, captures=[_capture(), _capture()], attempt=1, declared={},
                web_action=action,
            )  # fmt: skip
            WebScreenshot.objects.filter(pk=old.pk).update(
                created_at=timezone.now() - timedelta(days=31)
            )
            kept[tenant.id] = new.pk
    assert attempts.screenshot_purge() == 2
    for tenant in (org_a, org_b):
        with org_context(tenant.id):
            assert list(WebScreenshot.objects.values_list("pk", flat=True)) == [kept[tenant.id]]


def _capture():
    from webactions.browse import Capture

    return Capture(name="page", reason="failure", page="portal.example/", image=b"\x89PNG", dom="")


def test_a_browser_that_does_not_start_is_a_named_failure(worker_processes, api, org_a, portal):
    endpoint, credential = _endpoint_and_credential(org_a, portal)
    worker_processes(concurrency=1, env={"RCM_CHROMIUM_PATH": "/bin/true"})
    operator = api(org_a, "operator")
    body = _body(endpoint, credential, max_attempts=1)
    failed = _finished(operator, operator.post(URL, body, format="json").json()["id"])
    assert (failed["status"], failed["error_kind"]) == ("failed", "browser_error")
    assert failed["error"].startswith("the browser failed: ")
