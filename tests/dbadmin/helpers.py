"""Running an administrator's command the way a script does: its exit code and its output."""

from io import StringIO

from django.core.management import call_command
from django.core.management.base import CommandError


def command_run(command, *args) -> tuple[int, str, str]:
    """``command`` (a name or a command object) run with ``args``: (exit code, stdout, stderr),
    stderr ending with the error's line as ``manage.py`` prints it."""
    out, err = StringIO(), StringIO()
    try:
        call_command(command, *args, stdout=out, stderr=err)
        code = 0
    except CommandError as exc:
        code = exc.returncode
        err.write(f"CommandError: {exc}\n")
    return code, out.getvalue(), err.getvalue()
