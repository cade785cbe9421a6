"""Bodies that several suites need: the credential API's (the schema fuzz, pagination), and a
sandbox patient's input row (the web kind, the agent, the executor, the web actions API)."""

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


def patient_row(patient) -> dict:
    """The eligibility workflow's input row for a sandbox patient."""
    return {
        "member_id": patient.member_id,
        "dob": patient.date_of_birth.isoformat(),
        "last_name": patient.last_name,
    }
