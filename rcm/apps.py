from django.apps import AppConfig


class RcmConfig(AppConfig):
    name = "rcm"
    verbose_name = "RCM kernel"

    def ready(self):
        from rcm import checks  # noqa: F401  (registers the system checks)
        from rcm.api import schema  # noqa: F401  (registers the OpenAPI extensions)
