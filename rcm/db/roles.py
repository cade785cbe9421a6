"""The two database roles: migrations as the owner, everything else as the runtime role.

The runtime role (``DATABASE_URL``) must not own the tables: an owner can switch FORCE ROW
LEVEL SECURITY off again. So schema changes connect with ``DATABASE_OWNER_URL`` instead, and
after every migration the owner grants the runtime role exactly the DML it needs.
"""

import contextlib
from collections.abc import Iterator

from django.conf import settings
from django.db import connections

# The audit trail is read-only to the runtime role: rows are appended only through the
# audit_event_append() function, and its chain head is invisible to it. The V8 compatibility
# views are for v3-era readers; writes go to their tables.
READ_ONLY_TABLES = ("audit_event", "rcm_user", "rcm_trace")
# Records the runtime role adds to and reads, and may never rewrite or remove.
APPEND_ONLY_TABLES = ("credential_access_log",)
# Records the runtime role adds and finishes, and may never remove; a trigger freezes each one
# once finished (dbadmin/migrations/0003_migration_run_history.py).
HISTORY_TABLES = ("migration_run",)
PRIVATE_TABLES = ("audit_chain_head",)


# Captured at import, before as_owner() can swap the credentials: Django's connection shares
# its settings dict with settings.DATABASES, so reading the role inside the block would
# answer with the owner.
_RUNTIME_ROLE = settings.DATABASES["default"]["USER"]


@contextlib.contextmanager
def as_owner(alias: str = "default") -> Iterator[None]:
    """Point ``alias`` at the owner role for the duration of the block."""
    connection = connections[alias]
    owner = settings.DATABASE_OWNER
    saved = {key: connection.settings_dict.get(key) for key in ("USER", "PASSWORD")}
    connection.close()
    connection.settings_dict.update(USER=owner["USER"], PASSWORD=owner["PASSWORD"])
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)


def runtime_role() -> str:
    return _RUNTIME_ROLE


def grant_runtime_privileges(using: str = "default", **kwargs) -> None:
    app_role = runtime_role()
    if app_role == settings.DATABASE_OWNER["USER"]:
        return  # a single-role setup; rcm.checks reports it
    with connections[using].cursor() as cursor:
        cursor.execute(
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{app_role}"'
        )
        cursor.execute(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{app_role}"')
        for tables, privileges in (
            (READ_ONLY_TABLES, "INSERT, UPDATE, DELETE, TRUNCATE"),
            (APPEND_ONLY_TABLES, "UPDATE, DELETE, TRUNCATE"),
            (HISTORY_TABLES, "DELETE, TRUNCATE"),
            (PRIVATE_TABLES, "ALL"),
        ):
            for table in tables:
                cursor.execute("SELECT to_regclass(%s)", [table])
                if cursor.fetchone()[0] is not None:
                    cursor.execute(f'REVOKE {privileges} ON {table} FROM "{app_role}"')
    grant_maintenance_privileges(using)


def maintenance_role_exists(using: str = "default") -> bool:
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", [settings.DATABASE_MAINTENANCE_ROLE]
        )
        return cursor.fetchone() is not None


def grant_maintenance_privileges(using: str = "default") -> None:
    """SELECT on every table and sequence for the maintenance role: it reads, it never writes
    (SELECT on a sequence reads its position; nextval needs USAGE or UPDATE). pg_dump reads
    every sequence's position, and refuses to dump without it.

    A server bootstrapped without the role (an external one set up from an older
    docs/operations.md) simply has none; the commands that need it say so (rcm_validate names it).
    """
    if not maintenance_role_exists(using):
        return
    role = connections[using].ops.quote_name(settings.DATABASE_MAINTENANCE_ROLE)
    with connections[using].cursor() as cursor:
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        cursor.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
        cursor.execute(f"GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")


@contextlib.contextmanager
def as_maintenance(alias: str = "default") -> Iterator[None]:
    """The owner's connection with the maintenance role taken: it reads every organization's
    rows (BYPASSRLS), for backups, restores' checks and rcm_validate, and writes nothing."""
    with as_owner(alias):
        connection = connections[alias]
        role = connection.ops.quote_name(settings.DATABASE_MAINTENANCE_ROLE)
        with connection.cursor() as cursor:
            cursor.execute(f"SET ROLE {role}")
        yield  # as_owner closes the connection after: the role goes with it
