"""The V8 schema contract in code: ../shared/V8_CONTRACT.md's column names, the compatibility
views and the nine lookup tables, which ``rcm_validate`` and tests/dbadmin/test_v8_contract.py
check against the live database.

Keep it a copy of the document, not a reading of the models: it exists to catch the day a model
and the contract drift apart.
"""

from rcm.lookups import (
    ChannelAuthType,
    JobStatus,
    OrgType,
    RequirementType,
    TaskAction,
    TaskDomain,
    TaskSignatureSource,
    UserRole,
    WorkflowStatus,
)

# table -> the columns V8 names in it (more columns are fine).
V8_COLUMNS: dict[str, tuple[str, ...]] = {
    "organization": ("org_id", "org_type", "name", "email_domain", "created_at"),
    "app_user": (
        "user_id", "org_id", "email", "full_name", "role", "is_active", "created_at",
        "updated_at", "last_login_at",
    ),
    "channel_type": (
        "channel_type_id", "code", "name", "base_url", "endpoint_kind", "access_medium",
    ),
    "endpoint": (
        "endpoint_id", "org_id", "name", "channel_type_id", "base_url", "config", "created_at",
    ),
    "task_type": ("task_type_id", "domain", "action", "display_name", "description", "created_at"),
    "task_signature": (
        "signature_id", "domain", "action", "alias_of", "signature_key", "source",
        "last_human_run", "total_runs", "success_runs",
    ),
    "field_requirement": (
        "task_type_id", "field_name", "field_type", "is_array", "path", "depth",
        "validation_rules", "conditional_on",
    ),
    "user_workflow": (
        "workflow_id", "name", "description", "required_data", "created_at", "updated_at",
    ),
    "workflow_node": ("node_id", "label_conf", "last_label_at"),
    "workflow_transition": ("from_node", "to_node", "action_label", "freq"),
    "micro_state": (
        "micro_state_id", "workflow_id", "node_id", "dom_snapshot", "action_json",
        "semantic_spec", "label", "category", "required", "is_dynamic", "text_emb",
        "mini_score", "is_retired", "aliased_to", "created_at",
    ),
    "batch_job": (
        "batch_job_id", "org_id", "prompt", "file_name", "file_path", "total_rows",
        "processed_rows", "successful_rows", "failed_rows", "status", "created_at",
        "updated_at", "completed_at", "created_by",
    ),
    "batch_job_item": (
        "batch_job_item_id", "batch_job_id", "row_number", "input_data", "output_data",
        "status", "error_message", "created_at", "updated_at", "completed_at",
    ),
    "workflow_trace": (
        "trace_id", "org_id", "workflow_id", "batch_job_item_id", "action_type",
        "action_detail", "success", "duration_ms", "error_detail", "llm_prompt",
        "llm_response", "llm_model", "llm_tokens_used", "tier", "tier_reason", "created_at",
        "user_id", "session_id",
    ),
    "workflow_trace_endpoint": ("trace_id", "endpoint_id"),
    "portal_credential": (
        "credential_id", "endpoint_id", "account_id", "encrypted_credential",
        "credential_type", "expires_at", "last_validated_at", "is_active", "validation_error",
        "created_at", "updated_at", "created_by", "last_rotation_at", "rotation_status",
    ),
}  # fmt: skip

# view -> its columns, in this order (v3-era readers select them by name and by position).
V8_VIEWS: dict[str, tuple[str, ...]] = {
    "rcm_user": (
        "id", "email", "full_name", "role", "is_active", "api_key_ssm_parameter_name",
        "created_at", "updated_at", "last_login_at",
    ),
    "rcm_trace": (
        "id", "batch_job_item_id", "portal_id", "action_type", "action_detail", "success",
        "duration_ms", "error_detail", "llm_prompt", "llm_response", "llm_model",
        "llm_tokens_used", "created_at", "user_id", "session_id",
    ),
}  # fmt: skip

# lookup table -> (its key column, its values in seeding order). DESIGN §4 lists these; the
# values are the constants' (tests/rcm/test_lookups.py ties constants and rows together).
V8_LOOKUPS: dict[str, tuple[str, list[str]]] = {
    "task_domain_lu": ("domain", TaskDomain.ordered()),
    "task_action_lu": ("action", TaskAction.ordered()),
    "job_status_lu": ("status", JobStatus.ordered()),
    "org_type_lu": ("org_type", OrgType.ordered()),
    "channel_auth_type_lu": ("auth_type", ChannelAuthType.ordered()),
    "workflow_status_lu": ("status", WorkflowStatus.ordered()),
    "user_role_lu": ("role", UserRole.ordered()),
    "requirement_type_lu": ("rtype", RequirementType.ordered()),
    "task_signature_source_lu": ("source", TaskSignatureSource.ordered()),
}
