"""The scopes an operator defined, with the plain-words description the consent screen shows (RFC 6749 §3.3).

OpenID Connect's own scopes and those in the settings are not stored here; the core merges all three.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Connection, Engine, delete, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute

from .db import transaction
from .schema import Client, Resource, Scope

__all__ = ["add_scope", "delete_scope", "scope_descriptions", "scope_holders", "set_scope_description"]


def scope_descriptions(engine: Engine) -> dict[str, str]:
    """Every stored scope's description, by name."""
    with transaction(engine, readonly=True) as conn:
        return {r.name: r.description for r in conn.execute(select(Scope.name, Scope.description))}


def add_scope(engine: Engine, name: str, description: str) -> bool:
    """Store a new scope; False when one of that name exists already."""
    try:
        with transaction(engine) as conn:
            conn.execute(insert(Scope), {"name": name, "description": description})
    except IntegrityError:
        return False
    return True


def set_scope_description(conn: Connection, name: str, description: str) -> bool:
    """Change a stored scope's plain words; False when no stored scope has that name."""
    return conn.execute(update(Scope).where(Scope.name == name).values(description=description)).rowcount == 1


def _holds(column: InstrumentedAttribute[str], name: str) -> ColumnElement[bool]:
    # A space-separated list holds the name as a whole word: " a b c " LIKE "% b %", with LIKE's own wildcards in the
    # name escaped (a scope name may contain "_" or "%").
    escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return (literal(" ") + column + literal(" ")).like(f"% {escaped} %", escape="\\")


def scope_holders(conn: Connection, name: str, limit: int = 5) -> list[str]:
    """Up to ``limit`` clients (by id) and resources (by URI) registered for the scope."""
    clients = select(Client.client_id.label("holder")).where(_holds(Client.scope, name))
    resources = select(Resource.uri.label("holder")).where(_holds(Resource.scope, name))
    rows = conn.execute(clients.union_all(resources).limit(limit))
    return [row.holder for row in rows]


def delete_scope(conn: Connection, name: str) -> bool:
    """Remove a stored scope; False when no stored scope has that name."""
    return conn.execute(delete(Scope).where(Scope.name == name)).rowcount == 1
