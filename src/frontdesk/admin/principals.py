"""Who is operating frontdesk, and what they may do: admin tokens (``fd_adm_…`` bearer tokens, shown once, kept as
SHA-256 digests; DESIGN §4), the admin roles people hold for the console, and the one table saying which role each
operation needs (:data:`OPERATIONS`).

Roles are ordered: an owner may do everything (admin tokens and roles included), an operator the day-to-day changes
(clients, people, keys, providers, the vault), an auditor read only (the audit trail and its export included).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from sqlalchemy import Connection

from ..config import ADMIN_ROLES
from ..core import Frontdesk
from ..storage import audit
from .errors import Forbidden, Invalid

__all__ = [
    "CLI",
    "OPERATIONS",
    "ROLES",
    "Principal",
    "Role",
    "allowed",
    "authorize",
    "check_role",
    "record",
    "require",
]

Role = Literal["owner", "operator", "auditor"]
ROLES: tuple[Role, ...] = get_args(Role)
assert ROLES == ADMIN_ROLES  # one list of roles: the configuration's
_RANK: dict[str, int] = {role: len(ROLES) - i for i, role in enumerate(ROLES)}

# Which role each operation needs at least. The admin API names the operation of every route; the console and the
# command line check the same names.
OPERATIONS: dict[str, Role] = {
    "clients.read": "auditor",
    "clients.write": "operator",
    "people.read": "auditor",
    "people.write": "operator",
    "scopes.read": "auditor",
    "scopes.write": "operator",
    "resources.read": "auditor",
    "resources.write": "operator",
    "keys.read": "auditor",
    "keys.rotate": "operator",
    "upstreams.read": "auditor",
    "upstreams.write": "operator",
    "vault.read": "auditor",
    "vault.write": "operator",
    "audit.read": "auditor",
    "audit.export": "auditor",
    "alerts.read": "auditor",
    "alerts.write": "operator",
    "admin_tokens.read": "owner",
    "admin_tokens.write": "owner",
    "admin_roles.read": "owner",
    "admin_roles.write": "owner",
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who makes an admin call: an admin token, a person holding an admin role (the console), or the command line
    run on the server itself (an owner: it holds the keys and the database anyway). ``ip``: where the call came
    from, for the audit trail."""

    kind: Literal["token", "person", "cli"]
    id: str
    role: Role
    name: str
    ip: str | None = None

    @property
    def actor(self) -> str:
        """How the audit trail names it: ``token:<id>``, ``person:<user_id>`` or ``cli``."""
        return "cli" if self.kind == "cli" else f"{self.kind}:{self.id}"


CLI = Principal("cli", "cli", "owner", "the command line")


def check_role(role: str) -> Role:
    for known in ROLES:
        if role == known:
            return known
    raise Invalid(f"role must be one of {', '.join(ROLES)}, not {role[:40]!r}")


def allowed(principal: Principal, operation: str) -> bool:
    return _RANK[principal.role] >= _RANK[OPERATIONS[operation]]


def authorize(fd: Frontdesk, principal: Principal, operation: str) -> None:
    """:func:`require`, with a refusal audited (``admin.denied``): a principal trying what its role does not allow
    is worth an operator's attention."""
    if not allowed(principal, operation):
        audit.record_soon(
            fd.engine, "admin.denied", "failure", ip=principal.ip, by=principal.actor, operation=operation
        )
    require(principal, operation)


def require(principal: Principal, operation: str) -> None:
    """Refuse the operation unless the principal's role is at least the one :data:`OPERATIONS` names."""
    if not allowed(principal, operation):
        needed = OPERATIONS[operation]
        raise Forbidden(f"this needs the {needed} role (or a higher one); {principal.name!r} is {principal.role}")


def record(
    conn: Connection,
    by: Principal,
    event: str,
    *,
    outcome: str = "success",
    user_id: str | None = None,
    client_id: str | None = None,
    **detail: object,
) -> None:
    """The audit event ``admin.<event>`` of a change, in the caller's transaction, naming who made it."""
    audit.record(conn, f"admin.{event}", outcome, user_id=user_id, client_id=client_id, ip=by.ip, by=by.actor, **detail)
