"""The console's routes, mounted at /admin/console/ (inside the admin site: its log-in, its
organization context). Each view is a ``console.access.console_view``."""

from django.urls import path

from console.views import home

app_name = "console"

urlpatterns = [
    path("", home.home, name="home"),
]
