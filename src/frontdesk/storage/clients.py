"""Registered clients (RFC 7591 metadata names) and their lookup with a short per-process cache."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..config import SIGNING_ALGS
from ..errors import OAuthError
from ..protocol.redirect_uri import validate_redirect_uri
from ..protocol.rfc8707 import check_resource
from ..protocol.scope import parse_scope
from ..secret import digest, new_token
from .db import now, transaction
from .schema import Client

__all__ = [
    "ASSERTION_AUDIENCES",
    "AUTH_METHODS",
    "GRANT_TYPES",
    "AssertionAudience",
    "ClientError",
    "ClientRecord",
    "ClientStore",
    "UnknownScope",
]

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
GRANT_TYPES = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:device_code",
)
DEFAULT_SCOPE = "openid profile email offline_access"
# The audience a private_key_jwt client's assertions must name (RFC 7523 §3 as draft-ietf-oauth-rfc7523bis-09
# tightens it): "issuer" is the issuer identifier as a single string; "token-endpoint" also accepts this server's
# token endpoint URL as a single string, a named relaxation for client libraries that send it. Never an array.
AssertionAudience = Literal["issuer", "token-endpoint"]
ASSERTION_AUDIENCES: tuple[AssertionAudience, ...] = ("issuer", "token-endpoint")
MAX_JWKS_URI = 2048
CACHE_SECONDS = 5.0


def _new_client_id() -> str:
    # Never a leading "-": such an id reads as an option on command lines (`frontdesk client show -Xy…`).
    while (client_id := secrets.token_urlsafe(16)).startswith("-"):
        pass
    return client_id


class ClientError(ValueError):
    """Client metadata that cannot be registered; ``error`` is the RFC 7591 §3.2.2 code."""

    def __init__(self, message: str, error: str = "invalid_client_metadata") -> None:
        super().__init__(message)
        self.error = error


class UnknownScope(ClientError):
    """The client would be registered for scopes nobody defined: every token request it makes would then fail."""

    def __init__(self, scopes: tuple[str, ...]) -> None:
        super().__init__(f"unknown scope{'s' if len(scopes) > 1 else ''} {', '.join(map(repr, scopes))}")
        self.scopes = scopes


@dataclass(frozen=True, slots=True)
class ClientRecord:
    client_id: str
    name: str
    secret_digest: str | None
    auth_method: str
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scope: tuple[str, ...]
    jwks: dict[str, Any] | None
    jwks_uri: str | None
    resources: tuple[str, ...]
    access_token_ttl: int | None
    id_token_alg: str | None
    created_at: int
    post_logout_redirect_uris: tuple[str, ...] = ()
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool = False
    assertion_audience: AssertionAudience = "issuer"

    @property
    def public(self) -> bool:
        return self.auth_method == "none"

    def metadata(self) -> dict[str, Any]:
        """RFC 7591 §2 names; never the secret."""
        out: dict[str, Any] = {
            "client_id": self.client_id,
            "client_name": self.name,
            "redirect_uris": list(self.redirect_uris),
            "grant_types": list(self.grant_types),
            "response_types": ["code"] if "authorization_code" in self.grant_types else [],
            "token_endpoint_auth_method": self.auth_method,
            "scope": " ".join(self.scope),
            "client_id_issued_at": self.created_at,
        }
        if self.jwks is not None:
            out["jwks"] = self.jwks
        if self.jwks_uri:
            out["jwks_uri"] = self.jwks_uri
        if self.auth_method == "private_key_jwt":
            out["assertion_audience"] = self.assertion_audience  # frontdesk's own name: no RFC 7591 one exists
        if self.resources:
            out["resources"] = list(self.resources)
        if self.access_token_ttl:
            out["access_token_lifetime"] = self.access_token_ttl
        if self.id_token_alg:
            out["id_token_signed_response_alg"] = self.id_token_alg
        if self.post_logout_redirect_uris:
            out["post_logout_redirect_uris"] = list(self.post_logout_redirect_uris)
        if self.backchannel_logout_uri:
            out["backchannel_logout_uri"] = self.backchannel_logout_uri
            out["backchannel_logout_session_required"] = self.backchannel_logout_session_required
        return out


def _record(row: Any) -> ClientRecord:
    return ClientRecord(
        client_id=row.client_id,
        name=row.name,
        secret_digest=row.secret_digest,
        auth_method=row.auth_method,
        redirect_uris=tuple(json.loads(row.redirect_uris)),
        grant_types=tuple(json.loads(row.grant_types)),
        scope=tuple(row.scope.split()),
        jwks=json.loads(row.jwks) if row.jwks else None,
        jwks_uri=row.jwks_uri,
        resources=tuple(json.loads(row.resources)),
        access_token_ttl=row.access_token_ttl,
        id_token_alg=row.id_token_alg,
        created_at=row.created_at,
        post_logout_redirect_uris=tuple(json.loads(row.post_logout_redirect_uris)),
        backchannel_logout_uri=row.backchannel_logout_uri,
        backchannel_logout_session_required=bool(row.backchannel_logout_session_required),
        assertion_audience="token-endpoint" if row.assertion_audience == "token-endpoint" else "issuer",
    )


def _check_jwks(jwks: Any) -> dict[str, Any]:
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise ClientError("jwks must be a JWK Set with at least one key")
    for key in jwks["keys"]:
        if not isinstance(key, dict) or key.get("kty") not in ("RSA", "EC", "OKP"):
            raise ClientError("jwks keys must be public RSA, EC or OKP keys")
        if any(p in key for p in ("d", "p", "q", "dp", "dq", "qi")):
            raise ClientError("jwks must hold public keys only")
    return jwks


def _split(uri: str) -> SplitResult | None:
    """The parts of ``uri``, or None when urllib refuses it (an unclosed or bad IP literal, RFC 3986 §3.2.2)."""
    try:
        return urlsplit(uri)
    except ValueError:
        return None


def _check_jwks_uri(jwks_uri: str) -> None:
    """RFC 7591 §2: the URL of the client's JWK Set, fetched by this server, so https with a host, and nothing that
    makes the fetch go elsewhere than it says (user information) or that a URL cannot carry (spaces, controls)."""
    parts = _split(jwks_uri)
    if parts is None or parts.scheme != "https" or not parts.hostname:
        raise ClientError("jwks_uri must be an https URL with a host")
    if not jwks_uri.isprintable() or " " in jwks_uri or len(jwks_uri) > MAX_JWKS_URI:
        raise ClientError("jwks_uri must not carry spaces or control characters, nor be longer than 2048 characters")
    if parts.username is not None or parts.fragment or "#" in jwks_uri:
        raise ClientError("jwks_uri must not carry user information or a fragment")
    try:
        parts.port  # noqa: B018 - raises ValueError on a port out of range or not a number
    except ValueError:
        raise ClientError("jwks_uri has an invalid port") from None


def _check_logout_uris(post_logout_redirect_uris: list[str], backchannel_logout_uri: str | None, public: bool) -> None:
    """RP-Initiated Logout 1.0 §3.1: registered like redirect URIs. Back-Channel Logout 1.0 §2.2: an absolute
    https URL without a fragment (plain http only on a loopback literal, for development)."""
    for uri in post_logout_redirect_uris:
        try:
            validate_redirect_uri(uri, public)
        except OAuthError as exc:
            raise ClientError(exc.description.replace("redirect URI", "post-logout redirect URI")) from None
    if backchannel_logout_uri is None:
        return
    parts = _split(backchannel_logout_uri)
    loopback = parts is not None and parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1")
    secure = parts is not None and parts.scheme == "https" and parts.hostname
    if not (secure or loopback) or parts is None or not backchannel_logout_uri.isprintable():
        raise ClientError("backchannel_logout_uri must be an https URL (http only for 127.0.0.1 or [::1])")
    if "#" in backchannel_logout_uri or parts.username is not None or " " in backchannel_logout_uri:
        raise ClientError("backchannel_logout_uri must not carry a fragment, user information or spaces")


class ClientStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._cache: dict[str, tuple[float, ClientRecord]] = {}
        self._lock = threading.Lock()

    def create(
        self,
        *,
        name: str,
        redirect_uris: list[str],
        grant_types: list[str] | None = None,
        auth_method: str = "client_secret_basic",
        scope: str | None = None,
        client_id: str | None = None,
        secret: str | None = None,
        jwks: Any = None,
        jwks_uri: str | None = None,
        resources: list[str] | None = None,
        access_token_ttl: int | None = None,
        id_token_alg: str | None = None,
        post_logout_redirect_uris: list[str] | None = None,
        backchannel_logout_uri: str | None = None,
        backchannel_logout_session_required: bool = False,
        assertion_audience: AssertionAudience = "issuer",
        known_scopes: Collection[str] | None = None,
    ) -> tuple[ClientRecord, str | None]:
        """Register a client; returns it and, for secret methods, the secret (shown this once).

        With ``known_scopes``, every scope of the client must be one of them (:class:`UnknownScope` otherwise)."""
        grants = list(dict.fromkeys(grant_types or ["authorization_code", "refresh_token"]))
        if not name.strip():
            raise ClientError("client name must not be empty")
        if auth_method not in AUTH_METHODS:
            raise ClientError(f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}")
        for grant in grants:
            if grant not in GRANT_TYPES:
                raise ClientError(f"grant type {grant!r} is not supported (RFC 9700 §2.4 forbids password)")
        public = auth_method == "none"
        if public and "client_credentials" in grants:
            raise ClientError("a public client cannot use client_credentials")
        if "authorization_code" in grants and not redirect_uris:
            raise ClientError("the authorization_code grant needs at least one redirect URI", "invalid_redirect_uri")
        for uri in redirect_uris:
            try:
                validate_redirect_uri(uri, public)
            except OAuthError as exc:
                raise ClientError(exc.description, "invalid_redirect_uri") from None
        if auth_method == "private_key_jwt":
            if jwks is None and not jwks_uri:
                raise ClientError("private_key_jwt needs jwks or jwks_uri")
            if jwks is not None:
                jwks = _check_jwks(jwks)
            if jwks_uri:
                _check_jwks_uri(jwks_uri)
        if assertion_audience not in ASSERTION_AUDIENCES:
            raise ClientError(f"assertion audience must be one of {', '.join(ASSERTION_AUDIENCES)}")
        if assertion_audience != "issuer" and auth_method != "private_key_jwt":
            raise ClientError("an assertion audience is only for private_key_jwt clients")
        try:
            served = check_resource(resources or [])
        except OAuthError as exc:
            raise ClientError(exc.description) from None
        _check_logout_uris(post_logout_redirect_uris or [], backchannel_logout_uri, public)
        if id_token_alg is not None and id_token_alg not in SIGNING_ALGS:
            raise ClientError(f"id_token_signed_response_alg must be one of {', '.join(SIGNING_ALGS)}")
        if access_token_ttl is not None and not 30 <= access_token_ttl <= 86400:
            raise ClientError("access token lifetime must be between 30 seconds and one day")
        if secret is not None and auth_method not in ("client_secret_basic", "client_secret_post"):
            raise ClientError("a secret is only for client_secret_basic or client_secret_post")
        try:
            scopes = parse_scope(scope if scope is not None else DEFAULT_SCOPE)
        except OAuthError as exc:
            raise ClientError(exc.description) from None
        if known_scopes is not None and (unknown := tuple(s for s in scopes if s not in known_scopes)):
            raise UnknownScope(unknown)
        issued_secret: str | None = None
        if auth_method in ("client_secret_basic", "client_secret_post"):
            issued_secret = secret if secret is not None else new_token("client_secret")
            if len(issued_secret) < 16:
                raise ClientError("a client secret must be at least 16 characters")
        row = {
            "client_id": client_id or _new_client_id(),
            "name": name.strip(),
            "secret_digest": digest(issued_secret) if issued_secret else None,
            "auth_method": auth_method,
            "redirect_uris": json.dumps(redirect_uris),
            "grant_types": json.dumps(grants),
            "scope": " ".join(scopes),
            "jwks": json.dumps(jwks) if jwks is not None else None,
            "jwks_uri": jwks_uri,
            "resources": json.dumps(list(served)),
            "access_token_ttl": access_token_ttl,
            "id_token_alg": id_token_alg,
            "created_at": now(),
            "post_logout_redirect_uris": json.dumps(post_logout_redirect_uris or []),
            "backchannel_logout_uri": backchannel_logout_uri,
            "backchannel_logout_session_required": backchannel_logout_session_required,
            "assertion_audience": assertion_audience,
        }
        try:
            with transaction(self._engine) as conn:
                conn.execute(insert(Client), row)
        except IntegrityError:
            raise ClientError(f"client {row['client_id']!r} already exists", "invalid_client_id") from None
        record = self.get(str(row["client_id"]), cached=False)
        assert record is not None
        return record, issued_secret

    def set_logout(
        self,
        client_id: str,
        *,
        post_logout_redirect_uris: list[str],
        backchannel_logout_uri: str | None,
        backchannel_logout_session_required: bool,
    ) -> ClientRecord | None:
        """Replace a client's sign-out metadata (RP-Initiated and Back-Channel Logout); None for an unknown client."""
        current = self.get(client_id, cached=False)
        if current is None:
            return None
        _check_logout_uris(post_logout_redirect_uris, backchannel_logout_uri, current.public)
        with transaction(self._engine) as conn:
            conn.execute(
                update(Client)
                .where(Client.client_id == client_id)
                .values(
                    post_logout_redirect_uris=json.dumps(post_logout_redirect_uris),
                    backchannel_logout_uri=backchannel_logout_uri,
                    backchannel_logout_session_required=backchannel_logout_session_required,
                )
            )
        self._cache.pop(client_id, None)
        return self.get(client_id, cached=False)

    def get(self, client_id: str, cached: bool = True) -> ClientRecord | None:
        hit = self._cache.get(client_id)
        if cached and hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        with transaction(self._engine, readonly=True) as conn:
            row = conn.execute(select(Client).where(Client.client_id == client_id)).first()
        if row is None:
            return None  # not cached: a client registered a moment ago by another process is found at once
        record = _record(row)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[client_id] = (time.monotonic(), record)
        return record

    def list(self) -> list[ClientRecord]:
        with transaction(self._engine, readonly=True) as conn:
            rows = conn.execute(select(Client).order_by(Client.created_at, Client.client_id)).all()
        return [_record(r) for r in rows]

    def delete(self, client_id: str) -> bool:
        with transaction(self._engine) as conn:
            deleted = conn.execute(delete(Client).where(Client.client_id == client_id)).rowcount
        self._cache.pop(client_id, None)
        return bool(deleted)
