"""The vault for agents (issue 14 item 2, DESIGN §8): a person's frontdesk access token instead of the platform's key.

A platform's API key reaches every connection. An access token addressed to the vault (``aud`` = ``{issuer}/vault``,
the built-in resource of ``oauth.resources``) reaches only its person's connections (``sub``; ``vault.accounts``
says which are theirs) and only the integrations its scopes name (``vault:calendar`` → ``calendar``). It is checked
in process exactly as introspection checks it (``oauth.introspection.live_access_token``: signature with this
server's keys, issuer, expiry, the token and its grant not revoked, the client still there), plus its type
(RFC 9068 §4: ``at+jwt``, so no ID token passes for one) and its audience (RFC 8707; RFC 6750 §3.1).

:class:`PersonVault` is the one entry for every front that acts for a person with such a token: the vault's HTTP
API (web/vault.py) and an MCP server. It mirrors what an API key may do there: list connections, prepare a proxied
call, and make a connect link.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from joserfc.errors import JoseError
from sqlalchemy import Engine

from ..core import Frontdesk
from ..oauth.introspection import live_access_token
from ..oauth.resources import VAULT_SCOPE_PREFIX
from ..oauth.tokens import split_jti
from .accounts import owned
from .callers import Caller, actors_of
from .proxy import AuthorizationRequired, PendingCall, PreparedCall, Proxy
from .store import ConnectionRecord

__all__ = ["NotReachable", "PersonToken", "PersonVault", "person_token", "vault_audience", "verified_claims"]

# RFC 9068 §2.1 names the media type; "at+jwt" is its short form, the one this server signs with (oauth/tokens.py).
_ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})


def vault_audience(issuer: str) -> str:
    return issuer + "/vault"


class NotReachable(Exception):
    """The token does not reach what it named. ``scope`` is the scope it lacks when the connection is the person's
    own, of an integration its scopes do not name; None for anything else (someone else's connection, or none):
    the answer then says nothing about what exists."""

    def __init__(self, scope: str | None = None) -> None:
        super().__init__(scope or "not reachable with this token")
        self.scope = scope


@dataclass(frozen=True, slots=True)
class PersonToken:
    """What the vault takes from a person's token: who (``sub``), through which client and actors, and where."""

    subject: str
    client_id: str
    integrations: frozenset[str]
    actors: tuple[str, ...]  # RFC 8693 §4.1 ``act``, the current actor first

    @property
    def caller(self) -> Caller:
        return Caller(client_id=self.client_id, person=self.subject, actors=self.actors)


def verified_claims(fd: Frontdesk, token: str) -> dict[str, Any] | None:
    """The claims of ``token`` when it is a live access token of this server addressed to its vault, else None."""
    if token.count(".") != 2:
        return None
    try:
        header = fd.keys.verify(token).header  # remembered: live_access_token's own check costs nothing more
    except (JoseError, ValueError, KeyError, TypeError, UnicodeError):
        return None
    if header.get("typ") not in _ACCESS_TOKEN_TYPES:
        return None
    live = live_access_token(fd, token)
    if live is None or vault_audience(fd.issuer) not in live.audiences:
        return None
    return live.claims


def person_token(claims: Mapping[str, Any]) -> PersonToken | None:
    """The person a validated token acts for, or None when it acts for none: a client's own token
    (client credentials) has no grant of a person behind it and its ``sub`` is the client (RFC 9068 §2.2)."""
    subject, client_id, jti = claims.get("sub"), claims.get("client_id"), claims.get("jti")
    if not (isinstance(subject, str) and isinstance(client_id, str) and isinstance(jti, str)):
        return None
    if subject == client_id or split_jti(jti) is None:
        return None
    scope = claims.get("scope")
    names = str(scope).split() if isinstance(scope, str) else []
    integrations = frozenset(s[len(VAULT_SCOPE_PREFIX) :] for s in names if s.startswith(VAULT_SCOPE_PREFIX))
    return PersonToken(subject, client_id, integrations, actors_of(claims.get("act")))


@dataclass(slots=True)
class PersonVault:
    """The vault as one person's token reaches it."""

    token: PersonToken
    engine: Engine
    calls: Proxy

    def connections(self, integration: str | None = None) -> list[ConnectionRecord]:
        """The person's connections of the integrations the token names (of ``integration`` only, when given)."""
        if integration is not None and integration not in self.token.integrations:
            raise NotReachable(VAULT_SCOPE_PREFIX + integration)
        return [
            record
            for record in owned(self.engine, self.token.subject)
            if record.integration in self.token.integrations and integration in (None, record.integration)
        ]

    def connection(self, connection_id: str) -> ConnectionRecord:
        """One of the person's connections the token reaches; :class:`NotReachable` otherwise."""
        record = next((r for r in owned(self.engine, self.token.subject) if r.id == connection_id), None)
        if record is None:
            raise NotReachable()
        if record.integration not in self.token.integrations:
            raise NotReachable(VAULT_SCOPE_PREFIX + record.integration)
        return record

    def prepare(self, connection_id: str, path: str, query: str) -> PreparedCall | PendingCall | AuthorizationRequired:
        """A proxied call on one of the person's connections, as ``Vault.prepare_for`` makes one for an API key;
        the audit event and ``last_used_by`` name the client and the actor chain."""
        record = self.connection(connection_id)
        return self.calls.prepare(record, path, query, caller=self.token.caller)

    def authorization_required(self, integration: str, needed: Sequence[str] = ()) -> AuthorizationRequired:
        """A connect link for the person (bound to them: only they, signed in here, can use it), for the scopes
        granted so far plus ``needed``; it reconnects their existing connection of ``integration`` in place."""
        if integration not in self.token.integrations:
            raise NotReachable(VAULT_SCOPE_PREFIX + integration)
        existing = [r for r in owned(self.engine, self.token.subject) if r.integration == integration]
        user = existing[0].user if existing else self.token.subject
        return self.calls.authorization_required(user, integration, needed, subject=self.token.subject)
