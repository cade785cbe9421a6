"""Input and output serializers of the workflow authoring endpoints.

Inputs check shapes and types only. What makes a graph unsavable (a bad key, an unknown kind,
a dangling transition, ...) is checked by the service, so that the 400 names the node.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from rcm.api.serializers import JSONObjectField, PageQuery, StrictInputSerializer
from rcm.lookups import WorkflowStatus
from workflows.models import NodeType, TriggerRule

# Input fields are read in templates as input.<name>, so names are identifiers.
FIELD_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,99}$"
MAX_REQUIRED_FIELDS = 200
MAX_NODES = 500
MAX_TRANSITIONS = 2000
VERSION_HELP = (
    "The workflow version this change is based on (from your last read). A stale one is "
    "refused with 409 stale_version; the response carries the new version."
)


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "string", "pattern": FIELD_NAME},
        "maxItems": MAX_REQUIRED_FIELDS,
        "uniqueItems": True,
    }
)
class RequiredDataField(serializers.ListField):
    child = serializers.RegexField(
        FIELD_NAME,
        error_messages={"invalid": "A field name is letters, digits and _, not a digit first."},
    )

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", MAX_REQUIRED_FIELDS)
        kwargs.setdefault("help_text", "Names of the input fields every run must carry.")
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        names = super().to_internal_value(data)
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise serializers.ValidationError(f"Field names appear twice: {', '.join(repeated)}.")
        return names


# -- workflows -----------------------------------------------------------------------------


class WorkflowListFilter(PageQuery):
    status = serializers.ChoiceField(choices=WorkflowStatus.ordered(), required=False)


class WorkflowCreateInput(StrictInputSerializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
    required_data = RequiredDataField(required=False)
    task_type = serializers.CharField(
        max_length=100,
        required=False,
        allow_null=True,
        help_text="A task type's id or domain/action, e.g. eligibility/check.",
    )
    endpoint_id = serializers.IntegerField(
        required=False, allow_null=True, help_text="One of your organization's endpoints."
    )


class WorkflowUpdateInput(WorkflowCreateInput):
    version = serializers.IntegerField(min_value=1, help_text=VERSION_HELP)
    name = serializers.CharField(max_length=200, required=False)


class WorkflowOutput(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    description = serializers.CharField()
    status = serializers.CharField(source="status_id")
    required_data = serializers.ListField(child=serializers.CharField())
    task_type_id = serializers.UUIDField(allow_null=True)
    task_type = serializers.CharField(allow_null=True, help_text="domain/action")
    endpoint_id = serializers.IntegerField(allow_null=True)
    version = serializers.IntegerField(help_text="Send it back with your next draft change.")
    latest_revision_num = serializers.IntegerField(
        allow_null=True, default=None, help_text="The last published revision, if any."
    )
    draft_updated_at = serializers.DateTimeField()
    published_at = serializers.DateTimeField(allow_null=True)
    created_by_id = serializers.UUIDField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class VersionOutput(serializers.Serializer):
    workflow_version = serializers.IntegerField(source="version")


# -- nodes and transitions -----------------------------------------------------------------


# Text the schema lists the values of. The graph service refuses any other value, so that the
# 400 (invalid_graph) names the node it belongs to.
@extend_schema_field({"type": "string", "enum": NodeType.values})
class NodeTypeField(serializers.CharField):
    pass


@extend_schema_field({"type": "string", "enum": TriggerRule.values})
class TriggerRuleField(serializers.CharField):
    pass


class NodeInput(StrictInputSerializer):
    key = serializers.CharField(max_length=200, help_text="A slug, unique in the workflow.")
    node_type = NodeTypeField(max_length=50)
    kind = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        help_text="The agent kind of a general node (web, http, transform, wait, noop, ...); "
        "decision nodes use decision; entry and outcome nodes none.",
    )
    config = JSONObjectField(
        required=False, help_text='The kind\'s settings; an outcome\'s is {"result": "success"}.'
    )
    retry_policy = JSONObjectField(
        required=False,
        help_text="Temporal-shaped: initial_interval_s, backoff_coefficient, "
        "maximum_interval_s, maximum_attempts, non_retryable_error_kinds, jitter.",
    )
    trigger_rule = TriggerRuleField(
        max_length=100,
        required=False,
        help_text="For joins: none_failed_min_one_success (default), all_success, all_done.",
    )
    timeout_s = serializers.IntegerField(required=False, allow_null=True)
    position = serializers.DictField(required=False, help_text='The editor\'s {"x": .., "y": ..}')


class NodeCreateInput(NodeInput):
    version = serializers.IntegerField(min_value=1, help_text=VERSION_HELP)


class NodeUpdateInput(NodeCreateInput):
    key = serializers.CharField(max_length=200, required=False)
    node_type = NodeTypeField(max_length=50, required=False)


class NodeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField()
    node_type = serializers.CharField()
    kind = serializers.CharField()
    config = serializers.JSONField()
    retry_policy = serializers.JSONField()
    trigger_rule = serializers.CharField()
    timeout_s = serializers.IntegerField(allow_null=True)
    label_conf = serializers.JSONField()
    last_label_at = serializers.DateTimeField(allow_null=True)
    position = serializers.JSONField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class NodeChangeOutput(NodeOutput):
    workflow_version = serializers.IntegerField(source="workflow.version")


class TransitionInput(StrictInputSerializer):
    label = serializers.CharField(max_length=200, required=False, default="success")

    def get_fields(self):
        # "from" is a Python keyword: it cannot be declared as a class attribute.
        return {
            "from": serializers.CharField(max_length=200, help_text="The source node's key."),
            "to": serializers.CharField(max_length=200, help_text="The target node's key."),
            **super().get_fields(),
        }


class TransitionCreateInput(TransitionInput):
    version = serializers.IntegerField(min_value=1, help_text=VERSION_HELP)


class TransitionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    from_node_id = serializers.IntegerField()
    to_node_id = serializers.IntegerField()
    label = serializers.CharField(source="action_label")
    freq = serializers.IntegerField(help_text="Traversals so far.")
    created_at = serializers.DateTimeField()

    def get_fields(self):
        fields = super().get_fields()
        return {
            "id": fields.pop("id"),
            "from": serializers.CharField(source="from_node.key"),
            "to": serializers.CharField(source="to_node.key"),
            **fields,
        }


class TransitionChangeOutput(TransitionOutput):
    workflow_version = serializers.IntegerField(source="workflow.version")


class GraphInput(StrictInputSerializer):
    version = serializers.IntegerField(min_value=1, help_text=VERSION_HELP)
    required_data = RequiredDataField(required=False)
    nodes = NodeInput(many=True, max_length=MAX_NODES)
    transitions = TransitionInput(many=True, max_length=MAX_TRANSITIONS)


class GraphOutput(serializers.Serializer):
    version = serializers.IntegerField()
    required_data = serializers.ListField(child=serializers.CharField())
    nodes = NodeOutput(many=True)
    transitions = TransitionOutput(many=True)


class WorkflowDetailOutput(WorkflowOutput):
    nodes = NodeOutput(many=True)
    transitions = TransitionOutput(many=True)


# -- validation, publishing, revisions -----------------------------------------------------


class ProblemOutput(serializers.Serializer):
    node = serializers.CharField(allow_null=True, help_text="The node's key; null: the graph.")
    code = serializers.CharField()
    message = serializers.CharField()


class ValidationOutput(serializers.Serializer):
    valid = serializers.BooleanField()
    problems = ProblemOutput(many=True)


class PublishInput(StrictInputSerializer):
    comment = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    version = serializers.IntegerField(
        min_value=1,
        required=False,
        help_text="If given, publish only if the draft is still at this version (409 if not).",
    )


class VersionQuery(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, help_text=VERSION_HELP)


class RevisionOutput(serializers.Serializer):
    workflow_id = serializers.UUIDField()
    revision_num = serializers.IntegerField()
    comment = serializers.CharField()
    created_by_id = serializers.UUIDField(allow_null=True)
    created_at = serializers.DateTimeField()


class RevisionDetailOutput(RevisionOutput):
    graph = serializers.JSONField(help_text="The frozen graph (workflows.engine.graph).")
