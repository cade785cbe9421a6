"""rcm_import_legacy against a real v3 database (tests/fixtures/legacy_v3.sql) on the test
server: what each v3 row becomes, what is refused and why, and that running it again, after an
interruption, dry or with another map changes exactly what it should."""

import uuid

import pytest
from django.db import connection, transaction
from django.db.utils import ProgrammingError

from dbadmin.legacy import generate, idmap
from dbadmin.legacy.idmap import digest
from dbadmin.legacy.importer import LegacyImport
from dbadmin.legacy.source import LegacySource
from dbadmin.legacy.values import ValueMap
from dbadmin.models import LegacyIdMap, MigrationRun
from memory.models import MicroState
from rcm.context import org_context
from tenants.models import ChannelType, Endpoint, Membership, Organization, User
from tests.dbadmin.conftest import counts, import_legacy, issues, owner_url, server_url
from webactions import crypto
from webactions.models import CredentialAccessLog, PortalCredential
from workflows.models import (
    BatchJob,
    BatchJobItem,
    FieldRequirement,
    OrgRequirementPolicy,
    RequirementChangelog,
    TaskActionLu,
    TaskDomainLu,
    TaskSignature,
    TaskType,
    Workflow,
    WorkflowNode,
    WorkflowRevision,
    WorkflowTrace,
    WorkflowTraceEndpoint,
    WorkflowTransition,
)

LAKESIDE = uuid.UUID("a1000000-0000-4000-8000-000000000001")
SUMMIT = uuid.UUID("b2000000-0000-4000-8000-000000000002")
CREDENTIA = uuid.UUID("c3000000-0000-4000-8000-000000000003")
ORGS = (LAKESIDE, SUMMIT, CREDENTIA)

# The fixture's first import: path -> (read, created, updated, unchanged, skipped, rejected).
FIRST_RUN = {
    "organization": (3, 3, 0, 0, 0, 0),
    "app_user": (7, 5, 0, 0, 0, 2),
    "portal_type": (5, 4, 0, 0, 1, 0),
    "task_type": (7, 3, 0, 0, 2, 2),
    "field_requirement": (7, 4, 0, 0, 2, 1),
    "org_requirement": (1, 1, 0, 0, 0, 0),
    "integration_endpoint": (6, 6, 0, 0, 0, 0),
    "credential": (3, 2, 0, 0, 0, 1),
    "task_signature": (6, 5, 0, 0, 1, 0),
    "legacy_workflow": (6, 6, 0, 0, 0, 0),
    "state_node": (8, 8, 0, 0, 0, 0),
    "micro_state": (8, 5, 0, 0, 1, 2),
    "rcm_transition": (8, 5, 0, 0, 1, 2),
    "batch_job": (4, 2, 0, 0, 0, 2),
    "batch_row": (14, 10, 0, 0, 0, 4),
    "rcm_trace": (9, 7, 0, 0, 0, 2),
    "credential_access_log": (5, 2, 0, 0, 3, 0),
}
# The tenant rows an import of the fixture leaves, per table (the interrupted import's goal).
IMPORTED_ROWS = {
    Organization: 3,
    User: 5,
    Endpoint: 6,
    PortalCredential: 2,
    TaskSignature: 5,
    OrgRequirementPolicy: 1,
    Workflow: 6,
    WorkflowRevision: 6,
    WorkflowNode: 8,
    WorkflowTransition: 5,
    MicroState: 5,
    BatchJob: 2,
    BatchJobItem: 10,
    WorkflowTrace: 7,
    WorkflowTraceEndpoint: 7,
    CredentialAccessLog: 4,  # the two imported, and the two the credentials' storing logged
}
MAP_FILE = """
task_action:
  status_check: status_check_legacy
  denial_follow_up: denial_followup
job_status:
  retrying: pending
user_role:
  billing_manager: operator
access_type:
  list: retrieve
"""


def rows_of(model) -> int:
    """The model's rows in the fixture's organizations (each counted in its own context)."""
    total = 0
    for org_id in ORGS:
        with org_context(org_id):
            if model is Organization:
                total += Organization.objects.count()
            elif model is User:
                total += User.objects.filter(org_id=org_id).count()
            else:
                total += model.objects.count()
    return total


@pytest.mark.django_db
def test_a_v3_database_is_imported_and_a_second_run_changes_nothing(legacy_url):
    code, first, human = import_legacy("--source", legacy_url)

    assert code == 0 and first["outcome"] == "ok"
    assert counts(first) == FIRST_RUN
    assert "create" in human and "Rejected (18):" in human
    code, second, _ = import_legacy("--source", legacy_url)
    assert code == 0
    totals = second["details"]["totals"]
    assert (totals["created"], totals["updated"]) == (0, 0)
    assert totals["rejected"] == first["details"]["totals"]["rejected"]
    assert {rows_of(model) for model in (Endpoint, BatchJobItem)} == {6, 10}
    runs = MigrationRun.objects.filter(kind=MigrationRun.Kind.IMPORT_LEGACY).order_by("pk")
    assert [run.details["totals"]["created"] for run in runs] == [
        first["details"]["totals"]["created"],
        0,
    ]


@pytest.mark.django_db
def test_organizations_and_users_keep_their_ids_roles_and_homes(legacy_url):
    _, document, _ = import_legacy("--source", legacy_url)

    with org_context(LAKESIDE):
        lakeside = Organization.objects.get()
        users = {user.email: user for user in User.objects.filter(org_id=LAKESIDE)}
        memberships = {m.user.email: (m.role_id, m.is_primary) for m in Membership.objects.all()}
    assert (lakeside.pk, lakeside.org_type_id) == (LAKESIDE, "hospital")
    assert lakeside.email_domain == "lakeside-hospital.org"
    assert lakeside.created_at.year == 2022
    assert sorted(users) == [
        "Ada@Clinic.org",
        "platform@lakeside-hospital.org",
        "rosa.diaz@lakeside-hospital.org",
    ]
    assert users["rosa.diaz@lakeside-hospital.org"].role_id == "org_admin"
    assert not users["Ada@Clinic.org"].has_usable_password()  # they set one to log in
    assert memberships["Ada@Clinic.org"] == ("hospital_user", True)
    rejected = issues(document, "rejected")
    assert rejected["app_user b2000000-0000-4000-8000-0000000000b1"] == (
        "duplicate email ada@clinic.org (already imported as Ada@Clinic.org, v3 user "
        "a1000000-0000-4000-8000-0000000000a2)"
    )
    assert (
        "user_role 'billing_manager' is not one of V8's"
        in (rejected["app_user b2000000-0000-4000-8000-0000000000b3"])
    )
    assert "sys_admin" in issues(document, "note")["app_user a1000000-0000-4000-8000-0000000000a3"]


@pytest.mark.django_db
def test_credentials_found_in_config_are_sealed_and_removed_from_it(legacy_url):
    _, document, _ = import_legacy("--source", legacy_url)

    with org_context(LAKESIDE):
        endpoints = {endpoint.name: endpoint for endpoint in Endpoint.objects.all()}
        credential = PortalCredential.objects.get()
        log = list(CredentialAccessLog.objects.order_by("created_at"))
        rosa = User.objects.get(email="rosa.diaz@lakeside-hospital.org")
    with org_context(SUMMIT):
        summit_credential = PortalCredential.objects.get()
        summit_config = Endpoint.objects.get(name="Availity (Summit)").config
    availity = endpoints["Availity"]
    assert availity.config == {"max_concurrency": 3}  # credentials gone from config
    assert endpoints["Medi-Cal"].config == {"max_concurrency": 4}  # unstorable: dropped too
    assert availity.channel_type.code == "availity"
    assert endpoints["UHC"].channel_type.code == "uhc-portal"  # V8's own channel type
    assert credential.endpoint_id == availity.pk and credential.credential_type == "user_pass"
    assert crypto.unseal(credential.encrypted_credential, credential_id=credential.pk) == {
        "username": "lakeside.billing",
        "password": "Avail!2022",
    }
    assert crypto.unseal(summit_credential.encrypted_credential, credential_id=0) == {
        "username": "summit.ops",
        "password": "Summit#1",
        "extra": {"security_answer": "Blue"},
    }
    assert summit_config == {"max_concurrency": 4}  # the stray top-level password left out
    # The storing of the credential, then v3's two accesses to it, with who made them.
    assert [(row.access_type, row.success, row.actor_user_id) for row in log] == [
        ("retrieve", True, rosa.pk),
        ("rotate", False, rosa.pk),
        ("store", True, None),
    ]
    assert {row.credential_id for row in log} == {credential.pk}
    rejected, skipped = issues(document, "rejected"), issues(document, "skipped")
    assert rejected["credential 3"].startswith(
        "the credentials in config cannot be stored (at fault: password)"
    )
    assert "lakeside.medi" not in str(document)  # a secret is never quoted
    assert "AWS Secrets Manager" in issues(document, "note")["credential 2"]
    assert "has no credential in V8" in skipped["credential_access_log 3"]
    assert "access_type 'list'" in skipped["credential_access_log 4"]
    assert "names no v3 endpoint" in skipped["credential_access_log 5"]


def stored_text(document: dict) -> str:
    """Everything the import wrote that a reader of V8 or of its report sees, as one text: the
    JSON report, the recorded runs, the map, and the tenant rows that hold v3 text."""
    texts = [str(document), *(str(run.details) for run in MigrationRun.objects.all())]
    texts += map(str, ChannelType.objects.values_list("base_url"))
    with org_context(None):
        texts += map(str, LegacyIdMap.objects.unscoped().values_list())
    for org_id in ORGS:
        with org_context(org_id):
            texts += map(str, LegacyIdMap.objects.values_list())
            texts += map(str, Endpoint.objects.values_list("base_url", "config"))
            texts += map(str, WorkflowTransition.objects.values_list("action_label"))
            texts += map(str, WorkflowNode.objects.values_list("label_conf"))
            texts += map(str, BatchJobItem.objects.values_list("error_message"))
            texts += map(str, WorkflowTrace.objects.values_list("action_detail"))
            texts += map(str, CredentialAccessLog.objects.values_list("error"))
    return "\n".join(texts)


@pytest.mark.django_db
def test_patient_data_in_v3_texts_is_masked_wherever_it_is_stored(legacy_url):
    _, document, _ = import_legacy("--source", legacy_url)

    stored = stored_text(document)
    for member_id in ("W123456789", "W987654321", "04/12/1961"):
        assert member_id not in stored
    with org_context(LAKESIDE):
        refused = CredentialAccessLog.objects.get(success=False, actor_user__isnull=False)
    assert refused.error == "portal refused the new password for member [MEMBER_ID]"


def left_out(document: dict, path: str) -> list[str]:
    """What the report says it left out of the rows of ``path``, by their paths."""
    reasons = [issue["reason"] for issue in document["details"]["issues"] if issue["path"] == path]
    return sorted(reason.split(" is left out")[0] for reason in reasons if " is left out" in reason)


@pytest.mark.django_db
def test_secrets_anywhere_in_an_endpoints_config_or_url_are_left_out_by_path(legacy_url):
    _, document, _ = import_legacy("--source", legacy_url)

    with org_context(SUMMIT):
        aetna = Endpoint.objects.get(name="Aetna")
    with org_context(CREDENTIA):
        caqh = Endpoint.objects.get(name="CAQH")
    assert aetna.config == {"auth": {"user": "ops"}, "headers": [{}], "max_concurrency": 4}
    # What is kept is kept as it was written (the route, the unencoded redirect).
    assert aetna.base_url == (
        "https://www.aetna.com/provider?lang=en&redirect=/claims/status#/login?view=full"
    )
    channel = ChannelType.objects.get(code="medi-cal")
    assert channel.base_url == "https://www.medi-cal.ca.gov/?lang=en"
    assert caqh.config == {"max_concurrency": 1, "sso": {}}
    assert left_out(document, "portal_type") == ["base_url query apikey"]
    assert left_out(document, "integration_endpoint") == [
        "base_url (user:password@)",
        "base_url fragment access_token",
        "base_url query X-Amz-Signature",
        "base_url query api_key",
        "config.Client-Secret",
        "config.auth.Password",
        "config.headers[0].X-Api-Key",
        "config.password",
        "config.refresh_token",
        "config.sso.TOTP-Seed",
    ]
    stored = stored_text(document)
    for secret in (
        "Aetna$ecret9", "svc.summit", "Nested-Pw1", "key-123abc", "cs-777", "rt-999",
        "JBSWY3DPEHPK3PXP", "old-Summit#0", "qk-5150", "sg-4242", "ft-8080", "mc-31337",
    ):  # fmt: skip
        assert secret not in stored


@pytest.mark.django_db
def test_the_catalogue_its_new_lookup_values_and_the_requirements(legacy_url):
    _, document, _ = import_legacy("--source", legacy_url)

    assert {"credentialing", "denial_mgmt"} <= set(
        TaskDomainLu.objects.values_list("pk", flat=True)
    )
    assert {"claim_inquire", "provider_enroll"} <= set(
        TaskActionLu.objects.values_list("pk", flat=True)
    )
    placed = {(v["vocabulary"], v["value"]): v for v in document["details"]["values"]}
    assert placed["task_action", "claim_inquire"]["how"] == "new lookup row"
    assert placed["job_status", "queued"] == {
        "vocabulary": "job_status", "value": "queued", "target": "pending", "how": "built in",
    }  # fmt: skip
    assert placed["task_signature_source", "ai"]["target"] == "ai_generated"
    verify = TaskType.objects.get(domain_id="eligibility", action_id="verify")
    assert verify.pk == uuid.UUID("77000000-0000-4000-8000-000000000001")
    assert ChannelType.objects.get(code="caqh").endpoint_kind == "provider"
    fields = {f.field_name: f for f in FieldRequirement.objects.filter(task_type=verify)}
    assert sorted(fields) == ["member_id", "patient_dob"]
    assert fields["member_id"].validation == {"pattern": "^[A-Z0-9]{6,12}$"}
    assert (fields["member_id"].label, fields["patient_dob"].field_type) == ("Member ID", "date")
    prior_auth = TaskType.objects.get(domain_id="prior_auth", action_id="submit")
    npi = FieldRequirement.objects.get(task_type=prior_auth, field_name="referring_npi")
    assert (npi.field_type, npi.rtype_id) == ("text", "required")
    urgency = FieldRequirement.objects.get(task_type=prior_auth, field_name="urgency")
    assert (urgency.field_type, urgency.rtype_id) == ("select", "optional")
    with org_context(LAKESIDE):
        policy = OrgRequirementPolicy.objects.select_related("endpoint").get()
        changes = RequirementChangelog.objects.filter(org_id=LAKESIDE).count()
    assert (policy.field_name, policy.operation, policy.endpoint.name) == (
        "claim_number",
        "add",
        "Availity",
    )
    assert policy.spec["validation"] == {"pattern": "^[A-Z0-9]{9,12}$"}
    assert changes == 1
    rejected = issues(document, "rejected")
    # Text where a number goes: the field is refused, its row's other fields are not.
    assert rejected["field_requirement 88000000-0000-4000-8000-000000000001:group_number"] == (
        "field_metadata: validation.max_length: Must be a whole number ≥ 0."
    )
    assert "deprecated in v3" in rejected["task_type 77000000-0000-4000-8000-000000000005"]


@pytest.mark.django_db
def test_page_memory_becomes_an_archived_workflow_cycle_included(legacy_url):
    _, document, _ = import_legacy("--source", legacy_url)

    with org_context(LAKESIDE):
        workflow = Workflow.objects.get(endpoint__name="Availity")
        nodes = {node.key: node for node in WorkflowNode.objects.filter(workflow=workflow)}
        edges = {
            (t.from_node.key[-1], t.to_node.key[-1], t.action_label, t.freq)
            for t in WorkflowTransition.objects.filter(workflow=workflow)
        }
        states = {s.node.key[-1]: s for s in MicroState.objects.select_related("node")}
    assert workflow.status_id == "archived" and workflow.published_at is None
    assert len(nodes) == 7
    search = nodes["state-5a000000000040008000000000000002"]
    assert (search.node_type, search.kind) == ("general", "web")
    # The caption named a member and a birth date: masked like every stored page.
    assert "W123456789" not in search.label_conf["caption"]
    assert "04/12/1961" not in search.label_conf["caption"]
    assert search.label_conf["confidence"] == 0.91
    assert {("2", "3", "search", 118), ("3", "2", "new search", 95)} <= edges  # a cycle
    long_label = next(edge[2] for edge in edges if edge[1] == "5")
    assert len(long_label) == 64 and long_label.startswith("search after the session")
    assert sorted(states) == ["1", "2", "3", "4"]
    assert {state.embedder for state in states.values()} == {"v3-legacy"}
    assert states["4"].is_retired and states["4"].aliased_to_id == states["3"].pk
    assert states["2"].action_json == {"tool": "fill", "target": "Member ID"}
    assert round(sum(value * value for value in states["1"].text_emb), 4) == 1.0
    rejected = issues(document, "rejected")
    assert "767" in rejected["micro_state 5a000000-0000-4000-8000-000000000006"]
    state = "5a000000-0000-4000-8000-00000000000{}".format
    assert (
        "loops on its node" in rejected[f"rcm_transition {state(3)}:{state(3)}:{digest('refresh')}"]
    )
    # Two captions naming members mask to one label: the first (by caption) keeps it.
    assert ("2", "3", "open member [MEMBER_ID]", 4) in edges
    assert issues(document, "skipped")[
        f"rcm_transition {state(2)}:{state(3)}:{digest('open member W987654321')}"
    ] == (
        "its caption, masked, is the label of transition "
        f"{state(2)}:{state(3)}:{digest('open member W123456789')}, which stands for both"
    )
    assert (
        "no embedding"
        in issues(document, "skipped")["micro_state 5a000000-0000-4000-8000-000000000005"]
    )


@pytest.mark.django_db
def test_batches_their_rows_and_traces(legacy_url):
    _, document, _ = import_legacy("--source", legacy_url)

    with org_context(LAKESIDE):
        job = BatchJob.objects.select_related("workflow").get()
        items = {item.row_number: item for item in BatchJobItem.objects.all()}
        traces = {t.action_detail["v3"]["trace_id"][-2:]: t for t in WorkflowTrace.objects.all()}
        trace_endpoints = set(
            WorkflowTraceEndpoint.objects.values_list("endpoint__name", flat=True)
        )
        signature = TaskSignature.objects.get(domain_id="eligibility")
    with org_context(SUMMIT):
        processing = BatchJob.objects.get()
    assert (job.status_id, job.cancel_requested, job.workflow.status_id) == (
        "completed",
        True,
        "archived",
    )
    assert (job.total_rows, job.successful_rows, job.failed_rows, job.processed_rows) == (
        6,
        4,
        2,
        6,
    )
    assert "s3://lakeside-results/b1.csv" in job.prompt
    assert (processing.status_id, processing.pending_rows, processing.running_rows) == (
        "processing",
        1,
        1,
    )
    assert items[3].status == "failed"
    assert items[3].error_message == "NOT_FOUND: Member [MEMBER_ID] not found"
    assert items[1].status == "completed" and items[1].completed_at is not None
    assert sorted(traces) == ["01", "02", "03", "06", "07"]
    assert traces["01"].batch_job_item_id == items[1].pk
    assert (traces["02"].tier, traces["02"].llm_model) == (3, "gpt-4o-mini")
    assert traces["01"].tier is None and traces["01"].duration_ms == 1230
    # No outcome nor duration in v3: the row said it failed, the steps say how long.
    assert (traces["06"].success, traces["06"].duration_ms) == (False, 710)
    assert traces["07"].batch_job_item_id is None
    assert (
        "no v3 batch row names it"
        in issues(document, "note")["rcm_trace 7c000000-0000-4000-8000-000000000007"]
    )
    steps = traces["01"].action_detail["steps"]
    assert [step["t_ms"] for step in steps] == [410, 820]
    assert "W123456789" not in steps[1]["action"]
    # Two v3 signatures of one portal, domain and action are one V8 signature.
    assert traces["03"].action_detail["task_signature_id"] == signature.pk
    assert trace_endpoints == {"Availity"}
    rejected = issues(document, "rejected")
    assert rejected["rcm_trace 7c000000-0000-4000-8000-000000000004"] == (
        "duration_ms 'n/a' is not a whole number of milliseconds"
    )
    assert rejected["rcm_trace 7c000000-0000-4000-8000-000000000005"] == (
        "step 2: t_ms 'fast' is not a number"
    )
    assert (
        "is v3 row ba000000-0000-4000-8000-000000000011's"
        in (rejected["batch_row ba000000-0000-4000-8000-000000000012"])
    )


@pytest.mark.django_db
@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_map_file_places_what_v3_left_unplaced(legacy_url, tmp_path, suffix):
    import json

    import yaml

    map_file = tmp_path / f"map{suffix}"
    document = yaml.safe_load(MAP_FILE)
    map_file.write_text(json.dumps(document) if suffix == ".json" else MAP_FILE)

    code, first, _ = import_legacy("--source", legacy_url, "--map", str(map_file))

    assert code == 0
    table = counts(first)
    assert table["task_type"] == (7, 5, 0, 0, 2, 0)
    assert table["batch_job"] == (4, 4, 0, 0, 0, 0)
    assert table["app_user"] == (7, 6, 0, 0, 0, 1)  # the duplicate email stays refused
    assert table["batch_row"] == (14, 13, 0, 0, 0, 1)
    assert TaskType.objects.filter(action_id="status_check_legacy").exists()
    assert TaskActionLu.objects.filter(pk="denial_followup").exists()
    with org_context(SUMMIT):
        june = User.objects.get(email="june.park@summitbilling.com")
        retried = BatchJobItem.objects.get(row_number=5)
    assert june.role_id == "operator" and retried.status == "pending"
    placed = {(v["vocabulary"], v["value"]): v["how"] for v in first["details"]["values"]}
    assert placed["job_status", "retrying"] == "--map"
    assert placed["task_action", "denial_follow_up"] == "--map, new lookup row"
    _, second, _ = import_legacy("--source", legacy_url, "--map", str(map_file))
    assert (second["details"]["totals"]["created"], second["details"]["totals"]["updated"]) == (
        0,
        0,
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "neither valid JSON nor YAML"),
        ('{"colour": {"red": "blue"}}', "'colour' is not a section"),
        ('{"job_status": {"retrying": "later"}}', "job_status.retrying: 'later' is not one of"),
        ('{"task_action": {"x": "Not A Name"}}', "is not a lower-case name"),
    ],
)
def test_a_bad_map_file_stops_the_import_before_it_reads_anything(
    legacy_url, tmp_path, content, problem
):
    map_file = tmp_path / "map.json"
    map_file.write_text(content)

    code, document, _ = import_legacy("--source", legacy_url, "--map", str(map_file))

    assert code == 2 and problem in document["summary"]
    assert rows_of(Organization) == 0


TOUCHED = (
    Organization, User, Membership, Endpoint, PortalCredential, CredentialAccessLog,
    TaskSignature, OrgRequirementPolicy, RequirementChangelog, Workflow, WorkflowRevision,
    WorkflowNode, WorkflowTransition, MicroState, BatchJob, BatchJobItem, WorkflowTrace,
    WorkflowTraceEndpoint, LegacyIdMap,
)  # fmt: skip
PLATFORM = (ChannelType, TaskType, FieldRequirement, TaskDomainLu, TaskActionLu)


def table_counts() -> dict:
    """The rows of every table an import writes, in the fixture's organizations (each seen in
    its own context) and in the platform's catalogue."""
    audited = 0
    for org_id in ORGS:
        with org_context(org_id), connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM audit_event")
            audited += cursor.fetchone()[0]
    return {
        **{model.__name__: rows_of(model) for model in TOUCHED},
        **{model.__name__: model.objects.count() for model in PLATFORM},
        "audit_event": audited,
    }


@pytest.mark.django_db
def test_a_dry_run_reports_what_it_would_do_and_writes_nothing(legacy_url):
    before = table_counts()

    code, document, human = import_legacy("--source", legacy_url, "--dry-run")

    assert code == 0
    assert table_counts() == before
    assert counts(document) == FIRST_RUN  # exactly what a real run does
    assert document["details"]["dry_run"] is True
    assert "would create" in human and document["summary"].startswith("Dry run")
    run = MigrationRun.objects.get()  # the run itself is recorded
    assert run.details["totals"]["created"] == document["details"]["totals"]["created"]


@pytest.mark.django_db
def test_org_limits_the_import_to_the_organizations_named(legacy_url):
    code, document, _ = import_legacy(
        "--source", legacy_url, "--org", "Credentia Services", "--org", str(SUMMIT)
    )

    assert code == 0
    assert counts(document)["organization"] == (2, 2, 0, 0, 0, 0)
    assert rows_of(Organization) == 2
    with org_context(LAKESIDE):
        assert not Organization.objects.exists()
    with org_context(CREDENTIA):
        assert Endpoint.objects.get().name == "CAQH"
    # The access log row of no organization is reported only when all are imported.
    assert "credential_access_log 5" not in issues(document, "skipped")


@pytest.mark.django_db
def test_an_unknown_org_is_exit_2_naming_it(legacy_url):
    code, document, _ = import_legacy("--source", legacy_url, "--org", "Nowhere Clinic")

    assert code == 2
    assert "no organization 'Nowhere Clinic'" in document["summary"]


@pytest.mark.django_db
def test_a_source_that_does_not_answer_is_exit_2_naming_its_host_and_port():
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    code, document, _ = import_legacy(
        "--source", f"postgresql://someone:secret@127.0.0.1:{port}/legacy"
    )

    assert code == 2
    assert f"Cannot connect to the v3 database at 127.0.0.1:{port}/legacy" in document["summary"]
    assert "secret" not in document["summary"]
    assert MigrationRun.objects.get().outcome == MigrationRun.Outcome.ERROR


@pytest.mark.django_db
def test_a_database_that_is_not_v3_is_exit_2_naming_what_it_lacks():
    # The V8 database itself, given by mistake: some names are alike, most are not.
    code, document, _ = import_legacy("--source", owner_url(connection.settings_dict["NAME"]))

    assert code == 2
    summary = document["summary"]
    assert "is not a v3 database: it has no portal_type, integration_endpoint" in summary
    assert "rcm_state" in summary and "batch_row" in summary and "batch_job.batch_id" in summary


@pytest.mark.django_db
def test_strict_exits_1_when_rows_were_rejected(legacy_url):
    code, document, _ = import_legacy("--source", legacy_url, "--strict")

    assert code == 1 and document["outcome"] == "failed"
    assert counts(document) == FIRST_RUN  # everything importable was imported all the same


class Interrupted(Exception):
    pass


@pytest.mark.django_db
@pytest.mark.parametrize("after", [1, 4, 9, 15])
def test_an_interrupted_import_is_completed_by_the_next_run_and_doubles_nothing(legacy_url, after):
    def crash(committed: int) -> None:
        if committed == after:
            raise Interrupted

    # Two rows a chunk, so that the large tables take several chunks each.
    with LegacySource(legacy_url) as source, pytest.raises(Interrupted):
        LegacyImport(source=source, values=ValueMap({}), chunk_size=2, on_commit=crash).run([])
    partial = {model: rows_of(model) for model in IMPORTED_ROWS}
    assert partial != IMPORTED_ROWS

    code, document, _ = import_legacy("--source", legacy_url)

    assert code == 0
    assert {model: rows_of(model) for model in IMPORTED_ROWS} == IMPORTED_ROWS
    for path, (read, created, _, unchanged, skipped, rejected) in counts(document).items():
        # What the first run committed is unchanged now, and the rest created now.
        expected = FIRST_RUN[path]
        assert (read, created + unchanged, skipped, rejected) == (
            expected[0], expected[1], expected[4], expected[5]
        ), path  # fmt: skip


@pytest.mark.django_db
def test_changed_v3_rows_are_updated_and_only_they(legacy_copy):
    import psycopg

    import_legacy("--source", legacy_copy)
    with psycopg.connect(legacy_copy, autocommit=True) as v3:
        v3.execute(
            "UPDATE app_user SET full_name = 'Rosa M. Diaz' "
            "WHERE email = 'rosa.diaz@lakeside-hospital.org'"
        )
        v3.execute(
            "UPDATE batch_row SET status = 'success', updated_at = '2023-04-05 10:00+00' "
            "WHERE row_id = 'ba000000-0000-4000-8000-000000000011'"
        )
        v3.execute(
            "UPDATE integration_endpoint SET config = jsonb_set(config, "
            "'{credentials,password}', '\"Avail!2023\"') WHERE portal_id = 1"
        )

    code, document, _ = import_legacy("--source", legacy_copy)

    assert code == 0
    updated = {path: row[2] for path, row in counts(document).items() if row[2]}
    assert updated == {"app_user": 1, "batch_row": 1, "integration_endpoint": 1, "credential": 1}
    assert document["details"]["totals"]["created"] == 0
    with org_context(LAKESIDE):
        assert User.objects.get(email__startswith="rosa").full_name == "Rosa M. Diaz"
        credential = PortalCredential.objects.get()
        assert Endpoint.objects.get(name="Availity").config == {"max_concurrency": 3}
    assert credential.rotation_status == "pending_validation"
    assert crypto.unseal(credential.encrypted_credential, credential_id=0)["password"] == (
        "Avail!2023"
    )
    with org_context(SUMMIT):
        job = BatchJob.objects.get()
        assert BatchJobItem.objects.get(row_number=4).status == "completed"
    # The job's counters follow its rows.
    assert (job.pending_rows, job.successful_rows, job.processed_rows) == (0, 2, 3)


@pytest.mark.django_db
def test_a_v3_row_moved_to_another_job_is_counted_by_that_job_only(legacy_copy, tmp_path):
    import psycopg

    map_file = tmp_path / "map.yaml"  # which imports job 2 (its status is 'retrying')
    map_file.write_text(MAP_FILE)
    import_legacy("--source", legacy_copy, "--map", str(map_file))
    # The only row of job 2 (queued), moved to job 1.
    with psycopg.connect(legacy_copy, autocommit=True) as v3:
        v3.execute(
            "UPDATE batch_row SET batch_id = 'b0000000-0000-4000-8000-000000000001', "
            "row_idx = 7 WHERE row_id = 'ba000000-0000-4000-8000-000000000007'"
        )

    code, document, _ = import_legacy("--source", legacy_copy, "--map", str(map_file))

    assert code == 0 and counts(document)["batch_row"][2] == 1
    with org_context(LAKESIDE):
        jobs = {
            job.prompt.split(".")[0][-1]: (job.total_rows, job.pending_rows, job.processed_rows)
            for job in BatchJob.objects.all()
        }
    assert jobs == {"1": (7, 1, 6), "2": (0, 0, 0)}


@pytest.mark.django_db
def test_a_new_secret_key_updates_the_transitions_it_renames_in_the_map(legacy_url, settings):
    import_legacy("--source", legacy_url, "--org", str(LAKESIDE))
    settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789"
    idmap._digest_key.cache_clear()
    try:
        code, document, _ = import_legacy("--source", legacy_url, "--org", str(LAKESIDE))
    finally:
        idmap._digest_key.cache_clear()

    assert code == 0
    assert counts(document)["rcm_transition"] == (8, 0, 5, 0, 1, 2)
    assert rows_of(WorkflowTransition) == 5


@pytest.mark.django_db
def test_another_organization_sees_none_of_the_map_but_the_platform_rows(legacy_url):
    import_legacy("--source", legacy_url, "--org", str(LAKESIDE), "--org", str(SUMMIT))

    with org_context(LAKESIDE):
        lakeside = set(LegacyIdMap.objects.values_list("org_id", flat=True))
        lakeside_rows = LegacyIdMap.objects.filter(org_id=LAKESIDE).count()
    with org_context(SUMMIT):
        summit_sees = set(LegacyIdMap.objects.unscoped().values_list("org_id", flat=True))
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM legacy_id_map WHERE org_id = %s", [LAKESIDE])
            assert cursor.fetchone() == (0,)
    with org_context(None), connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT org_id FROM legacy_id_map")
        assert cursor.fetchall() == [(None,)]  # the catalogue's rows, nobody's
    assert lakeside == {LAKESIDE, None} and lakeside_rows > 10
    assert summit_sees == {SUMMIT, None}
    refused = pytest.raises(ProgrammingError, match="row-level security")
    with org_context(SUMMIT), refused, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO legacy_id_map (org_id, legacy_table, legacy_id, target_table, "
            "target_id, row_hash, imported_at) VALUES (%s, 'x', 'y', 'z', '1', '', now())",
            [LAKESIDE],
        )


@pytest.mark.django_db
def test_an_organizations_context_cannot_write_the_platforms_map_rows(legacy_url):
    import_legacy("--source", legacy_url, "--org", str(SUMMIT))
    with org_context(None):
        platform_row = LegacyIdMap.objects.unscoped().filter(org_id=None).first()

    refused = pytest.raises(ProgrammingError, match="row-level security")
    with org_context(SUMMIT), refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO legacy_id_map (org_id, legacy_table, legacy_id, target_table, "
            "target_id, row_hash, imported_at) VALUES (NULL, 'x', 'y', 'z', '1', '', now())"
        )
    refused = pytest.raises(ProgrammingError, match="row-level security")
    with org_context(SUMMIT), refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE legacy_id_map SET target_id = 'elsewhere' WHERE id = %s", [platform_row.pk]
        )
    with org_context(None):
        assert LegacyIdMap.objects.unscoped().get(pk=platform_row.pk).target_id == (
            platform_row.target_id
        )


@pytest.mark.django_db
def test_the_generator_makes_a_v3_database_the_import_takes_whole():
    with generate.legacy_v3_database(server_url(), "legacy_v3_generated") as url:
        generate.legacy_v3_generate(url, orgs=2, items=1200)
        code, first, _ = import_legacy("--source", url)
        _, second, _ = import_legacy("--source", url)

    assert code == 0 and first["details"]["totals"]["rejected"] == 0
    table = counts(first)
    assert table["batch_row"] == (1200, 1200, 0, 0, 0, 0)
    assert table["rcm_trace"] == (1200, 1200, 0, 0, 0, 0)
    assert table["batch_job"][1] == 3 and table["micro_state"][1] == 2 * 6 * 40
    totals = second["details"]["totals"]
    assert (totals["created"], totals["updated"], totals["unchanged"]) == (
        0,
        0,
        first["details"]["totals"]["created"],
    )


@pytest.mark.django_db
def test_an_organization_whose_name_v8_has_is_rejected_with_nothing_of_it(legacy_url):
    from tenants import services

    services.organization_create(name="Credentia Services", org_type="credentialer")

    code, document, _ = import_legacy("--source", legacy_url)

    assert code == 0
    assert counts(document)["organization"] == (3, 2, 0, 0, 0, 1)
    assert (
        "V8 has another organization named 'Credentia Services'"
        in (issues(document, "rejected")[f"organization {CREDENTIA}"])
    )
    with org_context(CREDENTIA):
        assert not Endpoint.objects.exists()
    assert counts(document)["integration_endpoint"][0] == 5  # its endpoint was never read
