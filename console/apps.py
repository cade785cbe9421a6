from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The operator console: the working day in the browser (home, upload, batches, the
    workflow editor, the memory browser), pages of the admin site that read and write through
    the other apps' selectors and services. It sits above every app and owns no table."""

    name = "console"
    verbose_name = "Console"
