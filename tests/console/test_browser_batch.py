"""A batch from the file to its results in a real browser, with a real Celery worker running
its rows: drop a CSV on the upload page, map a column, see the invalid rows in words, start,
watch the progress reach 100 % without a reload, search a member ID, download the results and
the failed rows, retry the failed rows; a viewer sees the downloads and no buttons."""

from __future__ import annotations

import csv
import io
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from rcm.lookups import UserRole
from tests.workflows.engine_helpers import published
from workflows.models import TaskType

pytestmark = pytest.mark.celery_worker

# A roster as an office exports it. "Member #" and "DOB" are guessed; "Rendering Dr NPI" is
# not, and is mapped by hand; "Notes" is ignored. Row 2's date of birth is in the wrong format
# and row 3 has no member ID: both are refused at upload. Row 5 reaches the failure outcome.
ROSTER = """Member #,First Name,Last Name,DOB,Rendering Dr NPI,Notes
W100200301,Ada,Lovelace,1990-12-10,1234567893,first visit
W100200302,Grace,Hopper,12/09/1906,1234567893,
,Alan,Turing,1912-06-23,1234567893,call back
W100200304,Edsger,Dijkstra,1930-05-11,1234567893,
W100200305,Barbara,Liskov,1939-11-07,1234567893,
W100200306,Donald,Knuth,1938-01-10,1234567893,
W100200307,Margaret,Hamilton,1936-08-17,1234567893,
W100200308,Frances,Allen,1932-08-04,1234567893,
"""
NOT_COVERED = "W100200305"
DROP_FILE = """([text, name]) => {
    const transfer = new DataTransfer();
    transfer.items.add(new File([text], name, {type: "text/csv"}));
    return transfer;
}"""
DONE = 60_000  # ms: eight rows of half a second each, one at a time, with room to spare


@pytest.fixture(autouse=True)
def staging(settings, tmp_path):
    settings.BATCH_STAGING_DIR = tmp_path / "staging"


@pytest.fixture
def eligibility(org_a):
    """An eligibility check that pauses half a second a row (so that progress shows moving)
    and ends in failure for one member."""
    task_type = TaskType.objects.get(domain="eligibility", action="check")
    decision = {
        "conditions": [{"when": f"input.member_id == '{NOT_COVERED}'", "label": "not_covered"}],
        "default": "covered",
    }
    return published(
        org_a.id,
        "start>pause, pause>check, check>done:covered, check>fail:not_covered",
        kinds={"pause": "wait"},
        configs={"pause": {"seconds": 0.5}},
        decisions={"check": decision},
        task_type_id=str(task_type.pk),
        name="Eligibility (UHC)",
    )[0]


def _csv_of(download) -> list[list[str]]:
    with open(download.path(), encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(io.StringIO(handle.read())))


def test_a_batch_from_upload_to_results_in_the_browser(
    console_for, celery_worker, org_a, eligibility
):
    tab = console_for(org_a[UserRole.OPERATOR], org_a)
    page = tab.page

    # Choose: the workflow, and the file dropped on the zone.
    tab.open("/admin/console/upload/")
    page.select_option("select[name=workflow]", label="Eligibility (UHC)")
    dropped = page.evaluate_handle(DROP_FILE, [ROSTER, "march-roster.csv"])
    page.dispatch_event("#upload-drop", "drop", {"dataTransfer": dropped})
    expect(page.locator(".upload-chosen")).to_contain_text("march-roster.csv")
    tab.shot("upload-choose")
    page.get_by_role("button", name="Upload and map the columns").click()

    # Map: the guesses, the required field no column fills yet, then the column mapped.
    expect(page.locator("#upload-unfilled")).to_contain_text("Rendering provider NPI")
    member = page.locator("select[data-column='Member #']")
    expect(member).to_have_value("member_id")
    expect(page.locator("select[data-column='DOB']")).to_have_value("patient_dob")
    page.select_option("select[data-column='Rendering Dr NPI']", "provider_npi")
    page.select_option("select[data-column='Notes']", "__ignore__")
    expect(page.locator("#upload-unfilled")).to_have_text("Every required field has a column.")
    tab.shot("upload-mapping")
    page.get_by_role("button", name="Check the rows").click()

    # Check: both invalid rows in words, the valid ones counted.
    problems = page.locator("#upload-problems li")
    expect(problems).to_have_text(
        [
            "Row 2: Patient date of birth must look like 1980-04-30.",
            "Row 3: Member ID is required.",
        ]
    )
    expect(page.locator("#upload-valid")).to_have_text("6")
    expect(page.locator("#upload-invalid")).to_have_text("2")
    page.fill("input[name=max_concurrency]", "1")
    page.fill("textarea[name=prompt]", "March roster")
    tab.shot("upload-preview")
    page.get_by_role("button", name="Start the batch").click()

    # The batch's page: progress moves by itself; no reload until it reaches 100 %.
    expect(page.locator(".messagelist")).to_contain_text("started with 8 rows")
    page.evaluate("window.notReloaded = true")
    expect(page.locator("[data-field=processed]")).not_to_have_text("2", timeout=DONE)
    expect(page.locator("table.batch-rows tbody tr").first).to_contain_text("completed")
    tab.shot("batch-running")
    expect(page.locator("[data-field=percent]")).to_have_text("100.0 %", timeout=DONE)
    expect(page.locator("[data-field=status]")).to_have_text("partially completed")
    expect(page.locator("[data-field=finish]")).to_contain_text("Finished at")
    assert page.evaluate("window.notReloaded") is True
    expect(page.get_by_role("button", name="Cancel the batch")).to_have_count(0)
    expect(page.locator("[data-field=successful]")).to_have_text("5")
    expect(page.locator("[data-field=failed]")).to_have_text("3")
    # The rows, as they ended, in place.
    expect(page.locator("table.batch-rows tbody tr").nth(4)).to_contain_text(
        "The workflow ended at a failure outcome."
    )
    expect(page.locator("table.batch-rows")).not_to_contain_text("pending")
    expect(page.get_by_role("button", name="Retry failed rows")).to_be_visible()  # row 5
    assert page.evaluate("window.notReloaded") is True
    tab.shot("batch-done")

    # Search a member ID: exactly that row.
    page.fill("input[name=member_id]", "w100200306")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.batch-rows tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("W100200306")
    expect(rows.first).to_contain_text("Donald Knuth")
    expect(rows.first).to_contain_text("completed")
    tab.shot("batch-search")

    # The downloads.
    with page.expect_download() as results:
        page.click("text=Download results (CSV)")
    table = _csv_of(results.value)
    assert table[0][:3] == ["row_number", "member_id", "patient_dob"]
    assert [row[0] for row in table[1:]] == [str(number) for number in range(1, 9)]
    by_member = {row[1]: row for row in table[1:]}
    assert by_member["W100200306"][-2:] == ["completed", ""]
    assert by_member[NOT_COVERED][-2:] == ["failed", "failure"]
    with page.expect_download() as failed_rows:
        page.click("text=Download failed rows (CSV)")
    failed = _csv_of(failed_rows.value)
    assert failed[0] == [
        "member_id",
        "patient_dob",
        "patient_first_name",
        "patient_last_name",
        "provider_npi",
        "row_number",
        "error",
    ]
    errors = {row[-2]: row[-1] for row in failed[1:]}
    assert errors == {
        "2": "Patient date of birth must look like 1980-04-30.",
        "3": "Member ID is required.",
        "5": "The workflow ended at a failure outcome.",
    }

    # Retry: the row that failed in its run goes again (the two refused at upload would fail
    # the same way), and the batch ends again, without a reload.
    page.get_by_role("button", name="Retry failed rows").click()
    expect(page.locator(".messagelist")).to_contain_text("Sent 1 failed row back to run again.")
    expect(page.locator("[data-field=percent]")).to_have_text("100.0 %", timeout=DONE)
    expect(page.locator("[data-field=status]")).to_have_text("partially completed")

    # A viewer: the downloads, no buttons.
    viewer = console_for(org_a[UserRole.VIEWER], org_a)
    viewer.open(urlsplit(page.url).path)
    expect(viewer.page.locator("text=Download results (CSV)")).to_be_visible()
    expect(viewer.page.locator("text=Download failed rows (CSV)")).to_be_visible()
    expect(viewer.page.locator("text=Retry failed rows")).to_have_count(0)
    expect(viewer.page.locator("text=Cancel the batch")).to_have_count(0)
    expect(viewer.page.locator("nav.console-nav a", has_text="Upload")).to_have_count(0)
    viewer.shot("batch-viewer")
    viewer.page.click("nav.console-nav >> text=Batches")
    expect(viewer.page.locator("table.batch-list tbody tr")).to_have_count(1)
    expect(viewer.page.locator("table.batch-list")).to_contain_text("8/8")
    viewer.shot("batches")
