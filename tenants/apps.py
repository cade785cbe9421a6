from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Organizations and access"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from tenants import schema  # noqa: F401  (registers the OpenAPI auth schemes)
        from tenants.authentication import record_login

        # django.contrib.auth (earlier in INSTALLED_APPS) has connected its receiver by now.
        user_logged_in.disconnect(dispatch_uid="update_last_login")
        user_logged_in.connect(record_login, dispatch_uid="update_last_login")
