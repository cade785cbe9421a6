"""PHI masking, shared by every app: a page, an error text or an action's JSON goes through
``mask`` or ``mask_json`` before it is stored, and what identifies a patient is replaced by a
typed placeholder such as ``[MEMBER_ID]``. A masked page still reads as the page: the agent
learns that a member ID sits in that cell, not whose it is.

What is masked:

* by shape, wherever it appears: SSNs, phone numbers, emails, dates, and the common payer
  member-ID shape (one to three capital letters and 8-12 digits: W123456789, XYZ123456789);
* by label: the ID-like value after "Member ID", "Subscriber #", "MRN", "Patient Account #",
  "SSN", "DOB" and their kin, whether it follows in the same text ("Member ID: W123456789"),
  in the next text of the page (``<th>MRN</th><td>00123456</td>``, ``<dt>``/``<dd>``), in the
  next ``value`` attribute (``<label>Member ID</label><input value=...>``), or sits in an
  input named for it (``<input name="memberId" value=...>``);
* the caller's declared literals (a batch row's inputs), as ``[KEY]`` for a mapping's key or
  ``[PHI]`` for a plain iterable: case-insensitive, whole tokens only ("Ann" leaves "Annual"),
  also in their HTML-escaped forms, whitespace-tolerant, longest first. A declared date (a
  ``date`` or an ISO or MM/DD/YYYY string) is also matched in the other formats portals print.
  Other values are matched as given: their re-formatted forms (an SSN with dashes, a phone with
  parentheses) are shapes the patterns mask anyway.

Decisions:

* Every date is masked, as ``[DATE]``; one labelled as a birth date becomes ``[DOB]``. HIPAA's
  Safe Harbor counts every date tied to a patient (service, admission, coverage) as PHI, and a
  page seldom says which dates are whose.
* Names and addresses have no shape: only declared ones are masked.
* Amounts, plan names, group numbers, NPIs, claim numbers and CARC/RARC codes are left for the
  agent, unless they take a member-ID shape or are declared.
* HTML stays HTML. Tag and attribute names are never touched. The values of attributes that
  name elements (class, id, name, for, role...) only lose declared literals, so selectors keep
  working; every other attribute value (value, title, href, data-*...) is masked like text.
* A label reaches only the next text or ``value`` attribute: a table whose labels are column
  headers gets its values masked by shape and by declaration, not by label.
* Placeholders are never masked again: ``mask(mask(text)) == mask(text)``.

Every pattern is compiled once at import and free of nested quantifiers that could backtrack
catastrophically; a call compiles only the alternation of its declared literals.
"""

import functools
import html
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from numbers import Number
from typing import Any, cast

DECLARED_PLACEHOLDER = "PHI"
PATTERN_PLACEHOLDERS = ("SSN", "DOB", "DATE", "PHONE", "EMAIL", "MEMBER_ID", "MRN")

# Declared literals shorter than this would mask initials and stray letters all over a page.
MIN_DECLARED_LENGTH = 2

# --- shapes -------------------------------------------------------------------------------

_MONTH = (
    r"(?i:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
# MM/DD/YYYY, M/D/YY, MM-DD-YYYY, YYYY-MM-DD, "Jan 5, 1980", "05-Jan-1980". No dotted form:
# it would take version numbers. A date may touch a letter after it (ISO "1980-01-05T10:00").
_DATE = (
    r"(?<![\w/])(?:\d{1,2}/\d{1,2}/(?:\d{4}|\d{2})|\d{1,2}-\d{1,2}-\d{4}|\d{4}-\d{2}-\d{2}"
    rf"|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}|\d{{1,2}}[\s-]{_MONTH}[\s-]\d{{2,4}})"
    r"(?![\d/])"
)
_SSN = r"(?<![\d-])\d{3}(?:-\d{2}-|\s\d{2}\s)\d{4}(?![\d-])"
_PHONE = (
    r"(?<![\w+-])(?:\+1\d{10}|(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4})"
    r"(?![\w-])(?:\s?(?i:x|ext\.?)\s?\d{1,6})?"
)
# The lookbehind lets a match start only where an address starts: without it a long run of
# letters (an inline blob) would be rescanned from every position.
_EMAIL = r"(?<![\w.%+-])[\w.%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}(?![\w-])"
_MEMBER_ID_SHAPE = r"(?<![\w-])[A-Z]{1,3}\d{8,12}(?![\w-])"

# --- labels -------------------------------------------------------------------------------

_NUMBER_WORD = r"(?:id|\#|number|num|no\.?)"
# "ID Number" after these words names a provider, an employer plan or a claim, not a patient.
_NOT_THE_PATIENTS = r"(?<!provider\s)(?<!tax\s)(?<!group\s)(?<!payer\s)(?<!claim\s)(?<!plan\s)"
_LABELS = {
    "SSN": rf"ssn|ss\s*\#|social\s*security(?:\s*{_NUMBER_WORD})?",
    "DOB": r"dob|d\.o\.b\.?|date\s*of\s*birth|birth\s*date|born",
    "MRN": (
        rf"mrn|medical\s*record(?:\s*{_NUMBER_WORD})?|chart\s*{_NUMBER_WORD}"
        rf"|(?:patient\s*)?(?:account|acct)\.?(?:\s*{_NUMBER_WORD}){{1,2}}"
        rf"|patient\s*{_NUMBER_WORD}"
    ),
    "MEMBER_ID": (
        r"(?:member|subscriber|insured|beneficiary|recipient|medicaid|medicare|policy)"
        rf"(?:\s*{_NUMBER_WORD}){{1,2}}|{_NOT_THE_PATIENTS}id\s*(?:number|no\.?|\#)|mbi|hicn"
    ),
}


def _label_pattern(alternatives: Iterable[str]) -> str:
    # A label ending in "#" may touch its value ("Acct #12345678"); one ending in a letter may not
    # run into a longer word ("Member IDs", "Newborn").
    return rf"(?<!\w)(?i:{'|'.join(alternatives)})(?:(?<!\w)|(?!\w))"


_LABEL = re.compile(_label_pattern(f"(?P<{kind}>{pattern})" for kind, pattern in _LABELS.items()))
_SEPARATOR = r"(?:[\s:#=.\"'-]|&nbsp;)*"
# What a labelled value looks like: a date, a spaced SSN, or an ID token holding a digit
# (so "Member ID is required" keeps its words).
_FIELD_VALUE = (
    rf"(?:{_DATE}|\d{{3}}\s\d{{2}}\s\d{{4}}"
    r"|(?=[A-Za-z-]*\d)[A-Za-z0-9][A-Za-z0-9-]{3,29}(?![\w-]))"
)
_LEADING_FIELD_VALUE = re.compile(rf"(?P<separator>{_SEPARATOR})(?P<value>{_FIELD_VALUE})")
_WHOLE_FIELD_VALUE = re.compile(rf"\s*{_FIELD_VALUE}\s*")
_TRAILING_LABEL = re.compile(rf"{_LABEL.pattern}{_SEPARATOR}\Z")

# What the page is searched for after the declared literals (an email goes with those, below).
# Every alternative needs a digit, so text without one is skipped before any search.
_PATTERNS = re.compile(
    rf"(?P<labelled>(?P<label>{_label_pattern(_LABELS.values())})"
    rf"(?P<separator>{_SEPARATOR})(?P<value>{_FIELD_VALUE}))"
    rf"|(?P<SSN>{_SSN})|(?P<PHONE>{_PHONE})|(?P<DATE>{_DATE})|(?P<MEMBER_ID>{_MEMBER_ID_SHAPE})"
)
_DIGIT = re.compile(r"\d")
# Only the end of a text can hold the label whose value follows; the longest label is shorter.
_LABEL_TAIL = 48

# --- markup -------------------------------------------------------------------------------

# A comment, or a tag whose quoted attribute values may hold ">". Each repetition starts on a
# different character, so a failed match backs off in linear time.
_MARKUP = re.compile(
    r"(<!--.*?-->|</?[A-Za-z][^<>\"']*(?:(?:\"[^\"]*\"|'[^']*')[^<>\"']*)*>)", re.DOTALL
)
_TAG = re.compile(r"(?P<head></?[A-Za-z][\w:-]*)(?P<body>.*?)(?P<end>/?>)\Z", re.DOTALL)
_ATTRIBUTE = re.compile(
    r"(?P<name>[^\s\"'<>/=]+)(?P<equals>\s*=\s*)"
    r"(?P<quote>[\"']?)(?P<value>(?<=\")[^\"]*|(?<=')[^']*|[^\s\"'<>`]*)(?P=quote)"
)
# Attributes whose values name elements rather than show data: masking shapes in them would
# break the selectors the agent replays (declared literals are masked everywhere regardless).
_NAMING_ATTRIBUTES = frozenset(
    {
        "class", "id", "name", "for", "type", "role", "style", "method", "rel", "target",
        "lang", "dir", "tabindex", "colspan", "rowspan", "scope", "headers", "form",
        "autocomplete", "aria-labelledby", "aria-describedby", "aria-controls", "data-testid",
    }
)  # fmt: skip
# Attributes that say which field an input is, read to type its value.
_FIELD_NAMING_ATTRIBUTES = ("name", "id", "aria-label", "placeholder", "title")
_CAMEL_OR_SEPARATOR = re.compile(r"(?<=[a-z])(?=[A-Z])|[_-]")


def mask(text: str, *, declared: Iterable[Any] | Mapping[str, Any] = ()) -> str:
    """Return ``text`` (plain text or HTML) with its PHI replaced by typed placeholders."""
    return _mask_patterns(_DeclaredLiterals(declared).mask(text))


def mask_json(value: Any, *, declared: Iterable[Any] | Mapping[str, Any] = ()) -> Any:
    """Mask every string inside a JSON-like value; keys and non-strings stay, tuples become
    lists (as JSON would have them)."""
    return _mask_json(value, _text_masker(_DeclaredLiterals(declared)))


def masker(declared: Iterable[Any] | Mapping[str, Any] = ()) -> Callable[[Any], Any]:
    """``mask_json`` with ``declared`` prepared once: for a caller that masks many texts with
    the same literals (the web agent masks every page of a row's attempt)."""
    mask_text = _text_masker(_DeclaredLiterals(declared))
    return lambda value: _mask_json(value, mask_text)


def remembering_masker(limit: int = 100_000) -> Callable[[Any], Any]:
    """``mask_json`` (no declared literals) that remembers the texts it masked, up to
    ``limit`` of them: for one long job that meets the same texts again and again (the
    legacy import's trace steps and page captions). What it remembers goes with it."""
    mask_text = _text_masker(_DeclaredLiterals(()))
    seen: dict[str, str] = {}

    def remembered(text: str) -> str:
        masked = seen.get(text)
        if masked is None:
            masked = mask_text(text)
            if len(seen) < limit:
                seen[text] = masked
        return masked

    return lambda value: _mask_json(value, remembered)


def _text_masker(literals: "_DeclaredLiterals") -> Callable[[str], str]:
    return lambda text: _mask_patterns(literals.mask(text))


def _mask_json(value: Any, mask_text: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if value is None or isinstance(value, int | float):
        return value  # the common case, before the abstract Mapping's slower check
    if isinstance(value, dict | Mapping):
        return {key: _mask_json(item, mask_text) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_json(item, mask_text) for item in value]
    return value


# --- patterns and labels ------------------------------------------------------------------


def _mask_patterns(document: str) -> str:
    """Mask shapes and labelled values in the text nodes and tags of ``document`` in turn.

    ``re.split`` leaves the tags at odd indexes. A label ending a text node is carried to the
    value of the next text node or tag.
    """
    pieces = _MARKUP.split(document)
    pending_label = None
    for index, piece in enumerate(pieces):
        if index % 2:
            pieces[index], pending_label = _mask_tag(piece, pending_label)
        elif piece and not piece.isspace():
            pieces[index], pending_label = _mask_text_node(piece, pending_label)
    return "".join(pieces)


def _mask_text(text: str) -> str:
    return _PATTERNS.sub(_pattern_placeholder, text) if _DIGIT.search(text) else text


def _pattern_placeholder(match: re.Match[str]) -> str:
    if match.lastgroup == "labelled":
        # The label group is one of _LABEL's alternatives, so it matches.
        label_kind = cast(re.Match[str], _LABEL.fullmatch(match["label"])).lastgroup
        return f"{match['label']}{match['separator']}[{label_kind}]"
    return f"[{match.lastgroup}]"


def _mask_text_node(text: str, pending_label: str | None) -> tuple[str, str | None]:
    """Mask a text node, its leading value typed by the pending label; return its own label."""
    masked = text
    leading_value = pending_label and _LEADING_FIELD_VALUE.match(text)
    if leading_value:
        masked = f"{leading_value['separator']}[{pending_label}]{text[leading_value.end() :]}"
    content = text.rstrip()
    trailing_label = _TRAILING_LABEL.search(content, max(0, len(content) - _LABEL_TAIL))
    return _mask_text(masked), trailing_label.lastgroup if trailing_label else None


def _mask_tag(markup: str, pending_label: str | None) -> tuple[str, str | None]:
    """Mask a tag's attribute values and what lies between them; tag and attribute names stay.

    Between attributes lie only spaces and boolean attributes in a page, but anything in text
    that merely looks like a tag ("<Patient: W123456789 01/05/1980>" in an error message).

    A tag with a ``value`` attribute consumes the pending label; any other tag passes it on.
    """
    if markup.startswith("<!--"):
        return f"<!--{_mask_text(markup[4:-3])}-->", pending_label
    if "value" not in markup and not _DIGIT.search(markup):
        return markup, pending_label
    # _MARKUP's tags (the odd pieces) are a subset of what _TAG matches.
    tag = cast(re.Match[str], _TAG.match(markup))
    attributes = list(_ATTRIBUTE.finditer(tag["body"]))
    values = {attribute["name"].lower(): attribute["value"] for attribute in attributes}
    field_kind = None
    if "value" in values:
        field_kind, pending_label = _field_kind(values) or pending_label, None
    body, position = [], 0
    for attribute in attributes:
        body.append(_mask_text(tag["body"][position : attribute.start()]))
        body.append(_mask_attribute(attribute, field_kind))
        position = attribute.end()
    body.append(_mask_text(tag["body"][position:]))
    return f"{tag['head']}{''.join(body)}{tag['end']}", pending_label


def _field_kind(values: Mapping[str, str]) -> str | None:
    """The label an input's own naming attributes give it (``name="memberId"``), if any."""
    for name in _FIELD_NAMING_ATTRIBUTES:
        label = _LABEL.search(_CAMEL_OR_SEPARATOR.sub(" ", values.get(name) or ""))
        if label:
            return label.lastgroup
    return None


def _mask_attribute(attribute: re.Match, field_kind: str | None) -> str:
    name, value = attribute["name"], attribute["value"]
    lowered = name.lower()
    if lowered == "value" and field_kind and _WHOLE_FIELD_VALUE.fullmatch(value):
        masked = f"[{field_kind}]"
    elif lowered in _NAMING_ATTRIBUTES:
        masked = value
    else:
        masked = _mask_text(value)
    return f"{name}{attribute['equals']}{attribute['quote']}{masked}{attribute['quote']}"


# --- declared literals --------------------------------------------------------------------


class _DeclaredLiterals:
    """The caller's declared literals of one call, masked in one pass over the whole text.

    Emails go in the same pass, ahead of the literals: a declared first name must not cut
    "maria.lopez@example.com" in two and leave half an address. Tag and attribute names are
    spared ("Li" is a surname and a tag).
    """

    def __init__(self, declared: Iterable[Any] | Mapping[str, Any]):
        self._placeholders = _declared_placeholders(declared)
        self._ascii = all(key.isascii() for key in self._placeholders)

    # Compiled on first need: compiling a batch row's literals takes most of a millisecond,
    # far more than masking a short text with them (a trace's detail, an error message).
    @functools.cached_property
    def _with_emails(self) -> re.Pattern:
        return re.compile(rf"{self._guard}|(?P<EMAIL>{_EMAIL}){self._literals}")

    @functools.cached_property
    def _without_emails(self) -> re.Pattern:
        return re.compile(f"{self._guard}{self._literals}")

    @property
    def _guard(self) -> str:
        # A placeholder is matched first and kept, so that a literal such as "Phi" is not
        # found again inside "[PHI]".
        names = {*PATTERN_PLACEHOLDERS, *(name[1:-1] for name in self._placeholders.values())}
        return rf"(?P<placeholder>\[(?:{'|'.join(sorted(names))})\])"

    @property
    def _literals(self) -> str:
        literals = _literal_alternation(self._placeholders)
        return rf"|(?P<declared>{literals})" if literals else ""

    def mask(self, text: str) -> str:
        # The email alternative is the slowest; most texts hold no "@" and are spared it.
        if "@" in text:
            return self._with_emails.sub(self._placeholder, text)
        if self._absent_from(text):
            return text
        return self._without_emails.sub(self._placeholder, text)

    def _absent_from(self, text: str) -> bool:
        """Whether no declared literal can be in ``text``, which is then left as the pattern
        would leave it, without compiling the pattern.

        Every form the pattern matches (the literal in any case, HTML-escaped, its words
        spaced by runs of blanks or ``&nbsp;``) has the literal's key (``_literal_key``) in the
        text's key. Only for ASCII texts and literals: outside ASCII, case-insensitive
        matching also pairs letters that ``lower()`` keeps apart ("ſ" and "s"). Never for a
        text with an entity: the pattern matches ``&NBSP;`` and ``&Amp;`` in any case, which
        ``html.unescape`` (and so the key) does not read as a space or an ampersand."""
        if not self._placeholders:
            return True
        if "&" in text or not (self._ascii and text.isascii()):
            return False
        key = _literal_key(text)
        return not any(literal in key for literal in self._placeholders)

    def _placeholder(self, match: re.Match) -> str:
        if match.lastgroup == "placeholder":
            return match[0]
        if match.lastgroup == "EMAIL":
            return "[EMAIL]"
        # A literal matched case-insensitively may fold differently from how it was stored;
        # then it is still PHI.
        return self._placeholders.get(_literal_key(match[0]), f"[{DECLARED_PLACEHOLDER}]")


def _declared_placeholders(declared: Iterable[Any] | Mapping[str, Any]) -> dict[str, str]:
    """Map each declared literal's key form (see ``_literal_key``) to its placeholder."""
    if isinstance(declared, str):
        # A lone string is one literal, not an iterable of letters too short to mask.
        declared = [declared]
    if isinstance(declared, Mapping):
        items = [(_placeholder_name(key), value) for key, value in declared.items()]
    else:
        items = [(DECLARED_PLACEHOLDER, value) for value in declared]
    placeholders: dict[str, str] = {}
    for name, value in items:
        for literal in _literal_forms(value):
            # The first declaration of a value names it.
            placeholders.setdefault(_literal_key(literal), f"[{name}]")
    return placeholders


def _placeholder_name(key: Any) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", str(key).upper()).strip("_") or DECLARED_PLACEHOLDER


def _literal_forms(value: Any) -> list[str]:
    """The texts a declared value may appear as; none for blanks, booleans and containers."""
    if isinstance(value, date):
        return _date_forms(value)
    if isinstance(value, bool) or not isinstance(value, str | Number):
        return []
    text = str(value).strip()
    if len(text) < MIN_DECLARED_LENGTH:
        return []
    declared_date = _parse_date(text)
    return [text, *_date_forms(declared_date)] if declared_date else [text]


# What either layout below starts with (%Y is four digits, %m one or two): most declared values
# (names, IDs) are not dates, and strptime costs 10 µs to say so, per value of every row.
_DATE_START = re.compile(r"\d{4}-|\d{1,2}/")


def _parse_date(text: str) -> date | None:
    if not _DATE_START.match(text):
        return None
    for layout in ("%Y-%m-%d", "%m/%d/%Y"):
        try:
            return datetime.strptime(text, layout).date()
        except ValueError:
            continue
    return None


def _date_forms(day: date) -> list[str]:
    if isinstance(day, datetime):
        day = day.date()
    return [
        day.isoformat(),
        f"{day:%m/%d/%Y}",
        f"{day.month}/{day.day}/{day.year}",
        f"{day:%m/%d/%y}",
        f"{day:%m-%d-%Y}",
        f"{day:%b} {day.day}, {day.year}",
        f"{day:%B} {day.day}, {day.year}",
        f"{day:%d-%b-%Y}",
    ]


def _literal_key(text: str) -> str:
    """What a literal and any page rendering of it have in common: unescaped, spaces, case."""
    return " ".join(html.unescape(text).split()).lower()


def _literal_alternation(placeholders: Mapping[str, str]) -> str:
    """One pattern for every declared literal, escaped forms included, longest first."""
    forms = {
        escaped
        for literal in placeholders
        for escaped in (
            literal,
            html.escape(literal, quote=False),
            html.escape(literal),
            html.escape(literal).replace("&#x27;", "&#39;"),
        )
    }
    if not forms:
        return ""
    # Any run of spaces (or &nbsp;) in the page stands for a space in the literal.
    patterns = [
        r"(?:\s|&nbsp;|&#160;)+".join(re.escape(word) for word in form.split())
        for form in sorted(forms, key=len, reverse=True)
    ]
    # Not a tag name after "<" or "</", nor an attribute name before "=".
    return rf"(?<![\w<])(?<!</)(?i:{'|'.join(patterns)})(?!\w)(?![\w-]*\s*=\s*[\"'])"
