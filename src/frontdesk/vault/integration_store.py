"""The vault's integrations (the platform's app at each provider) as purpose-named operations.

A client secret is sealed with the vault keys (AES-256-GCM, the integration's name as associated data, the key id in
a column so rotation can find what is left); it is opened only to call the provider's token endpoint.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..secret import Secret
from ..storage.db import now, transaction
from ..storage.schema import Scope, VaultConnection, VaultConnectSession, VaultIntegration
from .store import VaultError, storable

if TYPE_CHECKING:  # keys.py reads the sealed rows' key ids through this module
    from .keys import VaultKeys

__all__ = [
    "Integration",
    "add_integration",
    "add_scope",
    "delete_integration",
    "integration",
    "integration_providers",
    "integrations",
    "missing_scopes",
    "reseal_secrets",
    "sealed_secrets",
    "secret_key_ids",
]

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


@dataclass(frozen=True, slots=True)
class Integration:
    name: str
    provider: str
    client_id: str
    client_secret: Secret | None
    scopes: tuple[str, ...]
    params: Mapping[str, str]
    created_at: int
    # Made before revision 0008: ``scopes`` are asked for on top of the provider's default scopes.
    adds_default_scopes: bool = False

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "provider": self.provider,
            "client_id": self.client_id,
            "has_client_secret": self.client_secret is not None,
            "scopes": list(self.scopes),
            "params": dict(self.params),
            "created_at": self.created_at,
        }


def _secret_aad(name: str) -> bytes:
    return b"vault integration:" + name.encode()


def add_integration(
    engine: Engine,
    keys: VaultKeys,
    *,
    name: str,
    provider: str,
    client_id: str,
    client_secret: str | None,
    scopes: Sequence[str],
    params: Mapping[str, str],
    vault_scope: tuple[str, str] | None = None,
) -> Integration:
    """Store an integration and, with ``vault_scope`` (name, plain words), the authorization server's scope that reaches
    its connections with a person's token (issue 14), unless a scope of that name exists already."""
    if not _NAME.fullmatch(name):
        raise VaultError("an integration name is 1-63 lowercase letters, digits, '-' or '_'")
    if not client_id.strip():
        raise VaultError("the client id must not be empty")
    sealed, kid = keys.seal(client_secret.encode(), _secret_aad(name)) if client_secret else (None, None)
    at = now()
    try:
        with transaction(engine) as conn:
            conn.execute(
                insert(VaultIntegration),
                {
                    "name": name,
                    "provider": provider,
                    "client_id": client_id.strip(),
                    "client_secret": sealed,
                    "key_id": kid,
                    "scopes": json.dumps(list(scopes)),
                    "params": json.dumps(dict(params), sort_keys=True),
                    "created_at": at,
                    "adds_default_scopes": False,
                },
            )
            if vault_scope is not None:
                name_taken = conn.execute(select(Scope.name).where(Scope.name == vault_scope[0])).first()
                if name_taken is None:
                    conn.execute(insert(Scope), {"name": vault_scope[0], "description": vault_scope[1]})
    except IntegrityError:
        raise VaultError(f"integration {name!r} already exists") from None
    return Integration(
        name, provider, client_id.strip(), Secret(client_secret) if client_secret else None, tuple(scopes), params, at
    )


def _integration(keys: VaultKeys, row: Any) -> Integration:
    secret = Secret(keys.open(row.client_secret, _secret_aad(row.name)).decode()) if row.client_secret else None
    return Integration(
        row.name, row.provider, row.client_id, secret, tuple(json.loads(row.scopes)), json.loads(row.params),
        row.created_at, row.adds_default_scopes,
    )  # fmt: skip


def integration(engine: Engine, keys: VaultKeys, name: str) -> Integration | None:
    if not storable(name):
        return None
    with transaction(engine, readonly=True) as conn:
        row = conn.execute(select(VaultIntegration).where(VaultIntegration.name == name)).one_or_none()
    return _integration(keys, row) if row else None


def integrations(engine: Engine, keys: VaultKeys) -> list[Integration]:
    with transaction(engine, readonly=True) as conn:
        rows = conn.execute(select(VaultIntegration).order_by(VaultIntegration.name)).all()
    return [_integration(keys, r) for r in rows]


def integration_providers(conn: Connection) -> list[tuple[str, str]]:
    """(name, provider) of every integration, its secret left sealed: what the keep-alive sweep needs."""
    return [
        (name, provider) for name, provider in conn.execute(select(VaultIntegration.name, VaultIntegration.provider))
    ]


def missing_scopes(engine: Engine, prefix: str) -> list[tuple[str, str]]:
    """(name, provider) of the integrations without a scope ``prefix + name``: made before the vault had scopes."""
    with transaction(engine, readonly=True) as conn:
        stored = {name for (name,) in conn.execute(select(Scope.name).where(Scope.name.startswith(prefix)))}
        found = conn.execute(select(VaultIntegration.name, VaultIntegration.provider)).all()
    return [(name, provider) for name, provider in found if prefix + name not in stored]


def add_scope(engine: Engine, name: str, description: str) -> bool:
    """Store a scope (see :func:`add_integration`); False when another process stored it first."""
    try:
        with transaction(engine) as conn:
            conn.execute(insert(Scope), {"name": name, "description": description})
    except IntegrityError:
        return False
    return True


def delete_integration(engine: Engine, name: str, *, with_connections: bool = False) -> bool:
    with transaction(engine) as conn:
        count = len(conn.execute(select(VaultConnection.id).where(VaultConnection.integration == name)).all())
        if count and not with_connections:
            raise VaultError(
                f"integration {name!r} has {count} connection(s); delete them first, or pass --with-connections"
            )
        conn.execute(delete(VaultConnection).where(VaultConnection.integration == name))
        conn.execute(delete(VaultConnectSession).where(VaultConnectSession.integration == name))
        return conn.execute(delete(VaultIntegration).where(VaultIntegration.name == name)).rowcount > 0


def reseal_secrets(conn: Connection, keys: VaultKeys, batch: int) -> int:
    """Re-seal up to ``batch`` client secrets sealed under another key than the active one, their rows held to the
    end of the caller's transaction. Returns how many."""
    rows = conn.execute(
        select(VaultIntegration)
        .where(VaultIntegration.key_id.is_not(None), VaultIntegration.key_id != keys.active_id)
        .limit(batch)
        .with_for_update()
    ).all()
    for item in rows:
        assert item.client_secret is not None
        aad = _secret_aad(item.name)
        sealed, kid = keys.seal(keys.open(item.client_secret, aad), aad)
        resealed = {"client_secret": sealed, "key_id": kid}
        conn.execute(update(VaultIntegration).where(VaultIntegration.name == item.name).values(**resealed))
    return len(rows)


def sealed_secrets(conn: Connection) -> int:
    """How many integrations hold a sealed client secret (a public client's holds none)."""
    return int(
        conn.execute(
            select(func.count()).select_from(VaultIntegration).where(VaultIntegration.client_secret.is_not(None))
        ).scalar_one()
    )


def secret_key_ids(conn: Connection) -> set[str]:
    """The ids of the vault keys the integrations' client secrets are sealed under."""
    return {r for (r,) in conn.execute(select(VaultIntegration.key_id).distinct()) if r}
