"""The ``web`` node kind on a real worker process (the browser in its own thread) against the
sandbox portal: an eligibility check per row, 'member not found' as a label, and the checks
made when a workflow is published."""

import pytest

from rcm.context import org_context
from tenants import services as tenant_services
from tenants.models import ChannelType, Endpoint
from tests.conftest import wait_for
from tests.webactions.factories import patient_row as _row
from tests.webactions.test_executor import SECRETS, eligibility_actions
from tests.workflows.engine_helpers import published
from webactions.kinds import WebKind
from webactions.models import BrowserSession, CredentialAccessLog, WebScreenshot
from webactions.sandbox.data import sandbox_patients
from webactions.services import credentials as credential_services
from workflows.models import NodeRun, WorkflowRun, WorkflowTrace
from workflows.models.runs import RUN_TERMINAL
from workflows.services import runs

# The sandbox's log-in, as an endpoint's config says it; the nodes' actions start after it.
LOGIN = {"actions": eligibility_actions("v1")[:5], "page": {"label": "Password"}}
SEARCH = [{"tool": "goto", "url": "/sandbox/v1/"}, *eligibility_actions("v1")[5:]]


def _endpoint_and_credential(tenant, base_url: str, login: dict | None = LOGIN):
    """An endpoint at ``base_url`` whose config says how to log in (``login``; None: it does
    not say), and a credential for it."""
    channel = ChannelType.objects.get(code="uhc-portal")
    with org_context(tenant.id):
        endpoint = tenant_services.endpoint_create(
            org_id=tenant.id,
            name="Sandbox",
            channel_type=channel,
            base_url=base_url,
            config=None if login is None else {"login": login},
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


def _config(endpoint, credential) -> dict:
    return {
        "endpoint": endpoint.pk,
        "credential": credential.pk,
        "actions": SEARCH,
        "outcomes": {"not_found": "Member not found"},
    }


def test_each_row_is_checked_in_the_browser_and_not_found_is_a_label(
    worker_processes, org_a, portal
):
    endpoint, credential = _endpoint_and_credential(org_a, portal)
    workflow, _ = published(
        org_a.id,
        "start>check, check>done, check>missing:not_found",
        kinds={"check": "web"},
        configs={"check": _config(endpoint, credential)},
        required_data=["member_id", "dob", "last_name"],
        timeouts={"check": 60},
    )
    worker_processes(concurrency=1)
    patient = next(p for p in sandbox_patients() if p.active)
    nobody = {"member_id": "W000000000", "dob": "1970-01-01", "last_name": "Nobody"}

    def finished(*started) -> bool:
        with org_context(org_a.id):
            return all(WorkflowRun.objects.get(pk=run.pk).status in RUN_TERMINAL for run in started)

    # One after the other: the second row finds the first one's log-in kept.
    with org_context(org_a.id):
        found = runs.run_start(workflow=workflow, input=_row(patient))
    wait_for(lambda: finished(found), timeout=120, interval=0.5)
    with org_context(org_a.id):
        missing = runs.run_start(workflow=workflow, input=nobody)
    wait_for(lambda: finished(missing), timeout=120, interval=0.5)
    with org_context(org_a.id):
        found_run = WorkflowRun.objects.get(pk=found.pk)
        check = NodeRun.objects.get(run=found, node_key="check")
        not_found = NodeRun.objects.get(run=missing, node_key="check")
        assert found_run.status == "completed", found_run.error
        assert found_run.context["nodes"]["check"]["output"] == {
            "plan": patient.plan,
            "group": patient.group_number,
            "status": "Active",
        }
        assert (not_found.status, not_found.label) == ("completed", "not_found")
        assert NodeRun.objects.get(run=missing, node_key="missing").status == "completed"
        # The secrets were decrypted for each run, logged against it, and kept out of it.
        retrievals = CredentialAccessLog.objects.filter(access_type="retrieve")
        assert set(retrievals.values_list("actor_run_id", flat=True)) == {found.pk, missing.pk}
        stored = repr(found_run.context) + repr(check.output) + check.error
        assert SECRETS["password"] not in stored and SECRETS["username"] not in stored
        # One trace per action, masked, with the endpoint; then the engine's for the attempt.
        traces = list(
            WorkflowTrace.objects.filter(node_run=check)
            .order_by("id")
            .prefetch_related("endpoints")
        )
        web = [t for t in traces if t.action_type.startswith("web.")]
        # The first row logged in (then searched); the second reused the stored session.
        assert [(t.action_detail["phase"], t.action_type) for t in web] == [
            *(("login", f"web.{action['tool']}") for action in LOGIN["actions"]),
            *(("actions", f"web.{action['tool']}") for action in SEARCH),
        ]
        second = WorkflowTrace.objects.filter(node_run=not_found, action_type__startswith="web.")
        assert {t.action_detail["phase"] for t in second} == {"actions"}
        assert BrowserSession.objects.filter(credential=credential).exists()
        # Every target found by its description the first time (tier 2), and learnt: the
        # second row, another patient, finds them in memory (tier 1), each with its state.
        assert all(t.success for t in web)
        assert {(t.tier, t.tier_reason) for t in web if t.action_type == "web.goto"} == {(None, "")}
        learnt = [t for t in web if t.action_type != "web.goto"]
        assert all(t.tier == 2 and t.tier_reason.startswith("miss; matched") for t in learnt)
        fills = second.filter(action_type="web.fill").order_by("id")
        assert [(t.tier, t.tier_reason) for t in fills] == [(1, "hit")] * 3
        assert all(t.action_detail["state"] and t.action_detail["resolve_ms"] for t in fills)
        assert web[6].action_detail["resolved"] == 'label "Member ID"'
        assert all([e.endpoint_id for e in t.endpoints.all()] == [endpoint.pk] for t in web)
        text = repr([(t.action_detail, t.error_detail, t.tier_reason) for t in traces])
        assert patient.member_id not in text and patient.last_name not in text
        assert SECRETS["password"] not in text
        failed = WorkflowTrace.objects.filter(node_run=not_found, action_type__startswith="web.")
        last = failed.order_by("-id").first()
        assert not last.success and last.action_detail["error_kind"] == "target_not_found"
        # No label of the benefits page on the search page: nothing read, the reason said.
        assert last.tier is None and last.tier_reason.startswith("miss: 'Plan'")
        assert "W000000000" not in last.error_detail
        # The page it failed on, kept for the step (PHI: the picture), its DOM masked.
        [picture] = WebScreenshot.objects.filter(node_run=not_found)
        assert (picture.reason, picture.attempt) == ("failure", 1)
        assert bytes(picture.image).startswith(b"\x89PNG")
        assert "Member not found" in picture.masked_dom
        assert "W000000000" not in picture.masked_dom + picture.page
        assert not WebScreenshot.objects.filter(node_run=check).exists()


@pytest.mark.django_db
def test_publishing_checks_the_actions_the_endpoint_and_the_credential(org_a, org_b):
    endpoint_a, credential_a = _endpoint_and_credential(org_a, "https://portal.example/")
    endpoint_b, credential_b = _endpoint_and_credential(org_b, "https://portal.example/")
    kind = WebKind()
    with org_context(org_a.id):
        assert kind.validate_config(_config(endpoint_a, credential_a)) == []
        assert kind.validate_config(_config(endpoint_a, credential_b)) == [
            f"no credential {credential_b.pk} in this organization"
        ]
        assert kind.validate_config(_config(endpoint_b, credential_a)) == [
            f"no endpoint {endpoint_b.pk} in this organization"
        ]
        without_credential = {**_config(endpoint_a, credential_a)}
        del without_credential["credential"]
        assert kind.validate_config(without_credential) == [
            "the endpoint logs in (config.login): name its credential"
        ]
        typing_it = {**without_credential, "actions": eligibility_actions("v1")}
        assert "the actions use the credential (a credential.* value or totp)" in (
            kind.validate_config(typing_it)
        )
        unknown_tool = {**_config(endpoint_a, credential_a), "actions": [{"tool": "hover"}]}
        assert "unknown tool 'hover'" in kind.validate_config(unknown_tool)[0]
    assert kind.labels(_config(endpoint_a, credential_a)) == {"success", "not_found"}
    assert {str(ref) for ref in kind.references(_config(endpoint_a, credential_a))} == {
        "input.member_id",
        "input.dob",
        "input.last_name",
    }


@pytest.mark.django_db
def test_publishing_refuses_an_endpoint_on_a_private_address(org_a, settings):
    settings.ENGINE_HTTP_ALLOW_PRIVATE = False
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8123"
    kind = WebKind()
    endpoint, credential = _endpoint_and_credential(org_a, "http://169.254.169.254/")
    with org_context(org_a.id):
        assert kind.validate_config(_config(endpoint, credential)) == [
            f"endpoint {endpoint.pk}'s address http://169.254.169.254/ is not a public address"
        ]
        # The platform's own sandbox (the demo's endpoint) is the one loopback exception.
        Endpoint.objects.filter(pk=endpoint.pk).update(base_url="http://127.0.0.1:8123/sandbox/v1")
        assert kind.validate_config(_config(endpoint, credential)) == []
        settings.RCM_SANDBOX = False
        assert "is not a public address" in kind.validate_config(_config(endpoint, credential))[0]


@pytest.mark.django_db
def test_validating_needs_an_endpoint_that_says_how_to_log_in(api, org_a):
    _, credential = _endpoint_and_credential(org_a, "", login=None)
    refused = api(org_a, "org_admin").post(f"/api/v2/credentials/{credential.pk}/validate/")
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "no_login"
    assert (
        api(org_a, "operator").post(f"/api/v2/credentials/{credential.pk}/validate/").status_code
        == 403
    )


def test_validation_logs_in_for_real_and_records_a_refusal_without_retrying(
    worker_processes, api, org_a, portal
):
    endpoint, credential = _endpoint_and_credential(org_a, portal)
    worker_processes(concurrency=1)
    admin = api(org_a, "org_admin")
    url = f"/api/v2/credentials/{credential.pk}/"

    def validated_after(moment):
        def done():
            body = admin.get(url).json()
            return (
                body if body["last_validated_at"] and body["last_validated_at"] > moment else None
            )

        return done

    assert admin.post(f"{url}validate/").status_code == 202
    good = wait_for(validated_after(""), timeout=90, interval=0.5)
    assert good["validation_error"] == ""
    wrong = {**SECRETS, "password": "not-the-password"}
    assert admin.post(f"{url}rotate/", {"secrets": wrong}, "json").status_code == 200
    assert admin.post(f"{url}validate/").status_code == 202
    bad = wait_for(validated_after(good["last_validated_at"]), timeout=90, interval=0.5)
    assert "refused the credential" in bad["validation_error"]
    assert bad["rotation_status"] == "failed"
    assert "not-the-password" not in repr(bad)
    with org_context(org_a.id):
        validations = list(
            CredentialAccessLog.objects.filter(access_type="validate").values_list(
                "success", flat=True
            )
        )
        # The refused log-in was tried once, and the kept session was dropped with it.
        assert sorted(validations) == [False, True]
        assert not BrowserSession.objects.filter(credential=credential).exists()


def test_parallel_branches_each_get_their_own_page(worker_processes, org_a, portal):
    endpoint, credential = _endpoint_and_credential(org_a, portal)
    claims = [*SEARCH[:-1], {"tool": "extract", "fields": {"claims": {"table": "claimsTable"}}}]
    workflow, _ = published(
        org_a.id,
        "start>benefits, start>claims, benefits>join, claims>join, join>done",
        kinds={"benefits": "web", "claims": "web"},
        configs={
            "benefits": _config(endpoint, credential),
            "claims": {**_config(endpoint, credential), "actions": claims},
        },
        required_data=["member_id", "dob", "last_name"],
        timeouts={"benefits": 60, "claims": 60},
    )
    worker_processes(concurrency=2)
    patient = next(p for p in sandbox_patients() if p.active and p.claims)
    with org_context(org_a.id):
        run = runs.run_start(workflow=workflow, input=_row(patient))

    def finished() -> bool:
        with org_context(org_a.id):
            return WorkflowRun.objects.get(pk=run.pk).status in RUN_TERMINAL

    wait_for(finished, timeout=120, interval=0.5)
    with org_context(org_a.id):
        done = WorkflowRun.objects.get(pk=run.pk)
    assert done.status == "completed", done.error
    nodes = done.context["nodes"]
    assert nodes["benefits"]["output"]["plan"] == patient.plan
    assert [row["Claim #"] for row in nodes["claims"]["output"]["claims"]] == [
        claim.number for claim in patient.claims
    ]
