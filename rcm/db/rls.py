"""Row-level security, one line per table in a migration.

    operations = [..., EnableRowLevelSecurity("endpoint")]

The policy is the one in DESIGN §5: a row is visible and writable only when its ``org_id`` is
the organization set for the current transaction (``app.current_org_id``, see
rcm/db/backend). ``FORCE`` makes it apply to the table's owner too. With no organization set,
``NULLIF(..., '')`` turns the setting into NULL and no row matches.

Identity tables pass their own ``using`` (a wider visibility, never wider than the members of
the current organization); ``check`` defaults to the plain organization rule.
tests/rcm/test_rls_coverage.py fails for any table with an ``org_id`` column left without this.
"""

from django.db import migrations

CURRENT_ORG = "NULLIF(current_setting('app.current_org_id', true), '')::uuid"
ORG_RULE = f"org_id = {CURRENT_ORG}"
POLICY_NAME = "org_isolation"


class EnableRowLevelSecurity(migrations.operations.base.Operation):
    reversible = True
    reduces_to_sql = True

    def __init__(self, table: str, using: str = ORG_RULE, check: str = ORG_RULE):
        self.table = table
        self.using = using
        self.check = check

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        table = schema_editor.quote_name(self.table)
        schema_editor.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        schema_editor.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        schema_editor.execute(
            f"CREATE POLICY {POLICY_NAME} ON {table} USING ({self.using}) WITH CHECK ({self.check})"
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        table = schema_editor.quote_name(self.table)
        schema_editor.execute(f"DROP POLICY IF EXISTS {POLICY_NAME} ON {table}")
        schema_editor.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        schema_editor.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")

    def describe(self):
        return f"Enable and force row-level security on {self.table}"

    def deconstruct(self):
        kwargs = {"table": self.table}
        if self.using != ORG_RULE:
            kwargs["using"] = self.using
        if self.check != ORG_RULE:
            kwargs["check"] = self.check
        return (self.__class__.__qualname__, [], kwargs)
