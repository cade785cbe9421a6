"""What each profile seeds, as plans: organizations, their people, portals, workflows and jobs.

- ``demo`` (what ``make run`` seeds): three organizations of fixed identity, one of each type —
  "Demo Billing Co" (the one ``seed_demo`` makes, with its logins), "St. Mary's Regional
  Medical Center" and "CredentialPro" — each with a login per role, four portals, the three
  workflows and four finished batch jobs of 50–200 rows over the last week. Who they are and
  what they use never depends on the seed, so the demo is found again on the next start
  whatever the seed; the seed decides the people's names and the rows.
- ``test-data`` (benchmarks): ``orgs`` organizations named from the seed, types in turn, each
  with a user per role (no password: nobody logs in to benchmark data), four portals, the
  three workflows and ``rows`` finished rows split into jobs of at most ``JOB_ROWS`` over the
  last 30 days.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import re
from dataclasses import dataclass

from faker import Faker

from dbadmin.seeding import vocabulary
from dbadmin.seeding.shapes import CLAIM_STATUS, ELIGIBILITY, PRIOR_AUTH, SHAPES
from rcm.lookups import OrgType, UserRole
from tenants.demo import DEMO_BILLING, DemoOrganization

JOB_ROWS = 5000  # the largest test-data job: uploads of that size are common, larger are split
DEMO_JOBS = (ELIGIBILITY.key, ELIGIBILITY.key, CLAIM_STATUS.key, PRIOR_AUTH.key)
DEMO_JOB_ROWS = (50, 200)
# Roles an organization's own people hold; sys_admin is platform staff (Demo Billing Co has
# the one demo sys_admin, as seed_demo makes it).
MEMBER_ROLES = tuple(role for role in UserRole.ordered() if role != UserRole.SYS_ADMIN)
PORTALS_PER_ORG = 4
TEST_DATA_DAYS = 30
ORG_TYPES = (OrgType.HOSPITAL, OrgType.BILLING_FIRM, OrgType.CREDENTIALER)


def stream(name: str) -> random.Random:
    """The random stream called ``name``: the same numbers on every run, for every seed."""
    return random.Random(name)  # noqa: S311 - made-up data that must be the same every time


@dataclass(frozen=True)
class UserPlan:
    role: str
    email: str
    full_name: str


@dataclass(frozen=True)
class JobPlan:
    shape: str
    rows: int
    ends_ago: dt.timedelta  # how long before the seed ran its last row ended


@dataclass(frozen=True)
class OrgPlan:
    seed: str  # this organization's own random stream: its data does not depend on the others'
    name: str
    org_type: str
    email_domain: str
    users: tuple[UserPlan, ...]
    portals: tuple[str, ...]  # channel type codes, one endpoint each
    workflows: tuple[tuple[str, str], ...]  # (shape, portal code)
    jobs: tuple[JobPlan, ...]
    # Demo organizations are found again by their logins (tenants.demo); test-data ones are new.
    demo: DemoOrganization | None = None

    @property
    def operator_email(self) -> str:
        return next(user.email for user in self.users if user.role == UserRole.OPERATOR)

    def workflow_names(self) -> list[str]:
        return [SHAPES[shape].name(vocabulary.PORTALS[code]) for shape, code in self.workflows]


# -- demo ---------------------------------------------------------------------------------------

DEMO_ORGANIZATIONS = (
    # (identity, portals, (eligibility, claim status, prior auth) portals)
    (
        DEMO_BILLING,
        ("uhc-portal", "anthem-availity", "aetna-provider", "cigna-for-hcp"),
        ("uhc-portal", "anthem-availity", "aetna-provider"),
    ),
    (
        DemoOrganization(
            "St. Mary's Regional Medical Center",
            OrgType.HOSPITAL,
            "stmarys.rcm.test",
            MEMBER_ROLES,
        ),
        ("anthem-availity", "uhc-portal", "cigna-for-hcp", "tx-medicaid-tmhp"),
        ("anthem-availity", "uhc-portal", "cigna-for-hcp"),
    ),
    (
        DemoOrganization(
            "CredentialPro", OrgType.CREDENTIALER, "credentialpro.rcm.test", MEMBER_ROLES
        ),
        ("tx-medicaid-tmhp", "humana-availity", "uhc-portal", "aetna-provider"),
        ("tx-medicaid-tmhp", "humana-availity", "uhc-portal"),
    ),
)


def plan_demo(seed: int) -> list[OrgPlan]:
    plans = []
    for index, (identity, portals, used) in enumerate(DEMO_ORGANIZATIONS):
        org_seed = f"{seed}:demo:{index}"
        rng = stream(org_seed)
        names = _people(org_seed, len(identity.roles))
        users = tuple(
            # Demo Billing Co's people keep seed_demo's names: either command may make them.
            UserPlan(role, identity.email(role), _demo_name(identity, role, name))
            for role, name in zip(identity.roles, names, strict=True)
        )
        jobs = tuple(
            JobPlan(
                shape=shape,
                rows=rng.randint(*DEMO_JOB_ROWS),
                # One job ended minutes ago (the console's "today"), the others over the week.
                ends_ago=dt.timedelta(days=day, minutes=rng.randint(5, 600)),
            )
            for day, shape in enumerate(DEMO_JOBS)
        )
        plans.append(
            OrgPlan(
                seed=org_seed,
                name=identity.name,
                org_type=identity.org_type,
                email_domain=identity.email_domain,
                users=users,
                portals=portals,
                workflows=tuple(zip(SHAPES, used, strict=True)),
                jobs=jobs,
                demo=identity,
            )
        )
    return plans


def _demo_name(identity: DemoOrganization, role: str, name: str) -> str:
    return f"Demo {role.replace('_', ' ')}" if identity is DEMO_BILLING else name


# -- test-data ----------------------------------------------------------------------------------


def plan_test_data(seed: int, *, orgs: int, rows: int) -> list[OrgPlan]:
    plans: list[OrgPlan] = []
    taken: set[str] = set()
    for index in range(orgs):
        org_seed = f"{seed}:test-data:{index}"
        rng = stream(org_seed)
        org_type = ORG_TYPES[index % len(ORG_TYPES)]
        name = _unique_name(rng, org_type, org_seed, taken)
        domain = vocabulary.email_domain(name)
        names = _people(org_seed, len(MEMBER_ROLES))
        users = tuple(
            UserPlan(role, email, full_name)
            for role, full_name, email in zip(
                MEMBER_ROLES, names, _emails(names, MEMBER_ROLES, domain), strict=True
            )
        )
        portals = tuple(rng.sample(sorted(vocabulary.PORTALS), PORTALS_PER_ORG))
        plans.append(
            OrgPlan(
                seed=org_seed,
                name=name,
                org_type=org_type,
                email_domain=domain,
                users=users,
                portals=portals,
                workflows=tuple(zip(SHAPES, rng.sample(portals, len(SHAPES)), strict=True)),
                jobs=_test_data_jobs(rng, rows),
            )
        )
    return plans


def _unique_name(rng: random.Random, org_type: str, org_seed: str, taken: set[str]) -> str:
    """A name (and so a domain) no other organization of this plan has; drawn again on a
    clash, which the random stream makes the same on every run."""
    surnames = Faker("en_US")
    surnames.seed_instance(f"{org_seed}:name")
    while True:
        name = vocabulary.organization_name(rng, org_type, surnames.last_name())
        if vocabulary.email_domain(name) not in taken:
            taken.add(vocabulary.email_domain(name))
            return name


def _test_data_jobs(rng: random.Random, rows: int) -> tuple[JobPlan, ...]:
    """``rows`` split evenly into jobs of at most JOB_ROWS (at least one per shape when there
    are rows enough), shapes in turn, their ends spread over the last TEST_DATA_DAYS days."""
    count = min(rows, max(len(SHAPES), math.ceil(rows / JOB_ROWS)))
    size, extra = divmod(rows, count)
    shapes = list(SHAPES)
    return tuple(
        JobPlan(
            shape=shapes[number % len(shapes)],
            rows=size + (1 if number < extra else 0),
            ends_ago=dt.timedelta(
                days=TEST_DATA_DAYS * (count - 1 - number) / count, minutes=rng.randint(5, 120)
            ),
        )
        for number in range(count)
    )


def _people(org_seed: str, count: int) -> list[str]:
    fake = Faker("en_US")
    fake.seed_instance(f"{org_seed}:people")
    return [f"{fake.first_name()} {fake.last_name()}" for _ in range(count)]


def _emails(names: list[str], roles: tuple[str, ...], domain: str) -> list[str]:
    """first.last@domain, with the role added where two people share a name."""
    emails, used = [], set()
    for full_name, role in zip(names, roles, strict=True):
        local = re.sub(r"[^a-z.]", "", full_name.lower().replace(" ", "."))
        if local in used:
            local = f"{local}.{role.replace('_', '-')}"
        used.add(local)
        emails.append(f"{local}@{domain}")
    return emails
