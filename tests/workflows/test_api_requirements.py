"""The requirements endpoints: the two-organization security checks, the effective set and row
validation, policies with their changelog, payer versions, and the bad input each refuses
without writing anything."""

from datetime import date

import pytest
from django.utils import timezone

from rcm.context import org_context
from tenants import services as tenant_services
from tenants.models import ChannelType
from tests.conftest import client_for
from tests.helpers import assert_not_found as _assert_not_found
from workflows.models import OrgRequirementPolicy, PayerRequirement, RequirementChangelog
from workflows.selectors.requirements import task_type_find
from workflows.services import requirements as services

POLICIES = "/api/v2/requirement-policies/"
PAYERS = "/api/v2/payer-requirements/"
EFFECTIVE = "/api/v2/requirements/effective/"
VALIDATE = "/api/v2/requirements/validate/"
CHANGELOG = "/api/v2/requirement-changelog/"
TASK_TYPES = "/api/v2/task-types/"

# A new version of UHC's claim-number requirement, as a sys_admin posts it to PAYERS.
UHC_CLAIM_NUMBER = {
    "channel_type": "uhc-portal",
    "task_type": "claim/check_status",
    "field_name": "claim_number",
    "field_type": "text",
    "effective_date": "2026-01-01",
}


def _policy_body(**overrides) -> dict:
    body = {
        "task_type": "eligibility/check",
        "field_name": "subscriber_relationship",
        "operation": "add",
        "spec": {"field_type": "select", "validation": {"enum": ["self", "spouse", "child"]}},
        "effective_date": "2025-01-01",
        "reason": "Our hospitals always send it.",
    }
    return {**body, **overrides}


@pytest.fixture
def world(org_a, org_b):
    """In each organization: a UHC endpoint and a policy; {tenant id: {...}}."""
    uhc = ChannelType.objects.get(code="uhc-portal")
    task_type = task_type_find(ref="eligibility/check")
    found = {}
    for tenant in (org_a, org_b):
        with org_context(tenant.id):
            endpoint = tenant_services.endpoint_create(
                org_id=tenant.id, name="UHC", channel_type=uhc
            )
            policy = services.org_policy_create(
                org_id=tenant.id,
                task_type=task_type,
                field_name="provider_npi",
                operation="modify",
                spec={"label": f"NPI of {tenant.org.name}"},
                effective_date=date(2025, 1, 1),
                reason="Wording",
                actor=tenant["org_admin"],
            )
        found[tenant.id] = {
            "endpoint": endpoint,
            "policy": policy,
            "policy_url": f"{POLICIES}{policy.pk}/",
        }
    return found


def _policy_count(tenant) -> int:
    with org_context(tenant.id):
        return OrgRequirementPolicy.objects.count()


def _changelog(tenant, record_id: int) -> list:
    with org_context(tenant.id):
        rows = RequirementChangelog.objects.filter(
            table_name="org_requirement_policy", record_id=record_id
        )
        return list(rows.order_by("id"))


# -- security ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_another_orgs_policy_is_404_and_unchanged(api, world, org_a, org_b):
    admin_a = api(org_a, "org_admin")
    theirs = world[org_b.id]["policy_url"]
    _assert_not_found(admin_a.get(theirs))
    _assert_not_found(admin_a.patch(theirs, {"reason": "stolen", "spec": {"label": "x"}}, "json"))
    _assert_not_found(admin_a.delete(theirs))
    _assert_not_found(admin_a.get(f"{POLICIES}999999/"))
    with org_context(org_b.id):
        policy = OrgRequirementPolicy.objects.get()
        assert policy.spec == {"label": "NPI of Bayside Hospital"} and policy.reason == "Wording"
    assert len(_changelog(org_b, policy.pk)) == 1


@pytest.mark.django_db
def test_another_orgs_endpoint_is_404_wherever_it_is_named(api, world, org_a, org_b):
    client = api(org_a, "org_admin")
    theirs = world[org_b.id]["endpoint"].pk
    _assert_not_found(client.get(EFFECTIVE, {"task_type": "eligibility/check", "endpoint": theirs}))
    _assert_not_found(client.get(EFFECTIVE, {"task_type": "eligibility/check", "endpoint": 99999}))
    body = {"task_type": "eligibility/check", "endpoint": theirs, "row": {}}
    _assert_not_found(client.post(VALIDATE, body, "json"))
    _assert_not_found(client.post(POLICIES, _policy_body(endpoint=theirs), "json"))
    ours = world[org_a.id]["policy_url"]
    _assert_not_found(client.patch(ours, {"reason": "move", "endpoint": theirs}, "json"))
    assert _policy_count(org_a) == 1
    with org_context(org_a.id):
        assert OrgRequirementPolicy.objects.get().endpoint_id is None


@pytest.mark.django_db
def test_the_policy_list_filters_by_task_type_and_endpoint(api, world, org_a):
    endpoint = world[org_a.id]["endpoint"]
    client = api(org_a, "org_admin")
    body = _policy_body(endpoint=endpoint.pk, field_name="uhc_ref", spec={"field_type": "text"})
    assert client.post(POLICIES, body, "json").status_code == 201
    viewer = api(org_a, "viewer")
    assert len(viewer.get(POLICIES).json()["results"]) == 2
    narrowed = viewer.get(POLICIES, {"endpoint": endpoint.pk}).json()["results"]
    assert [row["field_name"] for row in narrowed] == ["uhc_ref"]
    assert viewer.get(POLICIES, {"task_type": "claim/check_status"}).json()["results"] == []
    response = viewer.get(POLICIES, {"task_type": "nope/nope"})
    assert response.status_code == 400 and "task_type" in response.json()["error"]["details"]
    response = viewer.get(POLICIES, {"colour": "red"})
    assert response.status_code == 400 and "colour" in response.json()["error"]["details"]


# -- effective requirements and validation -------------------------------------------------


@pytest.mark.django_db
def test_effective_fields_by_task_key_or_id_with_their_sources(api, world, org_a):
    client = api(org_a, "viewer")
    endpoint = world[org_a.id]["endpoint"]
    policy = world[org_a.id]["policy"]
    response = client.get(EFFECTIVE, {"task_type": "eligibility/check", "as_of": "2025-06-01"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["endpoint"] is None and body["as_of"] == "2025-06-01"
    fields = {field["field_name"]: field for field in body["fields"]}
    assert fields["provider_npi"]["label"] == "NPI of Acme Billing"
    assert fields["provider_npi"]["sources"] == ["platform", f"org policy #{policy.pk}"]
    assert fields["member_id"]["validation"]["max_length"] == 30

    task_type = task_type_find(ref="eligibility/check")
    on_uhc = client.get(
        EFFECTIVE, {"task_type": str(task_type.pk), "endpoint": endpoint.pk, "as_of": "2025-06-01"}
    ).json()
    assert on_uhc["task_type"] == str(task_type.pk) and on_uhc["endpoint"] == endpoint.pk
    # as_of defaults to today.
    today = client.get(EFFECTIVE, {"task_type": "eligibility/check"}).json()
    assert today["as_of"] == timezone.localdate().isoformat()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"task_type": "eligibility/teleport"}, "task_type"),
        ({"task_type": "00000000-0000-0000-0000-000000000000"}, "task_type"),
        ({}, "task_type"),
        ({"task_type": "eligibility/check", "as_of": "2025-13-01"}, "as_of"),
        ({"task_type": "eligibility/check", "endpoint": "uhc"}, "endpoint"),
        ({"task_type": "eligibility/check", "endpiont": "1"}, "endpiont"),
    ],
)
def test_bad_effective_queries_are_400_naming_the_parameter(api, org_a, query, field):
    response = api(org_a, "viewer").get(EFFECTIVE, query)
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["details"]


@pytest.mark.django_db
def test_validate_answers_200_with_what_is_wrong_with_the_row(api, world, org_a):
    client = api(org_a, "viewer")
    row = {
        "member_id": "AB",
        "patient_first_name": "Ann",
        "patient_dob": "03/02/1980",
        "provider_npi": "1234567890",
        "copay": "10",
        "favourite_colour": "blue",
    }
    body = {"task_type": "eligibility/check", "as_of": "2025-06-01", "row": row}
    response = client.post(VALIDATE, body, "json")
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "valid": False,
        "missing": ["patient_last_name"],
        "unknown": ["copay", "favourite_colour"],
        "errors": {
            "member_id": [
                "Member ID is not in the expected format.",
                "Member ID must be at least 3 characters long.",
            ],
            "patient_dob": ["Patient date of birth must look like 1980-04-30."],
        },
    }
    good = {**row, "member_id": "ABC123", "patient_last_name": "Lee", "patient_dob": "1980-02-03"}
    del good["copay"], good["favourite_colour"]
    body = {"task_type": "eligibility/check", "row": good}
    assert client.post(VALIDATE, body, "json").json()["valid"] is True
    # On Anthem's portal the payer also wants the group number.
    anthem = ChannelType.objects.get(code="anthem-availity")
    with org_context(org_a.id):
        endpoint = tenant_services.endpoint_create(
            org_id=org_a.id, name="Anthem", channel_type=anthem
        )
    body = {"task_type": "eligibility/check", "endpoint": endpoint.pk, "row": good}
    assert client.post(VALIDATE, body, "json").json()["missing"] == ["group_number"]
    assert client.get(VALIDATE).status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"task_type": "eligibility/check", "row": ["a"]}, "row"),
        ({"task_type": "eligibility/check"}, "row"),
        ({"task_type": "nope/nope", "row": {}}, "task_type"),
        ({"task_type": "eligibility/check", "row": {}, "org_id": "x"}, "org_id"),
    ],
)
def test_a_malformed_validate_request_is_400(api, org_a, body, field):
    response = api(org_a, "viewer").post(VALIDATE, body, "json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]


# -- policies and their changelog ----------------------------------------------------------


@pytest.mark.django_db
def test_org_admin_creates_updates_and_deletes_a_policy_with_a_changelog(api, org_a):
    client = api(org_a, "org_admin")
    admin = org_a["org_admin"]
    body = _policy_body(approved_by=str(admin.pk), end_date="2026-01-01")
    response = client.post(POLICIES, body, "json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["task"] == "eligibility/check" and created["approved_by"] == str(admin.pk)
    assert created["created_by"] == str(admin.pk)
    url = f"{POLICIES}{created['id']}/"
    assert api(org_a, "viewer").get(url).json()["field_name"] == "subscriber_relationship"

    change = {"spec": {**body["spec"], "rtype": "optional"}, "reason": "Not every payer asks"}
    response = client.patch(url, change, "json")
    assert response.status_code == 200, response.json()
    assert response.json()["spec"]["rtype"] == "optional"
    assert response.json()["reason"] == "Not every payer asks"
    assert client.delete(url, {"reason": "Dropped"}, "json").status_code == 204
    assert client.get(url).status_code == 404

    created_row, updated_row, deleted_row = _changelog(org_a, created["id"])
    assert created_row.change == "created" and created_row.old_value is None
    assert created_row.new_value["field_name"] == "subscriber_relationship"
    assert created_row.new_value["end_date"] == "2026-01-01"
    assert created_row.org_id == org_a.id and created_row.changed_by_id == admin.pk
    assert updated_row.change == "updated" and updated_row.reason == "Not every payer asks"
    assert "rtype" not in updated_row.old_value["spec"]
    assert updated_row.new_value["spec"]["rtype"] == "optional"
    assert deleted_row.change == "deleted" and deleted_row.new_value is None
    assert deleted_row.old_value == updated_row.new_value and deleted_row.reason == "Dropped"

    listed = client.get(CHANGELOG).json()["results"]
    assert [row["change"] for row in listed[:3]] == ["deleted", "updated", "created"]


@pytest.mark.django_db
def test_a_patch_that_changes_nothing_writes_no_changelog(api, world, org_a):
    policy = world[org_a.id]["policy"]
    response = api(org_a, "org_admin").patch(
        world[org_a.id]["policy_url"], {"reason": "Wording"}, "json"
    )
    assert response.status_code == 200
    assert len(_changelog(org_a, policy.pk)) == 1


@pytest.mark.django_db
def test_the_effective_set_shows_a_new_policy_from_its_date(api, org_a):
    client = api(org_a, "org_admin")
    assert (
        client.post(POLICIES, _policy_body(effective_date="2025-03-01"), "json").status_code == 201
    )
    remove = _policy_body(field_name="provider_npi", operation="remove", spec={})
    assert client.post(POLICIES, remove, "json").status_code == 201

    def names(as_of):
        query = {"task_type": "eligibility/check", "as_of": as_of}
        return {field["field_name"] for field in client.get(EFFECTIVE, query).json()["fields"]}

    assert "subscriber_relationship" not in names("2025-02-28")
    assert "subscriber_relationship" in names("2025-03-01")
    assert "provider_npi" not in names("2025-03-01")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (
            {"spec": {"field_type": "text", "validation": {"pattern": "([a-z"}}},
            "spec.validation.pattern",
        ),
        ({"spec": {"field_type": "text", "rtype": "mandatory"}}, "spec.rtype"),
        ({"spec": {"field_type": "colour"}}, "spec.field_type"),
        ({"spec": {"field_type": "text", "colour": "red"}}, "spec.colour"),
        ({"spec": {"field_type": "text", "validation": {"max_len": 3}}}, "spec.validation.max_len"),
        (
            {"spec": {"field_type": "text", "validation": {"min_length": -1}}},
            "spec.validation.min_length",
        ),
        (
            {"spec": {"field_type": "text", "validation": {"min": 5, "max": 1}}},
            "spec.validation.min",
        ),
        (
            {"spec": {"field_type": "date", "validation": {"date_format": "%Y"}}},
            "spec.validation.date_format",
        ),
        ({"spec": {"field_type": "select"}}, "spec.validation.enum"),
        ({"spec": {"field_type": "text", "rtype": "conditional"}}, "spec.conditional_on"),
        (
            {"spec": {"field_type": "text", "conditional_on": {"field": "x", "maybe": 1}}},
            "spec.conditional_on",
        ),
        ({"spec": {"label": "no type"}}, "spec.field_type"),
        ({"spec": "text"}, "spec"),
        (
            {"operation": "modify", "field_name": "no_such_field", "spec": {"label": "x"}},
            "field_name",
        ),
        ({"operation": "remove", "field_name": "no_such_field", "spec": {}}, "field_name"),
        ({"operation": "modify", "field_name": "member_id", "spec": {}}, "spec"),
        ({"operation": "remove", "field_name": "member_id"}, "spec"),
        (
            {"operation": "modify", "field_name": "member_id", "spec": {"field_type": "select"}},
            "spec.validation.enum",
        ),
        ({"end_date": "2024-12-31"}, "end_date"),
        ({"end_date": "2025-01-01"}, "end_date"),
        ({"colour": "red"}, "colour"),
        ({"operation": "rename"}, "operation"),
        ({"field_name": "bad name!"}, "field_name"),
        ({"task_type": "eligibility/teleport"}, "task_type"),
        ({"reason": ""}, "reason"),
        ({"effective_date": "soon"}, "effective_date"),
    ],
)
def test_bad_policy_input_is_400_naming_the_field_and_writes_nothing(api, org_a, overrides, field):
    response = api(org_a, "org_admin").post(POLICIES, _policy_body(**overrides), "json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["details"], response.json()
    assert _policy_count(org_a) == 0
    with org_context(org_a.id):
        assert not RequirementChangelog.objects.filter(org_id=org_a.id).exists()


@pytest.mark.django_db
def test_a_modify_is_checked_against_the_fields_on_its_own_date(api, org_a):
    client = api(org_a, "org_admin")
    assert (
        client.post(POLICIES, _policy_body(effective_date="2025-03-01"), "json").status_code == 201
    )
    early = _policy_body(
        operation="modify", effective_date="2025-02-01", spec={"label": "Relationship"}
    )
    response = client.post(POLICIES, early, "json")
    assert response.status_code == 400 and "field_name" in response.json()["error"]["details"]
    response = client.post(POLICIES, {**early, "effective_date": "2025-03-01"}, "json")
    assert response.status_code == 201, response.json()


@pytest.mark.django_db
def test_approved_by_must_be_an_org_admin_member(api, org_a, org_b):
    client = api(org_a, "org_admin")
    for user in (org_a["viewer"], org_b["org_admin"]):
        response = client.post(POLICIES, _policy_body(approved_by=str(user.pk)), "json")
        assert response.status_code == 400
        assert response.json()["error"]["details"] == {"approved_by": [services.NOT_AN_APPROVER]}
    assert _policy_count(org_a) == 0


@pytest.mark.django_db
def test_a_policy_stays_editable_after_its_approver_is_demoted(api, org_a):
    with org_context(org_a.id):
        boss = tenant_services.user_create(
            org_id=org_a.id, email="boss@acme.test", role="org_admin"
        )
        approver = boss.memberships.get(org_id=org_a.id)
    client = api(org_a, "org_admin")
    body = _policy_body(approved_by=str(approver.user_id))
    url = f"{POLICIES}{client.post(POLICIES, body, 'json').json()['id']}/"
    with org_context(org_a.id):
        tenant_services.membership_update(
            membership=approver, actor=org_a["org_admin"], actor_role="org_admin", role="viewer"
        )
    response = client.patch(url, {"reason": "Clearer wording", "spec": {**body["spec"]}}, "json")
    assert response.status_code == 200, response.json()
    response = client.patch(url, {"reason": "r", "approved_by": str(approver.user_id)}, "json")
    assert response.json()["error"]["details"] == {"approved_by": [services.NOT_AN_APPROVER]}


@pytest.mark.django_db
def test_bad_patches_are_400_and_change_nothing(api, world, org_a):
    client = api(org_a, "org_admin")
    url = world[org_a.id]["policy_url"]
    for change, field in [
        ({"end_date": "2024-01-01"}, "end_date"),
        ({"spec": {"validation": {"pattern": "("}}}, "spec.validation.pattern"),
        ({"task_type": "claim/check_status"}, "task_type"),
        ({"spec": {"label": "x"}}, "reason"),
        ({"field_name": "nothing_like_it"}, "field_name"),
    ]:
        response = client.patch(
            url, {"reason": "try", **change} if field != "reason" else change, "json"
        )
        assert response.status_code == 400, change
        assert field in response.json()["error"]["details"], response.json()
    with org_context(org_a.id):
        policy = OrgRequirementPolicy.objects.get()
    assert policy.spec == {"label": "NPI of Acme Billing"} and policy.end_date is None
    assert len(_changelog(org_a, policy.pk)) == 1


# -- payer requirements and the catalogue --------------------------------------------------


@pytest.mark.django_db
def test_members_read_payer_requirements_with_filters(api, org_a):
    client = api(org_a, "viewer")
    rows = client.get(PAYERS, {"channel_type": "uhc-portal"}).json()["results"]
    assert [(row["field_name"], row["version"]) for row in rows] == [("claim_number", 1)]
    assert rows[0]["task"] == "claim/check_status"
    assert (
        client.get(PAYERS, {"as_of": "2024-06-30", "channel_type": "uhc-portal"}).json()["results"]
        == []
    )
    eligibility = client.get(PAYERS, {"task_type": "eligibility/check"}).json()["results"]
    assert [row["channel_type"] for row in eligibility] == ["anthem-availity"]
    detail = client.get(f"{PAYERS}{rows[0]['id']}/")
    assert detail.status_code == 200 and detail.json()["label"] == "UHC claim number"


@pytest.mark.django_db
def test_sys_admin_creates_a_new_payer_version_logged_for_every_org(api, org_a, org_b, sys_admin):
    staff = client_for(sys_admin, org_a.id, role="sys_admin")
    body = {
        **UHC_CLAIM_NUMBER,
        "label": "UHC claim number",
        "validation": {"pattern": "^[A-Z0-9]{10,12}$"},
        "reason": "UHC lengthened its claim numbers",
    }
    response = staff.post(PAYERS, body, "json")
    assert response.status_code == 201, response.json()
    assert response.json()["version"] == 2 and response.json()["rtype"] == "required"
    assert staff.post(PAYERS, body, "json").json()["version"] == 3
    row = PayerRequirement.objects.get(pk=response.json()["id"])
    with org_context(org_b.id):
        logged = RequirementChangelog.objects.get(table_name="payer_requirement", record_id=row.pk)
    assert logged.org_id is None and logged.change == "created"
    assert logged.new_value["version"] == 2 and logged.changed_by_id == sys_admin.pk
    changes = api(org_b, "org_admin").get(CHANGELOG).json()["results"]
    assert row.pk in {entry["record_id"] for entry in changes}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"validation": {"pattern": "[A-Z"}}, "validation.pattern"),
        ({"rtype": "mandatory"}, "rtype"),
        ({"field_type": "colour"}, "field_type"),
        ({"channel_type": "no-such-portal"}, "channel_type"),
        ({"end_date": "2025-12-31"}, "end_date"),
        ({"version": 7}, "version"),
        ({"conditional_on": {"field": "x"}}, "conditional_on"),
    ],
)
def test_bad_payer_input_is_400_and_writes_nothing(org_a, sys_admin, overrides, field):
    staff = client_for(sys_admin, org_a.id, role="sys_admin")
    body = {**UHC_CLAIM_NUMBER, "reason": "x", **overrides}
    before = PayerRequirement.objects.count()
    response = staff.post(PAYERS, body, "json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["details"], response.json()
    assert PayerRequirement.objects.count() == before
    with org_context(org_a.id):
        assert not RequirementChangelog.objects.filter(table_name="payer_requirement").exists()


@pytest.mark.django_db
def test_task_types_are_a_catalogue_with_their_fields(api, org_a):
    client = api(org_a, "viewer")
    rows = client.get(TASK_TYPES).json()["results"]
    assert {row["key"] for row in rows} >= {"eligibility/check", "claim/check_status"}
    eligibility = next(row for row in rows if row["key"] == "eligibility/check")
    detail = client.get(f"{TASK_TYPES}{eligibility['id']}/").json()
    assert detail["x12_transaction"] == "270/271"
    assert detail["field_requirements"][0]["field_name"] == "member_id"
    assert api(org_a, "org_admin").post(TASK_TYPES, {}, "json").status_code == 405
