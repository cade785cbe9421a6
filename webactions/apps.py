from django.apps import AppConfig


class WebactionsConfig(AppConfig):
    name = "webactions"
    verbose_name = "Web actions"

    def ready(self):
        from webactions import browser
        from webactions.kinds import WebKind
        from workflows import public as engine

        browser.register_health_check()
        engine.kind_register(WebKind())
