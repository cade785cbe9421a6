"""The admin tidied for the console (issue 14): every page's name in the index reads as a
person would write it, admin messages count in words, and wide tables scroll inside their box
at 1400 pixels instead of widening the page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from rcm.admin import counted
from rcm.lookups import UserRole
from tests.console import factories
from tests.helpers import logged_in as _client
from tests.rcm.test_admin_security import staff  # noqa: F401 (a fixture)
from tests.workflows.test_admin import HIT, MISSED, REPAIRED, _actions

# Every page the admin's index lists for platform staff, as it names them.
INDEX = {
    "API keys",
    "Audit events",
    "Batch job items",
    "Batch jobs",
    "Channel auth types",
    "Channel types",
    "Credential access log entries",
    "Endpoints",
    "Field requirements",
    "Invitations",
    "Job statuses",
    "Memberships",
    "Micro-states",
    "Org requirement policies",
    "Organization types",
    "Organizations",
    "Payer requirements",
    "Portal credentials",
    "Requirement changes",
    "Requirement types",
    "Task actions",
    "Task domains",
    "Task signature sources",
    "Task signatures",
    "Task types",
    "User roles",
    "Users",
    "Web actions",
    "Web screenshots",
    "Workflow revisions",
    "Workflow runs",
    "Workflow statuses",
    "Workflow traces",
    "Workflows",
}


@pytest.mark.django_db
def test_the_index_names_every_page_as_a_person_would(staff):  # noqa: F811
    page = _client(staff[UserRole.SYS_ADMIN]).get(reverse("admin:index"))
    names = {entry["name"] for app in page.context["app_list"] for entry in app["models"]}
    assert names == INDEX


def test_counts_are_said_in_words():
    assert [counted(n, "run") for n in (0, 1, 2)] == ["0 runs", "1 run", "2 runs"]
    assert counted(1, "batch job") == "1 batch job"
    assert counted(3, "entry", "entries") == "3 entries"


def test_wide_tables_scroll_inside_their_box(console_for, org_a):
    tab = console_for(org_a[UserRole.OPERATOR], org_a)
    workflow = factories.workflow(org_a, "Eligibility")
    (run,) = factories.ended(
        org_a,
        workflow,
        timezone.now(),
        status="failed",
        error_kind="http_5xx",
        error="check: " + "the portal answered 503 Service Unavailable; " * 8,
    )
    _actions(org_a, run, timezone.now() - timedelta(minutes=1), HIT, REPAIRED, MISSED)
    job = factories.batch(org_a, workflow, rows=3)
    pages = {
        "run-page-wide": reverse("admin:workflows_workflowrun_change", args=(run.pk,)),
        "batch-items": reverse("admin:workflows_batchjobitem_changelist")
        + f"?batch_job__id__exact={job.pk}",
        "traces": reverse("admin:workflows_workflowtrace_changelist"),
    }
    for name, path in pages.items():
        tab.open(path)
        overflow = tab.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, (name, overflow)
        tab.shot(name)
