"""What the OpenAPI schema says beyond what drf-spectacular reads from the views: the error
shape every operation may answer with, and that input serializers refuse unknown fields."""

from drf_spectacular.extensions import OpenApiSerializerExtension

from rcm.api.errors import ERROR_STATUSES

ERROR_COMPONENT = {
    "type": "object",
    "description": "Every failure: rcm/api/errors.py.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object", "additionalProperties": True},
            },
            "required": ["code", "message", "details"],
        }
    },
    "required": ["error"],
}


def error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: the error statuses on every operation.

    Any operation may answer with any of them (a bad body, no or a stale token, a role too low,
    another organization's id, a conflict, a throttled log-in, ...), always in one shape."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_COMPONENT
    reference = {"$ref": "#/components/schemas/Error"}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_STATUSES.items():
                responses.setdefault(
                    str(status),
                    {
                        "description": description,
                        "content": {"application/json": {"schema": reference}},
                    },
                )
    return result


class StrictInputSchema(OpenApiSerializerExtension):
    """An input serializer refuses fields it does not declare (rcm/api/serializers.py)."""

    target_class = "rcm.api.serializers.StrictInputSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        return {**schema, "additionalProperties": False}
