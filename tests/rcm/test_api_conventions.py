"""The error shape for every failure, and the OpenAPI schema served without internet."""

import pytest
from django.test import Client
from django.urls import path
from rest_framework.test import APIClient

from rcm.api.views import OrgScopedAPIView


def _boom(request):
    raise RuntimeError("an unexpected failure")


urlpatterns = [path("boom/", _boom)]
handler500 = "rcm.api.errors.server_error"  # the same handler as rcm/urls.py


@pytest.mark.urls("tests.rcm.test_api_conventions")
def test_a_crash_is_a_500_in_the_standard_shape_without_internals():
    client = Client(raise_request_exception=False)
    response = client.get("/boom/")
    assert response.status_code == 500
    body = response.json()
    assert body["error"]["code"] == "server_error"
    assert "RuntimeError" not in response.content.decode()


def test_an_unknown_url_is_a_404_in_the_standard_shape():
    response = Client().get("/api/v2/nothing-here/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_schema_is_openapi_3_and_lists_the_endpoints():
    response = APIClient().get("/api/v2/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert {"/api/v2/endpoints/", "/api/v2/auth/token/", "/api/v2/audit-events/"} <= set(
        schema["paths"]
    )
    assert {"jwt", "apiKey"} <= set(schema["components"]["securitySchemes"])


@pytest.mark.django_db
def test_swagger_ui_is_served_from_local_static_files():
    response = Client().get("/api/v2/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower() and "https://" not in html


def test_views_cannot_override_the_scoping():
    for method in ("get_queryset", "initial", "dispatch", "get_permissions"):
        with pytest.raises(TypeError, match="organization scoping"):
            type("Sneaky", (OrgScopedAPIView,), {method: lambda self: None})
    with pytest.raises(TypeError, match="owns them"):
        type("Sneaky", (OrgScopedAPIView,), {"permission_classes": []})
