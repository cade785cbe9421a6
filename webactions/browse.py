"""One browser attempt on an endpoint: log in where needed, carry out the actions.

Runs in the browser thread (webactions/pool.py): it touches no database; what the task's
thread needs afterwards (the traces, a new log-in to keep, the outcome the page shows) is kept
on the object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tenants.models import Endpoint
from webactions.executor import ActionFailed, guard_addresses, is_shown, run_actions
from workflows.engine import templates

LOGIN_REFUSED = "login_refused"


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
    results: list = field(default_factory=list)
    new_state: dict | None = None
    shown: str | None = None

    def run(self, browser_context):
        guard_addresses(browser_context)
        page = browser_context.new_page()
        try:
            if self.login and not self.logged_in:
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
            answer = failure
        else:
            answer = outcome
        if self.new_state is not None:
            # Logged in during this attempt (whatever the actions found): kept for the next.
            self.new_state = browser_context.storage_state()
        return answer

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
        base_url = self.endpoint.effective_base_url
        hosts = {urlsplit(base_url).hostname, *self.endpoint.config.get("allowed_hosts", [])}
        try:
            outcome = run_actions(
                page,
                actions,
                render=lambda text: _rendered(text, self.context),
                base_url=base_url,
                allowed_hosts={host for host in hosts if host},
                secrets=self.secrets,
                timeout_ms=self.timeout_ms,
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


def _rendered(text: str, context: dict) -> str:
    try:
        return str(templates.render_value(text, context))
    except templates.TemplateError as exc:
        raise ActionFailed("template_error", str(exc)) from exc
