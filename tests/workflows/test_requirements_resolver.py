"""The requirements resolver (platform ← payer ← organization, by date) and the row validator."""

from datetime import date

import pytest

from rcm.context import org_context
from rcm.errors import NotFound
from tenants import services as tenant_services
from tenants.models import ChannelType
from workflows.models import FieldRequirement, OrgRequirementPolicy, PayerRequirement, TaskType
from workflows.selectors import requirements as req
from workflows.validation.fields import EffectiveField
from workflows.validation.rows import RowValidator, requirements_validate

D2025 = date(2025, 6, 1)


def _by_name(fields) -> dict:
    return {field.field_name: field for field in fields}


@pytest.fixture
def appeal(db) -> TaskType:
    """A task type of our own, with two platform fields and one narrowed to UHC."""
    task_type = TaskType.objects.create(
        domain_id="claim", action_id="appeal", display_name="Claim appeal"
    )
    uhc = ChannelType.objects.get(code="uhc-portal")
    aetna = ChannelType.objects.get(code="aetna-provider")
    FieldRequirement.objects.create(
        task_type=task_type,
        field_name="claim_number",
        label="Claim number",
        validation={"min_length": 5},
        display_order=10,
    )
    FieldRequirement.objects.create(
        task_type=task_type,
        field_name="appeal_reason",
        label="Reason",
        rtype_id="optional",
        display_order=20,
    )
    FieldRequirement.objects.create(
        task_type=task_type,
        channel_type=uhc,
        field_name="claim_number",
        label="UHC claim number",
        validation={"pattern": r"[A-Z0-9]{9,12}"},
        display_order=10,
    )
    FieldRequirement.objects.create(
        task_type=task_type, channel_type=aetna, field_name="aetna_only", display_order=30
    )
    return task_type


@pytest.fixture
def endpoints(org_a, org_b):
    """{tenant id: endpoint} on the UHC portal, and org A's Aetna endpoint under "aetna"."""
    uhc = ChannelType.objects.get(code="uhc-portal")
    aetna = ChannelType.objects.get(code="aetna-provider")
    found = {}
    for tenant in (org_a, org_b):
        with org_context(tenant.id):
            found[tenant.id] = tenant_services.endpoint_create(
                org_id=tenant.id, name="UHC", channel_type=uhc
            )
    with org_context(org_a.id):
        found["aetna"] = tenant_services.endpoint_create(
            org_id=org_a.id, name="Aetna", channel_type=aetna
        )
    return found


def _payer(task_type, field_name, *, version=1, since="2025-01-01", until=None, **spec):
    return PayerRequirement.objects.create(
        channel_type=ChannelType.objects.get(code="uhc-portal"),
        task_type=task_type,
        field_name=field_name,
        version=version,
        effective_date=since,
        end_date=until,
        **spec,
    )


def _policy(tenant, task_type, field_name, operation, *, since="2025-01-01", **extra):
    with org_context(tenant.id):
        return OrgRequirementPolicy.objects.create(
            org_id=tenant.id,
            task_type=task_type,
            field_name=field_name,
            operation=operation,
            effective_date=since,
            reason="test",
            **extra,
        )


def _effective(tenant, task_type, endpoint=None, as_of=D2025):
    return _by_name(
        req.requirements_effective(
            org_id=tenant.id, task_type=task_type, endpoint=endpoint, as_of=as_of
        )
    )


# -- layer 1: platform field requirements --------------------------------------------------


@pytest.mark.django_db
def test_platform_fields_of_the_seeded_eligibility_check(org_a):
    task_type = req.task_type_find(ref="eligibility/check")
    fields = req.requirements_effective(org_id=org_a.id, task_type=task_type, as_of=D2025)
    names = [field.field_name for field in fields]
    assert names[:5] == [
        "member_id",
        "patient_first_name",
        "patient_last_name",
        "patient_dob",
        "provider_npi",
    ]
    member_id = fields[0]
    assert member_id.rtype == "required" and member_id.sources == ("platform",)
    assert member_id.validation["max_length"] == 30
    assert _by_name(fields)["copay"].rtype == "output"
    assert req.task_type_find(ref=str(task_type.pk)) == task_type
    assert req.task_type_find(ref="eligibility/fly") is None
    assert req.task_type_find(ref="not-a-uuid") is None


@pytest.mark.django_db
def test_channel_narrowed_rows_replace_platform_rows_only_on_that_channel(org_a, appeal, endpoints):
    plain = _effective(org_a, appeal)
    assert set(plain) == {"claim_number", "appeal_reason"}
    assert plain["claim_number"].validation == {"min_length": 5}

    uhc = _effective(org_a, appeal, endpoints[org_a.id])
    assert set(uhc) == {"claim_number", "appeal_reason"}
    assert uhc["claim_number"].label == "UHC claim number"
    assert uhc["claim_number"].validation == {"pattern": "[A-Z0-9]{9,12}"}
    assert uhc["claim_number"].sources == ("platform:uhc-portal",)

    aetna = _effective(org_a, appeal, endpoints["aetna"])
    assert set(aetna) == {"claim_number", "appeal_reason", "aetna_only"}
    assert aetna["claim_number"].validation == {"min_length": 5}


@pytest.mark.django_db
def test_an_endpoint_of_another_organization_is_not_found(org_a, org_b, appeal, endpoints):
    with pytest.raises(NotFound):
        req.requirements_effective(
            org_id=org_a.id, task_type=appeal, endpoint=endpoints[org_b.id], as_of=D2025
        )


# -- layer 2: payer requirements -----------------------------------------------------------


@pytest.mark.django_db
def test_payer_rows_apply_from_their_effective_date_until_their_end_date(org_a, appeal, endpoints):
    _payer(appeal, "tax_id", since="2025-03-01", until="2025-09-01", label="Tax ID")
    endpoint = endpoints[org_a.id]
    assert "tax_id" not in _effective(org_a, appeal, endpoint, date(2025, 2, 28))
    on_start = _effective(org_a, appeal, endpoint, date(2025, 3, 1))["tax_id"]
    assert on_start.sources == ("payer:uhc-portal v1",) and on_start.label == "Tax ID"
    assert "tax_id" in _effective(org_a, appeal, endpoint, date(2025, 8, 31))
    # The end date is exclusive: the row is gone on it.
    assert "tax_id" not in _effective(org_a, appeal, endpoint, date(2025, 9, 1))
    # Without an endpoint there is no payer.
    assert "tax_id" not in _effective(org_a, appeal, None, date(2025, 5, 1))


@pytest.mark.django_db
def test_the_highest_effective_version_wins(org_a, appeal, endpoints):
    _payer(appeal, "tax_id", version=1, since="2025-01-01", label="v1")
    _payer(appeal, "tax_id", version=2, since="2025-04-01", label="v2")
    _payer(appeal, "tax_id", version=3, since="2026-01-01", label="v3")
    endpoint = endpoints[org_a.id]
    assert _effective(org_a, appeal, endpoint, date(2025, 2, 1))["tax_id"].label == "v1"
    field = _effective(org_a, appeal, endpoint, date(2025, 5, 1))["tax_id"]
    assert field.label == "v2" and field.sources == ("payer:uhc-portal v2",)
    assert _effective(org_a, appeal, endpoint, date(2026, 1, 1))["tax_id"].label == "v3"


@pytest.mark.django_db
def test_a_payer_row_tightens_a_field(org_a, appeal, endpoints):
    _payer(
        appeal,
        "claim_number",
        field_type="text",
        validation={"pattern": "[A-Z]{10}", "max_length": 10},
        rtype_id="optional",  # looser than the platform's: ignored
    )
    _payer(appeal, "appeal_reason", rtype_id="required", label="")
    fields = _effective(org_a, appeal, endpoints[org_a.id])
    claim = fields["claim_number"]
    assert claim.rtype == "required"
    assert claim.label == "UHC claim number"  # a blank payer label keeps the field's
    # Validation keys merge, the payer's winning.
    assert claim.validation == {"pattern": "[A-Z]{10}", "max_length": 10}
    assert claim.sources == ("platform:uhc-portal", "payer:uhc-portal v1")
    assert fields["appeal_reason"].rtype == "required"  # optional -> required applies
    assert fields["appeal_reason"].label == "Reason"


@pytest.mark.django_db
def test_the_seeded_payer_rules_apply_to_their_portals(org_a):
    uhc = ChannelType.objects.get(code="uhc-portal")
    with org_context(org_a.id):
        endpoint = tenant_services.endpoint_create(org_id=org_a.id, name="UHC", channel_type=uhc)
    status = req.task_type_find(ref="claim/check_status")
    before = _effective(org_a, status, endpoint, date(2024, 6, 30))["claim_number"]
    after = _effective(org_a, status, endpoint, date(2024, 7, 1))["claim_number"]
    assert "pattern" not in before.validation
    assert after.validation["pattern"] == r"^[A-Z0-9]{9,12}$"
    assert after.validation["min_length"] == 5  # kept from the platform: keys merge
    assert after.label == "UHC claim number"


# -- layer 3: organization policies --------------------------------------------------------


@pytest.mark.django_db
def test_policies_add_remove_and_modify_in_effective_date_order(org_a, appeal):
    added = _policy(
        org_a,
        appeal,
        "internal_ref",
        "add",
        since="2025-02-01",
        spec={"field_type": "text", "rtype": "optional", "validation": {"max_length": 8}},
    )
    # Created first but effective later: applied after the add above on its own date.
    modified = _policy(
        org_a,
        appeal,
        "internal_ref",
        "modify",
        since="2025-03-01",
        spec={"rtype": "required", "validation": {"max_length": None, "pattern": "R[0-9]+"}},
    )
    _policy(org_a, appeal, "appeal_reason", "remove", since="2025-02-15")

    january = _effective(org_a, appeal, as_of=date(2025, 1, 31))
    assert set(january) == {"claim_number", "appeal_reason"}

    february = _effective(org_a, appeal, as_of=date(2025, 2, 20))
    assert set(february) == {"claim_number", "internal_ref"}
    assert february["internal_ref"].rtype == "optional"
    assert february["internal_ref"].sources == (f"org policy #{added.pk}",)
    assert february["internal_ref"].display_order > february["claim_number"].display_order

    march = _effective(org_a, appeal, as_of=date(2025, 3, 1))["internal_ref"]
    assert march.rtype == "required"
    # A validation key set to null drops that rule; the others merge.
    assert march.validation == {"pattern": "R[0-9]+"}
    assert march.sources == (f"org policy #{added.pk}", f"org policy #{modified.pk}")


@pytest.mark.django_db
def test_same_date_policies_apply_in_id_order_and_end_dates_are_exclusive(org_a, appeal):
    _policy(org_a, appeal, "claim_number", "modify", spec={"label": "First"})
    _policy(
        org_a, appeal, "claim_number", "modify", spec={"label": "Second"}, end_date="2025-05-01"
    )
    assert _effective(org_a, appeal, as_of=date(2025, 4, 30))["claim_number"].label == "Second"
    assert _effective(org_a, appeal, as_of=date(2025, 5, 1))["claim_number"].label == "First"


@pytest.mark.django_db
def test_an_add_replaces_a_same_named_field_and_a_modify_of_a_gone_field_is_a_no_op(org_a, appeal):
    _policy(org_a, appeal, "appeal_reason", "remove", since="2025-01-01")
    _policy(org_a, appeal, "appeal_reason", "modify", since="2025-02-01", spec={"label": "X"})
    _policy(
        org_a,
        appeal,
        "claim_number",
        "add",
        since="2025-02-01",
        spec={"field_type": "number", "validation": {"min": 1}},
    )
    fields = _effective(org_a, appeal)
    assert "appeal_reason" not in fields
    claim = fields["claim_number"]
    assert claim.field_type == "number" and claim.validation == {"min": 1}
    assert claim.display_order == 10 and claim.sources[0] == "platform"


@pytest.mark.django_db
def test_endpoint_narrowed_policies_apply_only_on_that_endpoint(org_a, appeal, endpoints):
    _policy(
        org_a,
        appeal,
        "uhc_ref",
        "add",
        endpoint=endpoints[org_a.id],
        spec={"field_type": "text"},
    )
    assert "uhc_ref" in _effective(org_a, appeal, endpoints[org_a.id])
    assert "uhc_ref" not in _effective(org_a, appeal, endpoints["aetna"])
    assert "uhc_ref" not in _effective(org_a, appeal)


@pytest.mark.django_db
def test_policies_of_another_organization_never_apply(org_a, org_b, appeal, endpoints):
    _policy(org_b, appeal, "claim_number", "remove")
    _policy(org_b, appeal, "b_only", "add", spec={"field_type": "text"})
    assert set(_effective(org_a, appeal)) == {"claim_number", "appeal_reason"}
    assert set(_effective(org_b, appeal)) == {"appeal_reason", "b_only"}


@pytest.mark.django_db
def test_all_three_layers_with_their_source_chain(org_a, appeal, endpoints):
    _payer(appeal, "claim_number", version=1, field_type="text", validation={"max_length": 12})
    policy = _policy(org_a, appeal, "claim_number", "modify", spec={"label": "Our claim no."})
    field = _effective(org_a, appeal, endpoints[org_a.id])["claim_number"]
    assert field.sources == (
        "platform:uhc-portal",
        "payer:uhc-portal v1",
        f"org policy #{policy.pk}",
    )
    assert field.label == "Our claim no."
    assert field.validation == {"pattern": "[A-Z0-9]{9,12}", "max_length": 12}


# -- the row validator ---------------------------------------------------------------------


def _field(name, field_type="text", rtype="required", **extra) -> EffectiveField:
    return EffectiveField(field_name=name, label=name, field_type=field_type, rtype=rtype, **extra)


def _errors(field: EffectiveField, value) -> list[str]:
    return requirements_validate(fields=[field], row={field.field_name: value}).errors.get(
        field.field_name, []
    )


def test_missing_and_unknown_fields():
    fields = [
        _field("member_id"),
        _field("note", rtype="optional"),
        _field("copay", "number", rtype="output"),
    ]
    result = requirements_validate(fields=fields, row={"member_id": "  ", "x": 1, "copay": 3})
    assert result.missing == ["member_id"]
    assert result.unknown == ["copay", "x"]  # an output is not an input
    assert not result.ok
    assert result.as_dict() == {
        "valid": False,
        "missing": ["member_id"],
        "unknown": ["copay", "x"],
        "errors": {},
    }
    for blank in (None, "", [], ["", " "]):
        assert requirements_validate(fields=fields, row={"member_id": blank}).missing == [
            "member_id"
        ]
    good = requirements_validate(fields=fields, row={"member_id": "A1"})
    assert good.ok and good.as_dict()["valid"] is True


def test_text_checks_pattern_in_full_and_lengths():
    field = _field("npi", validation={"pattern": r"\d{10}", "min_length": 10, "max_length": 10})
    assert _errors(field, "1234567890") == []
    assert _errors(field, " 1234567890 ") == []  # surrounding spaces are not the value
    assert _errors(field, "1234567890x") == [
        "NPI is not in the expected format.",
        "NPI must be at most 10 characters long.",
    ]
    assert _errors(field, "123") == [
        "NPI is not in the expected format.",
        "NPI must be at least 10 characters long.",
    ]
    assert _errors(field, {"a": 1}) == ["NPI must be text."]
    assert _errors(field, True) == ["NPI must be text."]
    one = _field("initial", validation={"min_length": 1, "max_length": 1})
    assert _errors(one, "AB") == ["Initial must be at most 1 character long."]
    assert _errors(_field("member_id"), 12345) == []  # Excel turns IDs into numbers


def test_date_checks_with_default_and_custom_formats():
    default = _field("dob", "date")
    assert _errors(default, "1980-02-29") == []
    assert _errors(default, date(1980, 2, 3)) == []
    # The example shows the field's format with a date whose day cannot pass for a month.
    assert _errors(default, "1981-02-29") == ["DOB must look like 1980-04-30."]
    assert _errors(default, "02/03/1980") == ["DOB must look like 1980-04-30."]
    assert _errors(default, 19800203) == ["DOB must look like 1980-04-30."]
    us = _field("dob", "date", validation={"date_format": "%m/%d/%Y"})
    assert _errors(us, "02/03/1980") == []
    assert _errors(us, "1980-02-03") == ["DOB must look like 04/30/1980."]
    labelled = EffectiveField(
        field_name="patient_dob", label="Date of birth", field_type="date", rtype="required"
    )
    assert _errors(labelled, "30.04.1980") == ["Date of birth must look like 1980-04-30."]


def test_number_checks_and_bounds():
    field = _field("units", "number", validation={"min": 1, "max": 999})
    for good in (1, 2.5, "3", " 4.50 ", "1e2", 999):
        assert _errors(field, good) == [], good
    for bad in ("abc", "nan", "inf", "1_000", True, "1,5", [1]):
        if isinstance(bad, list):
            assert _errors(field, bad) == ["Units takes one value, not a list."]
            continue
        assert _errors(field, bad) == ["Units must be a number."], bad
    assert _errors(field, 0) == ["Units must be at least 1."]
    assert _errors(field, "1000") == ["Units must be at most 999."]


def test_boolean_checks():
    field = _field("is_new", "boolean")
    for good in (True, False, "true", "FALSE", "yes", "No", 1, 0, "1", "0"):
        assert _errors(field, good) == [], good
    for bad in ("maybe", 2, "y", 1.5):
        assert _errors(field, bad) == ["Is new must be yes or no (true/false and 1/0 work too)."]


def test_select_must_be_in_the_enum():
    field = _field("status", "select", validation={"enum": ["1", "30", "AL"]})
    assert _errors(field, "30") == []
    assert _errors(field, 30) == []
    assert _errors(field, "31") == ["Status must be one of 1, 30, AL."]
    many = _field("code", "select", validation={"enum": [str(n) for n in range(13)]})
    assert _errors(many, "x") == ["Code must be one of the 13 allowed values."]


def test_array_fields_take_lists_or_separated_strings_and_check_every_item():
    field = _field("codes", is_array=True, validation={"pattern": r"\d{5}"})
    assert _errors(field, ["99213", "99214"]) == []
    assert _errors(field, "99213|99214") == []
    assert _errors(field, "99213; 99214;") == []
    assert _errors(field, "99213|x|99214|y") == [
        "Item 2 of Codes is not in the expected format.",
        "Item 4 of Codes is not in the expected format.",
    ]
    assert _errors(field, ["99213", ["99214"]]) == ["Item 2 of Codes takes one value, not a list."]
    assert requirements_validate(fields=[field], row={"codes": " | ; "}).missing == ["codes"]
    assert _errors(_field("member_id"), ["a", "b"]) == ["Member ID takes one value, not a list."]


def test_conditional_fields_are_missing_only_when_their_condition_holds():
    fields = [
        _field("plan", "select", rtype="optional", validation={"enum": ["hmo", "ppo"]}),
        _field("referral", rtype="conditional", conditional_on={"field": "plan", "equals": "hmo"}),
        _field("pcp", rtype="conditional", conditional_on={"field": "plan", "in": ["hmo", "x"]}),
        _field("group", rtype="conditional", conditional_on={"field": "plan", "present": True}),
        _field("no_plan", rtype="conditional", conditional_on={"field": "plan", "present": False}),
        _field("secondary", rtype="required", conditional_on={"field": "dual", "equals": True}),
        _field("dual", "boolean", rtype="optional"),
    ]
    validator = RowValidator(fields)
    assert validator.validate({"plan": "hmo"}).missing == ["referral", "pcp", "group"]
    assert validator.validate({"plan": " ppo "}).missing == ["group"]
    assert validator.validate({}).missing == ["no_plan"]
    assert validator.validate({"plan": "", "dual": "true"}).missing == ["no_plan", "secondary"]
    assert validator.validate({"no_plan": "x", "dual": False}).ok


def test_a_validator_is_built_once_and_compiles_each_pattern_once(monkeypatch):
    fields = [
        _field("member_id", validation={"pattern": r"[A-Za-z0-9-]{3,30}", "max_length": 30}),
        _field("first_name", validation={"min_length": 1, "max_length": 60}),
        _field("last_name", validation={"min_length": 1, "max_length": 60}),
        _field("dob", "date"),
        _field("npi", validation={"pattern": r"\d{10}"}),
        _field("codes", is_array=True, validation={"pattern": r"\d{5}"}),
        _field("units", "number", rtype="optional", validation={"min": 1}),
        _field("copay", "number", rtype="output"),
    ]
    row = {
        "member_id": "ABC-123",
        "first_name": "Ann",
        "last_name": "Lee",
        "dob": "1980-02-03",
        "npi": "1234567890",
        "codes": "99213|99214",
        "units": "2",
    }
    import re

    compiled = []
    real_compile = re.compile
    monkeypatch.setattr(re, "compile", lambda *a, **k: compiled.append(a) or real_compile(*a, **k))
    validator = RowValidator(fields)
    patterns_at_build = len(compiled)
    bad = {**row, "npi": "12"}
    results = [validator.validate(row if n % 2 else bad) for n in range(1_000)]
    # Per-row cost is for a benchmark to measure, not for a test to assert; what a test
    # can hold is that rows reuse the validator's compiled patterns.
    assert len(compiled) == patterns_at_build
    assert all(r.ok for r in results[1::2]) and not any(r.ok for r in results[::2])
