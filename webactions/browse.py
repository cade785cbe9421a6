"""One browser attempt on an endpoint: log in where needed, carry out the actions.

Runs in the browser thread (webactions/pool.py): it touches no database; what the task's
thread needs afterwards (the traces, a new log-in to keep, the outcome the page shows) is kept
on the object.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tenants.models import Endpoint
from webactions.agent import Agent, Memory
from webactions.executor import (
    ActionFailed,
    address_of,
    is_shown,
    run_actions,
)
from workflows import public as engine

LOGIN_REFUSED = "login_refused"
# A failing page's DOM beyond this is cut (masked and stored with its screenshot).
MAX_DOM_CHARS = 500_000


@dataclass
class Capture:
    """A screenshot taken in the attempt: by a screenshot action, or of the page an action
    failed on (then with its DOM, masked before it is stored)."""

    name: str
    reason: str  # "requested" | "failure" | "repair"
    page: str  # host and path
    image: bytes
    dom: str = ""


@dataclass
class Browse:
    """One attempt in the browser thread: log in where needed, carry out the actions.

    A stored log-in is tried first; if the actions fail on the portal's log-in page (the
    session ended early), it logs in and starts the actions over, once. What it learns for the
    task's thread (traces, a new session to store, the outcome the page shows) is kept here.
    """

    endpoint: Endpoint
    login: dict | None
    actions: list
    outcomes: dict
    context: dict
    secrets: dict
    timeout_ms: int
    logged_in: bool
    memory: Memory | None = None  # the web agent's: targets found and repaired through it
    stop: threading.Event = field(default_factory=threading.Event)
    results: list = field(default_factory=list)
    captures: list[Capture] = field(default_factory=list)
    new_state: dict | None = None
    shown: str | None = None

    def run(self, slot):
        """The job the browser thread runs (webactions/pool.py) on ``slot``'s page, logged in
        already when the stored log-in was loaded into its context or the page is kept from
        an earlier attempt (a portal that asks again is logged in again)."""
        browser_context, page = slot.context, slot.page
        logged_in = self.logged_in or slot.kept
        try:
            if self.login and not logged_in:
                self._log_in(page)
            try:
                outcome = self._run(page, self.actions)
            except ActionFailed:
                if not (self.login and is_shown(page, self.login["page"])):
                    raise
                # The stored session is over: the portal asks again.
                self._log_in(page)
                outcome = self._run(page, self.actions)
        except ActionFailed as failure:
            self.shown = self._outcome_shown(page)
            self._keep_screenshots(page, failure.screenshots)
            if failure.kind != "cancelled":
                self._capture_failure(page)
            answer = failure
        else:
            self._keep_screenshots(page, outcome.screenshots)
            answer = outcome
        if self.new_state is not None:
            # Logged in during this attempt (whatever the actions found): kept for the next.
            self.new_state = browser_context.storage_state()
        return answer

    def _keep_screenshots(self, page, screenshots) -> None:
        self.captures += [
            Capture(name=name, reason="requested", page=address_of(page.url), image=image)
            for name, image in screenshots
        ]

    def _capture_failure(self, page) -> None:
        """The page as it was when the action failed: what an operator looks at first."""
        from playwright.sync_api import Error as PlaywrightError

        try:
            image = page.screenshot(full_page=True, timeout=10_000)
            dom = page.content()[:MAX_DOM_CHARS]
        except PlaywrightError:
            return  # the page crashed or closed: nothing to show
        self.captures.append(
            Capture(
                name="failure", reason="failure", page=address_of(page.url), image=image, dom=dom
            )
        )

    def _capture_repair(self, page, name: str) -> None:
        """The page a target was repaired on, as it was before the action: the trace's
        evidence of what the agent chose."""
        from playwright.sync_api import Error as PlaywrightError

        try:
            image = page.screenshot(full_page=True, timeout=10_000)
        except PlaywrightError:
            return
        self.captures.append(
            Capture(name=name, reason="repair", page=address_of(page.url), image=image)
        )

    def _log_in(self, page) -> None:
        self._run(page, self.login["actions"], phase="login")
        if is_shown(page, self.login["page"]):
            raise ActionFailed(
                LOGIN_REFUSED,
                "the portal showed its log-in page again after the log-in: it refused the "
                "credential",
            )
        self.new_state = {}  # taken from the context once the actions are done

    def _run(self, page, actions, phase: str = "actions"):
        try:
            outcome = run_actions(
                page,
                actions,
                render=lambda text: _rendered(text, self.context),
                base_url=self.endpoint.effective_base_url,
                allowed_hosts=endpoint_hosts(self.endpoint),
                secrets=self.secrets,
                timeout_ms=self.timeout_ms,
                stop=self.stop,
                agent=Agent(memory=self.memory, phase=phase, capture=self._capture_repair)
                if self.memory
                else None,
            )
        except ActionFailed as failure:
            self.results += [(phase, result) for result in failure.results]
            raise
        self.results += [(phase, result) for result in outcome.results]
        return outcome

    def _outcome_shown(self, page) -> str | None:
        for label, text in self.outcomes.items():
            if page.get_by_text(text).count():
                return label
        return None


def endpoint_hosts(endpoint) -> set[str]:
    """Where an action list on ``endpoint`` may go: its own host and its config's
    ``allowed_hosts``."""
    hosts = {urlsplit(endpoint.effective_base_url).hostname}
    hosts |= set(endpoint.config.get("allowed_hosts", []))
    return {host for host in hosts if host}


def _rendered(text: str, context: dict) -> str:
    try:
        return str(engine.render_value(text, context))
    except engine.TemplateError as exc:
        raise ActionFailed("template_error", str(exc)) from exc
