"""What clients and tokens are made of, as the operator manages it: scopes (with the plain words consent shows),
protected resources (RFC 8707; ``oauth.resources`` judges and records them) and the signing keys (list, rotate).
Every change is audited as ``admin.*`` naming who made it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core import Frontdesk, ScopeError
from ..crypto.keys import KeyInfo
from ..oauth import resources
from ..oauth.dpop import require_for_resource
from ..protocol.scope import OIDC_SCOPES
from ..storage.db import transaction
from ..storage.resources import ResourceRow
from ..storage.scopes import delete_scope as delete_stored_scope
from ..storage.scopes import scope_holders, set_scope_description
from .errors import Conflict, Invalid, NotFound
from .principals import Principal, record, require

__all__ = [
    "KeyView",
    "ResourceView",
    "ScopeView",
    "create_resource",
    "create_scope",
    "delete_resource",
    "delete_scope",
    "list_keys",
    "list_resources",
    "list_scopes",
    "resource",
    "rotate_keys",
    "update_resource",
    "update_scope",
]


@dataclass(frozen=True, slots=True)
class ScopeView:
    name: str
    description: str
    built_in: bool  # an OpenID Connect scope, which cannot be redefined

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "built_in": self.built_in}


@dataclass(frozen=True, slots=True)
class ResourceView:
    uri: str
    name: str
    scope: tuple[str, ...]
    access_token_ttl: int | None
    created_at: int
    require_dpop: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "name": self.name,
            "scope": " ".join(self.scope),
            "access_token_ttl": self.access_token_ttl,
            "created_at": self.created_at,
            "require_dpop": self.require_dpop,
        }


@dataclass(frozen=True, slots=True)
class KeyView:
    """A signing key without its private part: ``state`` is next (published, not yet signing), active or retired
    (published until ``publish_until``, for the tokens it signed)."""

    kid: str
    alg: str
    state: str
    created_at: int
    publish_until: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "alg": self.alg,
            "state": self.state,
            "created_at": self.created_at,
            "publish_until": self.publish_until,
        }


def list_scopes(fd: Frontdesk, by: Principal) -> list[ScopeView]:
    require(by, "scopes.read")
    return [ScopeView(k, v, k in OIDC_SCOPES) for k, v in sorted(fd.scopes(fresh=True).items())]


def create_scope(fd: Frontdesk, by: Principal, name: str, description: str) -> ScopeView:
    require(by, "scopes.write")
    if len(name) > 255 or len(description) > 1000:
        raise Invalid("a scope name is at most 255 characters, its description at most 1000")
    try:
        fd.create_scope(name, description)
    except ScopeError as exc:
        raise (Conflict if "already exists" in str(exc) else Invalid)(str(exc)) from None
    with transaction(fd.engine) as conn:
        record(conn, by, "scope.created", scope=name)
    return ScopeView(name, description.strip(), False)


def _stored(fd: Frontdesk, name: str) -> None:
    """Only a scope an operator stored may be changed: OpenID Connect's are the spec's, the file's are the file's."""
    if name in OIDC_SCOPES:
        raise Conflict(f"{name!r} is an OpenID Connect scope and cannot be changed")
    if name in fd.settings.scopes:
        raise Conflict(f"{name!r} is defined in the configuration file: change it there")


def update_scope(fd: Frontdesk, by: Principal, name: str, description: str) -> ScopeView:
    """New plain words for the consent screen; what a person already consented to is unchanged."""
    require(by, "scopes.write")
    _stored(fd, name)
    description = description.strip()
    if not description or len(description) > 1000:
        raise Invalid("describe the scope in plain words (at most 1000 characters); the consent screen shows it")
    with transaction(fd.engine) as conn:
        if "\x00" in name or not set_scope_description(conn, name, description):
            raise NotFound(f"no scope {name!r}")
        record(conn, by, "scope.updated", scope=name)
    fd.forget_scopes()
    return ScopeView(name, description, False)


def delete_scope(fd: Frontdesk, by: Principal, name: str) -> None:
    """Remove a scope no client and no resource is registered for: one still in use is refused, so that no
    client is left registered for a scope this server no longer describes."""
    require(by, "scopes.write")
    _stored(fd, name)
    with transaction(fd.engine) as conn:
        if "\x00" in name or name not in fd.scopes(fresh=True):
            raise NotFound(f"no scope {name!r}")
        holders = scope_holders(conn, name)
        if holders:
            raise Conflict(f"scope {name!r} is registered for {', '.join(holders)}: take it from them first")
        if not delete_stored_scope(conn, name):
            raise NotFound(f"no scope {name!r}")
        record(conn, by, "scope.deleted", scope=name)
    fd.forget_scopes()


def _resource(row: ResourceRow) -> ResourceView:
    return ResourceView(row.uri, row.name, row.scope, row.access_token_ttl, row.created_at, row.require_dpop)


def list_resources(fd: Frontdesk, by: Principal) -> list[ResourceView]:
    require(by, "resources.read")
    return [_resource(r) for r in resources.listed(fd)]


def resource(fd: Frontdesk, by: Principal, uri: str) -> ResourceView:
    require(by, "resources.read")
    row = resources.shown(fd, uri) if "\x00" not in uri else None
    if row is None:
        raise NotFound(f"no resource {uri[:255]!r}")
    return _resource(row)


def create_resource(
    fd: Frontdesk,
    by: Principal,
    *,
    uri: str,
    name: str,
    scope: str = "",
    access_token_ttl: int | None = None,
    require_dpop: bool = False,
) -> tuple[ResourceView, tuple[str, ...]]:
    """Register a resource; it and the scopes it brought that did not exist yet (described by their names until
    the operator gives them words)."""
    require(by, "resources.write")
    if access_token_ttl is not None and not 0 < access_token_ttl <= 86400:
        raise Invalid("access_token_ttl must be between 1 second and one day")
    try:
        row, new = resources.create(fd, uri, name, scope, access_token_ttl, require_dpop=require_dpop)
    except resources.ResourceError as exc:
        raise (Conflict if "already" in str(exc) or "meanwhile" in str(exc) else Invalid)(str(exc)) from None
    with transaction(fd.engine) as conn:
        record(conn, by, "resource.created", resource=row.uri)
    return _resource(row), new


def update_resource(fd: Frontdesk, by: Principal, uri: str, *, require_dpop: bool) -> ResourceView:
    """Change whether only DPoP-bound tokens are minted for the resource (RFC 9449 §7)."""
    require(by, "resources.write")
    row = require_for_resource(fd, uri, require_dpop) if "\x00" not in uri else None
    if row is None:
        raise NotFound(f"no resource {uri[:255]!r}")
    with transaction(fd.engine) as conn:
        record(conn, by, "resource.updated", resource=row.uri, require_dpop=require_dpop)
    return _resource(row)


def delete_resource(fd: Frontdesk, by: Principal, uri: str) -> ResourceView:
    """Remove a resource: no new token is minted for it, refreshes included; issued tokens run out."""
    require(by, "resources.write")
    row = resources.delete(fd, uri) if "\x00" not in uri else None
    if row is None:
        raise NotFound(f"no resource {uri[:255]!r}")
    with transaction(fd.engine) as conn:
        record(conn, by, "resource.deleted", resource=row.uri)
    return _resource(row)


def _key(info: KeyInfo) -> KeyView:
    return KeyView(info.kid, info.alg, info.state, info.created_at, info.publish_until)


def list_keys(fd: Frontdesk, by: Principal) -> list[KeyView]:
    require(by, "keys.read")
    return [_key(k) for k in fd.keys.list()]


def rotate_keys(fd: Frontdesk, by: Principal) -> list[KeyView]:
    """Promote each next key to active, retire the active one (published while tokens it signed may live), and
    publish a fresh next key; every key after it."""
    require(by, "keys.rotate")
    created = fd.keys.rotate()
    with transaction(fd.engine) as conn:
        record(conn, by, "keys.rotated", next_kids=created)
    return list_keys(fd, by)
