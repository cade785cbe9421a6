from django.apps import AppConfig


class WebactionsConfig(AppConfig):
    name = "webactions"
    verbose_name = "Web actions"

    def ready(self):
        from webactions import browser
        from webactions.kinds import WebKind
        from workflows.engine import kinds

        browser.register_health_check()
        kinds.register(WebKind())
