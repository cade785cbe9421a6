"""``rcm_seed --profile demo|test-data [--orgs N] [--rows N] [--seed N] [--json]``: realistic RCM
data, written through the services, the same for the same seed.

- ``demo`` — what ``make run`` seeds: three organizations (a billing firm, a hospital, a
  credentialer) with one login per role, their payer portals, the three workflows published,
  remembered pages and a week of finished batch jobs. Idempotent: an organization already
  there keeps what it has, and logins are printed only when they are created (once).
- ``test-data`` — the scale profile for benchmarks: ``--orgs`` organizations (10) with
  ``--rows`` finished rows each (20,000) and their traces, in one transaction. Refused (exit 1,
  nothing written) when an organization of the plan exists: the same seed twice, or a name
  another seed took; run it with another ``--seed`` or on a fresh database.

Exit codes as every migration command's (dbadmin/command.py): 0 seeded (or present), 1 refused
as above, 2 bad arguments or no database. ``--json`` details count the rows created per table.
See docs/migration.md, "Seeding".
"""

from __future__ import annotations

import time
from collections import Counter

from django.db import transaction

from dbadmin.command import CannotRun, MigrationCommand, Result
from dbadmin.models import MigrationRun
from dbadmin.seeding import profiles, writer
from dbadmin.seeding.profiles import OrgPlan
from rcm.errors import Conflict
from rcm.progress import ProgressBar
from tenants import selectors as tenant_selectors
from tenants.demo import (
    DEMO_BILLING,
    LOGINS_HEADER,
    demo_endpoint_ensure,
    demo_organization_ensure,
    login_lines,
)
from tenants.models import ChannelType

DEMO, TEST_DATA = "demo", "test-data"
DEFAULT_SEED = 1
DEFAULT_ORGS, DEFAULT_ROWS = 10, 20_000
MAX_ORGS = 200  # the names the plan draws from stay distinct well past it
SIZES_ARE_TEST_DATA = "--orgs and --rows size the test-data profile; the demo's size is fixed."
AT_LEAST_ONE = "{option} must be at least 1; got {value}."
TOO_MANY_ORGS = f"--orgs is at most {MAX_ORGS}; got {{value}}."
NO_CATALOGUE = "The task catalogue lacks {missing}: run `manage.py migrate` first."
ALREADY_SEEDED = (
    "Refused, nothing written: {names} already exist{s} (test data of seed {seed}?). "
    "Seed another --seed, or a fresh database."
)


class Command(MigrationCommand):
    kind = MigrationRun.Kind.SEED
    help = "Seed realistic RCM data through the services: the demo, or test data at scale."

    def add_command_arguments(self, parser) -> None:
        parser.add_argument(
            "--profile",
            required=True,
            choices=(DEMO, TEST_DATA),
            help="demo: what `make run` seeds; test-data: --orgs x --rows for benchmarks.",
        )
        parser.add_argument(
            "--orgs", type=int, help=f"test-data: organizations (default {DEFAULT_ORGS})."
        )
        parser.add_argument(
            "--rows",
            type=int,
            help=f"test-data: finished batch rows per organization (default {DEFAULT_ROWS:,}).",
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=DEFAULT_SEED,
            help=f"The same seed gives the same data (default {DEFAULT_SEED}).",
        )

    def perform(self, *, profile: str, orgs, rows, seed: int, **options) -> Result:
        started = time.monotonic()
        missing = writer.task_types_missing()
        if missing:
            raise CannotRun(NO_CATALOGUE.format(missing=", ".join(missing)))
        if profile == DEMO:
            if orgs is not None or rows is not None:
                raise CannotRun(SIZES_ARE_TEST_DATA)
            result = self._demo(seed)
        else:
            orgs = DEFAULT_ORGS if orgs is None else orgs
            rows = DEFAULT_ROWS if rows is None else rows
            for option, value in (("--orgs", orgs), ("--rows", rows)):
                if value < 1:
                    raise CannotRun(AT_LEAST_ONE.format(option=option, value=value))
            if orgs > MAX_ORGS:
                raise CannotRun(TOO_MANY_ORGS.format(value=orgs))
            result = self._test_data(seed, orgs=orgs, rows=rows)
        result.details.update(profile=profile, seed=seed)
        result.details["seconds"] = round(time.monotonic() - started, 1)
        return result

    # -- demo ----------------------------------------------------------------------------------

    def _demo(self, seed: int) -> Result:
        plans = profiles.plan_demo(seed)
        try:
            with transaction.atomic():
                channel_types_before = ChannelType.objects.count()
                channel_types = writer.channel_types_ensure(_portals(plans))
                created = Counter(channel_type=ChannelType.objects.count() - channel_types_before)
                logins, organizations = [], []
                for plan in plans:
                    summary, org_logins = self._demo_organization(plan, channel_types, created)
                    organizations.append(summary)
                    logins += org_logins
        except Conflict as exc:
            return Result(ok=False, summary=exc.message, details={"error": exc.message})
        if logins:
            self.say(LOGINS_HEADER, self.style.WARNING)
            for line in login_lines(logins):
                self.say(line)
        counts = {table: count for table, count in sorted(created.items()) if count}
        details = {"organizations": organizations, "created": counts}
        if not counts:
            return Result(ok=True, summary="Demo data present; nothing created.", details=details)
        return Result(ok=True, summary=f"Demo seeded: {_counted(counts)}.", details=details)

    def _demo_organization(self, plan: OrgPlan, channel_types, created: Counter):
        """The organization, its missing logins and (once) its content; what it created."""
        seeded = demo_organization_ensure(
            demo=plan.demo, full_names={user.role: user.full_name for user in plan.users}
        )
        org_id = seeded.org_id
        # What making the identity wrote, counted here: the content's rows are counted below.
        created["organization"] += int(seeded.org_created)
        created["app_user"] += len(seeded.logins)
        created["user_organization"] += len(seeded.logins)
        if plan.demo is DEMO_BILLING:
            created["endpoint"] += int(demo_endpoint_ensure(org_id=org_id))
        if seeded.org_created:
            self.say(f"Created the organization {plan.name!r} ({plan.org_type}).")
        content = not writer.content_present(plan, org_id)
        if content:
            before = writer.table_counts(org_id)
            writer.content_write(plan, org_id, channel_types)
            added = writer.table_counts(org_id) - before
            created.update(added)
            self.say(f"  {plan.name}: {_counted(added)}.")
        summary = {
            "name": plan.name,
            "org_type": plan.org_type,
            "email_domain": plan.email_domain,
            "created": seeded.org_created,
            "content_created": content,
        }
        return summary, seeded.logins

    # -- test-data -----------------------------------------------------------------------------

    def _test_data(self, seed: int, *, orgs: int, rows: int) -> Result:
        plans = profiles.plan_test_data(seed, orgs=orgs, rows=rows)
        present = [
            plan.name
            for plan in plans
            if tenant_selectors.email_domain_owner(email=f"seed@{plan.email_domain}")
        ]
        if present:
            return _refused(present, seed)
        self.say(f"Seeding test data (seed {seed}): {orgs} organizations x {rows:,} rows.")
        created: Counter = Counter()
        try:
            with (
                transaction.atomic(),
                ProgressBar(orgs * rows, "rows", stream=self.stderr) as bar,
            ):
                channel_types_before = ChannelType.objects.count()
                channel_types = writer.channel_types_ensure(_portals(plans))
                created["channel_type"] = ChannelType.objects.count() - channel_types_before
                for plan in plans:
                    org_id = writer.organization_create(plan)
                    writer.content_write(plan, org_id, channel_types, on_rows=bar.advance)
                    created.update(writer.table_counts(org_id))
        except Conflict as exc:
            # A name another seed's organization has (the domains were free): nothing is kept.
            return _refused(exc.details.get("name", []), seed)
        counts = {table: count for table, count in sorted(created.items()) if count}
        organizations = [
            {"name": plan.name, "org_type": plan.org_type, "email_domain": plan.email_domain}
            for plan in plans
        ]
        return Result(
            ok=True,
            summary=f"Test data seeded: {_counted(counts)}.",
            details={"organizations": organizations, "created": counts},
        )


def _portals(plans: list[OrgPlan]) -> list[str]:
    return sorted({code for plan in plans for code in plan.portals})


def _refused(names: list[str], seed: int) -> Result:
    quoted = ", ".join(repr(name) for name in names)
    message = ALREADY_SEEDED.format(names=quoted, s="s" if len(names) == 1 else "", seed=seed)
    return Result(ok=False, summary=message, details={"error": message, "present": names})


def _counted(created: Counter | dict) -> str:
    return ", ".join(f"{count:,} {table}" for table, count in sorted(created.items()) if count)
