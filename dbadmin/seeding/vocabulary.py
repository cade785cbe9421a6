"""The words of revenue-cycle work the seed draws from: payer portals and their plans,
organization names, member IDs, NPIs, CPT and ICD-10 codes, CARC/RARC, and the pages portals
show. Codes are real ones, used as billers use them; names of organizations are invented."""

from __future__ import annotations

import html
import random
import re
from dataclasses import dataclass

from rcm.lookups import OrgType


@dataclass(frozen=True)
class Portal:
    """A payer portal: its channel type (code, name, address) and what its answers hold."""

    code: str
    name: str  # the channel type's name
    endpoint_name: str  # what an organization calls its endpoint on it
    base_url: str
    payer: str
    plans: tuple[str, ...]
    member_id: str  # the member-ID layout: L = a letter, 9 = a digit, others as written


PORTALS = {
    portal.code: portal
    for portal in (
        # The first three exist already (tenants migration 0002); the seed reuses them.
        Portal(
            "anthem-availity",
            "Anthem via Availity",
            "Availity (Anthem)",
            "https://apps.availity.com",
            "Anthem Blue Cross",
            ("Blue Access PPO", "Pathway X HMO", "Blue Priority EPO"),
            "LLL999999999",
        ),
        Portal(
            "uhc-portal",
            "UnitedHealthcare Provider Portal",
            "UHC Provider Portal",
            "https://www.uhcprovider.com",
            "UnitedHealthcare",
            ("Choice Plus PPO", "Navigate HMO", "AARP Medicare Advantage"),
            "999999999",
        ),
        Portal(
            "aetna-provider",
            "Aetna Provider Portal",
            "Aetna Provider Portal",
            "https://www.aetna.com/health-care-professionals",
            "Aetna",
            ("Open Access Managed Choice", "Aetna Medicare Advantage PPO", "Aetna Select"),
            "W999999999",
        ),
        Portal(
            "cigna-for-hcp",
            "Cigna for Health Care Professionals",
            "Cigna for HCP",
            "https://cignaforhcp.cigna.com",
            "Cigna",
            ("Open Access Plus", "LocalPlus", "Connect HMO"),
            "U99999999",
        ),
        Portal(
            "humana-availity",
            "Humana via Availity",
            "Availity (Humana)",
            "https://apps.availity.com",
            "Humana",
            ("Humana Gold Plus HMO", "Humana Choice PPO", "Humana Honor PPO"),
            "H99999999",
        ),
        Portal(
            "tx-medicaid-tmhp",
            "Texas Medicaid & Healthcare Partnership (TMHP)",
            "TMHP (Texas Medicaid)",
            "https://www.tmhp.com",
            "Texas Medicaid",
            ("STAR", "STAR+PLUS", "CHIP"),
            "999999999",
        ),
    )
}

# Towns a hospital may be named for (real places, invented hospitals).
TOWNS = (
    "Riverside", "Fairview", "Lakewood", "Springfield", "Cedar Rapids", "Brookhaven", "Oakridge",
    "Maple Grove", "Pine Bluff", "Clearwater", "Bridgeport", "Greenville", "Franklin",
    "Georgetown", "Salem", "Madison", "Clinton", "Ashland", "Burlington", "Dover", "Hudson",
    "Kingston", "Lexington", "Marion", "Milton", "Newport", "Oxford", "Plymouth", "Princeton",
    "Richmond", "Shelby", "Troy", "Winchester", "Auburn", "Bristol", "Camden", "Chester",
    "Dayton", "Easton", "Florence", "Glendale", "Hamilton", "Jackson", "Lancaster", "Monroe",
    "Norwood", "Quincy", "Rockport", "Sterling", "Trenton", "Vernon", "Waverly", "Yorktown",
    "Boulder Creek", "Silver Lake", "Eagle Pass", "Mesa Verde", "Twin Falls", "Red Oak",
    "Bay City", "Grand Haven", "Cold Spring", "Sandy Hook", "Walnut Creek", "Elk Grove",
)  # fmt: skip
SAINTS = ("St. Mary's", "St. Joseph's", "St. Luke's", "Mercy", "Good Samaritan", "Providence")
HOSPITAL_KINDS = (
    "Regional Medical Center", "Community Hospital", "Memorial Hospital", "General Hospital",
    "Medical Center", "Health System",
)  # fmt: skip
FIRM_WORDS = (
    "Summit", "Keystone", "Pinnacle", "Harbor", "Meridian", "Cascade", "Blue Ridge", "Lakeshore",
    "Redwood", "Granite", "Beacon", "Northstar", "Evergreen", "Sterling", "Liberty", "Heritage",
    "Crestview", "Ironwood", "Bayview", "Silverline", "Trident", "Clearpath", "Cornerstone",
)  # fmt: skip
BILLING_KINDS = (
    "Billing Partners", "Revenue Cycle Solutions", "Medical Billing", "Claims Management",
    "Healthcare Billing Group",
)  # fmt: skip
CREDENTIALING_KINDS = ("Credentialing Services", "Provider Enrollment", "Credentialing Group")


def organization_name(rng: random.Random, org_type: str, surname: str) -> str:
    """An invented organization of ``org_type``; ``surname`` (a Faker last name) widens the
    choice of billing firms and credentialers beyond the word list."""
    if org_type == OrgType.HOSPITAL:
        place = rng.choice(SAINTS) if rng.random() < 0.3 else rng.choice(TOWNS)
        return f"{place} {rng.choice(HOSPITAL_KINDS)}"
    word = surname if rng.random() < 0.5 else rng.choice(FIRM_WORDS)
    kinds = BILLING_KINDS if org_type == OrgType.BILLING_FIRM else CREDENTIALING_KINDS
    return f"{word} {rng.choice(kinds)}"


def email_domain(name: str) -> str:
    """An organization's email domain from its name, under the reserved .test domain."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower().replace("'", "").replace(".", "")).strip("-")
    return f"{slug[:50].rstrip('-')}.test"


def member_id(rng: random.Random, layout: str) -> str:
    return "".join(
        rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ")
        if char == "L"
        else str(rng.randrange(10))
        if char == "9"
        else char
        for char in layout
    )


def npi(rng: random.Random) -> str:
    """A valid NPI: nine digits and the Luhn check digit computed with the 80840 prefix."""
    body = [1, *(rng.randrange(10) for _ in range(8))]
    digits = [8, 0, 8, 4, 0, *body]
    total = 0
    for place, digit in enumerate(reversed(digits)):
        if place % 2 == 0:  # every other digit from the right, starting with the rightmost
            digit *= 2
            digit -= 9 if digit > 9 else 0
        total += digit
    return "".join(map(str, body)) + str((10 - total % 10) % 10)


# Procedures payers commonly ask a prior authorization for, with a diagnosis that supports them.
PRIOR_AUTH_SERVICES = (
    ("70553", "MRI brain with and without contrast", "G43.909"),
    ("72148", "MRI lumbar spine without contrast", "M54.50"),
    ("73721", "MRI knee joint without contrast", "M25.561"),
    ("29881", "Knee arthroscopy with meniscectomy", "S83.241A"),
    ("27447", "Total knee arthroplasty", "M17.11"),
    ("43239", "Upper GI endoscopy with biopsy", "K21.9"),
    ("93306", "Transthoracic echocardiogram", "I50.9"),
    ("95810", "Polysomnography (sleep study)", "G47.33"),
    ("97110", "Therapeutic exercise (physical therapy)", "M54.50"),
)
# Claim adjustment reason codes with a remark code that explains them, as a denial reads.
DENIALS = (
    ("CO-16", "N290", "Claim lacks information: missing rendering provider identifier"),
    ("CO-50", "N115", "Not deemed a medical necessity by the payer"),
    ("CO-97", "M15", "Service included in another service already adjudicated"),
    ("CO-29", "N211", "The time limit for filing has expired"),
    ("CO-197", "N54", "Precertification/authorization absent"),
    ("PR-204", "N130", "Service not covered under the patient's current benefit plan"),
)
# Adjustments on a paid claim: contractual write-off and the patient's share.
PAID_ADJUSTMENTS = (("CO-45",), ("CO-45", "PR-1"), ("CO-45", "PR-2"), ("CO-45", "PR-3"))


def page(portal: Portal, title: str, *, fields=(), buttons=(), table=()) -> str:
    """A portal page as the agent would have met it: a form of labelled fields, buttons and a
    table of labelled values (values are the kind a page shows, never a patient's)."""
    parts = [
        "<!DOCTYPE html><html><head>",
        f"<title>{html.escape(title)} | {html.escape(portal.payer)}</title></head><body>",
        f'<header class="topbar"><span class="brand">{html.escape(portal.name)}</span></header>',
        f'<main id="main"><h1>{html.escape(title)}</h1>',
    ]
    if fields:
        parts.append('<form class="search-form">')
        for label in fields:
            name = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
            parts.append(
                f'<label for="{name}">{html.escape(label)}</label>'
                f'<input id="{name}" name="{name}" type="text">'
            )
        parts.append("</form>")
    parts += [f'<button type="submit">{html.escape(text)}</button>' for text in buttons]
    if table:
        parts.append('<table class="results"><tbody>')
        parts += [
            f"<tr><th>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
            for label, value in table
        ]
        parts.append("</tbody></table>")
    parts.append("</main></body></html>")
    return "".join(parts)
