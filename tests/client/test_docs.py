"""The guide and the examples, run as written against the live server: every ```python block
of docs/client.md in order (with the real worker, so its waits wait), every `rcm` command it
shows parsed by the command line, and docs/examples/multi_tenant.py as a user runs it."""

import os
import re
import shlex
import subprocess
import sys

import pytest
from django.conf import settings
from rcm_client.cli import build_parser

from rcm.context import org_context
from tenants import services
from tests.client.conftest import echo_workflow
from tests.conftest import PASSWORD, invite_and_accept
from workflows.models import BatchJob

GUIDE = settings.BASE_DIR / "docs" / "client.md"
EXAMPLE = settings.BASE_DIR / "docs" / "examples" / "multi_tenant.py"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
WORKFLOW = "Eligibility & benefits"


def blocks(language: str) -> list[tuple[int, str]]:
    """(line of the block's first line of code, code) of every block in ``language``."""
    text = GUIDE.read_text()
    return [
        (text.count("\n", 0, match.start(2)) + 1, match.group(2))
        for match in FENCE.finditer(text)
        if match.group(1) == language
    ]


@pytest.mark.celery_worker
def test_every_python_block_of_the_guide_runs(
    celery_worker, server, org_a, org_b, tmp_path, monkeypatch
):
    echo_workflow(org_a, name=WORKFLOW)
    invite_and_accept(org_b, org_a["operator"], "viewer")
    with org_context(org_a.id):
        _, key = services.api_key_create(
            org_id=org_a.id, user=org_a["api_user"], name="docs", created_by=org_a["org_admin"]
        )
    [(_, patients)] = blocks("csv")
    (tmp_path / "patients.csv").write_text(patients)
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "RCM_URL": server,
        "RCM_EMAIL": org_a["operator"].email,
        "RCM_PASSWORD": PASSWORD,
        "RCM_API_KEY": key,
        "RCM_OTHER_ORG": str(org_b.id),
    }.items():
        monkeypatch.setenv(name, value)

    namespace: dict = {"__name__": "docs_client_md"}
    python = blocks("python")
    assert len(python) >= 15
    for line, code in python:
        # Padded to its place in the file: a failure's traceback names the guide's own line.
        exec(compile("\n" * (line - 1) + code, str(GUIDE), "exec"), namespace)

    # What the blocks say they did, they did.
    assert namespace["run"].status == "completed"
    assert (namespace["job"].status, namespace["job"].successful_rows) == ("completed", 3)
    assert (tmp_path / "results.csv").read_bytes().startswith("\ufeff".encode())
    assert namespace["later"].id != namespace["job"].id
    assert namespace["again"].id == namespace["first"].id


def test_every_rcm_command_the_guide_shows_is_one_the_command_line_takes():
    commands = []
    for _, code in blocks("sh"):
        for line in code.splitlines():
            argv = shlex.split(line.split("  #")[0])
            while argv and re.fullmatch(r"[A-Z_]+=.*", argv[0]):
                argv.pop(0)  # an environment assignment before the command
            if argv and argv[0] == "rcm":
                commands.append(argv[1:])
    assert len(commands) >= 15
    parser = build_parser()
    for argv in commands:
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"rcm does not take: {shlex.join(argv)}")


def test_the_two_organization_walk_through_shows_each_only_its_own(server, org_a, org_b):
    for tenant in (org_a, org_b):
        echo_workflow(tenant, name=WORKFLOW)
    env = {name: value for name, value in os.environ.items() if not name.startswith("RCM_")}
    env.update(
        RCM_URL=server,
        RCM_A_EMAIL=org_a["operator"].email,
        RCM_A_PASSWORD=PASSWORD,
        RCM_B_EMAIL=org_b["operator"].email,
        RCM_B_PASSWORD=PASSWORD,
    )
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    jobs = {}
    for tenant, label in ((org_a, "A"), (org_b, "B")):
        with org_context(tenant.id):
            [jobs[label]] = BatchJob.objects.values_list("pk", flat=True)
    assert done.stdout.splitlines() == [
        f"A: Acme Billing uploaded batch {jobs['A']} (2 rows)",
        f"B: Bayside Hospital uploaded batch {jobs['B']} (2 rows)",
        f"A: lists its batch {jobs['A']}: True; lists the other's {jobs['B']}: False",
        f"A: batch {jobs['B']}: 404 not_found",
        f"B: lists its batch {jobs['B']}: True; lists the other's {jobs['A']}: False",
        f"B: batch {jobs['A']}: 404 not_found",
    ]
