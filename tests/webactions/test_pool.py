"""The browser thread's contexts, on real Chromium: a login's attempts share its kept context
and page, another login never sees them, and kept contexts are closed when refused, idle or
beyond the limit; WEB_BROWSER_CONTEXT=attempt gives every attempt a new one."""

from datetime import timedelta

import pytest

from webactions.pool import BrowserThread

COOKIE = {"name": "session", "value": "abc", "url": "https://portal.example/"}


@pytest.fixture(scope="module")
def thread():
    return BrowserThread()


def _look(slot):
    """What an attempt finds: whether its context is kept, its cookies, its pages (it opens a
    pop-up, as portals do)."""
    pages = len(slot.context.pages)
    slot.context.new_page()
    return {
        "kept": slot.kept,
        "cookies": [c["name"] for c in slot.context.cookies()],
        "pages": pages,
        "context": id(slot.context),
        "page": id(slot.page),
    }


def _log_in(slot):
    slot.context.add_cookies([COOKIE])
    return _look(slot)


def test_a_logins_attempts_share_its_context_and_no_other_login_sees_it(thread, settings):
    settings.WEB_BROWSER_CONTEXT = "credential"
    first = thread.run(_log_in, timeout=30, key=("org-a", 1, "v1"))
    again = thread.run(_look, timeout=30, key=("org-a", 1, "v1"))
    other = thread.run(_look, timeout=30, key=("org-b", 2, "v1"))
    assert (first["kept"], again["kept"], other["kept"]) == (False, True, False)
    assert again["context"] == first["context"] and again["cookies"] == ["session"]
    # The same working page; the pop-up the earlier attempt opened was closed.
    assert again["page"] == first["page"] and again["pages"] == 1
    assert other["cookies"] == [] and other["context"] != first["context"]
    # New secrets (another version in the key) start from a new context.
    rotated = thread.run(_look, timeout=30, key=("org-a", 1, "v2"))
    assert not rotated["kept"] and rotated["cookies"] == []


def test_a_refused_or_idle_login_loses_its_context_and_the_oldest_goes_first(thread, settings):
    settings.WEB_BROWSER_CONTEXT = "credential"
    thread.run(_log_in, timeout=30, key=("org-a", 7, "v1"))
    thread.forget(("org-a", 7, "v1"))
    assert not thread.run(_look, timeout=30, key=("org-a", 7, "v1"))["kept"]
    settings.WEB_BROWSER_CONTEXTS_KEPT = 2
    for number in (1, 2, 3):
        thread.run(_look, timeout=30, key=("org-c", number, "v1"))
    assert not thread.run(_look, timeout=30, key=("org-c", 1, "v1"))["kept"]  # trimmed
    assert thread.run(_look, timeout=30, key=("org-c", 3, "v1"))["kept"]
    settings.WEB_SESSION_TTL = timedelta(0)
    assert not thread.run(_look, timeout=30, key=("org-c", 3, "v1"))["kept"]  # idle


def test_without_a_key_or_per_attempt_every_job_gets_a_new_context(thread, settings):
    settings.WEB_BROWSER_CONTEXT = "attempt"
    first = thread.run(_log_in, timeout=30, key=("org-a", 9, "v1"))
    again = thread.run(_look, timeout=30, key=("org-a", 9, "v1"))
    assert not again["kept"] and again["cookies"] == []
    settings.WEB_BROWSER_CONTEXT = "credential"
    assert not thread.run(_look, timeout=30)["kept"]
    assert first["cookies"] == ["session"]


def test_a_job_that_fails_leaves_no_context_kept(thread, settings):
    settings.WEB_BROWSER_CONTEXT = "credential"
    thread.run(_log_in, timeout=30, key=("org-a", 11, "v1"))

    def crash(slot):
        raise RuntimeError("the page crashed")

    with pytest.raises(RuntimeError):
        thread.run(crash, timeout=30, key=("org-a", 11, "v1"))
    assert not thread.run(_look, timeout=30, key=("org-a", 11, "v1"))["kept"]
