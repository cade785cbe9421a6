"""The console in a real browser: signing in lands on the console's home."""

from __future__ import annotations

from rcm.lookups import UserRole


def test_signing_in_at_the_root_lands_on_the_console_home(console_for, org_a):
    tab = console_for(org_a[UserRole.OPERATOR], org_a)
    tab.open("/")
    assert tab.page.url.endswith("/admin/console/")
    assert tab.page.locator("nav.console-nav").is_visible()
    tab.shot("home-operator")
