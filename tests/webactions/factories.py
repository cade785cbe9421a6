"""Bodies for the credential API that several suites need (the schema fuzz, pagination)."""

import json


def credential_body(client) -> dict:
    """A valid POST /credentials/ body, on a new endpoint made through ``client``."""
    endpoint = client.post(
        "/api/v2/endpoints/",
        json.dumps({"name": "Sandbox", "channel_type": "aetna-provider"}),
        content_type="application/json",
    ).json()
    return {
        "endpoint_id": endpoint["id"],
        "name": "Front desk",
        "credential_type": "user_pass",
        "secrets": {"username": "clerk", "password": "s3cret-pass"},
    }
