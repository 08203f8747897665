"""The scopes an operator defined, with the plain-words description the consent screen shows (RFC 6749 §3.3).

OpenID Connect's own scopes and those in the settings are not stored here; the core merges all three.
"""

from __future__ import annotations

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from .db import transaction
from .schema import Scope

__all__ = ["add_scope", "scope_descriptions"]


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
