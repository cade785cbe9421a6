"""The permission table itself: the rules the attack on the admin relied on being absent, the
role-granting rule, failing closed, and docs/security.md printing the table as it is."""

from pathlib import Path

import pytest

from rcm import permissions
from rcm.lookups import ROLE_RANK, UserRole

ORG_ADMIN_ONLY = [
    # What the attack did as an operator in the admin, all org_admin's in the API.
    ("invitation", "add"),
    ("invitation", "run"),
    ("user", "change"),
    ("membership", "change"),
    ("endpoint", "change"),
    ("endpoint", "delete"),
    ("api_key", "run"),
    ("audit_event", "view"),
    ("organization", "change"),
]


@pytest.mark.parametrize(("resource", "action"), ORG_ADMIN_ONLY)
def test_what_the_attack_did_as_an_operator_needs_an_org_admin(resource, action):
    assert not permissions.allowed(UserRole.OPERATOR, resource, action)
    assert permissions.allowed(UserRole.ORG_ADMIN, resource, action)


def test_operators_author_and_run_viewers_read():
    for action in ("add", "change", "run"):
        assert permissions.allowed(UserRole.OPERATOR, "workflow", action)
        assert not permissions.allowed(UserRole.VIEWER, "workflow", action)
    assert permissions.allowed(UserRole.VIEWER, "workflow", "view")


def test_the_table_fails_closed():
    assert not permissions.allowed(UserRole.SYS_ADMIN, "audit_event", "delete")
    assert not permissions.allowed(None, "workflow", "view")
    assert not permissions.allowed("someone_new", "workflow", "view")
    with pytest.raises(KeyError):
        permissions.allowed(UserRole.SYS_ADMIN, "no_such_resource", "view")
    with pytest.raises(KeyError):
        permissions.allowed(UserRole.SYS_ADMIN, "workflow", "approve")


def test_every_minimum_is_a_role():
    for resource, minimums in permissions.PERMISSIONS.items():
        assert set(minimums) <= set(permissions.ACTIONS), resource
        assert set(minimums.values()) <= set(ROLE_RANK), resource


@pytest.mark.parametrize("granter", sorted(ROLE_RANK))
def test_nobody_grants_a_role_above_their_own(granter):
    for role in ROLE_RANK:
        grantable = permissions.role_grantable(granter_role=granter, role=role)
        if role == UserRole.SYS_ADMIN:
            assert grantable == (granter == UserRole.SYS_ADMIN)
        else:
            assert grantable == (ROLE_RANK[role] <= ROLE_RANK[granter])
    assert not permissions.role_grantable(granter_role=None, role=UserRole.VIEWER)


def test_docs_print_the_table_as_it_is():
    docs = (Path(__file__).parents[2] / "docs" / "security.md").read_text()
    assert permissions.table_markdown() in docs, "run manage.py permissions into docs/security.md"
