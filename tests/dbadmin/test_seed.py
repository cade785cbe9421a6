"""rcm_seed: the demo (organizations of each type, working logins, published workflows of the
three shapes, finished batches that add up, traces, remembered pages; idempotent), test data at
scale with exact counts and a refusal to seed one seed twice, the same data from the same seed,
and bad input refused before anything is written."""

import json
import re
from collections import Counter
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.db.models import Count

from dbadmin.management.commands import rcm_seed
from dbadmin.models import MigrationRun
from dbadmin.seeding import profiles
from memory.models import MicroState
from rcm.context import org_context
from rcm.lookups import OrgType, UserRole
from tenants import selectors as tenant_selectors
from tenants import services as tenant_services
from tenants.models import Endpoint, Membership, Organization, User
from webactions.models import PortalCredential
from workflows.models import BatchJob, BatchJobItem, Workflow, WorkflowRevision, WorkflowTrace
from workflows.selectors.authoring import workflow_graph
from workflows.validation.graph import graph_problems

# "  operator@stmarys.rcm.test  <password>  (operator; ...)": one line per login printed.
LOGIN_LINE = re.compile(r"^\s+(\S+@\S+)\s+(\S+)\s+\((\w+);", re.MULTILINE)
SHAPE_TASKS = {"eligibility/check", "claim/check_status", "prior_auth/submit"}
STATUS_COUNTERS = {
    "completed": "successful_rows",
    "failed": "failed_rows",
    "cancelled": "cancelled_rows",
}


def seed(*args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr and the error the command ended with)."""
    out, err = StringIO(), StringIO()
    try:
        call_command("rcm_seed", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), f"{err.getvalue()}{exc}"
    return 0, out.getvalue(), err.getvalue()


def org_ids(plans) -> dict[str, object]:
    """Organization name -> id, for the plan's organizations that exist."""
    found = {}
    for plan in plans:
        owner = tenant_selectors.email_domain_owner(email=f"x@{plan.email_domain}")
        if owner is not None:
            found[plan.name] = owner
    return found


# -- the demo ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_demo_has_each_type_of_organization_and_a_working_login_per_role():
    code, out, _ = seed("--profile", "demo")

    assert code == 0, out
    logins = LOGIN_LINE.findall(out)
    for email, password, _ in logins:
        assert authenticate(None, email=email, password=password) is not None, email
    plans = profiles.plan_demo(rcm_seed.DEFAULT_SEED)
    ids = org_ids(plans)
    types = {}
    for plan in plans:
        with org_context(ids[plan.name]):
            org = Organization.objects.get()
            roles = set(Membership.objects.filter(org_id=org.id).values_list("role", flat=True))
        types[org.org_type_id] = plan.name
        expected = set(plan.demo.roles)
        assert roles == expected, plan.name
        assert {role for email, _, role in logins if email.endswith(plan.email_domain)} == expected
    assert set(types) == {OrgType.HOSPITAL, OrgType.BILLING_FIRM, OrgType.CREDENTIALER}
    assert set(UserRole.ordered()) == {role for _, _, role in logins}


@pytest.mark.django_db
def test_a_second_demo_run_creates_nothing_and_prints_no_password():
    first = seed("--profile", "demo")[1]
    passwords = [password for _, password, _ in LOGIN_LINE.findall(first)]
    plans = profiles.plan_demo(rcm_seed.DEFAULT_SEED)
    before = {name: _counts(org_id) for name, org_id in org_ids(plans).items()}

    code, second, _ = seed("--profile", "demo", "--seed", "7", "--json")

    assert code == 0
    document = json.loads(second)
    assert document["summary"] == "Demo data present; nothing created."
    assert document["details"]["created"] == {}
    assert not [password for password in passwords if password in second]
    assert {name: _counts(org_id) for name, org_id in org_ids(plans).items()} == before


@pytest.mark.django_db
def test_seed_demo_then_the_demo_fills_the_same_organization():
    """make run used to seed with seed_demo: its organization is found and filled, not
    duplicated, and only the logins it lacks are printed (none of Demo Billing Co's)."""
    call_command("seed_demo", stdout=StringIO())

    code, out, _ = seed("--profile", "demo")

    assert code == 0
    assert not [email for email, _, _ in LOGIN_LINE.findall(out) if "@demo.rcm.test" in email]
    demo_org = tenant_selectors.auth_user_by_email(email="operator@demo.rcm.test").org_id
    with org_context(demo_org):
        assert Workflow.objects.count() == 3
        assert Endpoint.objects.filter(channel_type__code="uhc-portal").count() == 1


@pytest.mark.django_db
def test_the_demo_workflows_publish_and_its_finished_batches_add_up():
    assert seed("--profile", "demo")[0] == 0

    for plan in profiles.plan_demo(rcm_seed.DEFAULT_SEED):
        org_id = org_ids([plan])[plan.name]
        with org_context(org_id):
            _check_workflows(plan)
            _check_batches()
            _check_traces_and_states()


def _check_workflows(plan) -> None:
    workflows = list(Workflow.objects.select_related("task_type"))
    assert len(workflows) == len(plan.workflows)
    tasks = {f"{w.task_type.domain_id}/{w.task_type.action_id}" for w in workflows}
    assert tasks == SHAPE_TASKS
    for workflow in workflows:
        assert workflow.status_id == "active"
        assert graph_problems(workflow_graph(workflow=workflow)) == [], workflow.name
        graph = WorkflowRevision.objects.get(workflow=workflow).graph
        kinds = Counter(node["kind"] or node["node_type"] for node in graph["nodes"])
        assert kinds["entry"] == 1 and kinds["decision"] == 1 and kinds["web"] >= 3
        assert {node["key"] for node in graph["nodes"]} >= {"login"}
        assert kinds["outcome"] >= 3
        if workflow.task_type.domain_id == "eligibility":
            # Eligibility and benefits in parallel, joined by the merge.
            parallel = [t for t in graph["transitions"] if t["from"] == "search_patient"]
            assert {t["to"] for t in parallel} >= {"check_eligibility", "check_benefits"}
        if workflow.task_type.domain_id == "claim":
            nodes = {node["key"]: node for node in graph["nodes"]}
            outputs = nodes["read_status"]["config"]["actions"][0]["fields"]
            assert {"carc_codes", "rarc_codes"} <= set(outputs)


def _check_batches() -> None:
    jobs = list(BatchJob.objects.all())
    assert len(jobs) == len(profiles.DEMO_JOBS)
    totals = Counter()
    for job in jobs:
        statuses = dict(
            BatchJobItem.objects.filter(batch_job=job).values_list("status").annotate(n=Count("id"))
        )
        assert profiles.DEMO_JOB_ROWS[0] <= job.total_rows <= profiles.DEMO_JOB_ROWS[1]
        assert job.total_rows == sum(statuses.values())
        for status, counter in STATUS_COUNTERS.items():
            assert getattr(job, counter) == statuses.get(status, 0), (job.pk, status)
        assert job.completed_at is not None and job.pending_rows == job.running_rows == 0
        assert job.status_id in ("completed", "partially_completed")
        totals.update(statuses)
    assert 0.82 <= totals["completed"] / sum(totals.values()) <= 0.95
    errors = set(
        BatchJobItem.objects.filter(status="failed").values_list("error_message", flat=True)
    )
    assert "Member not found" in errors


def _check_traces_and_states() -> None:
    states = set(MicroState.objects.values_list("pk", flat=True))
    assert len(states) == 11  # one per web node: 4 + 3 + 4
    assert set(MicroState.objects.values_list("embedder", flat=True)) == {"structural-v1"}
    untraced = BatchJobItem.objects.filter(status__in=["completed", "failed"]).exclude(
        pk__in=WorkflowTrace.objects.values("batch_job_item_id")
    )
    assert not untraced.exists()
    tiers = Counter(
        WorkflowTrace.objects.filter(action_type__startswith="web.", success=True).values_list(
            "tier", flat=True
        )
    )
    assert set(tiers) == {1, 2, 3} and tiers[1] > tiers[2] + tiers[3]
    used = set(WorkflowTrace.objects.values_list("action_detail__state", flat=True)) - {None}
    assert used and used <= states


def _counts(org_id) -> dict[str, int]:
    with org_context(org_id):
        return {
            model._meta.db_table: model.objects.count()
            for model in (User, Endpoint, PortalCredential, Workflow, BatchJob, MicroState)
        }


# -- test data -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_test_data_counts_are_exact_and_a_second_run_is_refused():
    code, out, _ = seed("--profile", "test-data", "--orgs", "2", "--rows", "500", "--json")

    assert code == 0, out
    created = json.loads(out)["details"]["created"]
    plans = profiles.plan_test_data(rcm_seed.DEFAULT_SEED, orgs=2, rows=500)
    ids = org_ids(plans)
    assert set(ids) == {plan.name for plan in plans}
    counted = Counter()
    for org_id in ids.values():
        with org_context(org_id):
            assert BatchJobItem.objects.count() == 500
            assert sum(BatchJob.objects.values_list("total_rows", flat=True)) == 500
            counted.update(
                {
                    "organization": Organization.objects.count(),
                    "app_user": User.objects.count(),
                    "batch_job": BatchJob.objects.count(),
                    "batch_job_item": BatchJobItem.objects.count(),
                    "workflow_trace": WorkflowTrace.objects.count(),
                    "micro_state": MicroState.objects.count(),
                }
            )
    assert {table: created[table] for table in counted} == counted
    assert created["organization"] == 2 and created["batch_job_item"] == 1000
    assert created["app_user"] == 2 * len(profiles.MEMBER_ROLES)

    again, _, refusal = seed("--profile", "test-data", "--orgs", "2", "--rows", "500")

    assert again == 1
    assert all(repr(plan.name) in refusal for plan in plans), refusal
    assert "Refused, nothing written" in refusal
    for org_id in ids.values():
        with org_context(org_id):
            assert BatchJobItem.objects.count() == 500


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args", [("--profile", "test-data", "--orgs", "2", "--rows", "60"), ("--profile", "demo")]
)
def test_the_same_seed_gives_the_same_data_and_another_seed_other_data(args):
    def fingerprint_of(*more: str) -> list[dict]:
        with transaction.atomic():
            assert seed(*args, *more)[0] == 0
            plans = (
                profiles.plan_demo(int(more[-1]) if more else 1)
                if "demo" in args
                else profiles.plan_test_data(int(more[-1]) if more else 1, orgs=2, rows=60)
            )
            found = _fingerprint(plans)
            transaction.set_rollback(True)  # the next run starts from the same empty database
        return found

    first, second = fingerprint_of(), fingerprint_of()

    assert first == second
    if "test-data" in args:
        assert fingerprint_of("--seed", "2") != first


def _fingerprint(plans) -> list[dict]:
    """The seeded data without what a database assigns (ids, the run's own time): names,
    values, counts, and every time as an offset from its job's upload."""
    data = []
    for name, org_id in sorted(org_ids(plans).items()):
        with org_context(org_id):
            data.append(_organization_data(name))
    return data


def _organization_data(name: str) -> dict:
    endpoints = {e.pk: e.name for e in Endpoint.objects.all()}
    credentials = {c.pk: c.name for c in PortalCredential.objects.all()}
    states = {s.pk: s.step_key for s in MicroState.objects.all()}
    org = Organization.objects.get()
    return {
        "org": [name, org.org_type_id, org.email_domain],
        "users": sorted(User.objects.values_list("email", "full_name", "role", "is_staff")),
        "endpoints": sorted(
            (e.name, e.channel_type.code, e.config) for e in Endpoint.objects.all()
        ),
        "credentials": sorted(
            (endpoints[c.endpoint_id], c.name) for c in PortalCredential.objects.all()
        ),
        "workflows": sorted(
            _workflow_data(w, endpoints, credentials)
            for w in Workflow.objects.select_related("task_type")
        ),
        "states": sorted(
            (s.step_key, s.label, s.url_pattern, s.success_count, s.failure_count, s.dom_snapshot)
            for s in MicroState.objects.all()
        ),
        "jobs": sorted(
            _job_data(job, states) for job in BatchJob.objects.select_related("workflow")
        ),
    }


def _workflow_data(workflow, endpoints, credentials) -> str:
    graph = WorkflowRevision.objects.get(workflow=workflow).graph
    for node in graph["nodes"]:
        node.pop("id")
        config = node["config"]
        if "endpoint" in config:
            config["endpoint"] = endpoints[config["endpoint"]]
            config["credential"] = credentials[config["credential"]]
    for transition in graph["transitions"]:
        transition.pop("id")
    graph["endpoint_id"] = endpoints[graph["endpoint_id"]]
    graph["task_type_id"] = f"{workflow.task_type.domain_id}/{workflow.task_type.action_id}"
    return json.dumps([workflow.name, workflow.status_id, graph], sort_keys=True)


def _job_data(job, states) -> str:
    uploaded = job.created_at
    items = [
        [
            item.row_number,
            item.input_data,
            item.output_data,
            item.status,
            item.error_message,
            item.attempts,
            item.completed_at - uploaded,
        ]
        for item in BatchJobItem.objects.filter(batch_job=job).order_by("row_number")
    ]
    traces = [
        [
            trace.batch_job_item.row_number,
            trace.node_key,
            trace.action_type,
            trace.success,
            trace.duration_ms,
            trace.tier,
            trace.tier_reason,
            trace.error_detail,
            trace.llm_prompt,
            states.get(trace.action_detail.pop("state", None)),
            trace.action_detail,
            trace.created_at - uploaded,
        ]
        for trace in WorkflowTrace.objects.filter(batch_job_item__batch_job=job)
        .select_related("batch_job_item")
        .order_by("batch_job_item__row_number", "created_at", "node_key")
    ]
    counters = [job.status_id, job.total_rows, job.successful_rows, job.failed_rows]
    times = [job.started_at - uploaded, job.completed_at - uploaded]
    return json.dumps(
        [job.workflow.name, counters, times, items, traces], sort_keys=True, default=str
    )


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--profile", "test-data", "--rows", "0"), "--rows must be at least 1; got 0."),
        (("--profile", "test-data", "--orgs", "-1"), "--orgs must be at least 1; got -1."),
        (("--profile", "test-data", "--orgs", "201"), "--orgs is at most 200; got 201."),
        (("--profile", "demo", "--rows", "5"), rcm_seed.SIZES_ARE_TEST_DATA),
    ],
)
def test_bad_sizes_cannot_run_and_write_nothing(args, message):
    code, _, err = seed(*args)

    assert code == 2
    assert message in err
    assert MigrationRun.objects.get().outcome == "error"
    plans = profiles.plan_demo(1) + profiles.plan_test_data(1, orgs=2, rows=1)
    assert org_ids(plans) == {}


@pytest.mark.django_db
def test_a_demo_name_taken_by_another_organization_refuses_the_whole_demo():
    tenant_services.organization_create(name="CredentialPro", org_type=OrgType.CREDENTIALER)

    code, _, err = seed("--profile", "demo")

    assert code == 1
    assert "'CredentialPro' or with the email domain credentialpro.rcm.test exists" in err
    # The organizations made before it went with it: one transaction.
    assert org_ids(profiles.plan_demo(1)[:2]) == {}
    assert tenant_selectors.auth_user_by_email(email="operator@demo.rcm.test") is None


@pytest.mark.django_db
def test_without_the_task_catalogue_it_cannot_run(monkeypatch):
    monkeypatch.setattr("dbadmin.seeding.writer.task_type_find", lambda ref: None)

    code, _, err = seed("--profile", "demo")

    assert code == 2
    assert "The task catalogue lacks eligibility/check" in err


@pytest.mark.django_db
def test_an_unknown_or_missing_profile_is_an_argument_error():
    with pytest.raises(CommandError, match="invalid choice: 'prod'"):
        call_command("rcm_seed", "--profile", "prod", stdout=StringIO())
    with pytest.raises(CommandError, match="the following arguments are required: --profile"):
        call_command("rcm_seed", stdout=StringIO())
    assert not MigrationRun.objects.exists()
