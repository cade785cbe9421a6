"""OPTIONS answers every route (it was a 500 on every view that takes a body): the routes are
read from the URL resolver, so a new route is checked without being named here (STYLE §17)."""

import re
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

# A value for each path converter: the object need not exist, OPTIONS reads none.
CONVERTER_VALUES = {"int": "1", "uuid": str(uuid.uuid4()), "str": "x", "slug": "x", "path": "x"}
_CONVERTER = re.compile(r"<(?:(\w+):)?\w+>")


def routes(patterns=None, prefix: str = "") -> list[str]:
    """Every route of the URL configuration, converters filled in."""
    found = []
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found += routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            found.append(
                "/" + _CONVERTER.sub(lambda m: CONVERTER_VALUES[m.group(1) or "str"], route)
            )
    return found


OPTIONS_DISABLED = {"/api/v2/docs/"}  # the Swagger UI page (rcm/urls.py)
API_ROUTES = sorted(route for route in routes() if route.startswith("/api/v2/"))


def test_the_api_routes_are_found():
    assert len(API_ROUTES) >= 50
    assert "/api/v2/micro-states/search/" in API_ROUTES


@pytest.mark.django_db
def test_options_answers_every_route_with_its_methods(api, anon, org_a):
    client = api(org_a, "org_admin")
    for route in API_ROUTES:
        if route in OPTIONS_DISABLED:
            assert client.options(route).status_code == 405, route
            continue
        response = client.options(route, HTTP_ACCEPT="application/json")
        assert response.status_code == 200, (route, response.content)
        assert "OPTIONS" in response.json()["methods"], route
        assert anon.options(route).status_code in (200, 401), route
