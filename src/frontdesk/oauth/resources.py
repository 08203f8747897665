"""Protected resources as objects (RFC 8707, RFC 9728 §2; issue 13): the resources tokens may be minted for, the
scopes that belong to each, and their token lifetime.

A ``resource`` parameter names one of them, this server's own UserInfo (the issuer, RFC 9068 §3's audience of a
token asked for without a resource), its token vault (``{issuer}/vault``, issue 14: one ``vault:<integration>``
scope per integration) or its MCP server for the vault (``{issuer}/mcp``: the tools' scopes and the vault's);
anything else is ``invalid_target`` (RFC 8707 §2: "the requested resource is invalid, missing, unknown"). The
operator registers them (``frontdesk resource …``); each change is one transaction with its audit event.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence

from sqlalchemy.exc import IntegrityError

from ..core import Frontdesk
from ..errors import InvalidScope, InvalidTarget
from ..protocol.rfc8707 import check_resource, comparable
from ..protocol.scope import OIDC_SCOPES, parse_scope
from ..storage import audit
from ..storage.clients import ClientRecord
from ..storage.db import DB, now, transaction
from ..storage.resources import (
    ResourceRow,
    all_resources,
    delete_resource,
    insert_resource,
    insert_scopes,
    resources_named,
    restricted_scopes,
    stored_scopes,
)
from .memory import memory_of

__all__ = [
    "MCP_SCOPES",
    "MINTABLE_KEPT",
    "VAULT_SCOPE_PREFIX",
    "ResourceError",
    "ResourceRow",
    "create",
    "delete",
    "listed",
    "mcp_resource",
    "mintable",
    "minted_for",
    "registry_changed_here",
    "resolve",
    "scopes_beyond_registration",
    "shown",
    "token_ttl",
    "vault_resource",
]

MAX_URI = 255  # the resources table's key (storage/schema/clients.py)
MAX_NAME = 255
_UNKNOWN = "a requested resource is not registered at this server"
# The vault's scopes: ``vault:calendar`` reaches the person's connection of integration ``calendar`` (issue 14). The
# vault stores one per integration as it is added (vault/integrations.py), so they are known, described for consent
# and registrable like any operator's scope.
VAULT_SCOPE_PREFIX = "vault:"
# The MCP server's tools, one scope each (issue 14 item 3), in the words the consent page shows. Stored as built-in
# scopes when the vault opens (vault/mcp_tools.py), so they are known, described and restrictable like any other.
MCP_SCOPES = {
    "vault.connections.read": "See which accounts you have connected and whether each still works (never a token)",
    "vault.call": "Use your connected accounts for you, within what each connection allows",
    "vault.connect": "Ask you to connect an account, with a link only you can use",
}


class ResourceError(ValueError):
    """What the operator asked for cannot be registered; the message says why."""


def _userinfo(fd: Frontdesk) -> ResourceRow:
    """This server's own UserInfo, built in: its tokens are addressed to the issuer (``oauth.introspection``). Its
    scopes are OpenID Connect's, which a client must be registered for: it lends none to a client naming it."""
    return ResourceRow(fd.issuer, "UserInfo", (), None, 0)


def vault_resource(fd: Frontdesk) -> ResourceRow:
    """The token vault, built in (DESIGN §8): a person's token addressed to ``{issuer}/vault`` reaches that person's
    connections, of the integrations its ``vault:<integration>`` scopes name. Those scopes belong to it, so a client
    nobody vetted may ask for them with it, and the person consents to each (``scopes_beyond_registration``)."""
    scopes = tuple(sorted(s for s in fd.scopes() if s.startswith(VAULT_SCOPE_PREFIX)))
    return ResourceRow(fd.issuer + "/vault", "Connected accounts", scopes, None, 0)


def mcp_resource(fd: Frontdesk) -> ResourceRow:
    """The MCP server for the vault, built in (web/mcp.py): its own audience, since MCP clients ask for the URL they
    connect to (MCP 2025-06-18, RFC 8707), with the tools' scopes and the vault's ``vault:<integration>`` ones."""
    scopes = (*MCP_SCOPES, *vault_resource(fd).scope)
    return ResourceRow(fd.issuer + "/mcp", "Connected accounts, for AI assistants", scopes, None, 0)


def resolve(fd: Frontdesk, db: DB, requested: Sequence[str]) -> tuple[ResourceRow, ...]:
    """The registered resources ``requested`` (URIs ``check_resource`` accepted) names, in order, each once.

    A URI that differs from a registered one only in spelling (``protocol.rfc8707.comparable``) names it, and the
    token's audience is then the registered URI, the one its resource server checks. Anything else raises
    ``InvalidTarget`` (RFC 8707 §2)."""
    if not requested:
        return ()
    for uri in requested:
        if not _storable(uri):  # cannot be registered: no need to ask the store
            raise InvalidTarget(_UNKNOWN, detail=uri[:MAX_URI])
    userinfo = _userinfo(fd)
    builtins = {userinfo.uri: userinfo}
    keys = {comparable(u) for u in requested}
    vault, mcp = _builtin_keys(fd.issuer)
    if vault in keys:
        builtins[fd.issuer + "/vault"] = vault_resource(fd)
    if mcp in keys:
        builtins[fd.issuer + "/mcp"] = mcp_resource(fd)
    kept = _kept(fd, db)
    if kept is not None:
        by_uri = {uri: kept[uri] for uri in requested if uri in kept}
    else:
        by_uri = {r.uri: r for r in resources_named(db, [u for u in requested if u not in builtins])}
    by_uri.update(builtins)
    missing = [u for u in requested if u not in by_uri]
    if missing:
        # Kept or not, a URI not found is looked for in the store itself: one registered a moment ago at another
        # process is usable at once, as a scope is (core.Frontdesk.scopes).
        by_key = {comparable(r.uri): r for r in (*all_resources(db), *builtins.values())}
        for uri in missing:
            found = by_key.get(comparable(uri))
            if found is None:
                raise InvalidTarget(_UNKNOWN, detail=uri)
            by_uri[uri] = found
    out: dict[str, ResourceRow] = {}
    for uri in requested:
        out.setdefault(by_uri[uri].uri, by_uri[uri])
    return tuple(out.values())


@functools.lru_cache(maxsize=8)  # one issuer a process, as a rule
def _builtin_keys(issuer: str) -> tuple[str, str]:
    """The comparable forms of the vault's and the MCP server's URIs: what every token request's resources are
    checked against."""
    return comparable(issuer + "/vault"), comparable(issuer + "/mcp")


_BUILT_IN = {"": _userinfo, "/vault": vault_resource, "/mcp": mcp_resource}
MINTABLE_KEPT = 64  # past this many registered resources a code or refresh takes two statements (redemption.py)


def mintable(fd: Frontdesk, db: DB, jkt: str | None) -> dict[str, ResourceRow | None] | None:
    """What a token can be minted for now, by registered URI: the built-in resources (None: ``minted_for`` makes
    them), and the registered ones as this process keeps them (else as the store has them) but those that take only
    DPoP-bound tokens when ``jkt`` is None (``tokens.mint_access_token`` refuses them). None where there are too
    many to hand to a statement (``MINTABLE_KEPT``)."""
    kept = _kept(fd, db)
    if kept is None:  # a process that keeps no registry (the CLI, the tests): one read more
        kept = {r.uri: r for r in all_resources(db)}
    if len(kept) > MINTABLE_KEPT:
        return None
    out: dict[str, ResourceRow | None] = {uri: r for uri, r in kept.items() if jkt is not None or not r.require_dpop}
    out.update((fd.issuer + path, None) for path in _BUILT_IN)
    return out


def minted_for(fd: Frontdesk, catalog: dict[str, ResourceRow | None], uris: Sequence[str]) -> tuple[ResourceRow, ...]:
    """The resources of ``catalog`` (``mintable``) these registered URIs name, as ``resolve`` gives them."""
    return tuple(catalog[uri] or _BUILT_IN[uri.removeprefix(fd.issuer)](fd) for uri in uris)


def _kept(fd: Frontdesk, db: DB) -> dict[str, ResourceRow] | None:
    """The registry as this process keeps it (oauth/memory.py), read whole on first use; None where it keeps none.
    A token request reads it at every request, an operator changes it a few times a year."""
    memory = memory_of(fd.engine)
    if memory is None:
        return None
    return memory.catalog.read(None, lambda: {r.uri: r for r in all_resources(db)})


def registry_changed_here(fd: Frontdesk) -> None:
    """This process changed the registry: its own copy goes at once (others: migration 0019's triggers)."""
    memory = memory_of(fd.engine)
    if memory is not None:
        memory.catalog.drop()


def scopes_beyond_registration(
    fd: Frontdesk, client: ClientRecord, beyond: Collection[str], resources: Sequence[ResourceRow]
) -> set[str]:
    """Which of ``beyond`` (scopes the client is not registered for) it may ask for all the same: for a client
    nobody vetted (``ClientRecord.vetted``: it registered itself or is a metadata document's), those that belong to
    a resource it names and are not restricted. MCP 2025-11-25 ("Scope Selection Strategy", "Step-Up Authorization
    Flow"): such a client learns the scopes it needs from the resource's metadata or its ``insufficient_scope``
    challenge, never from us at registration; the person still consents to each. An operator's client stays within
    its registered scope: the operator chose it. Restricted scopes need an initial access token at registration
    (issue 13 item 1), so naming a resource cannot be a way around that."""
    if client.vetted or not beyond or not resources:
        return set()
    belonging = {s for r in resources for s in r.scope} & set(beyond)
    return belonging - restricted_scopes(fd.engine, belonging)


def token_ttl(fd: Frontdesk, client: ClientRecord, resources: Sequence[ResourceRow]) -> int:
    """An access token's lifetime: the shortest of the client's and of every resource it is addressed to, where
    they set one; otherwise the server's. Each is a limit the operator set, one for the client, one for the API
    (a payments API wanting two-minute tokens); a token held by that client for that API honours both."""
    limits = [t for t in (client.access_token_ttl, *(r.access_token_ttl for r in resources)) if t]
    return min(limits) if limits else fd.settings.lifetimes.access_token


def _storable(uri: str) -> bool:
    """A URI (RFC 3986 §2: printable ASCII, no space) of a length the resources table keeps."""
    return len(uri) <= MAX_URI and uri.isascii() and uri.isprintable() and " " not in uri


def _checked_uri(fd: Frontdesk, uri: str) -> str:
    try:
        check_resource([uri])
    except InvalidTarget as exc:
        raise ResourceError(f"{uri!r}: {exc.description}") from None
    if not (uri.isascii() and uri.isprintable() and " " not in uri):
        raise ResourceError(f"{uri!r}: a URI is printable ASCII without spaces (RFC 3986 §2)")
    if "?" in uri:
        raise ResourceError(f"{uri!r}: a resource URI has no query (RFC 8707 §2)")
    if len(uri) > MAX_URI:
        raise ResourceError(f"a resource URI is at most {MAX_URI} characters")
    if comparable(uri) == comparable(fd.issuer):
        raise ResourceError(f"{uri!r} is this server's own UserInfo, which is built in")
    if comparable(uri) == comparable(fd.issuer + "/vault"):
        raise ResourceError(f"{uri!r} is this server's token vault, which is built in")
    if comparable(uri) == comparable(fd.issuer + "/mcp"):
        raise ResourceError(f"{uri!r} is this server's MCP server for the vault, which is built in")
    return uri


def _checked_scope(scope: str) -> tuple[str, ...]:
    try:
        names = parse_scope(scope)
    except InvalidScope as exc:
        raise ResourceError(exc.description) from None
    oidc = [s for s in names if s in OIDC_SCOPES]
    if oidc:
        # They are this server's (UserInfo, refresh tokens), never a resource's: an unvetted client naming the
        # resource would otherwise be lent them.
        raise ResourceError(f"{oidc[0]!r} is an OpenID Connect scope of this server, not a resource's")
    vault = [s for s in names if s.startswith(VAULT_SCOPE_PREFIX)]
    if vault:
        raise ResourceError(f"{vault[0]!r} is a scope of this server's token vault, not a resource's")
    tools = [s for s in names if s in MCP_SCOPES]
    if tools:
        # Another resource naming them would lend them to any unvetted client that names it (scopes_beyond_...).
        raise ResourceError(f"{tools[0]!r} is a scope of this server's MCP tools, not a resource's")
    return names


def create(
    fd: Frontdesk,
    uri: str,
    name: str,
    scope: str = "",
    access_token_ttl: int | None = None,
    *,
    require_dpop: bool = False,
) -> tuple[ResourceRow, tuple[str, ...]]:
    """Register a resource; returns it and the scopes it brought that did not exist yet, created with the scope's
    name as its description until the operator gives one (``frontdesk scope …``). One transaction, audited as
    ``resource.created``."""
    uri = _checked_uri(fd, uri)
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise ResourceError(f"name the resource in plain words (1 to {MAX_NAME} characters)")
    if access_token_ttl is not None and access_token_ttl <= 0:
        raise ResourceError("the access token lifetime is a positive number of seconds")
    names = _checked_scope(scope)
    settings_scopes = set(fd.settings.scopes)
    try:
        with transaction(fd.engine) as conn:
            taken = [r.uri for r in all_resources(conn) if comparable(r.uri) == comparable(uri)]
            if taken:
                raise ResourceError(f"resource {taken[0]!r} is registered already")
            stored = stored_scopes(conn, names)
            new = [s for s in names if s not in settings_scopes and s not in stored]
            insert_scopes(conn, {s: s for s in new})
            row = insert_resource(
                conn,
                uri=uri,
                name=name,
                scope=names,
                access_token_ttl=access_token_ttl,
                at=now(),
                require_dpop=require_dpop,  # RFC 9449 §7
            )
            audit.record(
                conn,
                "resource.created",
                "success",
                resource=uri,
                scope=" ".join(names),
                created_scopes=" ".join(new),
                access_token_ttl=access_token_ttl,
                require_dpop=require_dpop,
            )
    except IntegrityError:
        # Another process registered the same URI or scope in the meantime; nothing of this one was written.
        raise ResourceError(f"resource {uri!r} or one of its scopes was registered meanwhile; try again") from None
    registry_changed_here(fd)
    fd.scopes(fresh=True)
    return row, tuple(new)


def listed(fd: Frontdesk) -> list[ResourceRow]:
    return all_resources(fd.engine)


def shown(fd: Frontdesk, uri: str) -> ResourceRow | None:
    found = resources_named(fd.engine, [uri])
    return found[0] if found else None


def delete(fd: Frontdesk, uri: str) -> ResourceRow | None:
    """Remove a resource, audited as ``resource.deleted``; None when none has this URI. No new token is minted for
    it from then on, refreshes included (``invalid_target``); access tokens already issued run out with their
    lifetime, as a JWT cannot be recalled (DESIGN §4)."""
    with transaction(fd.engine) as conn:
        row = delete_resource(conn, uri)
        if row is not None:
            audit.record(conn, "resource.deleted", "success", resource=uri)
    registry_changed_here(fd)
    return row
