"""System checks that refuse to start a platform whose tenancy could be bypassed."""

from django.core.checks import Error, register
from django.db import connection
from django.db.utils import OperationalError

RLS_BYPASS_QUERY = """
SELECT r.rolsuper, r.rolbypassrls,
       EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
                 AND pg_has_role(current_user, c.relowner, 'USAGE')) AS owns_tables,
       EXISTS (SELECT 1 FROM pg_roles m
               WHERE m.oid <> r.oid AND (m.rolsuper OR m.rolbypassrls)
                 AND pg_has_role(r.oid, m.oid, 'MEMBER')) AS may_bypass
FROM pg_roles r WHERE r.rolname = current_user
"""


@register("database_roles")
def check_runtime_role_cannot_bypass_rls(app_configs=None, **kwargs):
    """The runtime role must be neither superuser, nor BYPASSRLS, nor (a member of) an owner,
    nor a member of a role that is superuser or BYPASSRLS."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(RLS_BYPASS_QUERY)
            is_super, bypass, owns, may_bypass = cursor.fetchone()
            role = connection.settings_dict["USER"]
    except OperationalError as exc:
        return [Error(f"Cannot reach the database to check its roles: {exc}", id="rcm.E001")]
    problems = []
    if is_super:
        problems.append("is a superuser")
    if bypass:
        problems.append("has BYPASSRLS")
    if owns:
        problems.append("owns (or can act as the owner of) tables")
    if may_bypass:  # SET ROLE to it at will
        problems.append("may take a role that bypasses row-level security")
    if not problems:
        return []
    return [
        Error(
            f"The runtime database role {role!r} {', '.join(problems)}: row-level security "
            "would not bind it.",
            hint="Run the platform as a plain role and migrations as the owner "
            "(DATABASE_URL vs DATABASE_OWNER_URL); see docs/operations.md.",
            id="rcm.E002",
        )
    ]
