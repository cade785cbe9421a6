from django.apps import AppConfig


class WebactionsConfig(AppConfig):
    name = "webactions"
    verbose_name = "Web actions"

    def ready(self):
        from webactions import browser

        browser.register_health_check()
