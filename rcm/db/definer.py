"""SECURITY DEFINER functions, installed from a migration in one call.

A few operations must cross organizations on purpose (authentication look-ups, the audit
chain, platform-wide purges). They run as functions owned by the NOLOGIN ``BYPASSRLS`` definer
role, executable by the runtime role and by nobody else; the runtime role itself never
bypasses row-level security.
"""

from django.conf import settings
from django.db import migrations

from rcm.db.roles import runtime_role


def definer_functions(
    *, sql: str, signatures: list[str], grants: list[str], drop_sql: str = ""
) -> migrations.RunPython:
    """``sql`` creates the functions; ``grants`` are the table privileges they need
    (``"SELECT ON app_user"``); each signature is then handed to the definer role."""

    def install(apps, schema_editor):
        definer = schema_editor.quote_name(settings.DATABASE_DEFINER_ROLE)
        app_role = schema_editor.quote_name(runtime_role())
        schema_editor.execute(sql, params=None)
        # CREATE on the schema: PostgreSQL lets a function be given only to a role that could
        # have created it there.
        schema_editor.execute(f"GRANT USAGE, CREATE ON SCHEMA public TO {definer}")
        for grant in grants:
            schema_editor.execute(f"GRANT {grant} TO {definer}")
        for signature in signatures:
            schema_editor.execute(f"ALTER FUNCTION {signature} OWNER TO {definer}")
            schema_editor.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
            schema_editor.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {app_role}")

    def uninstall(apps, schema_editor):
        if drop_sql:
            schema_editor.execute(drop_sql, params=None)
        for signature in signatures:
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {signature}")

    return migrations.RunPython(install, uninstall)
