"""The token vault as the operator manages it (DESIGN §6): its integrations (the platform's apps at providers) and
the connections people made through them, listed and deleted. A connection is revoked at its provider where the
provider allows it, then deleted (``vault.lifecycle``). Tokens are never shown: a connection is its status, scopes
and bookkeeping."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core import Frontdesk
from ..storage.db import transaction
from ..storage.vault_admin import connection_page
from ..vault import integration_store
from ..vault.service import Vault, vault_of
from ..vault.store import ConnectionRecord, VaultError, record_of
from .errors import Conflict, Invalid, NotFound, Unavailable
from .paging import Page, check_limit, decode_cursor, page_of
from .principals import Principal, record, require

__all__ = [
    "STATUSES",
    "ConnectionView",
    "IntegrationView",
    "connection",
    "delete_connection",
    "delete_integration",
    "list_connections",
    "list_integrations",
]

STATUSES = ("active", "needs_reauth", "revoked")


@dataclass(frozen=True, slots=True)
class IntegrationView:
    name: str
    provider: str
    client_id: str
    has_client_secret: bool
    scopes: tuple[str, ...]  # asked for at every connection
    params: dict[str, str]
    created_at: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "provider": self.provider,
            "client_id": self.client_id,
            "has_client_secret": self.has_client_secret,
            "scopes": list(self.scopes),
            "params": dict(self.params),
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class ConnectionView:
    """A connection as it may be shown: never a token."""

    id: str
    integration: str
    user: str  # the platform's user id
    person: str | None  # the frontdesk person it is, when known
    status: str
    scopes: tuple[str, ...]
    expires_at: int | None
    refreshed_at: int | None
    last_used_at: int | None
    failures: int
    last_error: str | None
    created_at: int
    updated_at: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "integration": self.integration,
            "user": self.user,
            "person": self.person,
            "status": self.status,
            "scopes": list(self.scopes),
            "expires_at": self.expires_at,
            "refreshed_at": self.refreshed_at,
            "last_used_at": self.last_used_at,
            "failures": self.failures,
            "last_error": self.last_error,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def _vault(fd: Frontdesk) -> Vault:
    try:
        return vault_of(fd)
    except RuntimeError:
        raise Unavailable("no vault is attached to this server") from None


def _connection(r: ConnectionRecord) -> ConnectionView:
    return ConnectionView(
        r.id,
        r.integration,
        r.user,
        r.person,
        r.status,
        r.scopes,
        r.expires_at,
        r.refreshed_at,
        r.last_used_at,
        r.failures,
        r.last_error,
        r.created_at,
        r.updated_at,
    )


def list_integrations(fd: Frontdesk, by: Principal) -> list[IntegrationView]:
    require(by, "vault.read")
    vault = _vault(fd)
    return [
        IntegrationView(
            i.name,
            i.provider,
            i.client_id,
            i.client_secret is not None,
            vault.scopes_of(i),  # an integration made before revision 0008 included (its defaults on top)
            dict(i.params),
            i.created_at,
        )
        for i in integration_store.integrations(vault.engine, vault.keys)
    ]


def delete_integration(fd: Frontdesk, by: Principal, name: str, *, with_connections: bool = False) -> None:
    """Delete an integration; one that still has connections only ``with_connections`` (deleted with it)."""
    require(by, "vault.write")
    vault = _vault(fd)
    if "\x00" in name:
        raise NotFound(f"no integration {name[:64]!r}")
    try:
        deleted = integration_store.delete_integration(vault.engine, name, with_connections=with_connections)
    except VaultError as exc:
        raise Conflict(str(exc)) from None
    if not deleted:
        raise NotFound(f"no integration {name[:64]!r}")
    with transaction(fd.engine) as conn:
        record(conn, by, "vault.integration.deleted", integration=name, with_connections=with_connections)


def list_connections(
    fd: Frontdesk,
    by: Principal,
    *,
    integration: str | None = None,
    user: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[ConnectionView]:
    require(by, "vault.read")
    vault = _vault(fd)
    check_limit(limit)
    if status is not None and status not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}")
    for value in (integration, user):
        if value is not None and ("\x00" in value or len(value) > 255):
            raise Invalid("integration and user are at most 255 characters, without NUL")
    with transaction(vault.engine, readonly=True) as conn:
        rows = connection_page(
            conn, integration=integration, user=user, status=status, after=decode_cursor(cursor), limit=limit + 1
        )
    return page_of([_connection(record_of(r)) for r in rows], limit, lambda c: c.id)


def connection(fd: Frontdesk, by: Principal, connection_id: str) -> ConnectionView:
    require(by, "vault.read")
    found = _vault(fd).connection(connection_id)
    if found is None:
        raise NotFound(f"no connection {connection_id[:64]!r}")
    return _connection(found)


def delete_connection(fd: Frontdesk, by: Principal, connection_id: str) -> bool:
    """Revoke the connection at its provider where it can be, then delete it; whether the provider confirmed."""
    require(by, "vault.write")
    vault = _vault(fd)
    found = vault.connection(connection_id)
    if found is None:
        raise NotFound(f"no connection {connection_id[:64]!r}")
    revoked = vault.delete(found)
    with transaction(fd.engine) as conn:
        record(conn, by, "vault.connection.deleted", connection=found.id, integration=found.integration)
    return revoked
