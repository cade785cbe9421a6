"""A request while the database cannot be reached: a 503 that says when to retry, not a 500."""

import socket

import pytest
from django.db import connection

from rcm.context import org_context
from workflows.models import Workflow


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again: nothing listens there


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("method", "body"), [("get", None), ("post", {"name": "Eligibility", "required_data": []})]
)
def test_an_unreachable_database_answers_503_with_retry_after(api, org_a, method, body):
    client = api(org_a, "operator")
    real_port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = _dead_port()
    try:
        response = getattr(client, method)("/api/v2/workflows/", body, format="json")
    finally:
        connection.settings_dict["PORT"] = real_port
        connection.close()
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "database_unavailable"
    with org_context(org_a.id):
        assert not Workflow.objects.exists()
