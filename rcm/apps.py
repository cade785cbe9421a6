from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class RcmConfig(AppConfig):
    name = "rcm"
    verbose_name = "RCM kernel"

    def ready(self):
        from rcm import checks  # noqa: F401  (registers the system checks)
        from rcm.api import schema  # noqa: F401  (registers the OpenAPI extensions)


class PlatformAdminConfig(AdminConfig):
    """Django's admin on the platform's site, whose one access rule is in rcm/admin.py."""

    default_site = "rcm.admin.PlatformAdminSite"
