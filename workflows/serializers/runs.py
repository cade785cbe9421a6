"""Input and output serializers of runs and traces."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from rcm.api.serializers import PageQuery, StrictInputSerializer
from workflows.models import RunStatus
from workflows.selectors import runs as selectors
from workflows.services.runs import MAX_RUN_TIMEOUT_S

MAX_INPUT_CHARS = 256_000


class RunStartInput(StrictInputSerializer):
    input = serializers.DictField(help_text="The row: field name -> value.")
    external_id = serializers.CharField(max_length=200, required=False, allow_null=True)
    timeout_s = serializers.IntegerField(min_value=1, max_value=MAX_RUN_TIMEOUT_S, required=False)

    def validate_input(self, value):
        if len(str(value)) > MAX_INPUT_CHARS:
            raise serializers.ValidationError(f"The input is larger than {MAX_INPUT_CHARS} bytes.")
        return value


class RunRerunInput(StrictInputSerializer):
    use_current = serializers.BooleanField(
        default=False, help_text="Run the workflow's latest revision instead of the run's own."
    )


class RunListFilter(PageQuery):
    workflow = serializers.UUIDField(required=False)
    status = serializers.ChoiceField(choices=RunStatus.values, required=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)


class TraceListFilter(PageQuery):
    run = serializers.IntegerField(required=False, min_value=1)
    workflow = serializers.UUIDField(required=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)


class NodeRunOutput(serializers.Serializer):
    id = serializers.IntegerField()
    node_key = serializers.CharField()
    status = serializers.CharField()
    attempt = serializers.IntegerField()
    label = serializers.CharField()
    output = serializers.JSONField(allow_null=True)
    error = serializers.CharField()
    error_kind = serializers.CharField()
    not_before = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)


class RunOutput(serializers.Serializer):
    id = serializers.IntegerField()
    workflow_id = serializers.UUIDField()
    revision_num = serializers.IntegerField(source="revision.revision_num")
    status = serializers.CharField()
    outcome = serializers.CharField()
    result = serializers.CharField()
    error = serializers.CharField()
    external_id = serializers.CharField(allow_null=True)
    input = serializers.JSONField()
    cancel_requested = serializers.BooleanField()
    deadline_at = serializers.DateTimeField(allow_null=True)
    created_by_id = serializers.UUIDField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)


class RunDetailOutput(RunOutput):
    context = serializers.SerializerMethodField(method_name="context_shown")
    nodes = NodeRunOutput(source="node_runs", many=True)

    @extend_schema_field(OpenApiTypes.OBJECT)
    def context_shown(self, run) -> dict:
        return selectors.run_context_shown(run=run)


class TraceOutput(serializers.Serializer):
    id = serializers.IntegerField()
    workflow_id = serializers.UUIDField(allow_null=True)
    run_id = serializers.IntegerField(allow_null=True)
    node_run_id = serializers.IntegerField(allow_null=True)
    batch_job_item_id = serializers.IntegerField(allow_null=True)
    node_key = serializers.CharField()
    attempt = serializers.IntegerField()
    action_type = serializers.CharField()
    action_detail = serializers.JSONField()
    success = serializers.BooleanField()
    duration_ms = serializers.IntegerField()
    error_detail = serializers.CharField()
    tier = serializers.IntegerField(allow_null=True)
    tier_reason = serializers.CharField()
    llm_model = serializers.CharField()
    llm_tokens_used = serializers.IntegerField(allow_null=True)
    user_id = serializers.UUIDField(allow_null=True)
    session_id = serializers.CharField()
    created_at = serializers.DateTimeField()
