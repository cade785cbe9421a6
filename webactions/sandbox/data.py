"""The sandbox portal's patients, claims and authorizations: made from a fixed seed, so that
every process (the portal, the tests, the demo's sample CSV) knows the same answers.

    sandbox_patient("W100000007").plan  -> the plan the eligibility page shows
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from dataclasses import dataclass, field
from decimal import Decimal

SEED = 20261205
PATIENT_COUNT = 500

FIRST_NAMES = (
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret", "Ken",
    "Radia", "Tim", "Katherine", "Dennis", "Shafi", "Leslie", "Adele", "Niklaus", "Sophie", "Linus",
)  # fmt: skip
LAST_NAMES = (
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "McCarthy",
    "Hamilton", "Thompson", "Perlman", "Berners", "Johnson", "Ritchie", "Goldwasser", "Lamport",
    "Goldberg", "Wirth", "Wilson", "Torvalds", "Okafor", "Nguyen", "Garcia", "Patel", "Kim",
)  # fmt: skip
PAYERS = (
    ("UnitedHealthcare", ("Choice Plus PPO", "Navigate HMO", "Options PPO")),
    ("Aetna", ("Open Access Managed Choice", "HMO Select", "Aetna Choice POS II")),
    ("Medicaid of Texas", ("STAR", "STAR+PLUS", "CHIP")),
)
# X12 277 claim status category codes (the ones a status page shows most).
CLAIM_CATEGORIES = {
    "A1": "Acknowledgement/Receipt - The claim has been received",
    "A2": "Acknowledgement/Acceptance into adjudication system",
    "P1": "Pending/In Process - The claim is being processed",
    "F1": "Finalized/Payment - The claim has been paid",
    "F2": "Finalized/Denial - The claim has been denied",
    "R3": "Requests for additional information/Claim/Line",
}
# CARC (with their group code) and RARC codes, with the text remittance advice prints.
CARCS = {
    "CO-45": (
        "Charge exceeds fee schedule/maximum allowable or contracted/legislated fee arrangement."
    ),
    "PR-1": "Deductible amount.",
    "PR-2": "Coinsurance amount.",
    "CO-97": (
        "The benefit for this service is included in the payment/allowance for another "
        "service/procedure that has already been adjudicated."
    ),
    "CO-16": "Claim/service lacks information or has submission/billing error(s).",
}
RARCS = {
    "N130": (
        "Consult plan benefit documents/guidelines for information about restrictions for this "
        "service."
    ),
    "M15": (
        "Separately billed services/tests have been bundled as they are considered components of "
        "the same procedure."
    ),
    "N290": "Missing/incomplete/invalid rendering provider primary identifier.",
}
SERVICES = (
    ("99213", "Office visit, established patient"),
    ("71046", "Chest X-ray, 2 views"),
    ("97110", "Therapeutic exercises"),
    ("70553", "MRI brain with and without contrast"),
    ("27447", "Total knee arthroplasty"),
)


@dataclass(frozen=True)
class Adjustment:
    code: str  # group and CARC, e.g. "CO-45"
    amount: Decimal
    rarc: str = ""

    @property
    def description(self) -> str:
        return CARCS[self.code]

    @property
    def rarc_description(self) -> str:
        return RARCS.get(self.rarc, "")


@dataclass(frozen=True)
class Claim:
    number: str
    service_date: dt.date
    procedure: str
    billed: Decimal
    paid: Decimal
    category: str  # X12 277 category code
    adjustments: tuple[Adjustment, ...] = ()

    @property
    def category_description(self) -> str:
        return CLAIM_CATEGORIES[self.category]


@dataclass(frozen=True)
class Authorization:
    number: str
    procedure: str
    service: str
    status: str  # approved | pending | denied
    start: dt.date
    end: dt.date
    units: int


@dataclass(frozen=True)
class Patient:
    member_id: str
    first_name: str
    last_name: str
    date_of_birth: dt.date
    payer: str
    plan: str
    group_number: str
    active: bool
    effective: dt.date
    term: dt.date | None
    copay_office: Decimal
    copay_specialist: Decimal
    copay_er: Decimal
    deductible: Decimal
    deductible_met: Decimal
    out_of_pocket_max: Decimal
    out_of_pocket_met: Decimal
    claims: tuple[Claim, ...] = field(default=())
    authorizations: tuple[Authorization, ...] = field(default=())

    @property
    def deductible_remaining(self) -> Decimal:
        return self.deductible - self.deductible_met

    @property
    def out_of_pocket_remaining(self) -> Decimal:
        return self.out_of_pocket_max - self.out_of_pocket_met

    # Out of network the plan pays less: twice the deductible and the out-of-pocket limit,
    # and the patient's coinsurance (derived, so that the seeded data stay as they were).
    @property
    def out_of_network_deductible(self) -> Decimal:
        return self.deductible * 2

    @property
    def out_of_network_out_of_pocket_max(self) -> Decimal:
        return self.out_of_pocket_max * 2

    @property
    def out_of_network_coinsurance(self) -> int:
        return 40 if self.active else 100


def _money(rng: random.Random, low: int, high: int, step: int = 5) -> Decimal:
    return Decimal(rng.randrange(low, high + 1, step)).quantize(Decimal("0.01"))


def _patient(rng: random.Random, number: int) -> Patient:
    payer, plans = rng.choice(PAYERS)
    active = rng.random() >= 0.12
    effective = dt.date(2024 + rng.randrange(2), rng.randrange(1, 13), 1)
    deductible = _money(rng, 500, 3000, 250)
    out_of_pocket_max = deductible + _money(rng, 2000, 6000, 500)
    deductible_met = min(deductible, _money(rng, 0, int(deductible), 25))
    patient_claims = tuple(_claim(rng, number, index) for index in range(rng.randrange(4)))
    authorizations = tuple(
        _authorization(rng, number, index) for index in range(rng.choice((0, 0, 1, 2)))
    )
    return Patient(
        member_id=f"W{100000000 + number * 7919 % 900000000:09d}",
        first_name=rng.choice(FIRST_NAMES),
        last_name=rng.choice(LAST_NAMES),
        date_of_birth=dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(0, 29000)),
        payer=payer,
        plan=rng.choice(plans),
        group_number=f"{rng.randrange(100000, 999999)}-{rng.randrange(10, 99)}",
        active=active,
        effective=effective,
        term=None if active else dt.date(2026, rng.randrange(1, 11), 28),
        copay_office=_money(rng, 15, 45),
        copay_specialist=_money(rng, 40, 90),
        copay_er=_money(rng, 150, 500, 50),
        deductible=deductible,
        deductible_met=deductible_met,
        out_of_pocket_max=out_of_pocket_max,
        out_of_pocket_met=deductible_met + _money(rng, 0, 800, 20),
        claims=patient_claims,
        authorizations=authorizations,
    )


def _claim(rng: random.Random, number: int, index: int) -> Claim:
    procedure = rng.choice(SERVICES)[0]
    billed = _money(rng, 120, 4000)
    category = rng.choice(tuple(CLAIM_CATEGORIES))
    adjustments: tuple[Adjustment, ...] = ()
    paid = Decimal("0.00")
    if category == "F1":
        contractual = (billed * Decimal("0.3")).quantize(Decimal("0.01"))
        patient_share = (billed * Decimal("0.1")).quantize(Decimal("0.01"))
        # A member's first claim of the year goes to the deductible (PR-1), later ones to
        # coinsurance (PR-2): both shapes of patient responsibility a remittance shows.
        share_code = "PR-1" if index == 0 else "PR-2"
        adjustments = (Adjustment("CO-45", contractual), Adjustment(share_code, patient_share))
        paid = billed - contractual - patient_share
    elif category == "F2":
        code, rarc = rng.choice((("CO-97", "M15"), ("CO-16", "N290"), ("CO-97", "N130")))
        adjustments = (Adjustment(code, billed, rarc),)
    return Claim(
        number=f"C{number:04d}{index:02d}{rng.randrange(1000, 9999)}",
        service_date=dt.date(2026, rng.randrange(1, 12), rng.randrange(1, 28)),
        procedure=procedure,
        billed=billed,
        paid=paid,
        category=category,
        adjustments=adjustments,
    )


def _authorization(rng: random.Random, number: int, index: int) -> Authorization:
    procedure, service = rng.choice(SERVICES)
    start = dt.date(2026, rng.randrange(1, 12), rng.randrange(1, 28))
    return Authorization(
        number=f"PA{number:04d}{index}{rng.randrange(100, 999)}",
        procedure=procedure,
        service=service,
        status=rng.choice(("approved", "approved", "pending", "denied")),
        start=start,
        end=start + dt.timedelta(days=rng.choice((30, 60, 90))),
        units=rng.randrange(1, 13),
    )


@functools.cache
def sandbox_patients() -> tuple[Patient, ...]:
    rng = random.Random(SEED)  # noqa: S311 - made-up data that must be the same every time
    return tuple(_patient(rng, number) for number in range(1, PATIENT_COUNT + 1))


@functools.cache
def _by_member_id() -> dict[str, Patient]:
    return {patient.member_id: patient for patient in sandbox_patients()}


def sandbox_patient(member_id: str) -> Patient | None:
    return _by_member_id().get(member_id.strip().upper())


def patient_search(*, member_id: str, date_of_birth: dt.date, last_name: str) -> Patient | None:
    """The patient all three identify, as a portal's search demands (any mismatch: none)."""
    patient = sandbox_patient(member_id)
    if (
        patient is None
        or patient.date_of_birth != date_of_birth
        or patient.last_name.lower() != last_name.strip().lower()
    ):
        return None
    return patient
