"""PostgreSQL backend that applies the organization context to every transaction.

Row-level security policies read ``current_setting('app.current_org_id')``. We set it with
``set_config(..., true)``: local to the transaction, so it can never leak to the next user of a
pooled connection (PgBouncer in transaction mode included).

Before each statement the backend compares the organization it last applied in the current
transaction with the one in ``rcm.context``, and applies it when they differ. The marker is
reset whenever the transaction ends (commit, rollback, autocommit switch, reconnect) and when a
savepoint is rolled back, because PostgreSQL reverts a ``set_config(..., true)`` made inside a
savepoint that is rolled back.

A statement that runs in autocommit mode while an organization is set is wrapped in its own
short transaction, so that the setting is in force for it; with no organization set there is
nothing to apply and policies see no organization (no rows).
"""

import psycopg
from django.db import transaction
from django.db.backends.postgresql import base

from rcm.context import current_org_id
from rcm.db.org_prefix import org_context_prefix

_NOT_APPLIED = object()
_SET_SQL = "SELECT set_config('app.current_org_id', %s, true)"
_TRANSACTION_CONTROL = ("SAVEPOINT ", "RELEASE SAVEPOINT ", "ROLLBACK TO SAVEPOINT ")


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rls_applied = _NOT_APPLIED
        self.execute_wrappers.append(self._apply_org_context)

    def _apply_org_context(self, execute, sql, params, many, context):
        if isinstance(sql, str) and sql.startswith(_TRANSACTION_CONTROL):
            # SAVEPOINT, RELEASE, ROLLBACK TO: never prefixed. A ROLLBACK TO runs in an
            # aborted transaction, where a set_config before it would fail and doom the rest.
            return execute(sql, params, many, context)
        org_id = current_org_id()
        wanted = str(org_id) if org_id is not None else ""
        if self.in_atomic_block or not self.get_autocommit():
            if self.rls_applied == wanted:
                return execute(sql, params, many, context)
            return self._execute_with_org(execute, sql, params, many, context, wanted)
        if not wanted:
            return execute(sql, params, many, context)
        with transaction.atomic(using=self.alias):
            return self._execute_with_org(execute, sql, params, many, context, wanted)

    def _execute_with_org(self, execute, sql, params, many, context, wanted: str):
        """Apply the organization and run the statement, in one round trip where possible.

        Client-side binding sends both statements in one message; the cursor then moves on to
        the second one's result (the organization as a literal: rcm/db/org_prefix.py says why
        that is safe). executemany and server-side cursors take the separate statement.
        """
        raw = context["cursor"].cursor
        if many or not isinstance(raw, psycopg.ClientCursor):
            self._set_org(context["cursor"], wanted)
            return execute(sql, params, many, context)
        result = execute(org_context_prefix(wanted) + sql, params, many, context)
        self.rls_applied = wanted
        raw.nextset()
        return result

    def _set_org(self, cursor, wanted: str) -> None:
        # A fresh client-side cursor of the raw connection: going through Django's cursor
        # would re-enter this wrapper, and a named (server-side) cursor only DECLAREs what it
        # is given and runs it at the first fetch, which set_config never gets.
        with self.connection.cursor() as raw:
            raw.execute(_SET_SQL, [wanted])
        self.rls_applied = wanted

    # Every way a transaction (or a savepoint holding the setting) can end forgets the marker.
    # (The ignores: django-stubs leave these private methods of the base wrapper out.)
    def _commit(self):
        self.rls_applied = _NOT_APPLIED
        return super()._commit()  # type: ignore[misc]

    def _rollback(self):
        self.rls_applied = _NOT_APPLIED
        return super()._rollback()  # type: ignore[misc]

    def _set_autocommit(self, autocommit):
        self.rls_applied = _NOT_APPLIED
        return super()._set_autocommit(autocommit)  # type: ignore[misc]

    def _savepoint_rollback(self, sid):
        # Forget the marker only after ROLLBACK TO SAVEPOINT has run: it goes through the
        # execute wrapper, which must not try to set_config in an aborted transaction.
        try:
            return super()._savepoint_rollback(sid)  # type: ignore[misc]
        finally:
            self.rls_applied = _NOT_APPLIED

    def connect(self):
        self.rls_applied = _NOT_APPLIED
        return super().connect()

    def close(self):
        self.rls_applied = _NOT_APPLIED
        return super().close()
