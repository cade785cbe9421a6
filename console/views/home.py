"""The console's home: what an operator looks at first."""

from __future__ import annotations

from django.contrib import admin

from console.access import console_view, page


@console_view("session")
def home(request):
    return page(
        request,
        "console/home.html",
        {"app_list": admin.site.get_app_list(request)},
        title="Home",
    )
