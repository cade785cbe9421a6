"""Tier 2: finding a target on a page by scoring the page's elements against its description.

A candidate's score is 0.6 x text similarity + 0.4 x role compatibility:

* **text similarity** is the best match between what is known of the target — its
  description (label, role name, text, placeholder) and, when the page is recognisably the one
  memory remembers, the element that worked there last time (its label, name, placeholder,
  ``name`` and ``id`` attributes, and, weighted down to ``NEARBY_WEIGHT``, the text just before
  it) — and the same texts of the candidate. Two texts are compared as sets of words after
  the portal vocabulary is brought to one word per thing (``VOCABULARY``: "Subscriber ID" and
  "Member ID" are one field, "Log in" and "Sign in" one button): the Dice coefficient, or 0.9
  when every word of one is among the other's ("Date of birth" in "Patient date of birth").
* **role compatibility**: 1 for the kind of element the action needs (a text box to fill, a
  button or link to click), less for a near kind, 0 otherwise.

A repair is accepted at ``ACCEPT`` (0.75) or above, and only when the best candidate beats the
runner-up by ``MARGIN``: two elements that fit about as well are a page that says two things,
and a refused action is better than the wrong one. Unusable candidates (disabled, covered,
mislabelled) still compete: when one of them fits best, nothing is done.

Nothing here touches a page or the database: webactions/agent.py runs the tiers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from memory.embeddings import page_features

TEXT_WEIGHT, ROLE_WEIGHT = 0.6, 0.4
ACCEPT = 0.75
MARGIN = 0.10
# The text before an element is evidence about it, but weaker than its own name: the
# elements of one form share their neighbourhood.
NEARBY_WEIGHT = 0.6
# A text all of whose words are among another's is nearly the same text ("Plan" in "Health
# plan"), never quite: the exact one wins where both are on the page.
CONTAINED = 0.9

# The words payer portals use for one thing, each group brought to its first word. Phrases are
# matched whole, longest first; kept to what means the same on any portal ("Coverage" alone
# also heads dates and amounts, so only "coverage status" is "eligibility").
VOCABULARY: dict[str, tuple[str, ...]] = {
    "member_id": (
        "member id", "member #", "member number", "member no", "subscriber id",
        "subscriber #", "subscriber number", "subscriber no", "insured id", "insured's id",
        "member identification number", "subscriber identification number", "memberid",
    ),
    "dob": ("date of birth", "birth date", "birthdate", "dob", "d o b"),
    "search": ("search", "find", "look up", "lookup"),
    "login": ("sign in", "signin", "log in", "login", "logon", "log on", "sign on"),
    "logout": ("sign out", "signout", "log out", "logout", "log off"),
    "username": ("username", "user name", "user id", "userid", "login id", "login name"),
    "otp": (
        "verification code", "one-time passcode", "one time passcode", "one-time code",
        "one time code", "one-time password", "one time password", "otp", "security code",
        "authentication code", "2fa code", "passcode", "mfa code",
    ),
    "eligibility": ("coverage status", "eligibility status", "eligibility"),
    "group_number": ("group number", "group #", "group no", "group id"),
    "last_name": ("last name", "surname", "family name"),
    "first_name": ("first name", "given name"),
    "claim_number": ("claim number", "claim #", "claim no", "claim id", "icn"),
    "npi": ("national provider identifier", "provider npi", "npi"),
    "tax_id": ("tax identification number", "tax id", "tin", "ein"),
    "zip": ("zip code", "postal code", "zip"),
    "service_type": ("service type", "type of service"),
    "service_date": ("date of service", "service date", "dos"),
    "out_of_network": ("out-of-network", "out of network", "oon"),
    "copay": ("copayment", "co-pay", "copay"),
    "oop_max": ("out-of-pocket maximum", "out-of-pocket limit", "out of pocket maximum"),
}  # fmt: skip
_STOPWORDS = frozenset({"a", "an", "the", "of", "for", "to", "and", "your", "please", "enter"})
_PHRASES = sorted(
    ((phrase, word) for word, phrases in VOCABULARY.items() for phrase in phrases),
    key=lambda pair: -len(pair[0]),
)
_PHRASE = re.compile(
    r"(?<![\w#])(" + "|".join(re.escape(phrase) for phrase, _ in _PHRASES) + r")(?![\w])"
)
_CANONICAL = dict(_PHRASES)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[_\s.:;,()\[\]{}|/\\*\"!?]+")


def words(text: str) -> frozenset[str]:
    """A text as the words it means: lower case, camelCase and snake_case split, the portal
    vocabulary brought to one word per thing, filler words left out."""
    text = _SEPARATORS.sub(" ", _CAMEL.sub(" ", text or "")).lower().strip()
    text = _PHRASE.sub(lambda match: f" {_CANONICAL[match.group(1)]} ", text)
    return frozenset(
        word for word in text.split() if word not in _STOPWORDS and re.search(r"\w|#", word)
    )


def similarity(first: str, second: str) -> float:
    """How alike two texts are, from 0 to 1 (``words`` of each: Dice, or CONTAINED)."""
    a, b = words(first), words(second)
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    common = len(a & b)
    dice = 2 * common / (len(a) + len(b))
    return max(dice, CONTAINED if common == min(len(a), len(b)) else 0.0)


# The families of a page's features (memory/embeddings.py) that say what the page is about:
# its title, headings, labels, field names and buttons — what a person recognises a page by
# after a redesign has changed all of its markup — and the shapes of the values it shows
# (money, dates, IDs: a benefits page shows amounts, a search form none).
_CONTENT_FAMILIES = ("title", "heading", "label", "field", "action")
_SHAPE_FAMILY = "data"


def page_words(masked_html: str) -> frozenset[str]:
    """What a (masked) page says about itself, as ``words``, and the shapes of its values."""
    try:
        families = page_features(masked_html)
    except ValueError:  # nothing on it
        return frozenset()
    found: set[str] = set(families.get(_SHAPE_FAMILY, {}))
    for family in _CONTENT_FAMILIES:
        for feature in families.get(family, {}):
            if not feature.startswith("href:"):
                found |= words(feature)
    return frozenset(found)


def page_likeness(first: frozenset[str], second: frozenset[str]) -> float:
    """How alike two pages' words are (Dice), from 0 to 1."""
    if not first or not second:
        return 0.0
    return 2 * len(first & second) / (len(first) + len(second))


# -- kinds of element -------------------------------------------------------------------------

# The element kinds the page script reports (ELEMENT_JS), and the roles they serve.
_ROLE_KIND = {
    "textbox": "textbox", "searchbox": "textbox", "spinbutton": "textbox",
    "combobox": "combobox", "listbox": "combobox", "checkbox": "checkbox", "radio": "radio",
    "button": "button", "link": "link", "tab": "tab", "menuitem": "menuitem",
    "option": "option", "cell": "text", "row": "text", "columnheader": "text",
    "rowheader": "text", "heading": "text",
}  # fmt: skip
# What each tool needs when the target names no role: kind -> compatibility.
_TOOL_KINDS = {
    "fill": {"textbox": 1.0, "combobox": 0.5},
    "totp": {"textbox": 1.0},
    "select": {"combobox": 1.0},
    "check": {"checkbox": 1.0, "radio": 0.8},
    "click": {"button": 1.0, "link": 1.0, "tab": 0.8, "menuitem": 0.8, "checkbox": 0.5},
}
# Kinds a person would take for one another.
_NEAR = {frozenset({"button", "link"}): 0.5, frozenset({"tab", "button"}): 0.5}


def role_compatibility(*, tool: str, target: dict, kind: str) -> float:
    """How well an element of ``kind`` fits what ``tool`` does to ``target``, from 0 to 1."""
    wanted = _ROLE_KIND.get(target.get("role", ""))
    if wanted is None:
        return _TOOL_KINDS.get(tool, {}).get(kind, 1.0 if tool not in _TOOL_KINDS else 0.0)
    if wanted == kind:
        return 1.0
    return _NEAR.get(frozenset({wanted, kind}), 0.0)


# -- candidates and their scores --------------------------------------------------------------

# What is known of an element: its own texts (compared at full weight) and the text before it.
OWN_TEXTS = ("label", "name", "text", "placeholder", "attr_name", "id")


@dataclass
class Scored:
    candidate: dict  # from CANDIDATES_JS: css, kind, the texts
    score: float
    text: float
    role: float


@dataclass
class Verdict:
    """What tier 2 decided: the chosen candidate, or why none."""

    chosen: Scored | None
    best: Scored | None
    runner_up: Scored | None
    reason: str  # "" when chosen; else why nothing was
    scored: list[Scored] = field(default_factory=list)

    @property
    def figures(self) -> str:
        best = f"{self.best.score:.2f}" if self.best else "-"
        runner_up = f"{self.runner_up.score:.2f}" if self.runner_up else "-"
        return f"score={best} runner_up={runner_up}"


def description_texts(target: dict) -> list[str]:
    return [target[key] for key in ("label", "name", "text", "placeholder") if target.get(key)]


def text_score(*, described: list[str], remembered: dict | None, candidate: dict) -> float:
    """The best match of the description's texts and the remembered element's with the
    candidate's own texts (the text before it only with the remembered one's, weighted down)."""
    own = [candidate[key] for key in OWN_TEXTS if candidate.get(key)]
    known = list(described)
    if remembered:
        known += [remembered[key] for key in OWN_TEXTS if remembered.get(key)]
    best = max((similarity(a, b) for a in known for b in own), default=0.0)
    if remembered and remembered.get("nearby") and candidate.get("nearby"):
        best = max(best, NEARBY_WEIGHT * similarity(remembered["nearby"], candidate["nearby"]))
    return best


def score_candidates(
    *, tool: str, target: dict, remembered: dict | None, candidates: list[dict]
) -> list[Scored]:
    """Every candidate scored, best first."""
    described = description_texts(target)
    scored = []
    for candidate in candidates:
        text = text_score(described=described, remembered=remembered, candidate=candidate)
        role = role_compatibility(tool=tool, target=target, kind=candidate.get("kind", ""))
        scored.append(
            Scored(candidate, round(TEXT_WEIGHT * text + ROLE_WEIGHT * role, 4), text, role)
        )
    scored.sort(key=lambda entry: -entry.score)
    return scored


def choose(scored: list[Scored]) -> Verdict:
    """The repair tier 2 accepts, or why it refuses: a score under ACCEPT, a runner-up within
    MARGIN. (Whether a person could use the chosen one is the caller's to check, in the page.)"""
    best = scored[0] if scored else None
    runner_up = scored[1] if len(scored) > 1 else None
    if best is None:
        return Verdict(None, None, None, "no candidate on the page", scored)
    if best.score < ACCEPT:
        return Verdict(None, best, runner_up, f"best score {best.score:.2f} < {ACCEPT}", scored)
    if runner_up is not None and best.score - runner_up.score < MARGIN:
        return Verdict(
            None,
            best,
            runner_up,
            f"tie: {best.score:.2f} and {runner_up.score:.2f} are within {MARGIN}",
            scored,
        )
    return Verdict(best, best, runner_up, "", scored)


def summary(candidate: dict | None) -> str:
    """An element as a trace shows it: its kind, name and selector."""
    if not candidate:
        return ""
    name = candidate.get("name") or candidate.get("label") or candidate.get("text") or ""
    return f'{candidate.get("kind", "?")} "{name[:80]}" ({candidate.get("css", "")[:120]})'


# -- the page's side --------------------------------------------------------------------------

# What the page script reports of an element (a fingerprint, kept in memory with the state).
FINGERPRINT_KEYS = ("css", "kind", *OWN_TEXTS, "nearby")

# Every element a person could act on, with what it shows and says of itself. The name is an
# approximation of the accessible name (aria-label, aria-labelledby, its labels, its text or
# value, title, placeholder) — the same computation on both sides of every comparison.
# ``css`` is a selector that finds exactly this element now (an id where unique, else a path).
ELEMENT_JS = r"""
const PRESSABLE = 'button, a[href], input[type=submit], input[type=reset], input[type=button], '
    + 'input[type=image], [role=button], [role=link], [role=tab], [role=menuitem]';
const clean = s => (s || '').replace(/\s+/g, ' ').trim().slice(0, 200);
const byIds = ids => clean((ids || '').split(/\s+/).filter(Boolean)
    .map(id => document.getElementById(id)?.innerText || '').join(' '));
const kindOf = e => {
    const role = e.getAttribute('role');
    const tag = e.tagName.toLowerCase(), type = (e.getAttribute('type') || '').toLowerCase();
    if (role) return ({searchbox: 'textbox', spinbutton: 'textbox', listbox: 'combobox',
                       switch: 'checkbox'})[role] || role;
    if (tag === 'a') return 'link';
    if (tag === 'button' || ['submit', 'reset', 'button', 'image'].includes(type)) return 'button';
    if (tag === 'select') return 'combobox';
    if (tag === 'textarea' || e.isContentEditable) return 'textbox';
    if (tag === 'input') return type === 'checkbox' ? 'checkbox' : type === 'radio' ? 'radio'
        : 'textbox';
    return 'other';
};
const labelsOf = e => clean([...(e.labels || [])].map(l => l.innerText).join(' '));
const nameOf = e => clean(e.getAttribute('aria-label')) || byIds(e.getAttribute('aria-labelledby'))
    || labelsOf(e) || (e.matches(PRESSABLE) ? clean(e.innerText || e.value) : '')
    || clean(e.getAttribute('title')) || clean(e.getAttribute('placeholder'));
const nearbyOf = e => {
    // The last text before the element that is not its own label or its own text.
    const own = [...(e.labels || [])];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    walker.currentNode = e;
    for (let n = walker.previousNode(), seen = 0; n && seen < 200;
         n = walker.previousNode(), seen++) {
        const parent = n.parentElement;
        if (!parent || parent.closest('script, style, option, template') || e.contains(n)
            || own.some(l => l.contains(n))) continue;
        const t = clean(n.textContent);
        if (/\p{L}/u.test(t)) return t.slice(0, 120);
    }
    return '';
};
const cssOf = e => {
    if (e.id && document.querySelectorAll('#' + CSS.escape(e.id)).length === 1)
        return '#' + CSS.escape(e.id);
    const steps = [];
    for (let n = e; n && n.nodeType === 1 && n !== document.documentElement; n = n.parentElement) {
        if (n !== e && n.id && document.querySelectorAll('#' + CSS.escape(n.id)).length === 1) {
            steps.unshift('#' + CSS.escape(n.id));
            break;
        }
        const tag = n.tagName.toLowerCase();
        const same = [...(n.parentElement ? n.parentElement.children : [])]
            .filter(s => s.tagName === n.tagName);
        steps.unshift(same.length > 1 ? `${tag}:nth-of-type(${same.indexOf(n) + 1})` : tag);
    }
    return steps.join(' > ');
};
const rendered = e => {
    const style = getComputedStyle(e), box = e.getBoundingClientRect();
    return style.visibility === 'visible' && style.display !== 'none' && box.width && box.height;
};
const describeElement = e => ({
    css: cssOf(e), kind: kindOf(e), tag: e.tagName.toLowerCase(),
    label: labelsOf(e), name: nameOf(e),
    text: e.matches(PRESSABLE) ? clean(e.innerText || e.value) : '',
    placeholder: clean(e.getAttribute('placeholder')),
    attr_name: clean(e.getAttribute('name')), id: clean(e.id), nearby: nearbyOf(e),
});
"""

CANDIDATE_SELECTOR = (
    "input:not([type=hidden]), select, textarea, button, a[href], [role=button], [role=link], "
    "[role=textbox], [role=searchbox], [role=combobox], [role=listbox], [role=checkbox], "
    "[role=radio], [role=switch], [role=tab], [role=menuitem], [contenteditable=true]"
)
# At most this many elements are scored: a page with more controls than this is a table of
# records, whose rows' controls all look alike (and are refused as ties anyway).
MAX_CANDIDATES = 400
