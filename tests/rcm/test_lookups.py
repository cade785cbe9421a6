"""Every lookup constant the code uses is a seeded row, in DESIGN §4's exact order."""

import pytest
from django.apps import apps

from rcm import lookups

LOOKUPS = [
    ("tenants.OrgTypeLu", lookups.OrgType, "org_type_lu", "org_type"),
    ("tenants.UserRoleLu", lookups.UserRole, "user_role_lu", "role"),
    ("tenants.ChannelAuthTypeLu", lookups.ChannelAuthType, "channel_auth_type_lu", "auth_type"),
    ("workflows.TaskDomainLu", lookups.TaskDomain, "task_domain_lu", "domain"),
    ("workflows.TaskActionLu", lookups.TaskAction, "task_action_lu", "action"),
    ("workflows.JobStatusLu", lookups.JobStatus, "job_status_lu", "status"),
    ("workflows.WorkflowStatusLu", lookups.WorkflowStatus, "workflow_status_lu", "status"),
    ("workflows.RequirementTypeLu", lookups.RequirementType, "requirement_type_lu", "rtype"),
    (
        "workflows.TaskSignatureSourceLu",
        lookups.TaskSignatureSource,
        "task_signature_source_lu",
        "source",
    ),
]

DESIGN_VALUES = {
    "task_domain_lu": "eligibility prior_auth claim payment patient provider billing reporting "
    "document",
    "job_status_lu": "pending processing completed failed partially_completed cancelled",
    "org_type_lu": "hospital billing_firm credentialer",
    "channel_auth_type_lu": "username_password oauth2 api_key certificate saml",
    "workflow_status_lu": "draft active suspended completed archived",
    "user_role_lu": "admin operator viewer api_user org_admin firm_user hospital_user sys_admin",
    "requirement_type_lu": "required conditional optional output",
    "task_signature_source_lu": "human ai_generated system_learned",
    "task_action_lu": "check verify update submit check_status appeal extend submit_claim "
    "status_check resubmit void correct post reconcile adjust refund search register "
    "update_demographics verify_insurance credential enroll update_info generate_statement "
    "send_invoice apply_payment generate_report export_data analyze upload download parse "
    "validate check_legacy status_check_legacy",
}


@pytest.mark.django_db
@pytest.mark.parametrize(("label", "values", "table", "column"), LOOKUPS)
def test_every_constant_is_a_row_in_design_order(label, values, table, column):
    model = apps.get_model(label)
    assert model._meta.db_table == table
    assert model._meta.pk.column == column
    rows = list(model.objects.order_by("sort_order").values_list("pk", flat=True))
    assert rows == values.ordered()
    assert rows == DESIGN_VALUES[table].split()
