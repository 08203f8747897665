"""Protected resources (RFC 8707 §2, RFC 9728 §2): the URIs tokens may be minted for, the scopes that belong to each
and their token lifetime; and, because a resource brings its scopes with it, the scope rows it names.

Storage only: ``frontdesk.oauth.resources`` judges what may be registered and which request names which resource.
The lookups the token paths make (``resources_named``, ``all_resources``, ``restricted_scopes``) are plain SQL on
any connection (``db.fetch``), so they run inside a ``raw_transaction`` as well as on their own.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from .db import DB, fetch
from .schema import Resource, Scope

__all__ = [
    "ResourceRow",
    "all_resources",
    "delete_resource",
    "insert_resource",
    "insert_scopes",
    "longest_resource_ttl",
    "replace_require_dpop",
    "resources_named",
    "restricted_scopes",
    "stored_scopes",
]

_BY_URI = "SELECT uri, name, scope, access_token_ttl, created_at, require_dpop FROM resources WHERE uri = ?"
_ALL = "SELECT uri, name, scope, access_token_ttl, created_at, require_dpop FROM resources ORDER BY uri"


@dataclass(frozen=True, slots=True)
class ResourceRow:
    uri: str
    name: str
    scope: tuple[str, ...]
    access_token_ttl: int | None
    created_at: int
    require_dpop: bool = False  # RFC 9449 §7: only DPoP-bound tokens are minted for it


def _row(row: Sequence[Any]) -> ResourceRow:
    uri, name, scope, ttl, created_at, require_dpop = row
    return ResourceRow(uri, name, tuple(scope.split()), ttl, created_at, bool(require_dpop))


def resources_named(db: DB, uris: Sequence[str]) -> list[ResourceRow]:
    """The resources registered under exactly these URIs, in their order; the missing ones are simply absent. One
    statement of one shape per URI (a request names one or two), which PostgreSQL prepares once."""
    return [_row(row) for uri in dict.fromkeys(uris) for row in fetch(db, _BY_URI, (uri,))]


def all_resources(db: DB) -> list[ResourceRow]:
    return [_row(r) for r in fetch(db, _ALL)]


def longest_resource_ttl(db: DB) -> int:
    """The longest token lifetime any resource sets (0 when none does): retired signing keys stay published that
    long."""
    rows = fetch(db, "SELECT MAX(access_token_ttl) FROM resources")
    return int(rows[0][0] or 0) if rows else 0


def insert_resource(
    conn: Connection,
    *,
    uri: str,
    name: str,
    scope: Sequence[str],
    access_token_ttl: int | None,
    at: int,
    require_dpop: bool = False,
) -> ResourceRow:
    """Store a resource; a URI stored already raises ``IntegrityError`` (the primary key), for the caller to turn
    into its own error once the transaction is rolled back."""
    row = {"uri": uri, "name": name, "scope": " ".join(scope), "access_token_ttl": access_token_ttl, "created_at": at}
    conn.execute(insert(Resource), {**row, "require_dpop": require_dpop})
    return ResourceRow(uri, name, tuple(scope), access_token_ttl, at, require_dpop)


def replace_require_dpop(conn: Connection, uri: str, required: bool) -> bool:
    """Set whether only DPoP-bound tokens are minted for a resource (RFC 9449 §7); False for an unknown one."""
    return bool(conn.execute(update(Resource).where(Resource.uri == uri).values(require_dpop=required)).rowcount)


def delete_resource(conn: Connection, uri: str) -> ResourceRow | None:
    """Remove a resource; the row it was, or None when no resource has this URI. Its scopes stay: clients may be
    registered for them."""
    found = resources_named(conn, [uri])
    if not found:
        return None
    conn.execute(delete(Resource).where(Resource.uri == uri))
    return found[0]


def stored_scopes(conn: Connection, names: Sequence[str]) -> set[str]:
    """Which of ``names`` have a row in the scopes table."""
    return set(conn.scalars(select(Scope.name).where(Scope.name.in_(names)))) if names else set()


def insert_scopes(conn: Connection, descriptions: Mapping[str, str]) -> None:
    """Store new, unrestricted scopes with their descriptions, in the caller's transaction (a resource and the scopes
    it brings land together); a name stored already raises ``IntegrityError``."""
    if descriptions:
        conn.execute(insert(Scope), [{"name": n, "description": d} for n, d in descriptions.items()])


def restricted_scopes(db: DB, names: Collection[str]) -> set[str]:
    """Which of ``names`` the operator marked as restricted. One statement of one shape: the restricted scopes
    are a handful (what open registration may not have)."""
    if not names:
        return set()
    return {r[0] for r in fetch(db, "SELECT name FROM scopes WHERE restricted = ?", (True,))} & set(names)
