"""The three workflows the seed publishes, and how one row travels through each.

Every shape is entry → log in → find the patient or claim → the work (eligibility ‖ benefits in
parallel and a merge; the claim's status; a prior-authorization request, a wait and its status)
→ a decision → outcomes. Web nodes use the organization's endpoint and its credential; their
configs are the web kind's own, so publishing checks them like any operator's.

A row's walk (``Walk``) is decided here: the outcome (mostly success, else the failures
portals really give, in the proportions below) and the nodes it went through. rows.py turns
the walk into times and traces.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from dbadmin.seeding import vocabulary
from dbadmin.seeding.vocabulary import Portal
from rcm.lookups import TaskAction, TaskDomain


def _fill(label: str, path: str) -> dict:
    return {"tool": "fill", "target": {"label": label}, "value": f"{{{{ {path} }}}}"}


def _click(role: str, name: str) -> dict:
    return {"tool": "click", "target": {"role": role, "name": name}}


def _extract(**labels: str) -> dict:
    """Read the values labelled so into the outputs named so."""
    return {"tool": "extract", "fields": {name: {"label": label} for name, label in labels.items()}}


LOGIN_ACTIONS = (
    {"tool": "goto", "url": "login"},
    _fill("Username", "credential.username"),
    _fill("Password", "credential.password"),
    _click("button", "Sign in"),
)
# The task catalogue's patient fields (workflows migration 0004), which every row carries.
PATIENT_FIELDS = (
    "member_id",
    "patient_first_name",
    "patient_last_name",
    "patient_dob",
    "provider_npi",
)
RETRY = {"maximum_attempts": 3, "initial_interval_s": 5, "backoff_coefficient": 2.0}
SUCCESS, FAILURE = "success", "failure"


@dataclass(frozen=True)
class WebStep:
    """A web node: its actions, and the one of them the seed traces and remembers (the page it
    acts on, as the agent stored it, and the element it found there)."""

    node: str
    actions: tuple[dict, ...]
    traced: int  # the traced action's number, 1-based as the agent counts
    path: str
    title: str
    element: dict  # the remembered element: css, kind, name
    duration_ms: tuple[int, int]  # a tier-1 attempt, from the memory to the page's answer
    fields: tuple[str, ...] = ()
    buttons: tuple[str, ...] = ()
    table: tuple[tuple[str, str], ...] = ()
    outcomes: dict[str, str] = field(default_factory=dict)

    @property
    def action(self) -> dict:
        return self.actions[self.traced - 1]

    @property
    def target(self) -> dict:
        """The traced action's target; an extraction's is its first field's label."""
        return self.action.get("target") or next(iter(self.action["fields"].values()))

    def page(self, portal: Portal) -> str:
        return vocabulary.page(
            portal, self.title, fields=self.fields, buttons=self.buttons, table=self.table
        )


@dataclass(frozen=True)
class OtherStep:
    """A node that is not a web node: its kind, config and how long it takes."""

    node: str
    node_type: str
    kind: str
    config: dict
    duration_ms: tuple[int, int]
    trigger_rule: str = ""


@dataclass(frozen=True)
class Failure:
    """A way a row fails: a business answer (an outcome node) or a system failure at a node
    after its retries. ``message`` may name {date}, a coverage end the seed picks."""

    weight: int
    node: str  # where the walk stops
    message: str
    outcome: str = ""  # the failure outcome reached; "" for a system failure


@dataclass
class Walk:
    """Where a row went and how it ended."""

    status: str  # completed | failed
    nodes: list[str]  # the nodes that ran, in order (parallel branches one after the other)
    output: dict | None = None
    error: str = ""
    failed_node: str = ""  # a system failure's node: its last attempt failed
    attempts: int = 1


@dataclass(frozen=True)
class Shape:
    key: str
    title: str
    description: str
    task_type: str  # domain/action
    required_data: tuple[str, ...]
    steps: tuple[WebStep | OtherStep, ...]  # in the order a row takes them
    transitions: tuple[tuple[str, str, str], ...]
    outcomes: dict[str, str]  # outcome node -> success | failure
    failures: tuple[Failure, ...]
    row: Callable[[random.Random, Portal, tuple[str, str]], dict]
    answer: Callable[[random.Random, Portal, dict], dict]  # a success's output

    def name(self, portal: Portal) -> str:
        return f"{self.title} ({portal.endpoint_name})"

    def web_steps(self) -> list[WebStep]:
        return [step for step in self.steps if isinstance(step, WebStep)]

    def nodes(self, *, endpoint_id: int, credential_id: int) -> list[dict]:
        """The graph's nodes as the authoring services take them."""
        found: list[dict] = [{"key": "start", "node_type": "entry"}]
        for step in self.steps:
            if isinstance(step, WebStep):
                config = {
                    "endpoint": endpoint_id,
                    "credential": credential_id,
                    "actions": list(step.actions),
                }
                if step.outcomes:
                    config["outcomes"] = step.outcomes
                found.append(
                    {
                        "key": step.node,
                        "node_type": "general",
                        "kind": "web",
                        "config": config,
                        "timeout_s": 120,
                        "retry_policy": RETRY,
                    }
                )
            else:
                node = {
                    "key": step.node,
                    "node_type": step.node_type,
                    "kind": step.kind,
                    "config": step.config,
                }
                if step.trigger_rule:
                    node["trigger_rule"] = step.trigger_rule
                found.append(node)
        found += [
            {"key": key, "node_type": "outcome", "config": {"result": result}}
            for key, result in self.outcomes.items()
        ]
        return found

    def edges(self) -> list[dict]:
        return [{"from": a, "to": b, "label": label} for a, b, label in self.transitions]

    def walk(self, rng: random.Random, portal: Portal, row: dict, success_rate: float) -> Walk:
        """How ``row`` went: a success ``success_rate`` of the time, else one of the failures
        by weight. Nodes after the one a failure stopped at did not run."""
        order = [step.node for step in self.steps]
        if rng.random() < success_rate:
            return Walk(status="completed", nodes=order, output=self.answer(rng, portal, row))
        failure = rng.choices(self.failures, weights=[f.weight for f in self.failures])[0]
        ran = order[: order.index(failure.node) + 1]
        message = failure.message.format(date=_coverage_end(rng))
        if failure.outcome:
            # A business answer: the node ended with its label and the run took the outcome.
            return Walk(status="failed", nodes=ran, error=message)
        return Walk(
            status="failed",
            nodes=ran,
            error=f"{failure.node}: {message}",
            failed_node=failure.node,
            attempts=RETRY["maximum_attempts"],
        )


LOGIN = WebStep(
    node="login",
    actions=LOGIN_ACTIONS,
    traced=4,
    path="login",
    title="Sign in",
    element={"css": "#sign-in", "kind": "button", "name": "Sign in"},
    duration_ms=(1200, 3500),
    fields=("Username", "Password"),
    buttons=("Sign in",),
)


def _decision(node: str, conditions: list[tuple[str, str]], default: str) -> OtherStep:
    """A decision node: the label of the first condition that holds, else ``default``."""
    config = {
        "conditions": [{"when": when, "label": label} for when, label in conditions],
        "default": default,
    }
    return OtherStep(node, "decision", "decision", config, duration_ms=(1, 8))


def _coverage_end(rng: random.Random) -> str:
    """A coverage end date in 2025-2026, as a portal prints it."""
    return (dt.date(2025, 1, 31) + dt.timedelta(days=30 * rng.randrange(24))).isoformat()


def _person_row(rng: random.Random, portal: Portal, person: tuple[str, str]) -> dict:
    first, last = person
    born = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(365 * 62))
    return {
        "member_id": vocabulary.member_id(rng, portal.member_id),
        "patient_first_name": first,
        "patient_last_name": last,
        "patient_dob": born.isoformat(),
        "provider_npi": vocabulary.npi(rng),
    }


def _service_date(rng: random.Random) -> str:
    return (dt.date(2026, 1, 5) + dt.timedelta(days=rng.randrange(150))).isoformat()


# -- eligibility and benefits ------------------------------------------------------------------


def _eligibility_row(rng: random.Random, portal: Portal, person: tuple[str, str]) -> dict:
    return {**_person_row(rng, portal, person), "service_date": _service_date(rng)}


def _eligibility_answer(rng: random.Random, portal: Portal, row: dict) -> dict:
    return {
        "coverage_status": "Active",
        "plan_name": rng.choice(portal.plans),
        "group_number": f"{rng.randrange(100000, 999999)}",
        "copay": rng.choice((0, 15, 20, 25, 30, 40, 50)),
        "deductible_remaining": round(rng.choice((0, 250, 500, 1000, 1500, 3000)) * rng.random()),
    }


ELIGIBILITY = Shape(
    key="eligibility",
    title="Eligibility and benefits",
    description="Logs in, finds the member, reads eligibility and benefits side by side.",
    task_type=f"{TaskDomain.ELIGIBILITY}/{TaskAction.CHECK}",
    required_data=(*PATIENT_FIELDS, "service_date"),
    steps=(
        LOGIN,
        WebStep(
            node="search_patient",
            actions=(
                {"tool": "goto", "url": "eligibility/search"},
                _fill("Member ID", "input.member_id"),
                _fill("Date of birth", "input.patient_dob"),
                _fill("Last name", "input.patient_last_name"),
                _fill("Date of service", "input.service_date"),
                _click("button", "Search"),
            ),
            traced=2,
            path="eligibility/search",
            title="Eligibility and benefits inquiry",
            element={"css": "#member-id", "kind": "textbox", "name": "Member ID"},
            duration_ms=(2500, 6000),
            fields=("Member ID", "Date of birth", "Last name", "Date of service"),
            buttons=("Search",),
            outcomes={"not_found": "No matching member found"},
        ),
        WebStep(
            node="check_eligibility",
            actions=(
                _click("tab", "Eligibility"),
                _extract(
                    coverage_status="Coverage status", plan_name="Plan", group_number="Group number"
                ),
            ),
            traced=1,
            path="eligibility/results",
            title="Eligibility",
            element={"css": "#tab-eligibility", "kind": "tab", "name": "Eligibility"},
            duration_ms=(800, 2200),
            table=(("Coverage status", "Active"), ("Plan", "PPO"), ("Group number", "—")),
        ),
        WebStep(
            node="check_benefits",
            actions=(
                _click("tab", "Benefits"),
                _extract(copay="Office visit copay", deductible_remaining="Deductible remaining"),
            ),
            traced=1,
            path="eligibility/benefits",
            title="Benefits",
            element={"css": "#tab-benefits", "kind": "tab", "name": "Benefits"},
            duration_ms=(900, 2500),
            table=(("Office visit copay", "$25.00"), ("Deductible remaining", "$500.00")),
        ),
        OtherStep(
            node="merge",
            node_type="general",
            kind="transform",
            config={
                "outputs": {
                    "coverage_status": "{{ nodes.check_eligibility.output.coverage_status }}",
                    "plan_name": "{{ nodes.check_eligibility.output.plan_name }}",
                    "copay": "{{ nodes.check_benefits.output.copay }}",
                    "deductible_remaining": (
                        "{{ nodes.check_benefits.output.deductible_remaining }}"
                    ),
                }
            },
            duration_ms=(3, 25),
            trigger_rule="all_success",
        ),
        _decision(
            "coverage", [("nodes.merge.output.coverage_status == 'Active'", "active")], "inactive"
        ),
    ),
    transitions=(
        ("start", "login", "success"),
        ("login", "search_patient", "success"),
        ("search_patient", "check_eligibility", "success"),
        ("search_patient", "check_benefits", "success"),
        ("search_patient", "member_not_found", "not_found"),
        ("check_eligibility", "merge", "success"),
        ("check_benefits", "merge", "success"),
        ("merge", "coverage", "success"),
        ("coverage", "eligible", "active"),
        ("coverage", "coverage_inactive", "inactive"),
    ),
    outcomes={"eligible": SUCCESS, "coverage_inactive": FAILURE, "member_not_found": FAILURE},
    failures=(
        Failure(40, "search_patient", "Member not found", outcome="member_not_found"),
        Failure(25, "coverage", "Coverage terminated {date}", outcome="coverage_inactive"),
        Failure(15, "search_patient", "Payer portal timeout: no answer within 60 s"),
        Failure(10, "check_benefits", "Portal returned HTTP 503 Service Unavailable"),
        Failure(5, "login", "Portal login failed: password expired"),
        Failure(5, "check_eligibility", "Payer portal timeout: no answer within 60 s"),
    ),
    row=_eligibility_row,
    answer=_eligibility_answer,
)


# -- claim status -------------------------------------------------------------------------------


def _claim_row(rng: random.Random, portal: Portal, person: tuple[str, str]) -> dict:
    row = _person_row(rng, portal, person)
    return {
        "member_id": row["member_id"],
        "patient_dob": row["patient_dob"],
        "provider_npi": row["provider_npi"],
        "claim_number": f"{rng.choice('ABCDEFGHJKMNPRSTX')}{rng.randrange(10**9, 10**10)}",
        "service_date": _service_date(rng),
        "billed_amount": round(rng.uniform(85, 2400), 2),
    }


def _claim_answer(rng: random.Random, portal: Portal, row: dict) -> dict:
    billed = row["billed_amount"]
    roll = rng.random()
    if roll < 0.7:
        adjustments = rng.choice(vocabulary.PAID_ADJUSTMENTS)
        return {
            "claim_status": "Paid",
            "paid_amount": round(billed * rng.uniform(0.35, 0.8), 2),
            "carc_codes": list(adjustments),
            "rarc_codes": [],
        }
    if roll < 0.88:
        carc, rarc, _ = rng.choice(vocabulary.DENIALS)
        return {
            "claim_status": "Denied",
            "paid_amount": 0.0,
            "carc_codes": [carc],
            "rarc_codes": [rarc],
        }
    return {
        "claim_status": "Pending",
        "paid_amount": 0.0,
        "carc_codes": [],
        "rarc_codes": [],
    }


CLAIM_STATUS = Shape(
    key="claim_status",
    title="Claim status",
    description="Logs in, finds the claim, reads its status with the CARC/RARC codes.",
    task_type=f"{TaskDomain.CLAIM}/{TaskAction.CHECK_STATUS}",
    required_data=(
        "member_id",
        "patient_dob",
        "provider_npi",
        "claim_number",
        "service_date",
        "billed_amount",
    ),
    steps=(
        LOGIN,
        WebStep(
            node="search_claim",
            actions=(
                {"tool": "goto", "url": "claims/search"},
                _fill("Claim number", "input.claim_number"),
                _fill("Member ID", "input.member_id"),
                _fill("Date of service", "input.service_date"),
                _click("button", "Search claims"),
            ),
            traced=2,
            path="claims/search",
            title="Claim status inquiry",
            element={"css": "#claim-number", "kind": "textbox", "name": "Claim number"},
            duration_ms=(2000, 5500),
            fields=("Claim number", "Member ID", "Date of service"),
            buttons=("Search claims",),
            outcomes={"not_found": "No claims match your search"},
        ),
        WebStep(
            node="read_status",
            actions=(
                _extract(
                    claim_status="Claim status",
                    paid_amount="Paid amount",
                    carc_codes="Adjustment reason codes",
                    rarc_codes="Remark codes",
                ),
            ),
            traced=1,
            path="claims/detail",
            title="Claim detail",
            element={"css": "#claim-summary", "kind": "table", "name": "Claim summary"},
            duration_ms=(900, 2400),
            table=(
                ("Claim status", "Paid"),
                ("Paid amount", "$0.00"),
                ("Adjustment reason codes", "CO-45"),
                ("Remark codes", "—"),
            ),
        ),
        _decision(
            "route",
            [
                ("nodes.read_status.output.claim_status == 'Paid'", "paid"),
                ("nodes.read_status.output.claim_status == 'Denied'", "denied"),
            ],
            "pending",
        ),
    ),
    transitions=(
        ("start", "login", "success"),
        ("login", "search_claim", "success"),
        ("search_claim", "read_status", "success"),
        ("search_claim", "claim_not_found", "not_found"),
        ("read_status", "route", "success"),
        ("route", "claim_paid", "paid"),
        ("route", "claim_denied", "denied"),
        ("route", "claim_pending", "pending"),
    ),
    outcomes={
        "claim_paid": SUCCESS,
        "claim_denied": SUCCESS,
        "claim_pending": SUCCESS,
        "claim_not_found": FAILURE,
    },
    failures=(
        Failure(45, "search_claim", "Claim not found", outcome="claim_not_found"),
        Failure(20, "search_claim", "Payer portal timeout: no answer within 60 s"),
        Failure(15, "read_status", "Portal returned HTTP 503 Service Unavailable"),
        Failure(10, "search_claim", "Claim number format rejected by the portal"),
        Failure(10, "login", "Session expired and the log-in page did not load"),
    ),
    row=_claim_row,
    answer=_claim_answer,
)


# -- prior authorization ------------------------------------------------------------------------


def _prior_auth_row(rng: random.Random, portal: Portal, person: tuple[str, str]) -> dict:
    code, _, diagnosis = rng.choice(vocabulary.PRIOR_AUTH_SERVICES)
    start = dt.date(2026, 2, 2) + dt.timedelta(days=rng.randrange(120))
    return {
        **_person_row(rng, portal, person),
        "procedure_codes": [code],
        "diagnosis_codes": [diagnosis],
        "service_start_date": start.isoformat(),
        "units": rng.choice((1, 1, 1, 6, 12)),
    }


def _prior_auth_answer(rng: random.Random, portal: Portal, row: dict) -> dict:
    number = f"A{rng.randrange(10**8, 10**9)}"
    if rng.random() < 0.75:
        return {
            "auth_number": number,
            "auth_status": "Approved",
            "approved_units": row["units"],
        }
    return {"auth_number": number, "auth_status": "Pended", "approved_units": 0}


PRIOR_AUTH = Shape(
    key="prior_auth",
    title="Prior authorization",
    description="Logs in, finds the member, submits the request, waits, reads its status.",
    task_type=f"{TaskDomain.PRIOR_AUTH}/{TaskAction.SUBMIT}",
    required_data=(
        *PATIENT_FIELDS,
        "procedure_codes",
        "diagnosis_codes",
        "service_start_date",
        "units",
    ),
    steps=(
        LOGIN,
        WebStep(
            node="search_patient",
            actions=(
                {"tool": "goto", "url": "authorizations/patient"},
                _fill("Member ID", "input.member_id"),
                _fill("Date of birth", "input.patient_dob"),
                _click("button", "Find patient"),
            ),
            traced=2,
            path="authorizations/patient",
            title="Authorization request: patient",
            element={"css": "#member-id", "kind": "textbox", "name": "Member ID"},
            duration_ms=(2000, 5000),
            fields=("Member ID", "Date of birth"),
            buttons=("Find patient",),
            outcomes={"not_found": "Patient not found"},
        ),
        WebStep(
            node="submit_request",
            actions=(
                _fill("Procedure code", "input.procedure_codes[0]"),
                _fill("Diagnosis code", "input.diagnosis_codes[0]"),
                _fill("Service start date", "input.service_start_date"),
                _fill("Units", "input.units"),
                _click("button", "Submit request"),
                _extract(auth_number="Reference number"),
            ),
            traced=5,
            path="authorizations/new",
            title="New authorization request",
            element={"css": "#submit-request", "kind": "button", "name": "Submit request"},
            duration_ms=(3000, 8000),
            fields=("Procedure code", "Diagnosis code", "Service start date", "Units"),
            buttons=("Submit request",),
            outcomes={"rejected": "Request could not be submitted"},
        ),
        # Payers answer within hours: the run waits without holding a worker.
        OtherStep(
            node="status_wait",
            node_type="general",
            kind="wait",
            config={"seconds": 7200},
            duration_ms=(7_200_000, 7_200_400),
        ),
        WebStep(
            node="check_status",
            actions=(
                {"tool": "goto", "url": "authorizations/status"},
                _fill("Reference number", "nodes.submit_request.output.auth_number"),
                _click("button", "Check status"),
                _extract(auth_status="Status", approved_units="Approved units"),
            ),
            traced=2,
            path="authorizations/status",
            title="Authorization status",
            element={"css": "#reference-number", "kind": "textbox", "name": "Reference number"},
            duration_ms=(1500, 4000),
            fields=("Reference number",),
            buttons=("Check status",),
            table=(("Status", "Approved"), ("Approved units", "1")),
        ),
        _decision(
            "decide",
            [
                ("nodes.check_status.output.auth_status == 'Approved'", "approved"),
                ("nodes.check_status.output.auth_status == 'Denied'", "denied"),
            ],
            "pended",
        ),
    ),
    transitions=(
        ("start", "login", "success"),
        ("login", "search_patient", "success"),
        ("search_patient", "submit_request", "success"),
        ("search_patient", "member_not_found", "not_found"),
        ("submit_request", "status_wait", "success"),
        ("submit_request", "request_rejected", "rejected"),
        ("status_wait", "check_status", "success"),
        ("check_status", "decide", "success"),
        ("decide", "auth_approved", "approved"),
        ("decide", "auth_pended", "pended"),
        ("decide", "auth_denied", "denied"),
    ),
    outcomes={
        "auth_approved": SUCCESS,
        "auth_pended": SUCCESS,
        "auth_denied": FAILURE,
        "request_rejected": FAILURE,
        "member_not_found": FAILURE,
    },
    failures=(
        Failure(25, "search_patient", "Member not found", outcome="member_not_found"),
        Failure(
            30,
            "submit_request",
            "Request rejected: clinical documentation required",
            outcome="request_rejected",
        ),
        Failure(
            25, "decide", "Authorization denied: not medically necessary", outcome="auth_denied"
        ),
        Failure(20, "submit_request", "Payer portal timeout: no answer within 60 s"),
    ),
    row=_prior_auth_row,
    answer=_prior_auth_answer,
)

SHAPES = {shape.key: shape for shape in (ELIGIBILITY, CLAIM_STATUS, PRIOR_AUTH)}
