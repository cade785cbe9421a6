"""The OpenAPI schema says what the API does: every operation documents the error shape, and
every request body refuses fields it does not declare (as StrictInputSerializer does)."""

import pytest
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator

from rcm.api.errors import ERROR_STATUSES


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema):
    for path, by_method in schema["paths"].items():
        for method, operation in by_method.items():
            yield f"{method.upper()} {path}", operation


def test_every_operation_documents_the_error_shape(schema):
    error = {"$ref": "#/components/schemas/Error"}
    for name, operation in operations(schema):
        for status in ERROR_STATUSES:
            response = operation["responses"][str(status)]
            assert response["content"]["application/json"]["schema"] == error, (name, status)


def test_every_request_body_refuses_undeclared_fields(schema):
    components = schema["components"]["schemas"]
    bodies = 0
    for name, operation in operations(schema):
        for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
            component = components[content["schema"]["$ref"].rsplit("/", 1)[-1]]
            assert component["additionalProperties"] is False, (name, media_type)
            bodies += 1
    assert bodies >= 30


def test_the_schema_is_valid_openapi_and_generates_without_warnings(tmp_path):
    # A warning is a place where drf-spectacular guessed (or a field's schema leaked into
    # every field of its kind); --validate checks it against the OpenAPI 3 specification.
    call_command("spectacular", "--validate", "--fail-on-warn", file=str(tmp_path / "s.yaml"))
