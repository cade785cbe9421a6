"""Two organizations on one platform, each through a client of its own: each uploads a batch,
each lists only its own batches, and each is told the other's does not exist (404).

    RCM_URL=http://127.0.0.1:8000 \
    RCM_A_EMAIL=operator@acme.example RCM_A_PASSWORD=… \
    RCM_B_EMAIL=operator@bayside.example RCM_B_PASSWORD=… \
    python docs/examples/multi_tenant.py ["Eligibility & benefits"]

Each organization needs an active workflow of that name (the argument, by default the demo's)
whose required data is ``member_id``. Exits with 1 if either organization could see the
other's batch.
"""

from __future__ import annotations

import os
import sys

from rcm_client import Client, NotFound

ORGANIZATIONS = ("A", "B")


def patients(label: str) -> bytes:
    return f"member_id,last_name\n{label}100,Rivera\n{label}101,Okafor\n".encode()


def main(workflow_name: str) -> int:
    url = os.environ["RCM_URL"]
    clients = {
        label: Client(
            url,
            email=os.environ[f"RCM_{label}_EMAIL"],
            password=os.environ[f"RCM_{label}_PASSWORD"],
        )
        for label in ORGANIZATIONS
    }
    try:
        jobs = {}
        for label, client in clients.items():
            org = client.current_organization()
            workflow = next(
                (flow for flow in client.workflows(status="active") if flow.name == workflow_name),
                None,
            )
            if workflow is None:
                print(f"{label}: {org.name} has no active workflow {workflow_name!r}")
                return 2
            job = client.upload_batch(patients(label), workflow=workflow, filename=f"{label}.csv")
            jobs[label] = job
            print(f"{label}: {org.name} uploaded batch {job.id} ({job.total_rows} rows)")

        isolated = True
        for label, client in clients.items():
            other = jobs["B" if label == "A" else "A"]
            listed = {job.id for job in client.batch_jobs()}
            print(f"{label}: lists its batch {jobs[label].id}: {jobs[label].id in listed}; "
                  f"lists the other's {other.id}: {other.id in listed}")  # fmt: skip
            isolated &= jobs[label].id in listed and other.id not in listed
            try:
                client.batch_job(other.id)
            except NotFound as missing:
                print(f"{label}: batch {other.id}: {missing.status} {missing.code}")
            else:
                print(f"{label}: batch {other.id} of the other organization is visible")
                isolated = False
        return 0 if isolated else 1
    finally:
        for client in clients.values():
            client.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "Eligibility & benefits"))
