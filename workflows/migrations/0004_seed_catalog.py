"""The V8 task catalog and the platform's field requirements for it, plus two payer rules.

Realistic, not exhaustive: the fields a biller types into a payer portal for each task, with
the formats the portals check (member IDs, NPIs, CPT/HCPCS and ICD-10 codes, dates).
"""

from django.db import migrations

TASK_TYPES = [
    # domain, action, display name, X12, description
    (
        "eligibility",
        "check",
        "Eligibility and benefits check",
        "270/271",
        "Is the member covered on the date of service, and what are their benefits?",
    ),
    (
        "prior_auth",
        "submit",
        "Prior authorization request",
        "278",
        "Ask the payer to approve a service before it is rendered.",
    ),
    (
        "prior_auth",
        "check_status",
        "Prior authorization status",
        "278",
        "Follow up on a submitted prior authorization.",
    ),
    (
        "claim",
        "submit_claim",
        "Claim submission",
        "837",
        "Submit a professional or institutional claim.",
    ),
    (
        "claim",
        "check_status",
        "Claim status inquiry",
        "276/277",
        "Where is the claim: received, pending, paid or denied (with CARC/RARC)?",
    ),
]

MEMBER_ID = {"pattern": r"^[A-Za-z0-9-]{3,30}$", "min_length": 3, "max_length": 30}
NPI = {"pattern": r"^\d{10}$"}
NAME = {"min_length": 1, "max_length": 60}
DATE = {"date_format": "%Y-%m-%d"}
CPT = {"pattern": r"^([0-9]{4}[0-9A-Z]|[A-V][0-9]{4})$"}
ICD10 = {"pattern": r"^[A-TV-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$"}
SERVICE_TYPES = ["1", "30", "33", "35", "47", "48", "86", "88", "98", "AL", "MH", "UC"]

PATIENT = [
    # field, label, type, rtype, validation, is_array
    ("member_id", "Member ID", "text", "required", MEMBER_ID, False),
    ("patient_first_name", "Patient first name", "text", "required", NAME, False),
    ("patient_last_name", "Patient last name", "text", "required", NAME, False),
    ("patient_dob", "Patient date of birth", "date", "required", DATE, False),
    ("provider_npi", "Rendering provider NPI", "text", "required", NPI, False),
]

FIELDS = {
    ("eligibility", "check"): PATIENT
    + [
        ("service_date", "Date of service", "date", "optional", DATE, False),
        (
            "service_type_code",
            "Service type code",
            "select",
            "optional",
            {"enum": SERVICE_TYPES},
            False,
        ),
        (
            "coverage_status",
            "Coverage status",
            "select",
            "output",
            {"enum": ["active", "inactive", "not_found"]},
            False,
        ),
        ("plan_name", "Plan name", "text", "output", {}, False),
        ("copay", "Copay", "number", "output", {"min": 0}, False),
        ("deductible_remaining", "Deductible remaining", "number", "output", {"min": 0}, False),
    ],
    ("prior_auth", "submit"): PATIENT
    + [
        ("procedure_codes", "Procedure codes (CPT/HCPCS)", "text", "required", CPT, True),
        ("diagnosis_codes", "Diagnosis codes (ICD-10)", "text", "required", ICD10, True),
        ("service_start_date", "Service start date", "date", "required", DATE, False),
        ("units", "Units", "number", "optional", {"min": 1, "max": 999}, False),
        ("auth_number", "Authorization number", "text", "output", {}, False),
    ],
    ("prior_auth", "check_status"): [
        PATIENT[0],
        PATIENT[3],
        PATIENT[4],
        (
            "auth_number",
            "Authorization number",
            "text",
            "required",
            {"min_length": 4, "max_length": 30},
            False,
        ),
        (
            "auth_status",
            "Authorization status",
            "select",
            "output",
            {"enum": ["approved", "pended", "denied", "not_found"]},
            False,
        ),
    ],
    ("claim", "submit_claim"): PATIENT
    + [
        ("service_date", "Date of service", "date", "required", DATE, False),
        ("procedure_codes", "Procedure codes (CPT/HCPCS)", "text", "required", CPT, True),
        ("diagnosis_codes", "Diagnosis codes (ICD-10)", "text", "required", ICD10, True),
        ("billed_amount", "Billed amount", "number", "required", {"min": 0.01}, False),
        ("claim_number", "Payer claim number", "text", "output", {}, False),
    ],
    ("claim", "check_status"): [
        PATIENT[0],
        PATIENT[3],
        PATIENT[4],
        (
            "claim_number",
            "Payer claim number",
            "text",
            "required",
            {"min_length": 5, "max_length": 30},
            False,
        ),
        ("service_date", "Date of service", "date", "required", DATE, False),
        ("billed_amount", "Billed amount", "number", "optional", {"min": 0}, False),
        (
            "claim_status",
            "Claim status",
            "select",
            "output",
            {"enum": ["received", "pending", "paid", "denied", "not_found"]},
            False,
        ),
        ("carc_codes", "CARC codes", "text", "output", {}, True),
        ("rarc_codes", "RARC codes", "text", "output", {}, True),
    ],
}

PAYER_RULES = [
    # channel code, domain, action, field, label, type, rtype, validation, effective date
    (
        "anthem-availity",
        "eligibility",
        "check",
        "group_number",
        "Group number",
        "text",
        "required",
        {"min_length": 2, "max_length": 20},
        "2024-01-01",
    ),
    (
        "uhc-portal",
        "claim",
        "check_status",
        "claim_number",
        "UHC claim number",
        "text",
        "required",
        {"pattern": r"^[A-Z0-9]{9,12}$"},
        "2024-07-01",
    ),
]


def seed(apps, schema_editor):
    task_type_model = apps.get_model("workflows", "TaskType")
    field_model = apps.get_model("workflows", "FieldRequirement")
    payer_model = apps.get_model("workflows", "PayerRequirement")
    channel_model = apps.get_model("tenants", "ChannelType")
    types = {}
    for domain, action, name, x12, description in TASK_TYPES:
        types[domain, action], _ = task_type_model.objects.get_or_create(
            domain_id=domain,
            action_id=action,
            defaults={"display_name": name, "x12_transaction": x12, "description": description},
        )
    for key, fields in FIELDS.items():
        for order, (field, label, field_type, rtype, validation, is_array) in enumerate(fields):
            field_model.objects.get_or_create(
                task_type=types[key],
                channel_type=None,
                field_name=field,
                defaults={
                    "label": label,
                    "field_type": field_type,
                    "rtype_id": rtype,
                    "validation": validation,
                    "is_array": is_array,
                    "path": field,
                    "display_order": (order + 1) * 10,
                },
            )
    for code, domain, action, field, label, field_type, rtype, validation, since in PAYER_RULES:
        payer_model.objects.get_or_create(
            channel_type=channel_model.objects.get(code=code),
            task_type=types[domain, action],
            field_name=field,
            version=1,
            defaults={
                "label": label,
                "field_type": field_type,
                "rtype_id": rtype,
                "validation": validation,
                "effective_date": since,
            },
        )


def unseed(apps, schema_editor):
    apps.get_model("workflows", "PayerRequirement").objects.all().delete()
    apps.get_model("workflows", "FieldRequirement").objects.all().delete()
    apps.get_model("workflows", "TaskType").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("workflows", "0003_catalog_requirements_graph_runs")]

    operations = [migrations.RunPython(seed, unseed)]
