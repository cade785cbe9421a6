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

from django.db import transaction
from django.db.backends.postgresql import base

from rcm.context import current_org_id

_NOT_APPLIED = object()
_SET_SQL = "SELECT set_config('app.current_org_id', %s, true)"


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rls_applied = _NOT_APPLIED
        self.execute_wrappers.append(self._apply_org_context)

    def _apply_org_context(self, execute, sql, params, many, context):
        org_id = current_org_id()
        wanted = str(org_id) if org_id is not None else ""
        if self.in_atomic_block or not self.get_autocommit():
            if self.rls_applied != wanted:
                self._set_org(context["cursor"], wanted)
            return execute(sql, params, many, context)
        if not wanted:
            return execute(sql, params, many, context)
        with transaction.atomic(using=self.alias):
            self._set_org(context["cursor"], wanted)
            return execute(sql, params, many, context)

    def _set_org(self, cursor, wanted: str) -> None:
        # The raw psycopg cursor: going through Django's cursor would re-enter this wrapper.
        cursor.cursor.execute(_SET_SQL, [wanted])
        self.rls_applied = wanted

    # Every way a transaction (or a savepoint holding the setting) can end forgets the marker.
    def _commit(self):
        self.rls_applied = _NOT_APPLIED
        return super()._commit()

    def _rollback(self):
        self.rls_applied = _NOT_APPLIED
        return super()._rollback()

    def _set_autocommit(self, autocommit):
        self.rls_applied = _NOT_APPLIED
        return super()._set_autocommit(autocommit)

    def _savepoint_rollback(self, sid):
        # Forget the marker only after ROLLBACK TO SAVEPOINT has run: it goes through the
        # execute wrapper, which must not try to set_config in an aborted transaction.
        try:
            return super()._savepoint_rollback(sid)
        finally:
            self.rls_applied = _NOT_APPLIED

    def connect(self):
        self.rls_applied = _NOT_APPLIED
        return super().connect()

    def close(self):
        self.rls_applied = _NOT_APPLIED
        return super().close()
