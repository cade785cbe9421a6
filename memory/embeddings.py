"""Embedders: a page (or a text) as a 768-D unit vector for the micro-state search.

Every embedder answers through the same interface (``Embedder``) and the same fixed dimension
(``DIMENSION``, the width of ``micro_state.text_emb``). A model whose own dimension is smaller
is zero-padded: padding adds nothing to dot products or norms, so cosine similarity between
two padded vectors is exactly the model's own.

A page is never embedded as raw HTML. It is first reduced to its structure — headings,
labels, form fields, buttons, links, ARIA roles, the URL path — with dynamic values (numbers,
dates, money, IDs, names in data cells) masked, so that the same page showing another patient
embeds almost identically and no patient data reaches a model:

* ``StructuralEmbedder`` (the default) hashes those features into 768 signed buckets. It is
  deterministic across processes, offline and fast.
* ``SentenceTransformerEmbedder`` and ``HttpEmbedder`` embed ``page_summary()``, a textual
  rendering of the same features.

``model_id`` is stored with every vector: search compares only vectors of the same embedder,
and a change to the features or the summary bumps the version in it.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import os
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlsplit

import httpx
import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DIMENSION = 768
EMBEDDERS = ("structural", "sentence-transformers", "http")
SUMMARY_VERSION = "summary-v1"
HTTP_BATCH_SIZE = 64

EMPTY_PAGE = (
    "Cannot embed an empty page: it has no title, headings, labels, form fields, buttons or links."
)
EMPTY_TEXT = "Cannot embed an empty text."
UNKNOWN_EMBEDDER = "MEMORY_EMBEDDER must be one of {allowed}; got {name!r}."
DIMENSION_OUT_OF_RANGE = (
    "{what} has {dimension} dimensions; the memory stores {limit}-D vectors, so a model must "
    "have between 1 and {limit}."
)
ST_NOT_INSTALLED = (
    "MEMORY_EMBEDDER=sentence-transformers needs the sentence-transformers package, which is "
    "not installed; install it or choose MEMORY_EMBEDDER=structural."
)
ST_NO_MODEL = (
    "MEMORY_EMBEDDER=sentence-transformers needs MEMORY_EMBEDDER_MODEL: a model name in the "
    "local cache or a path."
)
ST_MODEL_UNAVAILABLE = (
    "The sentence-transformers model {model!r} could not be loaded from the local cache or "
    "path (models are never downloaded at run time): {error}"
)
HTTP_NO_URL = "MEMORY_EMBEDDER=http needs MEMORY_EMBEDDER_URL (an http or https URL)."
HTTP_NO_MODEL = "MEMORY_EMBEDDER=http needs MEMORY_EMBEDDER_MODEL (the service's model name)."
HTTP_UNREACHABLE = "The embedding service at {host} could not be reached: {error}."
HTTP_BAD_STATUS = "The embedding service at {host} answered HTTP {status}."
HTTP_BAD_ANSWER = "The embedding service at {host} gave an unusable answer: {problem}."
BAD_VECTOR = "The {model_id} embedder returned an unusable vector: {problem}."


class EmbeddingError(Exception):
    """An embedder produced no usable vector: an unreachable service, a malformed answer."""


# --- Masking: dynamic values become shape tokens before anything is hashed or summarised ---

_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
# Order matters: the more specific shapes go first (an SSN would otherwise read as a date, a
# phone number as three numbers).
_MASKS = [
    (re.compile(r"https?://\S+", re.I), " <url> "),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), " <email> "),
    (re.compile(rf"\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b", re.I), " <date> "),
    (re.compile(rf"\b\d{{1,2}}\s+{_MONTH}\s+\d{{4}}\b", re.I), " <date> "),
    (re.compile(r"\b\d{3}-\d{2}-\d{4}\b"), " <id> "),
    (re.compile(r"(?:\+1[\s.-]?)?\(?\b\d{3}\)?[\s.-]?\d{3}[\s.-]\d{4}\b"), " <phone> "),
    (re.compile(r"\b\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}\b"), " <date> "),
    (re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?(?:\s*[ap]\.?m\.?)?", re.I), " <time> "),
    (re.compile(r"[$€£]\s?\d[\d,]*(?:\.\d+)?"), " <money> "),
    (re.compile(r"\b\d[\d,]*(?:\.\d+)?\s?%"), " <pct> "),
    # Member IDs, claim numbers, NPIs, tracking numbers: any token that carries a digit.
    (re.compile(r"\b(?=[\w-]*\d)[a-z0-9][\w-]{3,}\b", re.I), " <id> "),
    (re.compile(r"\d+(?:[.,]\d+)*"), " <num> "),
]
_PLACEHOLDER_OR_WORD = re.compile(r"<[a-z]+>|[^\W\d_]+")
_WORD = re.compile(r"<[a-z]+>|[^\W_]+")
_MASKABLE = re.compile(r"[\d@]|://")


def mask_text(text: str) -> str:
    """Lowercased text with numbers, dates, money, emails, phones and IDs as shape tokens."""
    if _MASKABLE.search(text):  # every mask needs a digit, an @ or a URL scheme
        for pattern, token in _MASKS:
            text = pattern.sub(token, text)
    return " ".join(text.split()).lower()


def text_shape(masked: str) -> str:
    """A data value reduced to its shape: ``smith, john`` -> ``<text>``,
    ``<money> per visit`` -> ``<money> <text>``; names and statuses never reach the vector."""
    shape: list[str] = []
    for token in _PLACEHOLDER_OR_WORD.findall(masked):
        kind = token if token.startswith("<") else "<text>"
        if not shape or shape[-1] != kind:
            shape.append(kind)
    return " ".join(shape)


def _words(masked: str) -> str:
    """Masked text as words and shape tokens only: punctuation and separators drift."""
    return " ".join(_WORD.findall(masked))[:120]


def _url_parts(url: str) -> tuple[list[str], list[str]]:
    """The URL's path segments (and a route in its fragment) with IDs masked, and its query's
    parameter names. The host is left out: a page is the same page on a staging host."""
    parts = urlsplit(url.strip())
    segments = []
    for path in (parts.path, parts.fragment if parts.fragment.startswith("/") else ""):
        for segment in path.lower().split("/"):
            if segment:
                is_id = any(c.isdigit() for c in segment) or len(segment) > 32
                segments.append("<id>" if is_id else segment)
    return segments, sorted({name.lower() for name, _ in parse_qsl(parts.query, True)})


def _url_tails(url: str) -> list[str]:
    """The URL's last one and two path segments (an ID with the segment before it): what a
    link or a form action keeps when the app moves (``/availity/web/claims/status`` and
    ``/essentials/claims/status`` end alike)."""
    segments = _url_parts(url)[0]
    if not segments:
        return [""]
    last = segments[-2:] if segments[-1] == "<id>" else segments[-1:]
    return ["/".join(last), "/".join(segments[-2:])]


def url_features(url: str) -> list[str]:
    segments, names = _url_parts(url)
    if not segments and not names:
        return []
    features = ["/" + "/".join(segments)]
    features += [f"seg:{segment}" for segment in segments]
    features += [f"tail:{'/'.join(segments[-n:])}" for n in (2, 3) if len(segments) > n]
    return features + [f"q:{name}" for name in names]


def _mask_name(name: str) -> str:
    return re.sub(r"\d+", "<n>", name.strip().lower())[:80]


# --- Page features ---

# The feature families, with the weight each has in the structural vector. Each family is
# normalised before it is weighted, so a long table cannot drown the labels, and the weights
# say what identifies a page: what a user reads and fills in (labels, fields, headings) counts
# most; tag paths and data shapes, which a redesign changes, count least; the navigation bar,
# header and footer ("chrome") are shared by every page of a portal and count little.
FAMILY_WEIGHTS = {
    "title": 1.0,
    "url": 1.0,
    "heading": 2.0,
    "label": 2.5,
    "field": 2.5,
    "action": 2.0,  # buttons and links: a redesign turns one into the other
    "role": 1.0,
    "text": 1.0,
    "option": 0.5,
    "form": 1.0,
    "data": 0.5,
    "path": 0.5,
    "chrome": 0.5,
}
# In these a feature's weight grows with its count (damped); in the others a feature is there
# or not: a redesign that repeats "Copay" on each benefit card shows the same labels.
COUNTED_FAMILIES = ("data", "path")
# Families of human-readable texts, which also contribute their words (at WORD_WEIGHT), so that
# a reworded heading ("Primary Care Provider" -> "Primary Care Provider (PCP)") still overlaps.
WORDY_FAMILIES = ("title", "heading", "label", "action", "text", "option")
WORD_WEIGHT = 0.5
# h1 and h2 name the page and its sections; lower headings mostly title items within a
# section (a benefit, a claim), which come and go with the data and the layout.
MINOR_HEADING_WEIGHT = 0.5
# Where a link goes counts less than what it says: a redesign turns links into buttons, and
# apps move (``/availity/web/claims`` -> ``/essentials/claims``).
HREF_WEIGHT = 0.5

_VOID_TAGS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "meta"}
    | {"param", "source", "track", "wbr"}
)
# Their content is code, markup for another renderer, or values a user typed (textarea).
_SKIPPED_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "math", "textarea"})
_TEXT_KIND_BY_TAG = {
    "title": "title",
    **{f"h{level}": "heading" for level in range(1, 7)},
    "label": "label",
    "legend": "label",
    "th": "label",
    "dt": "label",
    "caption": "label",
    "summary": "label",
    "button": "action",
    "a": "action",
    "option": "option",
    "td": "data",
    "dd": "data",
    "output": "data",
}
_TEXT_KIND_BY_ROLE = {
    "heading": "heading",
    "button": "action",
    "tab": "action",
    "menuitem": "action",
    "link": "action",
    "columnheader": "label",
    "rowheader": "label",
    "cell": "data",
    "gridcell": "data",
    "option": "option",
}
# Landmarks, whether written as a tag or as a role, are the same to a screen reader and here.
_LANDMARK_BY_TAG = {
    "main": "main",
    "nav": "navigation",
    "aside": "complementary",
    "footer": "contentinfo",
    "header": "banner",
}
_CHROME_ROLES = frozenset(("navigation", "banner", "contentinfo", "complementary"))
_SECTIONING_TAGS = frozenset(("main", "article", "section"))
# Text inside these belongs to the element around them ("Member <b>ID</b>").
_INLINE_TAGS = frozenset(
    {"b", "strong", "i", "em", "span", "small", "abbr", "code", "u", "s", "sup", "sub", "font"}
    | {"mark", "time", "q", "cite", "bdi", "bdo", "kbd", "var"}
)
# Wrappers that a redesign adds and removes at will: left out of tag paths.
_NEUTRAL_TAGS = frozenset(
    {"html", "body", "head", "div", "span", "section", "article", "main", "p", "b", "strong"}
    | {"i", "em", "small", "font", "center", "u", "header", "footer", "aside"}
)
# HTML's implied end tags: opening the key closes an open element of the first group, searched
# for up to the nearest element of the second (an <li> of a nested list closes nothing outside).
_IMPLIED_END = {
    "li": (("li",), ("ul", "ol")),
    "td": (("td", "th"), ("tr", "table")),
    "th": (("td", "th"), ("tr", "table")),
    "tr": (("tr",), ("table", "thead", "tbody", "tfoot")),
    "dt": (("dt", "dd"), ("dl",)),
    "dd": (("dt", "dd"), ("dl",)),
    "option": (("option",), ("select", "optgroup", "datalist")),
    "p": (("p",), ("div", "section", "article", "main", "td", "li")),
}
_LABEL_CLASS_HINT = re.compile(r"label|caption", re.I)
_MAX_DEPTH = 256
_SENTENCE_MIN_WORDS = 4


class _Open:
    __slots__ = ("chrome", "context", "kind", "tag", "text", "weight")

    def __init__(self, tag: str, kind: str | None, context: str | None, chrome: bool):
        self.tag = tag
        self.kind = kind  # the family this element's own text goes to, if any
        # The nearest kind at or above this element: text without a kind flows up to it.
        self.context = context
        self.chrome = chrome
        self.weight = 1.0
        self.text: list[str] = []


class _PageParser(HTMLParser):
    """Collects a page's structural features; forgiving of malformed HTML, as browsers are."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.families: dict[str, dict[str, float]] = {name: {} for name in FAMILY_WEIGHTS}
        self.stack: list[_Open] = []
        self.skipping = 0

    # -- tags --

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skipping:
            if tag in _SKIPPED_TAGS:
                self.skipping += 1
            return
        attributes = {name: value or "" for name, value in attrs}
        if tag not in _SKIPPED_TAGS:
            self._close_implied(tag)
        role = self._role(tag, attributes)
        chrome = bool(self.stack and self.stack[-1].chrome) or role in _CHROME_ROLES
        if role:
            self._add("role", f"role:{role}", chrome)
        self._attributes(tag, attributes, chrome)
        if tag in _SKIPPED_TAGS:
            self.skipping = 1
            return
        self._path(tag, chrome)
        if tag in _VOID_TAGS or len(self.stack) >= _MAX_DEPTH:
            return
        kind = _TEXT_KIND_BY_ROLE.get(role) or _TEXT_KIND_BY_TAG.get(tag)
        if kind is None and _LABEL_CLASS_HINT.search(attributes.get("class", "")):
            kind = "label"
        context = self.stack[-1].context if self.stack else None
        if kind == "action" and tag == "a" and context == "data":
            kind = "data"  # a link in a table cell is a value: a claim number, a patient's name
        element = _Open(tag, kind, kind or context, chrome)
        if kind == "heading":
            level = attributes.get("aria-level", "") or tag[1:]
            element.weight = 1.0 if level in ("1", "2") else MINOR_HEADING_WEIGHT
        self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID_TAGS:  # closes, too, a skipped element it opened (<svg/>)
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            if tag in _SKIPPED_TAGS:
                self.skipping -= 1
            return
        # An end tag with no open element is ignored; one that skips open elements closes
        # them too (as a browser's parser does with <div><span></div>).
        for depth in range(len(self.stack) - 1, -1, -1):
            if self.stack[depth].tag == tag:
                while len(self.stack) > depth:
                    self._pop()
                return

    def handle_data(self, data: str) -> None:
        if self.skipping or not data.strip():
            return
        if self.stack:
            self.stack[-1].text.append(data)
        else:  # text outside any element: a fragment, or text after </html>
            self._free_text(data, None, chrome=False)

    def close(self) -> None:
        super().close()
        while self.stack:
            self._pop()

    # -- helpers --

    def _role(self, tag: str, attributes: dict[str, str]) -> str:
        """The element's explicit role, or the landmark role its tag implies."""
        role = attributes.get("role", "").strip().lower()
        if role or tag not in _LANDMARK_BY_TAG:
            return role
        # A <header> or <footer> is the page's banner or footer only outside sections.
        if tag in ("header", "footer") and any(o.tag in _SECTIONING_TAGS for o in self.stack):
            return ""
        return _LANDMARK_BY_TAG[tag]

    def _close_implied(self, tag: str) -> None:
        if tag not in _IMPLIED_END:
            return
        closes, bounds = _IMPLIED_END[tag]
        for depth in range(len(self.stack) - 1, -1, -1):
            open_tag = self.stack[depth].tag
            if open_tag in closes:
                while len(self.stack) > depth:
                    self._pop()
                return
            if open_tag in bounds:
                return

    def _pop(self) -> None:
        element = self.stack.pop()
        text = " ".join(element.text)
        if not text:
            return
        parent = self.stack[-1] if self.stack else None
        flows_up = element.context is not None or element.tag in _INLINE_TAGS
        if element.kind is None and parent is not None and flows_up:
            parent.text.append(text)
        elif element.kind in ("data", None):
            self._free_text(text, element.kind, element.chrome)
        else:
            words = _words(mask_text(text))
            if words:
                self._add(element.kind, words, element.chrome, element.weight)

    def _free_text(self, text: str, kind: str | None, chrome: bool) -> None:
        """Text outside labels and headings. "Label: value" pairs give a label; the value, and
        any short text that is not a sentence (a name, a status, an amount), gives only its
        shape; sentences (instructions, notices) keep their words."""
        *labels, value = mask_text(text).split(":")
        for label in labels:
            label = _words(label)
            if label and len(label.split()) <= 6:
                self._add("label", label, chrome)
        words = [w for w in _PLACEHOLDER_OR_WORD.findall(value) if not w.startswith("<")]
        if kind is None and len(words) >= _SENTENCE_MIN_WORDS:
            self._add("text", _words(value), chrome)
        else:
            shape = text_shape(value)
            if shape:
                self._add("data", shape, chrome)

    def _attributes(self, tag: str, attributes: dict[str, str], chrome: bool) -> None:
        get = attributes.get
        # In a table cell an aria-label names the row's data ("Select JOHNSON, EMILY").
        in_data = bool(self.stack and self.stack[-1].context == "data")
        for name in ("aria-label", "title"):
            if get(name, "").strip() and not in_data:
                self._add("role", f"aria:{_words(mask_text(get(name, '')))}", chrome)
        if tag == "input":
            input_type = get("type", "text").strip().lower() or "text"
            if input_type in ("submit", "button", "reset", "image"):
                text = get("value") or get("alt") or input_type
                self._add("action", _words(mask_text(text)), chrome)
            else:
                self._add("field", f"input:{input_type}:{_mask_name(get('name', ''))}", chrome)
        elif tag in ("select", "textarea"):
            self._add("field", f"{tag}:{_mask_name(get('name', ''))}", chrome)
        elif tag == "form":
            method = get("method", "get").strip().lower()
            for tail in _url_tails(get("action", "")):
                self._add("form", f"form:{method}:{tail}", chrome)
        elif tag == "a" and get("href", "").strip():
            href = get("href", "").strip()
            if not href.lower().startswith(("#", "javascript:", "mailto:", "tel:")):
                for tail in _url_tails(href):
                    self._add("action", f"href:{tail}", chrome, HREF_WEIGHT)
        placeholder = get("placeholder", "").strip()
        if placeholder and tag in ("input", "textarea"):
            self._add("field", f"placeholder:{_words(mask_text(placeholder))}", chrome)

    def _path(self, tag: str, chrome: bool) -> None:
        if tag in _NEUTRAL_TAGS:
            return
        path = [o.tag for o in self.stack if o.tag not in _NEUTRAL_TAGS][-2:] + [tag]
        if len(path) >= 2:
            self._add("path", ">".join(path[-2:]), chrome)
        if len(path) == 3:
            self._add("path", ">".join(path), chrome)

    def _add(self, family: str, feature: str, chrome: bool, weight: float = 1.0) -> None:
        if chrome:
            family, feature = "chrome", f"{family}:{feature}"
        features = self.families[family]
        if family in COUNTED_FAMILIES:
            features[feature] = features.get(feature, 0.0) + 1.0
        else:
            features[feature] = max(features.get(feature, 0.0), weight)


def page_features(html: str, url: str = "") -> dict[str, dict[str, float]]:
    """The page's features by family (see FAMILY_WEIGHTS): each masked feature with its
    weight (COUNTED_FAMILIES: its count).

    Raises ValueError for a page with nothing to embed.
    """
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    families = parser.families
    if not any(families.values()):
        raise ValueError(EMPTY_PAGE)
    families["url"] = dict.fromkeys(url_features(url), 1.0)
    return families


_SUMMARY_SECTIONS = (
    ("title", "Title"),
    ("url", "Page"),
    ("heading", "Headings"),
    ("label", "Labels"),
    ("field", "Fields"),
    ("action", "Buttons and links"),
    ("role", "Landmarks and ARIA labels"),
    ("text", "Text"),
    ("chrome", "Navigation"),
)
_SUMMARY_ITEMS = 40


def _readable(family: str, feature: str) -> str | None:
    """A feature as a text model should read it; None for what only the hash needs."""
    if family == "chrome":
        family, _, feature = feature.partition(":")
        if family != "action":  # the navigation's link and button texts are enough
            return None
    if feature.startswith(("href:", "seg:", "tail:", "q:")):
        return None
    return feature.partition(":")[2] if family == "role" else feature


def page_summary(html: str, url: str = "") -> str:
    """The page's masked structural features as text, for embedders that read text."""
    families = page_features(html, url)
    lines = []
    for family, heading in _SUMMARY_SECTIONS:
        items = [item for item in (_readable(family, f) for f in families[family]) if item]
        if items:
            lines.append(f"{heading}: " + "; ".join(items[:_SUMMARY_ITEMS]))
    return "\n".join(lines)


# --- Embedders ---


def _check_dimension(dimension: int, what: str) -> None:
    if not 1 <= dimension <= DIMENSION:
        raise ImproperlyConfigured(
            DIMENSION_OUT_OF_RANGE.format(what=what, dimension=dimension, limit=DIMENSION)
        )


class Embedder(ABC):
    """Turns pages and texts into ``DIMENSION``-D float32 unit vectors.

    Subclasses produce ``native_dimension``-D vectors in ``_embed_texts`` (and may embed pages
    their own way in ``_embed_pages``); this class checks, pads and normalises them.
    """

    model_id: str
    native_dimension: int

    @abstractmethod
    def _embed_texts(self, texts: list[str]) -> Sequence[Sequence[float]]:
        """One native_dimension-D vector per text (not necessarily normalised)."""

    def _embed_pages(self, pages: list[tuple[str, str]]) -> Sequence[Sequence[float]]:
        return self._embed_texts([page_summary(html, url) for html, url in pages])

    def embed_page(self, html: str, url: str = "") -> np.ndarray:
        """The page as a (DIMENSION,) float32 unit vector; ValueError for an empty page."""
        return self.embed_pages([(html, url)])[0]

    def embed_pages(self, pages: list[tuple[str, str]]) -> np.ndarray:
        """(html, url) pairs as an (n, DIMENSION) float32 array of unit rows."""
        if not pages:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        return self._unit_rows(self._embed_pages(list(pages)), len(pages))

    def embed_text(self, text: str) -> np.ndarray:
        """The text as a (DIMENSION,) float32 unit vector; ValueError for an empty text."""
        if not text.strip():
            raise ValueError(EMPTY_TEXT)
        return self._unit_rows(self._embed_texts([text]), 1)[0]

    def _unit_rows(self, vectors: Sequence[Sequence[float]], count: int) -> np.ndarray:
        def refuse(problem: str) -> EmbeddingError:
            return EmbeddingError(BAD_VECTOR.format(model_id=self.model_id, problem=problem))

        try:
            rows = np.asarray(vectors, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise refuse("not a matrix of numbers") from exc
        if rows.shape != (count, self.native_dimension):
            raise refuse(f"shape {rows.shape}, expected {(count, self.native_dimension)}")
        if not np.isfinite(rows).all():
            raise refuse("not finite")
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        if (norms == 0).any():
            raise refuse("all zeros")
        # Zero-padding after normalising keeps the norm 1 and every dot product unchanged.
        padded = np.zeros((count, DIMENSION), dtype=np.float32)
        padded[:, : self.native_dimension] = rows / norms
        return padded


def _bucket(feature: str) -> tuple[int, float]:
    """A stable bucket and sign (blake2b, not hash(), which is salted per process)."""
    digest = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
    return digest % DIMENSION, 1.0 if digest >> 63 else -1.0


def _add_hashed(vector: np.ndarray, features: dict[str, float]) -> None:
    # Sorted, so that the float sums run in the same order in every process.
    for feature in sorted(features):
        bucket, sign = _bucket(feature)
        vector[bucket] += sign * features[feature]


class StructuralEmbedder(Embedder):
    """The page's masked structure hashed into DIMENSION signed buckets (feature hashing)."""

    model_id = "structural-v1"
    native_dimension = DIMENSION

    def _embed_pages(self, pages: list[tuple[str, str]]) -> list[np.ndarray]:
        return [self._page_vector(page_features(html, url)) for html, url in pages]

    def _page_vector(self, families: dict[str, dict[str, float]]) -> np.ndarray:
        vector = np.zeros(DIMENSION)
        for family, weight in FAMILY_WEIGHTS.items():
            weighted: dict[str, float] = {}
            for feature, value in families[family].items():
                if family in COUNTED_FAMILIES:
                    # A logarithm damps repetition: 3 or 12 rows of claims are the same page.
                    value = 1.0 + math.log(value)
                weighted[f"{family}|{feature}"] = value
                if family in WORDY_FAMILIES:
                    for word in _WORD.findall(feature):
                        key = f"{family}~{word}"
                        weighted[key] = weighted.get(key, 0.0) + WORD_WEIGHT * value
            family_vector = np.zeros(DIMENSION)
            _add_hashed(family_vector, weighted)
            norm = np.linalg.norm(family_vector)
            if norm:
                vector += weight * family_vector / norm
        return vector

    def _embed_texts(self, texts: list[str]) -> list[np.ndarray]:
        vectors = []
        for text in texts:
            words = _WORD.findall(mask_text(text))
            if not words:
                raise ValueError(EMPTY_TEXT)
            grams = Counter(words) + Counter(f"{a} {b}" for a, b in itertools.pairwise(words))
            vector = np.zeros(DIMENSION)
            _add_hashed(vector, {gram: 1.0 + math.log(n) for gram, n in grams.items()})
            vectors.append(vector)
        return vectors


class SentenceTransformerEmbedder(Embedder):
    """A local sentence-transformers model; loaded from the cache or a path, never downloaded."""

    def __init__(self, model_name: str):
        if not model_name:
            raise ImproperlyConfigured(ST_NO_MODEL)
        # Read by huggingface_hub when it is imported: set before the import below.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ImproperlyConfigured(ST_NOT_INSTALLED) from exc
        try:
            self.model = SentenceTransformer(model_name, local_files_only=True)
        except Exception as exc:  # OSError, ValueError, the hub's own errors: all mean "absent"
            raise ImproperlyConfigured(
                ST_MODEL_UNAVAILABLE.format(model=model_name, error=exc)
            ) from exc
        self.native_dimension = int(self.model.get_sentence_embedding_dimension())
        _check_dimension(self.native_dimension, f"The model {model_name!r}")
        self.model_id = f"st:{model_name}@{SUMMARY_VERSION}"

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, convert_to_numpy=True, show_progress_bar=False)


class HttpEmbedder(Embedder):
    """An OpenAI-compatible embeddings service: POST {url}/embeddings."""

    def __init__(
        self, *, url: str, model: str, api_key: str = "", dimension: int, timeout_s: float
    ):
        if not url.startswith(("http://", "https://")):
            raise ImproperlyConfigured(HTTP_NO_URL)
        if not model:
            raise ImproperlyConfigured(HTTP_NO_MODEL)
        _check_dimension(dimension, "MEMORY_EMBEDDER_DIMENSION")
        self.endpoint = url.rstrip("/") + "/embeddings"
        self.host = httpx.URL(url).host
        self.model = model
        self.api_key = api_key
        self.native_dimension = dimension
        self.timeout_s = timeout_s
        self.model_id = f"http:{model}@{SUMMARY_VERSION}"

    def _embed_texts(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), HTTP_BATCH_SIZE):
            vectors += self._request(texts[start : start + HTTP_BATCH_SIZE])
        return vectors

    def _request(self, texts: list[str]) -> list[list[float]]:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            response = httpx.post(
                self.endpoint,
                json={"model": self.model, "input": texts},
                headers=headers,
                timeout=self.timeout_s,
            )
        except httpx.HTTPError as exc:
            raise EmbeddingError(
                HTTP_UNREACHABLE.format(host=self.host, error=type(exc).__name__)
            ) from exc
        if response.status_code != 200:
            raise EmbeddingError(
                HTTP_BAD_STATUS.format(host=self.host, status=response.status_code)
            )
        return self._vectors(response, len(texts))

    def _vectors(self, response: httpx.Response, count: int) -> list[list[float]]:
        def refuse(problem: str) -> EmbeddingError:
            return EmbeddingError(HTTP_BAD_ANSWER.format(host=self.host, problem=problem))

        try:
            data = response.json()["data"]
        except (ValueError, KeyError, TypeError) as exc:
            raise refuse("no 'data' list") from exc
        if not isinstance(data, list) or len(data) != count:
            raise refuse(f"expected {count} embeddings")
        # OpenAI's answer carries each input's index; order by it when it is there.
        if all(isinstance(item, dict) and isinstance(item.get("index"), int) for item in data):
            data = sorted(data, key=lambda item: item["index"])
        vectors = []
        for item in data:
            vector = item.get("embedding") if isinstance(item, dict) else None
            if not isinstance(vector, list) or len(vector) != self.native_dimension:
                size = len(vector) if isinstance(vector, list) else "no"
                raise refuse(
                    f"an embedding has {size} values, expected {self.native_dimension} "
                    "(MEMORY_EMBEDDER_DIMENSION)"
                )
            if not all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in vector
            ):
                raise refuse("an embedding holds values that are not finite numbers")
            vectors.append(vector)
        return vectors


@functools.cache
def embedder() -> Embedder:
    """The configured embedder (settings.MEMORY_EMBEDDER), built once per process."""
    name = settings.MEMORY_EMBEDDER
    if name == "structural":
        return StructuralEmbedder()
    if name == "sentence-transformers":
        return SentenceTransformerEmbedder(settings.MEMORY_EMBEDDER_MODEL)
    if name == "http":
        return HttpEmbedder(
            url=settings.MEMORY_EMBEDDER_URL,
            model=settings.MEMORY_EMBEDDER_MODEL,
            api_key=settings.MEMORY_EMBEDDER_API_KEY,
            dimension=settings.MEMORY_EMBEDDER_DIMENSION,
            timeout_s=settings.MEMORY_EMBEDDER_TIMEOUT_S,
        )
    raise ImproperlyConfigured(UNKNOWN_EMBEDDER.format(allowed=", ".join(EMBEDDERS), name=name))


def embedder_check() -> None:
    """Build the configured embedder, so that a bad configuration fails at start-up."""
    embedder()
