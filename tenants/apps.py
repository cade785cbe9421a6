from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Organizations and access"

    def ready(self):
        from tenants import schema  # noqa: F401  (registers the OpenAPI auth schemes)
