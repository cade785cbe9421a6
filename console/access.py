"""How a console page is let in: the admin site's log-in and organization context, then the
one permission table (rcm/permissions.py), asked with the role the middleware put on the
request.

Every console route is one ``(resource, action)`` of the table and a set of methods: a page
that reads is ``view``, a button that changes something is its own POST-only route asking its
own action. ``tests/console/test_security.py`` walks ``console.urls`` and holds each route to
what it declares here, so a new route is covered or the suite fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed
from django.shortcuts import render

from rcm import permissions
from rcm.admin import admin_allowed

READ_METHODS = ("GET", "HEAD")
WRITE_METHODS = ("POST",)


def console_view(
    resource: str, action: str = permissions.VIEW, *, methods: Iterable[str] = READ_METHODS
) -> Callable:
    """A console view behind the admin's log-in (anonymous: to the log-in page), answering
    only ``methods`` (else 405) and only to roles the table allows ``action`` on ``resource``
    (else 403). The admin's wrapper also adds CSRF protection and ``never_cache``."""
    permissions.minimum_role(resource, action)  # a resource or action not in the table: now
    methods = tuple(methods)

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def guarded(request, *args, **kwargs):
            if request.method not in methods:
                return HttpResponseNotAllowed(methods)
            if not admin_allowed(request, resource, action):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        guarded.console_permission = (resource, action)
        guarded.console_methods = methods
        return admin.site.admin_view(guarded)

    return decorate


def may(request, resource: str, action: str) -> bool:
    """Whether to show a button: the same question the button's own route asks."""
    return admin_allowed(request, resource, action)


def page(request, template: str, context: dict, *, title: str, status: int = 200):
    """A console page in the admin's frame (header, organization, user links)."""
    return render(
        request,
        template,
        {**admin.site.each_context(request), "title": title, **context},
        status=status,
    )
