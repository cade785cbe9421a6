"""Who may do what: the one permission table, asked by the API, the admin, the console and
the commands.

A *resource* is a kind of thing the platform serves (``workflow``, ``endpoint``, ...); an
*action* is one of ``view``, ``add``, ``change``, ``delete`` and ``run`` (a verb that is not
plain CRUD: publish, cancel, retry, revoke, retire). The table names the lowest role that may
take each action on each resource; an action a resource does not list is refused to everyone
(fail closed). Roles rank as in ``rcm.lookups.ROLE_RANK``: viewer < operator (and the legacy
firm_user, hospital_user, and the api_user machine role) < org_admin (and legacy admin) <
sys_admin.

``docs/security.md`` prints this table; ``tests/rcm/test_permissions.py`` checks that every API
route and every admin page asks it and answers as it says.
"""

from __future__ import annotations

from rcm.lookups import ROLE_RANK, UserRole, role_at_least

VIEW, ADD, CHANGE, DELETE, RUN = "view", "add", "change", "delete", "run"
ACTIONS = (VIEW, ADD, CHANGE, DELETE, RUN)

_VIEWER, _OPERATOR = UserRole.VIEWER, UserRole.OPERATOR
_ORG_ADMIN, _SYS_ADMIN = UserRole.ORG_ADMIN, UserRole.SYS_ADMIN

# Platform catalogues: every member reads them; only platform staff add or change them.
_CATALOGUE = {VIEW: _VIEWER, ADD: _SYS_ADMIN, CHANGE: _SYS_ADMIN}
# What the engine and the services write: read by every member, written by nobody by hand.
_RECORD = {VIEW: _VIEWER}

PERMISSIONS: dict[str, dict[str, str]] = {
    # -- identity and the organization (tenants) --
    # The caller's own account: switching organization (add), reading and answering their
    # own invitations (view, run). Every member may.
    "session": {VIEW: _VIEWER, ADD: _VIEWER, RUN: _VIEWER},
    "organization": {VIEW: _VIEWER, CHANGE: _ORG_ADMIN, ADD: _SYS_ADMIN},
    # Accounts and memberships come only through invitations (nobody adds them directly).
    "user": {VIEW: _VIEWER, CHANGE: _ORG_ADMIN},
    "membership": {VIEW: _VIEWER, CHANGE: _ORG_ADMIN, DELETE: _ORG_ADMIN},
    "invitation": {VIEW: _ORG_ADMIN, ADD: _ORG_ADMIN, RUN: _ORG_ADMIN},
    "api_key": {VIEW: _ORG_ADMIN, ADD: _ORG_ADMIN, RUN: _ORG_ADMIN},
    "endpoint": {VIEW: _VIEWER, ADD: _ORG_ADMIN, CHANGE: _ORG_ADMIN, DELETE: _ORG_ADMIN},
    "audit_event": {VIEW: _ORG_ADMIN},
    "channel_type": _CATALOGUE,
    "lookup": _CATALOGUE,
    # -- the task catalogue and requirements (workflows) --
    "task_type": _CATALOGUE,
    "field_requirement": _CATALOGUE,
    # Payer requirements are versioned: a change is a new version (add), never an edit.
    "payer_requirement": {VIEW: _VIEWER, ADD: _SYS_ADMIN},
    # Reading the effective requirements and checking a row against them changes nothing.
    "requirement": {VIEW: _VIEWER},
    "requirement_policy": {
        VIEW: _VIEWER,
        ADD: _ORG_ADMIN,
        CHANGE: _ORG_ADMIN,
        DELETE: _ORG_ADMIN,
    },
    "requirement_changelog": {VIEW: _ORG_ADMIN},
    "task_signature": _RECORD,
    # -- authoring and running (workflows) --
    # Editing the draft graph (nodes, transitions, the whole graph) is changing the workflow;
    # run = publish, suspend, archive.
    "workflow": {
        VIEW: _VIEWER,
        ADD: _OPERATOR,
        CHANGE: _OPERATOR,
        DELETE: _OPERATOR,
        RUN: _OPERATOR,
    },
    "workflow_revision": _RECORD,
    # add = start a run; run = cancel or rerun one.
    "run": {VIEW: _VIEWER, ADD: _OPERATOR, RUN: _OPERATOR},
    "trace": _RECORD,
    # add = upload; run = cancel, retry the failed rows.
    "batch_job": {VIEW: _VIEWER, ADD: _OPERATOR, RUN: _OPERATOR},
    "batch_job_item": _RECORD,
    # -- memory --
    # add = store a page state; run = record an outcome, retire, bring back.
    "micro_state": {VIEW: _VIEWER, ADD: _OPERATOR, RUN: _OPERATOR},
    # Operators see which credentials exist (a web node names one), never a secret; only
    # org admins store, change, delete or rotate them (run = rotate).
    "portal_credential": {
        VIEW: _OPERATOR,
        ADD: _ORG_ADMIN,
        CHANGE: _ORG_ADMIN,
        DELETE: _ORG_ADMIN,
        RUN: _ORG_ADMIN,
    },
    "credential_access_log": {VIEW: _ORG_ADMIN},
    # Ad-hoc action lists on an endpoint (add = run one; run = cancel it), and the pictures
    # of portal pages (PHI: each picture fetched is audited): operators, who run the work.
    "web_action": {VIEW: _OPERATOR, ADD: _OPERATOR, RUN: _OPERATOR},
    "web_screenshot": {VIEW: _OPERATOR},
}


def minimum_role(resource: str, action: str) -> str | None:
    """The lowest role allowed ``action`` on ``resource``; None when nobody is."""
    if resource not in PERMISSIONS:
        raise KeyError(f"{resource!r} is not in the permission table (rcm/permissions.py).")
    if action not in ACTIONS:
        raise KeyError(f"{action!r} is not an action; use one of {', '.join(ACTIONS)}.")
    return PERMISSIONS[resource].get(action)


def allowed(role: str | None, resource: str, action: str) -> bool:
    """May a member holding ``role`` (None: no live membership) take ``action`` on
    ``resource``? The one question every door asks."""
    needed = minimum_role(resource, action)
    return needed is not None and role_at_least(role, needed)


def role_grantable(*, granter_role: str | None, role: str) -> bool:
    """May a member holding ``granter_role`` hand out ``role`` (invite, change a member's
    role)? Never a role above their own, and platform staff only make platform staff."""
    if role == _SYS_ADMIN:
        return granter_role == _SYS_ADMIN
    return role in ROLE_RANK and role_at_least(granter_role, role)


def table_markdown() -> str:
    """The table as docs/security.md prints it (``manage.py permissions`` writes it out)."""
    lines = [
        "| resource | " + " | ".join(ACTIONS) + " |",
        "|---" * (len(ACTIONS) + 1) + "|",
    ]
    for resource, minimums in PERMISSIONS.items():
        cells = [minimums.get(action, "—") for action in ACTIONS]
        lines.append(f"| `{resource}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)
