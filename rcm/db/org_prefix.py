"""The statement that sets the organization for the rest of a transaction, as a prefix to send
in the same message as the statement it is for (one round trip instead of two).

Row-level security reads ``app.current_org_id`` (rcm/db/rls.py); ``set_config(..., true)``
keeps it local to the transaction.
"""

from __future__ import annotations

import uuid


def org_context_prefix(org_id: uuid.UUID | str | None) -> str:
    """``SELECT set_config('app.current_org_id', '<uuid>', true); `` for ``org_id``, or with
    '' (no organization: policies see no rows) for None or ''.

    The organization goes in as a literal, not a parameter: checked as a UUID here, it cannot
    carry SQL, and a parameter would make any literal ``%`` of a parameterless statement after
    it a placeholder.
    """
    literal = str(uuid.UUID(str(org_id))) if org_id else ""
    return f"SELECT set_config('app.current_org_id', '{literal}', true); "
