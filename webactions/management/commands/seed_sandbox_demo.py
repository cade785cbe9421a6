"""``seed_sandbox_demo [--base-url URL]``: in the demo organization, a workflow that checks
eligibility and benefits on the sandbox payer portal, and a sample CSV to upload.

Creates (once; `make run` calls it on every start after ``seed_demo``): the endpoint "Sandbox
Health Plan" with its log-in in its config, the credential "Sandbox clerk", the published
workflow "Eligibility & benefits", and ``var/demo/eligibility-sample.csv`` (20 members the
sandbox knows and one it does not). The endpoint's base URL follows ``--base-url`` (the web
server's address) on every run.
"""

from __future__ import annotations

import csv
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from rcm import embedded
from rcm.context import org_context
from rcm.lookups import UserRole
from tenants import selectors
from tenants import services as tenant_services
from tenants.demo import demo_email
from tenants.models import ChannelType, Endpoint
from webactions.models import PortalCredential
from webactions.sandbox import views as sandbox
from webactions.sandbox.data import sandbox_patients
from webactions.services import credentials as credential_services
from workflows.models import Workflow
from workflows.services import authoring

CHANNEL_CODE = "sandbox-portal"
ENDPOINT_NAME = "Sandbox Health Plan"
CREDENTIAL_NAME = "Sandbox clerk"
WORKFLOW_NAME = "Eligibility & benefits"
SAMPLE_ROWS = 20
LOGIN = {
    "actions": [
        {"tool": "goto", "url": "login/"},
        {"tool": "fill", "target": {"label": "Username"}, "value": "{{ credential.username }}"},
        {"tool": "fill", "target": {"label": "Password"}, "value": "{{ credential.password }}"},
        {"tool": "totp", "target": {"label": "Verification code"}},
        {"tool": "click", "target": {"role": "button", "name": "Sign in"}},
    ],
    "page": {"label": "Password"},
}
SEARCH = [
    {"tool": "goto", "url": "./"},
    {"tool": "fill", "target": {"label": "Member ID"}, "value": "{{ input.member_id }}"},
    {"tool": "fill", "target": {"label": "Date of birth"}, "value": "{{ input.dob }}"},
    {"tool": "fill", "target": {"label": "Last name"}, "value": "{{ input.last_name }}"},
    {"tool": "click", "target": {"role": "button", "name": "Search"}},
    {
        "tool": "extract",
        "fields": {
            "coverage": {"label": "Coverage status"},
            "plan": {"label": "Plan"},
            "group": {"label": "Group number"},
        },
    },
]


def sample_csv_path() -> Path:
    return embedded.default_var_dir().resolve() / "demo" / "eligibility-sample.csv"


class Command(BaseCommand):
    help = "Seed the demo organization's sandbox eligibility workflow and a sample CSV."

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url",
            default=settings.PUBLIC_BASE_URL,
            help="The web server's address (default: PUBLIC_BASE_URL).",
        )

    def handle(self, *args, **options):
        if not settings.RCM_SANDBOX:
            raise CommandError("The sandbox portal is off (RCM_SANDBOX); nothing to seed.")
        admin = selectors.auth_user_by_email(email=demo_email(UserRole.ORG_ADMIN))
        if admin is None:
            raise CommandError("No demo organization: run `manage.py seed_demo` first.")
        base_url = options["base_url"].rstrip("/") + "/sandbox/v1/"
        with org_context(admin.org_id), transaction.atomic():
            endpoint = self._endpoint(admin, base_url)
            credential = self._credential(admin, endpoint)
            if self._workflow(admin, endpoint, credential):
                self.stdout.write(
                    f"Created the workflow {WORKFLOW_NAME!r} on the sandbox portal ({base_url})."
                )
            workflow = Workflow.objects.get(name=WORKFLOW_NAME)
        path = self._sample_csv()
        # Every time: the way to see it work, ids included (none of them is a secret).
        self.stdout.write(
            "Try the sandbox eligibility workflow (in another terminal):\n"
            f"  .venv/bin/python manage.py run_batch {path} --org {admin.org_id} "
            f"--workflow {workflow.pk} --as {demo_email(UserRole.OPERATOR)}"
        )

    def _endpoint(self, admin, base_url: str) -> Endpoint:
        channel, _ = ChannelType.objects.get_or_create(
            code=CHANNEL_CODE,
            defaults={
                "name": "Sandbox payer portal (demo and tests)",
                "endpoint_kind": "payer",
                "access_medium": "web",
            },
        )
        endpoint = Endpoint.objects.filter(channel_type=channel).first()
        config = {"max_concurrency": 4, "login": LOGIN}
        if endpoint is None:
            return tenant_services.endpoint_create(
                org_id=admin.org_id,
                name=ENDPOINT_NAME,
                channel_type=channel,
                base_url=base_url,
                config=config,
                actor=admin,
            )
        if endpoint.base_url != base_url:
            endpoint = tenant_services.endpoint_update(
                endpoint=endpoint, actor=admin, base_url=base_url
            )
        return endpoint

    def _credential(self, admin, endpoint) -> PortalCredential:
        found = PortalCredential.objects.filter(endpoint=endpoint, name=CREDENTIAL_NAME).first()
        if found is not None:
            return found
        account = sandbox.ACCOUNTS["clerk"]
        return credential_services.credential_create(
            org_id=admin.org_id,
            actor=admin,
            endpoint_id=endpoint.pk,
            name=CREDENTIAL_NAME,
            credential_type="user_pass",
            secrets={
                "username": account.username,
                "password": account.password,
                "totp_seed": account.totp_seed,
            },
        )

    def _workflow(self, admin, endpoint, credential) -> bool:
        if Workflow.objects.filter(name=WORKFLOW_NAME).exists():
            return False
        workflow = authoring.workflow_create(
            org_id=admin.org_id,
            created_by=admin,
            name=WORKFLOW_NAME,
            description="Logs in to the sandbox portal, finds the member, reads the benefits.",
            required_data=["member_id", "dob", "last_name"],
        )
        check = {
            "endpoint": endpoint.pk,
            "credential": credential.pk,
            "actions": SEARCH,
            "outcomes": {"not_found": "Member not found"},
        }
        authoring.workflow_graph_replace(
            workflow=workflow,
            version=workflow.version,
            nodes=[
                {"key": "start", "node_type": "entry"},
                {
                    "key": "check",
                    "node_type": "general",
                    "kind": "web",
                    "config": check,
                    "timeout_s": 60,
                    "retry_policy": {"maximum_attempts": 3, "initial_interval_s": 2},
                },
                {"key": "done", "node_type": "outcome", "config": {"result": "success"}},
                {"key": "not_found", "node_type": "outcome", "config": {"result": "failure"}},
            ],
            transitions=[
                {"from": "start", "to": "check", "label": "success"},
                {"from": "check", "to": "done", "label": "success"},
                {"from": "check", "to": "not_found", "label": "not_found"},
            ],
        )
        workflow.refresh_from_db()
        authoring.workflow_publish(workflow=workflow, created_by=admin)
        return True

    def _sample_csv(self) -> Path:
        path = sample_csv_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["member_id", "dob", "last_name"])
            for patient in sandbox_patients()[:SAMPLE_ROWS]:
                writer.writerow(
                    [patient.member_id, patient.date_of_birth.isoformat(), patient.last_name]
                )
            writer.writerow(["W000000000", "1970-01-01", "Nobody"])
        return path
