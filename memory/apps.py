from django.apps import AppConfig


class MemoryConfig(AppConfig):
    name = "memory"
    verbose_name = "Page memory"

    def ready(self):
        from memory import checks  # noqa: F401  (registers the system checks)
