"""The ``rcm`` command, run as a user runs it (the installed console script, in a process of
its own) against the live server, with its credentials file under the test's directory."""

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from rcm.context import org_context
from tenants import services
from tests.client.conftest import echo_workflow
from tests.conftest import PASSWORD
from workflows.models import WorkflowRun
from workflows.services import runs as run_services

RCM = str(Path(sys.executable).parent / "rcm")


@pytest.fixture
def rcm(server, tmp_path):
    """``rcm(*argv, env=None)`` -> the finished process (text output); logged out at first."""
    config = tmp_path / "config" / "credentials.json"
    base_env = {name: value for name, value in os.environ.items() if not name.startswith("RCM_")}
    base_env.update(RCM_CONFIG=str(config), HOME=str(tmp_path))

    def run(*argv: str, env: dict | None = None, typed: str = "") -> subprocess.CompletedProcess:
        # A session of its own: no controlling terminal, so what it asks for (getpass too)
        # is read from ``typed`` on its standard input.
        done = subprocess.run(
            [RCM, *argv], env={**base_env, **(env or {})}, cwd=tmp_path, capture_output=True,
            input=typed.encode(), timeout=120, start_new_session=True,
        )  # fmt: skip
        # Decoded here, not with text=True, whose newline translation turns the progress
        # bar's "\r" into line breaks.
        done.stdout, done.stderr = done.stdout.decode(), done.stderr.decode()
        return done

    run.config = config
    run.server = server
    return run


def login(rcm, tenant, role: str = "operator") -> subprocess.CompletedProcess:
    done = rcm(
        "--url", rcm.server, "login", "--email", tenant[role].email,
        env={"RCM_PASSWORD": PASSWORD},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def test_login_keeps_a_refresh_token_for_its_owner_alone_and_logout_forgets_it(rcm, org_a):
    done = login(rcm, org_a)
    assert done.stdout.startswith(f"Logged in to Acme Billing ({org_a.id}) as operator")
    assert stat.S_IMODE(rcm.config.stat().st_mode) == 0o600
    assert stat.S_IMODE(rcm.config.parent.stat().st_mode) == 0o700
    stored = json.loads(rcm.config.read_text())
    assert set(stored) == {"url", "email", "org_id", "refresh"}
    assert PASSWORD not in rcm.config.read_text()

    whoami = rcm("whoami")  # no --url: the stored one
    assert whoami.returncode == 0, whoami.stderr
    assert whoami.stdout.strip() == f"Acme Billing ({org_a.id}), billing_firm; role: operator"
    # Each command ends with the newest refresh token kept: a session in use lasts.
    assert json.loads(rcm.config.read_text())["refresh"] != stored["refresh"]

    # A session that can no longer be renewed says how to get a new one.
    rcm.config.write_text(json.dumps({**stored, "refresh": "not.a.token"}))
    expired = rcm("whoami")
    assert expired.returncode == 1
    assert expired.stderr.splitlines() == [
        "rcm: error: 401 token_not_valid: The token is invalid or expired.",
        "  (run `rcm login` to log in again)",
    ]

    assert rcm("logout").stdout == "Logged out.\n" and not rcm.config.exists()
    refused = rcm("whoami")
    assert refused.returncode == 2 and "not logged in" in refused.stderr


def test_login_asks_for_what_it_is_not_given(rcm, org_a):
    done = rcm("login", "--url", rcm.server, typed=f"{org_a['viewer'].email}\n{PASSWORD}\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Email: Logged in to Acme Billing")
    assert "Password: " in done.stderr  # getpass, which echoes nothing
    assert json.loads(rcm.config.read_text())["email"] == org_a["viewer"].email


def test_a_wrong_password_is_refused_with_the_apis_code_and_nothing_kept(rcm, org_a):
    done = rcm(
        "--url", rcm.server, "login", "--email", org_a["operator"].email,
        env={"RCM_PASSWORD": "wrong"},
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == "rcm: error: 401 invalid_credentials: Invalid email or password.\n"
    assert not rcm.config.exists()


def test_an_api_key_logs_in_from_the_environment(rcm, org_a):
    with org_context(org_a.id):
        _, key = services.api_key_create(
            org_id=org_a.id, user=org_a["api_user"], name="cli", created_by=org_a["org_admin"]
        )
    done = rcm("--url", rcm.server, "login", "--api-key", env={"RCM_API_KEY": key})
    assert done.returncode == 0, done.stderr
    assert json.loads(rcm.config.read_text()) == {
        "url": rcm.server,
        "api_key": key,
        "org_id": str(org_a.id),
    }
    workflow = echo_workflow(org_a, name="Claims")
    listed = rcm("workflows", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split() == [
        "ID", "NAME", "STATUS", "LATEST_REVISION_NUM", "UPDATED_AT",
    ]  # fmt: skip
    assert listed.stdout.splitlines()[1].split()[:4] == [str(workflow.pk), "Claims", "active", "1"]


@pytest.mark.celery_worker
def test_a_batch_is_uploaded_waited_for_with_a_progress_bar_and_its_results_saved(
    celery_worker, rcm, org_a, tmp_path
):
    workflow = echo_workflow(org_a)
    (tmp_path / "patients.csv").write_text("member_id,name\nW1,Ada\nW2,Bob\n")
    login(rcm, org_a)
    upload = rcm("batch", "upload", "patients.csv", "--workflow", str(workflow.pk), "--wait")
    assert upload.returncode == 0, upload.stderr
    bar = upload.stderr.split("\r")
    assert bar[0] == "" and bar[-1].startswith(f"[{'#' * 30}] 100.0%  2/2 rows, 0 failed")
    assert bar[-1].rstrip().endswith("completed")
    shown = dict(line.split(None, 1) for line in upload.stdout.splitlines())
    assert (shown["status"], shown["total_rows"], shown["successful_rows"]) == (
        "completed",
        "2",
        "2",
    )

    saved = rcm("batch", "results", shown["id"], "-o", "results.csv")
    assert saved.returncode == 0, saved.stderr
    assert (tmp_path / "results.csv").read_bytes().decode("utf-8-sig").splitlines() == [
        "row_number,member_id,name,echo,greeting,status,error",
        "1,W1,Ada,W1,hi,completed,",
        "2,W2,Bob,W2,hi,completed,",
    ]
    shown_json = json.loads(rcm("batch", "show", shown["id"], "--json").stdout)
    assert shown_json["id"] == int(shown["id"]) and shown_json["progress"]["percent_done"] == 100


def test_runs_list_filters_by_status_as_a_table_or_json(rcm, org_a):
    workflow = echo_workflow(org_a)
    with org_context(org_a.id):
        run_ids = [
            run_services.run_start(workflow=workflow, input={"member_id": f"W{n}"}).pk
            for n in range(4)
        ]
        # Two of them end failed, as the engine would leave them.
        WorkflowRun.objects.filter(pk__in=run_ids[:2]).update(status="failed", error="portal down")
    login(rcm, org_a)
    table = rcm("runs", "list", "--status", "failed")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == [
        "ID", "WORKFLOW_ID", "STATUS", "RESULT", "CREATED_AT", "DURATION_MS", "ERROR",
    ]  # fmt: skip
    assert [row.split()[0] for row in rows] == [str(pk) for pk in reversed(run_ids[:2])]
    assert all(re.search(r" failed .* portal down$", row) for row in rows)

    listed = json.loads(rcm("runs", "list", "--status", "failed", "--json").stdout)
    assert [run["id"] for run in listed] == list(reversed(run_ids[:2]))
    assert {run["status"] for run in listed} == {"failed"}
    assert len(json.loads(rcm("runs", "list", "--json", "--limit", "3").stdout)) == 3


def test_refusals_exit_1_with_the_apis_code_and_details(rcm, org_a, org_b, tmp_path):
    workflow, workflow_b = echo_workflow(org_a), echo_workflow(org_b)
    login(rcm, org_a)
    missing = rcm("runs", "show", "999999")
    assert (missing.returncode, missing.stderr) == (1, "rcm: error: 404 not_found: Not found.\n")
    other = rcm("batch", "upload", "rows.csv", "--workflow", str(workflow_b.pk))
    assert other.returncode == 2 and "rows.csv: no such file" in other.stderr

    (tmp_path / "rows.csv").write_text("name\nAda\n")
    bad = rcm("batch", "upload", "rows.csv", "--workflow", str(workflow.pk))
    assert bad.returncode == 1
    first, *details = bad.stderr.splitlines()
    assert first.startswith("rcm: error: 400 missing_columns: ")
    assert details == ["  missing_columns: member_id", "  unmapped_columns: name"]
    elsewhere = rcm("batch", "upload", "rows.csv", "--workflow", str(workflow_b.pk))
    assert elsewhere.returncode == 1 and "404 not_found" in elsewhere.stderr


def test_usage_and_connection_errors_exit_2(rcm, org_a):
    assert rcm().returncode == 2
    assert rcm("runs", "start", "wf", "--input", "not json").returncode == 2
    unreachable = rcm("--url", "http://127.0.0.1:9", "--retries", "0", "whoami")
    assert unreachable.returncode == 2  # not logged in
    login(rcm, org_a)
    unreachable = rcm("--url", "http://127.0.0.1:9", "--retries", "0", "whoami")
    assert unreachable.returncode == 2
    assert unreachable.stderr.startswith("rcm: error: connection_error: No answer from")
