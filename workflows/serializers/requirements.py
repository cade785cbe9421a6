"""Input and output serializers of the requirements endpoints (one pair per endpoint).

The shape of a field spec (keys, types, regular expressions, conditions) is checked by the
services, so that the admin and the commands get the same answers as the API.
"""

from rest_framework import serializers

from rcm.api.serializers import JSONObjectField, PageQuery, StrictInputSerializer
from rcm.lookups import RequirementType
from workflows.models import FieldType, PolicyOperation
from workflows.services.requirements import FIELD_NAME_PATTERN

TASK_TYPE_HELP = "A task type id, or its domain/action (e.g. eligibility/check)."


# -- task types ----------------------------------------------------------------------------
class FieldRequirementOutput(serializers.Serializer):
    id = serializers.IntegerField()
    field_name = serializers.CharField()
    label = serializers.CharField()
    field_type = serializers.CharField()
    rtype = serializers.CharField(source="rtype_id")
    is_array = serializers.BooleanField()
    validation = serializers.JSONField()
    conditional_on = serializers.JSONField(allow_null=True)
    channel_type = serializers.CharField(
        source="channel_type.code", allow_null=True, default=None, help_text="Null: every portal."
    )
    path = serializers.CharField()
    depth = serializers.IntegerField()
    parent_id = serializers.IntegerField(allow_null=True)
    display_order = serializers.IntegerField()


class TaskTypeOutput(serializers.Serializer):
    id = serializers.UUIDField()
    key = serializers.CharField(source="__str__", help_text="domain/action")
    domain = serializers.CharField(source="domain_id")
    action = serializers.CharField(source="action_id")
    display_name = serializers.CharField()
    description = serializers.CharField()
    x12_transaction = serializers.CharField()
    created_at = serializers.DateTimeField()


class TaskTypeDetailOutput(TaskTypeOutput):
    field_requirements = FieldRequirementOutput(many=True, help_text="The platform's fields.")


# -- effective requirements and row validation ---------------------------------------------
class RequirementsEffectiveQuery(StrictInputSerializer):
    task_type = serializers.CharField(max_length=100, help_text=TASK_TYPE_HELP)
    endpoint = serializers.IntegerField(required=False, help_text="An endpoint id (its payer).")
    as_of = serializers.DateField(required=False, help_text="YYYY-MM-DD; today if absent.")


class EffectiveFieldOutput(serializers.Serializer):
    field_name = serializers.CharField()
    label = serializers.CharField()
    field_type = serializers.CharField()
    rtype = serializers.CharField()
    is_array = serializers.BooleanField()
    validation = serializers.JSONField()
    conditional_on = serializers.JSONField(allow_null=True)
    display_order = serializers.IntegerField()
    path = serializers.CharField()
    sources = serializers.ListField(
        child=serializers.CharField(),
        help_text='The layers that shaped the field, e.g. ["platform", "payer:uhc-portal v2"].',
    )


class RequirementsEffectiveOutput(serializers.Serializer):
    task_type = serializers.UUIDField()
    endpoint = serializers.IntegerField(allow_null=True)
    as_of = serializers.DateField()
    fields = EffectiveFieldOutput(many=True)


class RequirementsValidateInput(RequirementsEffectiveQuery):
    row = serializers.DictField(help_text="One input row: field name → value.")


class RequirementsValidateOutput(serializers.Serializer):
    valid = serializers.BooleanField()
    missing = serializers.ListField(child=serializers.CharField())
    unknown = serializers.ListField(child=serializers.CharField())
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


# -- organization policies -----------------------------------------------------------------
class RequirementPolicyListQuery(PageQuery):
    task_type = serializers.CharField(max_length=100, required=False, help_text=TASK_TYPE_HELP)
    endpoint = serializers.IntegerField(required=False)


class RequirementPolicyCreateInput(StrictInputSerializer):
    task_type = serializers.CharField(max_length=100, help_text=TASK_TYPE_HELP)
    endpoint = serializers.IntegerField(
        required=False, allow_null=True, help_text="Narrow the policy to one endpoint."
    )
    field_name = serializers.RegexField(FIELD_NAME_PATTERN, max_length=100)
    operation = serializers.ChoiceField(choices=PolicyOperation.values)
    spec = JSONObjectField(
        required=False,
        default=dict,
        help_text="add: the field (field_type required); modify: the attributes that change; "
        "remove: empty. Keys: label, field_type, rtype, is_array, validation, conditional_on.",
    )
    effective_date = serializers.DateField()
    end_date = serializers.DateField(required=False, allow_null=True)
    reason = serializers.CharField(max_length=2000)
    approved_by = serializers.UUIDField(
        required=False, allow_null=True, help_text="An org_admin member who approved it."
    )


class RequirementPolicyUpdateInput(StrictInputSerializer):
    endpoint = serializers.IntegerField(required=False, allow_null=True)
    field_name = serializers.RegexField(FIELD_NAME_PATTERN, max_length=100, required=False)
    operation = serializers.ChoiceField(choices=PolicyOperation.values, required=False)
    spec = JSONObjectField(required=False)
    effective_date = serializers.DateField(required=False)
    end_date = serializers.DateField(required=False, allow_null=True)
    reason = serializers.CharField(
        max_length=2000, help_text="Why it changes; recorded in the changelog."
    )
    approved_by = serializers.UUIDField(required=False, allow_null=True)


class RequirementPolicyDeleteInput(StrictInputSerializer):
    reason = serializers.CharField(max_length=2000, required=False, default="")


class RequirementPolicyOutput(serializers.Serializer):
    id = serializers.IntegerField()
    task_type = serializers.UUIDField(source="task_type_id")
    task = serializers.CharField(source="task_type.__str__", help_text="domain/action")
    endpoint = serializers.IntegerField(source="endpoint_id", allow_null=True)
    field_name = serializers.CharField()
    operation = serializers.CharField()
    spec = serializers.JSONField()
    effective_date = serializers.DateField()
    end_date = serializers.DateField(allow_null=True)
    reason = serializers.CharField()
    approved_by = serializers.UUIDField(source="approved_by_id", allow_null=True)
    created_by = serializers.UUIDField(source="created_by_id", allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


# -- payer requirements --------------------------------------------------------------------
class PayerRequirementListQuery(PageQuery):
    channel_type = serializers.SlugField(max_length=64, required=False, help_text="Its code.")
    task_type = serializers.CharField(max_length=100, required=False, help_text=TASK_TYPE_HELP)
    as_of = serializers.DateField(required=False, help_text="Only the rows effective that day.")


class PayerRequirementCreateInput(StrictInputSerializer):
    channel_type = serializers.SlugField(max_length=64, help_text="The payer's channel code.")
    task_type = serializers.CharField(max_length=100, help_text=TASK_TYPE_HELP)
    field_name = serializers.RegexField(FIELD_NAME_PATTERN, max_length=100)
    label = serializers.CharField(max_length=200, required=False, allow_blank=True)
    field_type = serializers.ChoiceField(choices=FieldType.values)
    rtype = serializers.ChoiceField(
        choices=RequirementType.ordered(), required=False, default=RequirementType.REQUIRED
    )
    is_array = serializers.BooleanField(required=False, default=False)
    validation = JSONObjectField(required=False, default=dict)
    conditional_on = JSONObjectField(required=False, allow_null=True, default=None)
    effective_date = serializers.DateField()
    end_date = serializers.DateField(required=False, allow_null=True)
    reason = serializers.CharField(max_length=2000)


class PayerRequirementOutput(serializers.Serializer):
    id = serializers.IntegerField()
    channel_type = serializers.CharField(source="channel_type.code")
    task_type = serializers.UUIDField(source="task_type_id")
    task = serializers.CharField(source="task_type.__str__", help_text="domain/action")
    field_name = serializers.CharField()
    label = serializers.CharField()
    field_type = serializers.CharField()
    rtype = serializers.CharField(source="rtype_id")
    is_array = serializers.BooleanField()
    validation = serializers.JSONField()
    conditional_on = serializers.JSONField(allow_null=True)
    effective_date = serializers.DateField()
    end_date = serializers.DateField(allow_null=True)
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()


# -- changelog -----------------------------------------------------------------------------
class RequirementChangelogOutput(serializers.Serializer):
    id = serializers.IntegerField()
    org_id = serializers.UUIDField(allow_null=True, help_text="Null: a platform change.")
    table_name = serializers.CharField()
    record_id = serializers.IntegerField()
    change = serializers.CharField()
    old_value = serializers.JSONField(allow_null=True)
    new_value = serializers.JSONField(allow_null=True)
    reason = serializers.CharField()
    changed_by = serializers.UUIDField(source="changed_by_id", allow_null=True)
    changed_at = serializers.DateTimeField()
