"""Client registration: the one place a client's metadata is judged (RFC 7591 §2, OpenID Connect Registration 1.0
§2, RP-Initiated Logout 1.0 §3.1, Back-Channel Logout 1.0 §2.2).

:func:`validate` takes the metadata a client asked for (:class:`ClientRequest`) and returns it checked and typed
(:class:`ClientMetadata`), or raises :class:`ClientError` naming the field with its RFC 7591 §3.2.2 code;
:func:`register` then stores it. The command line registers through here, and so will ``/register`` (RFC 7591 §3);
storage only persists what was judged.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Required, TypedDict, Unpack, get_args
from urllib.parse import SplitResult, urlsplit

from ..config import SIGNING_ALGS
from ..core import Frontdesk
from ..errors import OAuthError
from ..protocol.redirect_uri import validate_redirect_uri
from ..protocol.rfc8707 import check_resource
from ..protocol.scope import parse_scope
from ..secret import new_token
from ..storage.clients import AssertionAudience, ClientExists, ClientRecord
from .client_auth import AUTH_METHODS
from .grants import GRANT_TYPES

__all__ = [
    "ASSERTION_AUDIENCES",
    "DEFAULT_SCOPE",
    "ClientError",
    "ClientMetadata",
    "ClientRequest",
    "Registration",
    "UnknownScope",
    "register",
    "update_logout",
    "validate",
]

DEFAULT_SCOPE = "openid profile email offline_access"
# The audience a private_key_jwt client's assertions must name (RFC 7523 §3 as draft-ietf-oauth-rfc7523bis-09
# tightens it): "issuer" is the issuer identifier as a single string; "token-endpoint" also accepts this server's
# token endpoint URL as a single string, a named relaxation for client libraries that send it. Never an array.
ASSERTION_AUDIENCES: tuple[AssertionAudience, ...] = get_args(AssertionAudience)
# RFC 6749 §2.3.1: the methods that authenticate with a client secret, which this server issues.
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
MAX_JWKS_URI = 2048


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


class ClientRequest(TypedDict, total=False):
    """The metadata a client asks to be registered with (RFC 7591 §2 fields, frontdesk's names): what is left out,
    or None, gets the server's default."""

    name: Required[str]
    redirect_uris: Sequence[str]
    grant_types: Sequence[str] | None
    auth_method: str
    scope: str | None
    client_id: str | None
    secret: str | None
    jwks: Any
    jwks_uri: str | None
    resources: Sequence[str] | None
    access_token_ttl: int | None
    id_token_alg: str | None
    post_logout_redirect_uris: Sequence[str] | None
    backchannel_logout_uri: str | None
    backchannel_logout_session_required: bool
    assertion_audience: str


@dataclass(frozen=True, slots=True)
class ClientMetadata:
    """Client metadata that passed :func:`validate`, with the defaults filled in."""

    name: str
    auth_method: str
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scope: tuple[str, ...]
    jwks: dict[str, Any] | None
    jwks_uri: str | None
    resources: tuple[str, ...]
    access_token_ttl: int | None
    id_token_alg: str | None
    post_logout_redirect_uris: tuple[str, ...]
    backchannel_logout_uri: str | None
    backchannel_logout_session_required: bool
    assertion_audience: AssertionAudience
    client_id: str | None
    secret: str | None = field(repr=False)


class Registration(NamedTuple):
    """A registered client and, for the secret methods, its secret: shown this once, only its digest is kept."""

    client: ClientRecord
    secret: str | None


def _check_jwks(jwks: Any) -> dict[str, Any]:
    """RFC 7591 §2 ``jwks``: a JWK Set (RFC 7517 §5) of public keys only."""
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


def _check_logout_uris(
    post_logout_redirect_uris: Sequence[str], backchannel_logout_uri: str | None, public: bool
) -> None:
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


def _check_grant_types(asked: Sequence[str] | None, public: bool, redirect_uris: Sequence[str]) -> tuple[str, ...]:
    """RFC 7591 §2 ``grant_types``: each one this server serves (GRANT_TYPES), open to this kind of client, with
    a redirect URI for those that go through the authorization endpoint; a client that names none gets the
    defaults."""
    grants = tuple(dict.fromkeys(asked or [g.name for g in GRANT_TYPES.values() if g.default]))
    for grant in grants:
        if grant not in GRANT_TYPES:
            raise ClientError(f"grant type {grant!r} is not supported (RFC 9700 §2.4 forbids password)")
    for grant in grants:
        if public and not GRANT_TYPES[grant].public:
            raise ClientError(f"a public client cannot use {grant}")
    for grant in grants:
        if GRANT_TYPES[grant].redirect and not redirect_uris:
            raise ClientError(f"the {grant} grant needs at least one redirect URI", "invalid_redirect_uri")
    for uri in redirect_uris:
        try:
            validate_redirect_uri(uri, public)
        except OAuthError as exc:
            raise ClientError(exc.description, "invalid_redirect_uri") from None
    return grants


def _check_keys(method: str, jwks: Any, jwks_uri: str | None, assertion_audience: str) -> tuple[Any, AssertionAudience]:
    """RFC 7591 §2 ``jwks`` / ``jwks_uri`` for private_key_jwt (RFC 7523 §2.2), and the audience its assertions
    may name."""
    if method == "private_key_jwt":
        if jwks is None and not jwks_uri:
            raise ClientError("private_key_jwt needs jwks or jwks_uri")
        if jwks is not None:
            jwks = _check_jwks(jwks)
        if jwks_uri:
            _check_jwks_uri(jwks_uri)
    audience = next((a for a in ASSERTION_AUDIENCES if a == assertion_audience), None)
    if audience is None:
        raise ClientError(f"assertion audience must be one of {', '.join(ASSERTION_AUDIENCES)}")
    if audience != "issuer" and method != "private_key_jwt":
        raise ClientError("an assertion audience is only for private_key_jwt clients")
    return jwks, audience


def _check_scope(scope: str | None, known_scopes: Collection[str] | None) -> tuple[str, ...]:
    """RFC 7591 §2 ``scope`` (RFC 6749 §3.3 syntax); with ``known_scopes``, only scopes someone defined."""
    try:
        scopes = parse_scope(scope if scope is not None else DEFAULT_SCOPE)
    except OAuthError as exc:
        raise ClientError(exc.description) from None
    if known_scopes is not None and (unknown := tuple(s for s in scopes if s not in known_scopes)):
        raise UnknownScope(unknown)
    return scopes


def validate(request: ClientRequest, *, known_scopes: Collection[str] | None = None) -> ClientMetadata:
    """The requested metadata, checked field by field in a fixed order, or :class:`ClientError` for the first
    field that fails.

    With ``known_scopes``, every scope of the client must be one of them (:class:`UnknownScope` otherwise)."""
    name = request["name"]
    if not name.strip():
        raise ClientError("client name must not be empty")
    method = request.get("auth_method", "client_secret_basic")
    if method not in AUTH_METHODS:
        raise ClientError(f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}")
    public = method == "none"
    redirect_uris = tuple(request.get("redirect_uris", ()))
    grants = _check_grant_types(request.get("grant_types"), public, redirect_uris)
    jwks_uri = request.get("jwks_uri")
    jwks, audience = _check_keys(method, request.get("jwks"), jwks_uri, request.get("assertion_audience", "issuer"))
    try:
        resources = check_resource(list(request.get("resources") or []))
    except OAuthError as exc:
        raise ClientError(exc.description) from None
    post_logout = tuple(request.get("post_logout_redirect_uris") or ())
    backchannel = request.get("backchannel_logout_uri")
    _check_logout_uris(post_logout, backchannel, public)
    alg = request.get("id_token_alg")
    if alg is not None and alg not in SIGNING_ALGS:
        raise ClientError(f"id_token_signed_response_alg must be one of {', '.join(SIGNING_ALGS)}")
    ttl = request.get("access_token_ttl")
    if ttl is not None and not 30 <= ttl <= 86400:
        raise ClientError("access token lifetime must be between 30 seconds and one day")
    secret = request.get("secret")
    if secret is not None and method not in SECRET_METHODS:
        raise ClientError("a secret is only for client_secret_basic or client_secret_post")
    scopes = _check_scope(request.get("scope"), known_scopes)
    if secret is not None and len(secret) < 16:
        raise ClientError("a client secret must be at least 16 characters")
    return ClientMetadata(
        name=name.strip(),
        auth_method=method,
        redirect_uris=redirect_uris,
        grant_types=grants,
        scope=scopes,
        jwks=jwks,
        jwks_uri=jwks_uri,
        resources=resources,
        access_token_ttl=ttl,
        id_token_alg=alg,
        post_logout_redirect_uris=post_logout,
        backchannel_logout_uri=backchannel,
        backchannel_logout_session_required=request.get("backchannel_logout_session_required", False),
        assertion_audience=audience,
        client_id=request.get("client_id"),
        secret=secret,
    )


def register(
    fd: Frontdesk, *, known_scopes: Collection[str] | None = None, **request: Unpack[ClientRequest]
) -> Registration:
    """Register a client (RFC 7591 §3.1) once :func:`validate` accepts it; a secret method without a secret of its
    own gets a new one."""
    metadata = validate(request, known_scopes=known_scopes)
    secret = metadata.secret
    if secret is None and metadata.auth_method in SECRET_METHODS:
        secret = new_token("client_secret")
    try:
        client = fd.clients.insert(
            client_id=metadata.client_id,
            secret=secret,
            name=metadata.name,
            auth_method=metadata.auth_method,
            redirect_uris=metadata.redirect_uris,
            grant_types=metadata.grant_types,
            scope=metadata.scope,
            jwks=metadata.jwks,
            jwks_uri=metadata.jwks_uri,
            resources=metadata.resources,
            access_token_ttl=metadata.access_token_ttl,
            id_token_alg=metadata.id_token_alg,
            post_logout_redirect_uris=metadata.post_logout_redirect_uris,
            backchannel_logout_uri=metadata.backchannel_logout_uri,
            backchannel_logout_session_required=metadata.backchannel_logout_session_required,
            assertion_audience=metadata.assertion_audience,
        )
    except ClientExists as exc:
        raise ClientError(str(exc), "invalid_client_id") from None
    return Registration(client, secret)


def update_logout(
    fd: Frontdesk,
    client_id: str,
    *,
    post_logout_redirect_uris: Sequence[str],
    backchannel_logout_uri: str | None,
    backchannel_logout_session_required: bool,
) -> ClientRecord | None:
    """Replace a client's sign-out metadata (RP-Initiated Logout 1.0 §3.1, Back-Channel Logout 1.0 §2.2), judged
    as at registration; None for an unknown client."""
    current = fd.clients.get(client_id, cached=False)
    if current is None:
        return None
    _check_logout_uris(post_logout_redirect_uris, backchannel_logout_uri, current.public)
    return fd.clients.replace_logout(
        client_id,
        post_logout_redirect_uris=post_logout_redirect_uris,
        backchannel_logout_uri=backchannel_logout_uri,
        backchannel_logout_session_required=backchannel_logout_session_required,
    )
