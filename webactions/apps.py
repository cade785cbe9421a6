from django.apps import AppConfig


class WebactionsConfig(AppConfig):
    name = "webactions"
    verbose_name = "Web actions"
