"""Roles (admin/principals.py): each role may do what the ones below it may, and the table says which role each
operation needs; the services refuse a principal without it, whoever calls them."""

from __future__ import annotations

import pytest

from frontdesk.admin import clients, tokens
from frontdesk.admin.errors import Forbidden
from frontdesk.admin.principals import OPERATIONS, ROLES, Principal, allowed

READS = {op for op in OPERATIONS if op.endswith((".read", ".export"))}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_each_role_may_do_what_the_table_says(operation):
    permitted = {role for role in ROLES if allowed(Principal("token", "t", role, "t"), operation)}
    needed = OPERATIONS[operation]
    assert permitted == set(ROLES[: ROLES.index(needed) + 1])


def test_an_auditor_reads_everything_but_tokens_and_roles():
    auditor = Principal("token", "t", "auditor", "t")
    assert {op for op in READS if allowed(auditor, op)} == READS - {"admin_tokens.read", "admin_roles.read"}


def test_the_services_refuse_without_the_role(fd):
    operator = Principal("person", "u1", "operator", "olive")
    with pytest.raises(Forbidden, match="owner"):
        tokens.create_token(fd, operator, role="auditor", name="mine")
    with pytest.raises(Forbidden):
        clients.create_client(fd, Principal("token", "t", "auditor", "t"), {"name": "x"})
