"""Admin roles held by people: who may use the console, and with which role (``principals.OPERATIONS``). A
disabled person holds no role while disabled; a deleted one loses it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core import Frontdesk
from ..storage.admin_tokens import AdminRoleRow, admin_role_of, admin_roles, delete_admin_role, put_admin_role
from ..storage.db import now, transaction
from ..storage.people_admin import person_by_id, person_by_username
from .errors import NotFound
from .principals import Principal, check_role, record, require

__all__ = ["RoleView", "grant_role", "list_roles", "person_principal", "revoke_role"]


@dataclass(frozen=True, slots=True)
class RoleView:
    user_id: str
    username: str | None
    role: str
    granted_at: int
    granted_by: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "username": self.username,
            "role": self.role,
            "granted_at": self.granted_at,
            "granted_by": self.granted_by,
        }


def _view(row: AdminRoleRow) -> RoleView:
    return RoleView(row.user_id, row.username, row.role, row.granted_at, row.granted_by)


def grant_role(fd: Frontdesk, by: Principal, username: str, role: str) -> RoleView:
    """Give the person ``username`` the admin ``role`` (replacing the one they held)."""
    require(by, "admin_roles.write")
    checked = check_role(role)
    at = now()
    with transaction(fd.engine) as conn:
        person = person_by_username(conn, username)
        if person is None:
            raise NotFound(f"no person with username {username[:64]!r}")
        put_admin_role(conn, person.id, checked, at, by.actor)
        record(conn, by, "role.granted", user_id=person.id, role=checked)
        row = admin_role_of(conn, person.id)
    assert row is not None  # written just now, in this transaction
    return _view(row)


def revoke_role(fd: Frontdesk, by: Principal, username: str) -> None:
    require(by, "admin_roles.write")
    with transaction(fd.engine) as conn:
        person = person_by_username(conn, username)
        if person is None or not delete_admin_role(conn, person.id):
            raise NotFound(f"{username[:64]!r} holds no admin role")
        record(conn, by, "role.revoked", user_id=person.id)


def list_roles(fd: Frontdesk, by: Principal) -> list[RoleView]:
    require(by, "admin_roles.read")
    with transaction(fd.engine, readonly=True) as conn:
        return [_view(r) for r in admin_roles(conn)]


def person_principal(fd: Frontdesk, user_id: str, ip: str | None = None) -> Principal | None:
    """The principal a signed-in person acts as in the console: None unless they hold an admin role and are not
    disabled. The console asks for their second factor first (``[admin] console_requires_second_factor``)."""
    with transaction(fd.engine, readonly=True) as conn:
        role = admin_role_of(conn, user_id)
        person = person_by_id(conn, user_id) if role is not None else None
    if role is None or person is None or person.disabled_at is not None:
        return None
    return Principal("person", user_id, check_role(role.role), person.username, ip)
