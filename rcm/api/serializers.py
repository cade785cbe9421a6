"""Base input serializer (unknown fields are an error, not silently dropped), the JSON input
field and the query parameters of every list."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from rcm.api.parsers import JSONInputError, json_loads, json_problem

MAX_PAGE_SIZE = 200


class StrictInputSerializer(serializers.Serializer):
    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class PageQuery(StrictInputSerializer):
    """The query parameters of every cursor-paginated list (rcm/api/pagination.py); a list's
    filters extend it, so that an unknown parameter is a 400 there too."""

    PAGE_PARAMETERS = ("cursor", "page_size")

    cursor = serializers.CharField(required=False)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=MAX_PAGE_SIZE)


def json_storable(value) -> None:
    """The request parser's checks (rcm/api/parsers.py) for JSON that did not come through it:
    a serializer filled in code, a form field."""
    problem = json_problem(value)
    if problem:
        raise serializers.ValidationError(problem)


class JSONField(serializers.JSONField):
    """Any JSON value. Text from a form is parsed by the API's one JSON parser; a value given
    as data gets the same checks."""

    def to_internal_value(self, data):
        if self.binary or getattr(data, "is_json_string", False):
            try:
                return json_loads(data)
            except JSONInputError as exc:
                raise serializers.ValidationError(str(exc)) from None
        # Before DRF's own check, which serializes the value recursively.
        json_storable(data)
        return super().to_internal_value(data)


@extend_schema_field({"type": "object", "additionalProperties": True})
class JSONObjectField(JSONField):
    """A JSON object, as the schema says. What else comes is refused by the service that reads
    it (a graph's node config, a requirement spec), whose 400 names the node or the key."""
