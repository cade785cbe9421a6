"""Carrying out an action list (webactions/actions.py) on a Playwright page.

Targets are resolved from their description alone, through what the page exposes to a person
and to assistive technology: a label, a role and accessible name, visible text, a
placeholder. The match must be exact and single: no element, or several, is a failure that
names the target and what was found, and nothing is clicked or typed. A refused action is
better than the wrong one. (Memory-driven resolution and repair of drifted targets build on
this in the next release.)

Failures carry a ``kind`` the engine maps onto its outcomes: a page that does not answer in
time, a 5xx or a 429 is transient (retried per the node's policy); a target not found or
ambiguous, a host the endpoint does not allow, an expected text missing are permanent for the
attempt. Values a failure message quotes are the target's description and the page's status,
never a filled value (a member id, a password).
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urljoin, urlsplit

from django.conf import settings

from rcm import addresses, phi
from webactions.actions import describe
from webactions.totp import totp_now

DEFAULT_TIMEOUT_MS = 15_000
# A model provider that is down or slow (tier 3) is as transient as a portal that is.
TRANSIENT_KINDS = (
    "page_timeout", "page_unreachable", "http_5xx", "http_429", "browser_error",
    "memory_unavailable", "llm_unavailable", "llm_timeout",
)  # fmt: skip
# Chromium's network errors that say the portal is not reachable now (down, restarting, DNS):
# worth another attempt, like a 5xx.
UNREACHABLE = (
    "ERR_CONNECTION_", "ERR_NAME_NOT_RESOLVED", "ERR_ADDRESS_UNREACHABLE", "ERR_TIMED_OUT",
    "ERR_NETWORK_", "ERR_INTERNET_DISCONNECTED", "ERR_EMPTY_RESPONSE",
)  # fmt: skip


@dataclass
class ActionResult:
    """What one action did: for the step's trace, one row per action."""

    number: int
    tool: str
    target: str = ""  # the description, as people read it
    resolved: str = ""  # how it was found: 'label "Member ID"', 'role button "Search"'
    duration_ms: int = 0
    success: bool = True
    error_kind: str = ""
    error: str = ""
    # How the target was found (webactions/agent.py): tier 1 memory, 2 the page scored, 3 a
    # model; None when the action has no target or none was found (then the reason says why).
    tier: int | None = None
    tier_reason: str = ""
    state: int | None = None  # the remembered state used or compared with
    similarity: float | None = None  # of the page to that state
    resolve_ms: float | None = None  # memory and checks, without the browser's action
    resolve_parts: dict | None = None  # resolve_ms by part: read, mask, embed, search, check
    repair: dict | None = None  # before, after, score and runner-up of a tier-2 repair
    llm: dict | None = None  # prompt, response, model, tokens of a tier-3 answer


class ActionFailed(Exception):
    """An action that could not be carried out; ``kind`` says how, ``results`` what ran (and
    ``screenshots`` what the screenshot actions before it took)."""

    def __init__(self, kind: str, message: str, results: list[ActionResult] | None = None):
        super().__init__(message)
        self.kind = kind
        self.results = results or []
        self.screenshots: list[tuple[str, bytes]] = []

    @property
    def transient(self) -> bool:
        return self.kind in TRANSIENT_KINDS


@dataclass
class Outcome:
    outputs: dict = field(default_factory=dict)
    results: list[ActionResult] = field(default_factory=list)
    screenshots: list[tuple[str, bytes]] = field(default_factory=list)  # (name, PNG)


class _Statuses:
    """The status of the last document the page loaded (a navigation, a form's answer)."""

    def __init__(self, page):
        self.last: int | None = None
        self.url = ""
        page.on("response", self._seen)
        self._page = page

    def stop(self) -> None:
        # A kept page serves the next attempt too: its listeners must not pile up.
        self._page.remove_listener("response", self._seen)

    def _seen(self, response) -> None:
        if response.request.is_navigation_request() and response.frame == self._page.main_frame:
            self.last, self.url = response.status, response.url

    def check(self) -> None:
        if self.last is None:
            return
        status, self.last = self.last, None
        if status == 429:
            raise ActionFailed(
                "http_429", f"the portal answered 429 (too many requests) at {address_of(self.url)}"
            )
        if status >= 500:
            raise ActionFailed(
                "http_5xx", f"the portal answered {status} at {address_of(self.url)}"
            )


def address_of(url: str) -> str:
    """A URL as a message may quote it: host and path, never the query, and the path masked
    (portals put member IDs in it: /members/W100007919/). The caller masks the row's own
    values again, which no shape finds (a name in a path)."""
    parts = urlsplit(url)
    return f"{parts.netloc}{phi.mask(unquote(parts.path))}"


def run_actions(
    page,
    actions: list[dict],
    *,
    render: Callable[[str], str],
    base_url: str,
    allowed_hosts: set[str],
    secrets: dict | None = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    stop: threading.Event | None = None,
    agent=None,
) -> Outcome:
    """Carry out ``actions`` in order; the extracted fields and a result per action.

    ``render`` turns a value template into text (the caller puts the credential in its
    context); ``allowed_hosts``: where ``goto`` may go (the endpoint's own host and those its
    config allows); ``stop``, once set, ends the list before its next action (``cancelled``);
    ``agent`` (webactions/agent.py) finds targets through memory and repairs them, and learns
    from every action; without one, a target is found by its exact description alone.
    """
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    outcome = Outcome()
    statuses = _Statuses(page)
    # What the guard refused before this list (an earlier attempt in a kept context, an image
    # a page asked for) is not this list's failure.
    _BLOCKED.get(page.context, []).clear()
    try:
        for number, action in enumerate(actions, start=1):
            tool = action["tool"]
            target = action.get("target")
            result = ActionResult(
                number=number, tool=tool, target=describe(target) if target else ""
            )
            started = time.perf_counter()
            limit = action.get("timeout_ms", timeout_ms)
            try:
                if stop is not None and stop.is_set():
                    raise ActionFailed("cancelled", f"cancelled before action {number} ({tool})")
                _perform(
                    page,
                    action,
                    result,
                    outcome,
                    _Doing(render, base_url, allowed_hosts, secrets, limit, agent),
                )
                statuses.check()
            except PlaywrightTimeout:
                failure = ActionFailed(
                    "page_timeout",
                    f"action {number} ({tool}): the page did not get there within {limit} ms"
                    + (f" ({result.target})" if result.target else ""),
                )
            except ActionFailed as failed:
                failure = failed
            except PlaywrightError as exc:
                failure = _browser_failure(number, tool, exc, _BLOCKED.get(page.context))
            else:
                failure = None
            result.duration_ms = int((time.perf_counter() - started) * 1000)
            outcome.results.append(result)
            if failure is not None:
                result.success, result.error_kind, result.error = False, failure.kind, str(failure)
            if agent is not None:
                agent.settle(result)
            if failure is not None:
                failure.results, failure.screenshots = outcome.results, outcome.screenshots
                raise failure
    finally:
        statuses.stop()
    return outcome


def _browser_failure(
    number: int, tool: str, exc: Exception, blocked: list[str] | None
) -> ActionFailed:
    """A browser error as a failure the engine understands; the message keeps Chromium's code
    and the host, never the URL's query or a value."""
    if blocked:
        # The guard aborted a request (Chromium then reports the abort, or a navigation
        # "interrupted" by its error page, depending on how far the page had got).
        host = blocked.pop()
        blocked.clear()
        return ActionFailed(
            "forbidden_address",
            f"action {number} ({tool}): refused at {host}: not a public address",
        )
    text = str(exc)
    code = re.search(r"net::(ERR_[A-Z_]+)", text)
    at = re.search(r" at (https?://\S+)", text)
    where = f" at {urlsplit(at.group(1)).hostname}" if at else ""
    if code and code.group(1).startswith(UNREACHABLE):
        return ActionFailed("page_unreachable", f"action {number} ({tool}): {code.group(1)}{where}")
    reason = code.group(1) if code else type(exc).__name__
    return ActionFailed("page_error", f"action {number} ({tool}): the browser said {reason}")


# context -> the hosts its guard refused since the last failure was reported.
_BLOCKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def guard_addresses(browser_context, trusted: tuple[str, ...] = ()) -> None:
    """Every request the context's pages make (navigations, frames, scripts, images, forms)
    goes to a public address, or is aborted: a portal page cannot lead the browser into the
    private network (rcm/addresses.py). The platform's own sandbox stays reachable.

    ``trusted``: URL prefixes checked already (the endpoint's own origin, found public when the
    context was made): their requests are not intercepted at all, which spares a portal's own
    pages a round trip through Python each (an eighth of a row's time).
    """
    if addresses.private_allowed():
        return
    verdicts: dict[str, bool] = {}  # host -> internal, for the context's life
    blocked = _BLOCKED[browser_context] = []

    def _route(route) -> None:
        url = route.request.url
        host = urlsplit(url).hostname or ""
        if host not in verdicts:
            try:
                verdicts[host] = addresses.internal_host(host)
            except addresses.Unresolved:
                verdicts[host] = False  # Chromium will fail to resolve it too: unreachable
        if verdicts[host] and not addresses.own_sandbox(url):
            blocked.append(host)
            route.abort("blockedbyclient")
        else:
            route.continue_()

    if trusted:
        others = re.compile("^(?!" + "|".join(re.escape(prefix) for prefix in trusted) + ")")
        browser_context.route(others, _route)
    else:
        browser_context.route("**/*", _route)


def trusted_prefixes(base_url: str) -> tuple[str, ...]:
    """The prefix of ``base_url`` whose requests need no check: its origin when it is public,
    the platform's own /sandbox/ when it is that; none otherwise (every request checked)."""
    if addresses.private_allowed():
        return ()
    if addresses.own_sandbox(base_url):
        return (f"{addresses.origin(settings.PUBLIC_BASE_URL)}/sandbox/",)
    try:
        internal = addresses.internal_host(urlsplit(base_url).hostname or "")
    except addresses.Unresolved:
        return ()
    return () if internal else (f"{addresses.origin(base_url)}/",)


@dataclass(frozen=True)
class _Doing:
    """What every action of a list is carried out with."""

    render: Callable[[str], str]
    base_url: str
    allowed_hosts: set[str]
    secrets: dict | None
    limit: int
    agent: object = None  # webactions.agent.Agent

    def element(self, page, action: dict, result: ActionResult, *, usable: bool):
        """The one element the action's target is, and whether clicking it loads a page."""
        if self.agent is not None:
            return self.agent.element(page, action, result, self.limit, usable=usable)
        if usable:
            return _usable_single(page, action["target"], result, self.limit)
        return _single(page, action["target"], result, self.limit), False


def _perform(page, action, result, outcome, doing: _Doing):
    tool, render, limit = action["tool"], doing.render, doing.limit
    if tool == "goto":
        url = urljoin(doing.base_url, render(action["url"]))
        host = urlsplit(url).hostname or ""
        if urlsplit(url).scheme not in ("http", "https") or host not in doing.allowed_hosts:
            raise ActionFailed(
                "forbidden_host",
                f"action {result.number} (goto): {host or url!r} is not a host of this endpoint "
                f"(allowed: {', '.join(sorted(doing.allowed_hosts))})",
            )
        page.goto(url, timeout=limit, wait_until="domcontentloaded")
        result.resolved = address_of(url)
    elif tool in ("fill", "select", "check", "click", "totp"):
        element, navigates = doing.element(page, action, result, usable=True)
        if tool == "fill":
            element.fill(render(action["value"]), timeout=limit)
        elif tool == "select":
            element.select_option(label=render(action["value"]), timeout=limit)
        elif tool == "check":
            element.set_checked(action.get("checked", True), timeout=limit)
        elif tool == "totp":
            seed = (doing.secrets or {}).get("totp_seed")
            if not seed:
                raise ActionFailed(
                    "no_totp_seed",
                    f"action {result.number} (totp): the credential has no TOTP seed",
                )
            element.fill(totp_now(seed), timeout=limit)
        else:
            with (
                page.expect_navigation(wait_until="domcontentloaded", timeout=limit)
                if navigates
                else contextlib.nullcontext()
            ):
                element.click(timeout=limit)
    elif tool == "press":
        key = render(action["key"])
        if action.get("target"):
            doing.element(page, action, result, usable=False)[0].press(key, timeout=limit)
        else:
            page.keyboard.press(key)
    elif tool == "wait_for":
        if action.get("target"):
            doing.element(page, action, result, usable=False)
        else:
            page.get_by_text(render(action["text"])).first.wait_for(timeout=limit)
            result.resolved = f'text "{action["text"]}"'
    elif tool == "assert_text":
        text = render(action["text"])
        if not page.get_by_text(text).count():
            raise ActionFailed(
                "text_missing",
                f"action {result.number} (assert_text): the page does not say {action['text']!r}",
            )
    elif tool == "extract":
        fields = action["fields"]
        # The label each value is read by: the described one, or the one the agent found.
        shown = doing.agent.labels(page, action, result) if doing.agent is not None else {}
        labels = {
            name: shown.get(name, spec["label"]) for name, spec in fields.items() if "label" in spec
        }
        beside = values_beside(page, list(set(labels.values())))
        for name, spec in fields.items():
            if "label" in spec:
                count, text = beside[labels[name]]
                outcome.outputs[name] = _labelled_value(
                    page, labels[name], count, text, result, limit
                )
            else:
                outcome.outputs[name] = _table_rows(page, spec["table"], result, limit)
    elif tool == "screenshot":
        # Apart from the outputs, which enter the run's context: a screenshot is PHI, kept by
        # the caller per organization.
        name = action.get("name", f"action-{result.number}")
        outcome.screenshots.append((name, page.screenshot(full_page=True)))


# Whether clicking an element submits a form or follows a link (and so loads a page).
NAVIGATES_JS = """e => !!(
    e.closest('a[href]') || (e.form && (e.type === 'submit' || (
        e.tagName === 'BUTTON' && !e.getAttribute('type'))))
)"""


def _candidates(page, target: dict):
    exact = target.get("exact", True)
    if target.get("role"):
        found = page.get_by_role(target["role"], name=target.get("name"), exact=exact)
        how = f"role {target['role']}" + (f' "{target["name"]}"' if target.get("name") else "")
    elif target.get("label"):
        found, how = page.get_by_label(target["label"], exact=exact), f'label "{target["label"]}"'
    elif target.get("placeholder"):
        found = page.get_by_placeholder(target["placeholder"], exact=exact)
        how = f'placeholder "{target["placeholder"]}"'
    else:
        found, how = page.get_by_text(target["text"], exact=exact), f'text "{target["text"]}"'
    return found, how


def is_shown(page, target: dict) -> bool:
    """Whether the page shows ``target`` now (a log-in page's password box, say)."""
    found, _ = _candidates(page, target)
    return found.count() > 0


def _single(page, target: dict, result: ActionResult, limit: int):
    """The one element ``target`` describes, waiting up to ``limit`` for it to appear."""
    found, _ = _probed(page, target, result, limit, usable=False)
    return found


def _usable_single(page, target: dict, result: ActionResult, limit: int):
    """The one element ``target`` describes, usable by a person (``UNUSABLE_JS``), waiting up
    to ``limit`` for it; and whether clicking it loads a page."""
    found, (_, why, navigates) = _probed(page, target, result, limit, usable=True)
    if why:
        raise ActionFailed(
            f"target_{why}",
            f"action {result.number} ({result.tool}): {describe(target)} {UNUSABLE[why]} "
            f"on {address_of(page.url)}; nothing was done",
        )
    return found, navigates


def probe(page, target: dict, wait_ms: int, *, usable: bool, script: str = ""):
    """The locator of ``target``, how it was found, and its probe: how many match and, for a
    single one, why a person could not use it and whether clicking it loads a page — in one
    trip to the page a try (a count, a check and a look at the form were three: a tenth of a
    row's actions). Waits up to ``wait_ms`` for one (usable) match. ``script`` replaces the
    probe (it receives the matches and starts with the same three answers)."""
    script = script or _PROBE_JS
    found, how = _candidates(page, target)
    deadline = time.monotonic() + wait_ms / 1000
    answer = found.evaluate_all(script)
    while (not answer[0] or (usable and answer[0] == 1 and answer[1])) and (
        time.monotonic() < deadline
    ):
        page.wait_for_timeout(100)
        answer = found.evaluate_all(script)
    if answer[0] > 1 and target.get("css"):
        # The hint chooses among exact matches; it never finds what the description did not.
        narrowed = found.and_(page.locator(target["css"]))
        narrowed_answer = narrowed.evaluate_all(script)
        if narrowed_answer[0] == 1:
            found, answer, how = narrowed, narrowed_answer, f"{how} + css {target['css']}"
    return found, how, answer


def _probed(page, target: dict, result: ActionResult, limit: int, *, usable: bool):
    """The locator of ``target`` and its probe (``probe``), or the failure that says why there
    is not exactly one."""
    found, how, probe_ = probe(page, target, limit, usable=usable)
    result.resolved = how
    count = probe_[0]
    if count == 0:
        raise ActionFailed(
            "target_not_found",
            f"action {result.number} ({result.tool}): no element is {describe(target)} "
            f"on {address_of(page.url)}",
        )
    if count > 1:
        raise ActionFailed(
            "target_ambiguous",
            f"action {result.number} ({result.tool}): {count} elements are {describe(target)} "
            f"on {address_of(page.url)}; nothing was done",
        )
    return found, probe_


# Why an element may not be acted on, checked in the page: hidden (not rendered, no size,
# transparent), disabled, a button or link whose visible text contradicts its name, outside
# the page even after scrolling, or covered at its centre by another element (an overlay, a
# pop-up). A label's click lands on its control, so a control covered by its own label (a
# styled checkbox) is not covered.
UNUSABLE_JS = r"""e => {
    const PRESSABLE = 'button, a[href], input[type=submit], input[type=reset], input[type=button], '
        + '[role=button], [role=link], [role=tab], [role=menuitem]';
    const style = getComputedStyle(e);
    const box = e.getBoundingClientRect();
    if (style.visibility !== 'visible' || style.display === 'none' || !box.width || !box.height)
        return 'hidden';
    const labels = [...(e.labels || [])];
    // Transparent: a trap for whoever clicks what the DOM has; a control styled away behind
    // its label (a custom checkbox) is used through that label.
    for (let n = e; n && !labels.length; n = n.parentElement)
        if (getComputedStyle(n).opacity === '0') return 'hidden';
    if (e.disabled || e.closest('fieldset:disabled') || e.getAttribute('aria-disabled') === 'true')
        return 'disabled';
    // A button or link shows its name: a visible text that is not part of the name assistive
    // technology reads (WCAG 2.5.3, label in name) is a page that says two things; the one we
    // matched may not be the one a person means ("Search" on a button that shows "Reset").
    const named = e.getAttribute('aria-label') || (e.getAttribute('aria-labelledby') || '')
        .split(/\s+/).map(id => document.getElementById(id)?.innerText || '').join(' ').trim();
    const shown = (e.innerText || (e.type === 'submit' || e.type === 'reset' || e.type === 'button'
        ? e.value : '') || '').trim();
    if (e.matches(PRESSABLE) && named && /\p{L}/u.test(shown)
            && !named.toLowerCase().includes(shown.toLowerCase()))
        return 'mislabelled';
    const centre = b => [b.left + b.width / 2, b.top + b.height / 2];
    const outside = ([x, y]) => x < 0 || y < 0 || x >= innerWidth || y >= innerHeight;
    let [x, y] = centre(box);
    if (outside([x, y])) {
        // Scrolled to only when needed: a scroll costs a layout on every action.
        e.scrollIntoView({block: 'center', inline: 'center'});
        [x, y] = centre(e.getBoundingClientRect());
        if (outside([x, y])) return 'outside';
    }
    const top = document.elementFromPoint(x, y);
    const own = n => n && (n === e || e.contains(n) || labels.some(l => l.contains(n)));
    return own(top) ? '' : 'covered';
}"""
UNUSABLE = {
    "hidden": "is not visible",
    "disabled": "is disabled",
    "outside": "is outside the page",
    "covered": "is covered by another element",
    "mislabelled": "shows a text that is not part of its name (it may not be what it is called)",
}


_PROBE_JS = f"""els => els.length === 1
    ? [1, ({UNUSABLE_JS})(els[0]), ({NAVIGATES_JS})(els[0])]
    : [els.length, '', false]"""


# The value beside a label: a table's header cell and its data cell, a definition list's term
# and its description, a label and the element it names.
_VALUE_BESIDE = "//*[self::th or self::dt][normalize-space(.)={label}]/following-sibling::*[1]"
# Every label's matches counted, and the single one's text read, in one trip to the page (a
# round trip per label and per read was a tenth of a row's time).
_VALUES_BESIDE_JS = """paths => paths.map(path => {
    const found = document.evaluate(
        path, document, null, XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null);
    return [found.snapshotLength,
            found.snapshotLength === 1 ? found.snapshotItem(0).innerText.trim() : null];
})"""


def values_beside(page, labels: list[str]) -> dict[str, tuple[int, str | None]]:
    """label -> (how many values sit beside it, the text of the one) for every label."""
    if not labels:
        return {}
    paths = [_VALUE_BESIDE.format(label=_xpath_literal(label)) for label in labels]
    return {
        label: (count, text)
        for label, (count, text) in zip(
            labels, page.evaluate(_VALUES_BESIDE_JS, paths), strict=True
        )
    }


def _labelled_value(
    page, label: str, count: int, text: str | None, result: ActionResult, limit: int
) -> str:
    value_target = {"label": label}
    if count == 0:
        # A form field's label: the value typed or shown in it.
        field_ = page.get_by_label(label, exact=True)
        if field_.count() == 1:
            return field_.input_value(timeout=limit)
    if count != 1:
        kind = "target_not_found" if count == 0 else "target_ambiguous"
        raise ActionFailed(
            kind,
            f"action {result.number} (extract): {count} values are labelled "
            f"{describe(value_target)} on {address_of(page.url)}",
        )
    return text


def _table_rows(page, name: str, result: ActionResult, limit: int) -> list[dict]:
    """A table as rows keyed by its header cells; found by caption, by the heading just
    before it, or by id."""
    literal = _xpath_literal(name)
    found = page.locator(
        f"xpath=//table[caption[normalize-space(.)={literal}] or @id={literal} or "
        f"preceding-sibling::*[self::h1 or self::h2 or self::h3][1][normalize-space(.)={literal}]]"
    )
    if found.count() != 1:
        raise ActionFailed(
            "target_not_found" if not found.count() else "target_ambiguous",
            f"action {result.number} (extract): {found.count()} tables are called {name!r} "
            f"on {address_of(page.url)}",
        )
    return found.evaluate(_TABLE_ROWS_JS)


_TABLE_ROWS_JS = """t => {
    const text = e => e.innerText.trim();
    const headers = [...t.querySelectorAll('thead th, tr:first-child th')].map(text);
    const rows = [...t.querySelectorAll('tbody tr')].filter(r => r.querySelector('td'));
    return rows.map(r => Object.fromEntries(
        [...r.querySelectorAll('td')].map((c, i) => [headers[i] || String(i), text(c)])
    ));
}"""


def _xpath_literal(text: str) -> str:
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    parts = text.split("'")
    return "concat(" + ', "\'", '.join(f"'{part}'" for part in parts) + ")"
