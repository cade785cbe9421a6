"""The console's home: the first steps of an organization without a workflow; then its batches
in flight, what ended today, the week's success rate per workflow and per portal (numbers
checked across a day boundary in the server's time zone), the newest failures grouped, the
tier mix; a fixed number of queries whatever the volume; the bars' JSON."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from console.views import home as home_views
from console.views.home import BAD_IDS
from rcm.context import org_context
from rcm.lookups import UserRole
from tests.console import factories
from tests.helpers import logged_in as _client
from tests.rcm.test_admin_security import staff  # noqa: F401 (a fixture)
from tests.workflows.test_admin import HIT, MISSED, REPAIRED, _actions
from workflows.models import BatchJob, ItemStatus, RunStatus
from workflows.selectors import overview

HOME = reverse("console:home")
BATCHES = reverse("console:home_batches")
SVG = "{http://www.w3.org/2000/svg}"


def _midnight(days_ago: int = 0):
    """The start of a calendar day in the current time zone."""
    return overview.day_start(timezone.localdate() - timedelta(days=days_ago))


# -- first run -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_organization_without_a_workflow_is_told_what_to_do_first(staff, org_a):  # noqa: F811
    page = _client(staff[UserRole.ORG_ADMIN]).get(HOME)
    assert page.status_code == 200
    assert "This organization has no workflow." in page.text
    assert f'class="button" href="{reverse("console:workflows")}">Create a workflow' in page.text
    assert f'href="{reverse("admin:tenants_endpoint_add")}"' in page.text
    assert f'href="{reverse("console:batch_upload")}">Upload a batch' in page.text
    assert 'id="batches-in-flight"' not in page.text
    # An operator creates the workflow; the endpoint is an org admin's to add.
    page = _client(staff[UserRole.OPERATOR]).get(HOME)
    assert f'class="button" href="{reverse("console:workflows")}">Create a workflow' in page.text
    assert reverse("admin:tenants_endpoint_add") not in page.text
    assert "An organization admin can add it." in page.text
    # A viewer is told who can.
    page = _client(staff[UserRole.VIEWER]).get(HOME)
    assert "Create a workflow</a>" not in page.text
    assert "An operator of this organization can create it." in page.text


@pytest.mark.django_db
def test_the_first_steps_go_once_a_workflow_exists(staff, org_a):  # noqa: F811
    factories.workflow(org_a, "Eligibility")
    page = _client(staff[UserRole.OPERATOR]).get(HOME)
    assert "This organization has no workflow." not in page.text
    assert "No batch is running." in page.text
    assert "No run ended in the last 7 days." in page.text
    assert "No run failed in the last 7 days." in page.text
    assert "No web actions yet." in page.text


# -- the populated home ----------------------------------------------------------------------


def _populate(tenant, *, rows: int, runs: int, prefix: str = ""):
    """Every panel with something in it: a batch in flight with ``rows`` rows, a finished
    one, ``runs`` runs of each outcome today and yesterday on two workflows (one with a
    portal), failures of three kinds, and web actions of each tier."""
    portal = factories.endpoint(tenant, f"{prefix}Availity")
    eligibility = factories.workflow(tenant, f"{prefix}Eligibility", endpoint_id=portal.pk)
    claims = factories.workflow(tenant, f"{prefix}Claim status")
    live = factories.batch(tenant, eligibility, rows=rows, file_name="june.csv")
    done = factories.batch(tenant, claims, rows=rows, file_name="may.csv")
    with org_context(tenant.id):
        BatchJob.objects.filter(pk=done.pk).update(
            pending_rows=0,
            successful_rows=rows,
            processed_rows=rows,
            status_id="completed",
            completed_at=timezone.now(),
        )
        live.items.filter(row_number__lte=rows // 2).update(
            status=ItemStatus.COMPLETED, completed_at=timezone.now()
        )
    now = timezone.now()
    for of in (eligibility, claims):
        for when in (now - timedelta(seconds=5), now - timedelta(days=1)):
            factories.ended(tenant, of, when, count=runs)
            factories.ended(tenant, of, when, result="failure", outcome="denied", count=runs)
            factories.ended(
                tenant, of, when, status=RunStatus.FAILED, error_kind="http_5xx", count=runs
            )
    factories.ended(tenant, claims, now, status=RunStatus.TIMEOUT, count=runs)
    run = factories.run(tenant, eligibility)
    _actions(tenant, run, now - timedelta(minutes=1), HIT, REPAIRED, MISSED)
    return eligibility, claims, portal, live


@pytest.mark.django_db
def test_the_home_runs_the_same_queries_for_more_rows(staff, org_a, monkeypatch):  # noqa: F811
    monkeypatch.setattr(home_views, "WEEK_CACHE_SECONDS", 0)  # every panel counted each time
    _populate(org_a, rows=4, runs=1)
    client = _client(staff[UserRole.OPERATOR])
    client.get(HOME)  # the session and content types warmed
    with CaptureQueriesContext(connection) as small:
        assert client.get(HOME).status_code == 200
    _populate(org_a, rows=40, runs=10, prefix="More ")
    with CaptureQueriesContext(connection) as large:
        page = client.get(HOME)
    assert page.status_code == 200
    assert len(page.context["batches"]) == 2  # the in-flight one of each population
    assert len(large.captured_queries) == len(small.captured_queries), [
        query["sql"] for query in large.captured_queries
    ]


@pytest.mark.django_db
def test_the_home_shows_each_panel_with_its_numbers(staff, org_a, org_b):  # noqa: F811
    eligibility, claims, portal, live = _populate(org_a, rows=4, runs=2)
    factories.workflow(org_b, "Bayside eligibility")
    theirs = factories.batch(org_b, factories.workflow(org_b, "Bayside claims"), rows=3)
    page = _client(staff[UserRole.VIEWER]).get(HOME)
    assert page.status_code == 200
    # Batches in flight: ours, linked, with its bar; never another organization's.
    (batch,) = page.context["batches"]
    assert (batch["id"], batch["processed"], batch["total"]) == (live.pk, 0, 4)
    assert f'href="{reverse("console:batch", args=(live.pk,))}"' in page.text
    assert f'data-batch="{theirs.pk}"' not in page.text
    # Today: the batch rows and the runs by outcome.
    assert dict(page.context["items_today"]) == {"completed": 2, "failed": 0, "cancelled": 0}
    assert dict(page.context["runs_today"]) == {
        "succeeded": 4,
        "failure outcome": 4,
        "failed": 4,
        "timed out": 2,
        "cancelled": 0,
    }
    # The week, per workflow (two lines) and per portal (one: only Eligibility has one).
    by_workflow, by_portal = page.context["charts"]
    assert [row["name"] for row in by_workflow["rows"]] == ["Claim status", "Eligibility"]
    assert [row["name"] for row in by_portal["rows"]] == ["Availity"]
    assert [(d.succeeded, d.ended) for d in by_portal["rows"][0]["days"][-2:]] == [(2, 6), (2, 6)]
    assert [(d.succeeded, d.ended) for d in by_workflow["rows"][0]["days"][-2:]] == [
        (2, 6),
        (2, 8),  # today's two timed-out runs
    ]
    # Failures: three groups.
    groups = {
        (g["error_kind"], g["outcome"]): g["count"] for g in page.context["failures"]["groups"]
    }
    assert groups == {("http_5xx", ""): 8, ("", "denied"): 8, ("timeout", ""): 2}
    # The tier mix of the whole organization.
    assert page.context["tier_mix"]["total"] == 3
    assert "3 web actions, 33% of them from memory (tier 1)." in page.text


@pytest.mark.django_db
def test_the_week_counts_each_run_on_its_calendar_day_in_the_servers_zone(
    staff,  # noqa: F811
    org_a,
    settings,
):
    settings.TIME_ZONE = "America/New_York"
    eligibility = factories.workflow(org_a, "Eligibility")
    today = _midnight(0)
    # A second either side of midnight (05:00 UTC in winter, 04:00 in summer).
    factories.ended(org_a, eligibility, today - timedelta(seconds=1), count=3)
    factories.ended(org_a, eligibility, today, status=RunStatus.FAILED, count=2)
    factories.ended(org_a, eligibility, today + timedelta(seconds=1), count=1)
    # Outside the week: the day before its first.
    factories.ended(org_a, eligibility, _midnight(7) - timedelta(seconds=1), count=5)
    factories.ended(org_a, eligibility, _midnight(6), count=1)
    page = _client(staff[UserRole.VIEWER]).get(HOME)
    (row,) = page.context["charts"][0]["rows"]
    assert [(day.succeeded, day.ended) for day in row["days"]] == [
        (1, 1),
        (0, 0),
        (0, 0),
        (0, 0),
        (0, 0),
        (3, 3),
        (1, 3),
    ]
    assert [day.day for day in row["days"]][-1] == timezone.localdate()
    assert dict(page.context["runs_today"])["failed"] == 2
    # The picture: one line, broken where no run ended; the table says the same.
    svg = ET.fromstring(re.search(r"<svg[^>]*share-chart.*?</svg>", page.text, re.S).group(0))
    (line,) = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "line"]
    assert line.get("data-name") == "Eligibility"
    assert len(line.findall(f"{SVG}circle")) == 3
    assert len(line.findall(f"{SVG}polyline")) == 1  # the last two days joined
    assert "1/3" in page.text and "(33%)" in page.text


@pytest.mark.django_db
def test_failures_are_grouped_by_error_kind_and_outcome_with_the_newest_example(
    staff,  # noqa: F811
    org_a,
):
    eligibility = factories.workflow(org_a, "Eligibility")
    now = timezone.now()
    factories.ended(
        org_a, eligibility, now - timedelta(hours=3), count=2, result="failure", outcome="denied"
    )
    newest_denied = factories.ended(
        org_a, eligibility, now - timedelta(hours=1), result="failure", outcome="denied"
    )[0]
    timeouts = factories.ended(
        org_a,
        eligibility,
        now - timedelta(hours=2),
        status=RunStatus.FAILED,
        error_kind="http_timeout",
        error="check: the portal did not answer in 30 s",
        count=2,
    )
    factories.ended(org_a, eligibility, now, status=RunStatus.CANCELLED)  # not a failure
    factories.ended(org_a, eligibility, now)  # a success
    factories.ended(org_a, eligibility, _midnight(7), result="failure")  # before the week
    page = _client(staff[UserRole.VIEWER]).get(HOME)
    groups = page.context["failures"]["groups"]
    assert [(g["error_kind"], g["outcome"], g["count"], g["run"].pk) for g in groups] == [
        ("", "denied", 3, newest_denied.pk),
        ("http_timeout", "", 2, timeouts[-1].pk),
    ]
    assert page.context["failures"]["capped"] is False
    run_page = reverse("admin:workflows_workflowrun_change", args=(newest_denied.pk,))
    assert f'href="{run_page}">Run {newest_denied.pk}</a>' in page.text
    assert "check: the portal did not answer in 30 s" in page.text


@pytest.mark.django_db
def test_failures_grouped_stop_at_the_newest_few(org_a):
    eligibility = factories.workflow(org_a, "Eligibility")
    now = timezone.now()
    factories.ended(org_a, eligibility, now - timedelta(hours=1), result="failure", count=3)
    newest = factories.ended(org_a, eligibility, now, status=RunStatus.FAILED, count=2)
    with org_context(org_a.id):
        found = overview.failure_groups(since=_midnight(1), limit=2)
    assert found.capped is True and found.sampled == 2
    assert [(g.error_kind, g.outcome, g.count) for g in found.groups] == [("", "", 2)]
    assert found.groups[0].example.pk == newest[-1].pk


@pytest.mark.django_db
def test_the_weeks_panels_are_counted_once_and_then_read_from_the_cache(
    staff,  # noqa: F811
    org_a,
):
    eligibility = factories.workflow(org_a, "Eligibility")
    factories.ended(org_a, eligibility, timezone.now(), count=2)
    client = _client(staff[UserRole.VIEWER])
    with CaptureQueriesContext(connection) as counted:
        first = client.get(HOME)
    factories.ended(org_a, eligibility, timezone.now(), count=3)
    with CaptureQueriesContext(connection) as cached:
        again = client.get(HOME)
    assert len(cached.captured_queries) < len(counted.captured_queries)
    assert not any("workflow_run" in query["sql"] for query in cached.captured_queries)
    assert dict(again.context["runs_today"]) == dict(first.context["runs_today"])
    assert dict(first.context["runs_today"])["succeeded"] == 2
    assert "as of" in again.text


# -- the bars' numbers -----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_bars_numbers_cover_the_jobs_in_flight_and_those_asked_about(
    staff,  # noqa: F811
    org_a,
    org_b,
):
    eligibility = factories.workflow(org_a, "Eligibility")
    live = factories.batch(org_a, eligibility, rows=4)
    finished = factories.batch(org_a, eligibility, rows=2)
    with org_context(org_a.id):
        BatchJob.objects.filter(pk=finished.pk).update(
            pending_rows=0, failed_rows=2, processed_rows=2, completed_at=timezone.now()
        )
    theirs = factories.batch(org_b, factories.workflow(org_b, "Bayside"), rows=2)
    client = _client(staff[UserRole.VIEWER])
    answer = client.get(BATCHES, {"ids": f"{finished.pk},{theirs.pk}"}).json()
    assert answer["in_flight"] == 1
    shown = {batch["id"]: batch for batch in answer["batches"]}
    assert set(shown) == {live.pk, finished.pk}  # another organization's is not found
    assert shown[finished.pk]["done"] is True
    assert shown[finished.pk]["widths"] == {"successful": 0, "failed": 100.0, "cancelled": 0}
    assert shown[live.pk]["url"] == reverse("console:batch", args=(live.pk,))
    refused = client.get(BATCHES, {"ids": "12,twelve"})
    assert refused.status_code == 400
    assert refused.json() == {"error": BAD_IDS}
