"""Client registration: the one place a client's metadata is judged (RFC 7591 §2, OpenID Connect Registration 1.0
§2, RP-Initiated Logout 1.0 §3.1, Back-Channel Logout 1.0 §2.2).

:func:`validate` takes the metadata a client asked for (:class:`ClientRequest`) and returns it checked and typed
(:class:`ClientMetadata`), or raises :class:`ClientError` naming the field with its RFC 7591 §3.2.2 code;
:func:`register` then stores it; :func:`render_metadata` answers a client's metadata by RFC 7591 names. The command
line registers through here, and so does ``/register`` (``oauth.dynamic_registration``, RFC 7591 §3, with the limits
of ``[registration]``); storage only persists what was judged. Single fields are checked in ``client_metadata``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Required, TypedDict, Unpack, get_args

from ..config import SIGNING_ALGS
from ..core import Frontdesk
from ..errors import OAuthError
from ..protocol.redirect_uri import validate_redirect_uri
from ..protocol.rfc8707 import check_resource
from ..protocol.scope import parse_scope
from ..secret import new_token
from ..storage.clients import AssertionAudience, ClientExists, ClientRecord
from .ciba_clients import check_delivery
from .client_auth import AUTH_METHODS
from .client_metadata import (
    DISPLAY_FIELDS,
    ClientError,
    Limits,
    UnknownScope,
    check_application_type,
    check_display_fields,
    check_jwks,
    check_jwks_uri,
    check_limits,
    check_logout_uris,
    check_response_types,
    on_redirect_hosts,
)
from .exchange_policy import exchange_targets
from .grants import GRANT_TYPES

__all__ = [
    "ASSERTION_AUDIENCES",
    "DEFAULT_SCOPE",
    "ClientError",
    "ClientMetadata",
    "ClientRequest",
    "Limits",
    "Registration",
    "UnknownScope",
    "register",
    "render_metadata",
    "stored_metadata",
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
    dpop_bound_access_tokens: bool  # RFC 9449 §5.2
    assertion_audience: str
    # OpenID Connect Registration 1.0 §2; None (the operator's command line): inferred, no redirect rule of its own.
    application_type: str | None
    response_types: Sequence[str] | None
    # RFC 7591 §2 display fields (client_metadata.DISPLAY_FIELDS).
    client_uri: str | None
    logo_uri: str | None
    tos_uri: str | None
    policy_uri: str | None
    contacts: Sequence[str] | None
    software_id: str | None
    software_version: str | None
    may_exchange_for: Sequence[str] | None  # RFC 8693: the operator's exchange policy (oauth.exchange_policy)
    backchannel_token_delivery_mode: str | None  # OpenID Connect CIBA Core 1.0 §4 (oauth.ciba_clients)
    backchannel_client_notification_endpoint: str | None


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
    application_type: str = "web"
    response_types: tuple[str, ...] = ("code",)
    extra_metadata: dict[str, Any] = field(default_factory=dict)  # RFC 7591 §2 display fields
    may_exchange_for: tuple[str, ...] = ()
    backchannel_token_delivery_mode: str | None = None  # CIBA Core 1.0 §4
    backchannel_client_notification_endpoint: str | None = None
    dpop_bound_access_tokens: bool = False  # RFC 9449 §5.2: token requests without a DPoP proof are refused


class Registration(NamedTuple):
    """A registered client and, for the secret methods, its secret: shown this once, only its digest is kept."""

    client: ClientRecord
    secret: str | None


def _check_grant_types(
    asked: Sequence[str] | None, public: bool, redirect_uris: Sequence[str], native: bool = False
) -> tuple[str, ...]:
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
            validate_redirect_uri(uri, public or native)
        except OAuthError as exc:
            raise ClientError(exc.description, "invalid_redirect_uri") from None
    return grants


def _check_keys(method: str, jwks: Any, jwks_uri: str | None, assertion_audience: str) -> tuple[Any, AssertionAudience]:
    """RFC 7591 §2 ``jwks`` / ``jwks_uri`` for private_key_jwt (RFC 7523 §2.2), and the audience its assertions
    may name."""
    if method == "private_key_jwt" and jwks is None and not jwks_uri:
        raise ClientError("private_key_jwt needs jwks or jwks_uri")
    # Judged whatever the method: a key set is stored and published to nobody, but never as arbitrary JSON.
    if jwks is not None:
        jwks = check_jwks(jwks)
    if jwks_uri:
        check_jwks_uri(jwks_uri)
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


def _application_type(asked: str | None, redirect_uris: Sequence[str]) -> str:
    """OpenID Connect Registration 1.0 §2. The operator's command line sends none: its client is "native" when a
    redirect URI is not https (loopback or private-use scheme), else "web", and no rule beyond
    ``validate_redirect_uri`` applies, as before application types existed."""
    if asked is None:
        return "native" if any(not uri.lower().startswith("https:") for uri in redirect_uris) else "web"
    check_application_type(asked, redirect_uris)
    return asked


def validate(
    request: ClientRequest, *, known_scopes: Collection[str] | None = None, limits: Limits | None = None
) -> ClientMetadata:
    """The requested metadata, checked field by field in a fixed order, or :class:`ClientError` for the first
    field that fails.

    With ``known_scopes``, every scope of the client must be one of them (:class:`UnknownScope` otherwise); with
    ``limits`` (registration without an operator), counts and lengths are bounded."""
    name = request["name"]
    redirect_uris = tuple(request.get("redirect_uris", ()))
    post_logout = tuple(request.get("post_logout_redirect_uris") or ())
    check_limits(name, redirect_uris, post_logout, limits)
    if not name.strip():
        raise ClientError("client name must not be empty")
    method = request.get("auth_method", "client_secret_basic")
    if method not in AUTH_METHODS:
        raise ClientError(f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}")
    public = method == "none"
    # A client that says it is native (OpenID Connect Registration §2) may use loopback redirects with a secret too:
    # one registered dynamically gets a secret of its own instance, which RFC 8252 §8.5 lets the server treat as
    # confidential. Such a redirect URI is then matched exactly, port included (the port exception is for public
    # clients, protocol/redirect_uri.py).
    native = request.get("application_type") == "native"
    grants = _check_grant_types(request.get("grant_types"), public, redirect_uris, native)
    application_type = _application_type(request.get("application_type"), redirect_uris)
    response_types = check_response_types(request.get("response_types"), grants)
    jwks_uri = request.get("jwks_uri")
    jwks, audience = _check_keys(method, request.get("jwks"), jwks_uri, request.get("assertion_audience", "issuer"))
    try:
        resources = check_resource(list(request.get("resources") or []))
    except OAuthError as exc:
        raise ClientError(exc.description) from None
    backchannel = request.get("backchannel_logout_uri")
    check_logout_uris(post_logout, backchannel, public)
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
    extra = check_display_fields({f: request.get(f) for f in DISPLAY_FIELDS}, limits)
    if limits is not None:  # a registration without an operator: RFC 7591 §5, client_metadata.on_redirect_hosts
        extra = on_redirect_hosts(extra, redirect_uris)
    delivery, notification = check_delivery(
        grants,
        public,
        request.get("backchannel_token_delivery_mode"),
        request.get("backchannel_client_notification_endpoint"),
    )
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
        application_type=application_type,
        response_types=response_types,
        extra_metadata=extra,
        may_exchange_for=exchange_targets(request.get("may_exchange_for")),
        backchannel_token_delivery_mode=delivery,
        backchannel_client_notification_endpoint=notification,
        dpop_bound_access_tokens=request.get("dpop_bound_access_tokens") is True,
    )


def stored_metadata(metadata: ClientMetadata) -> dict[str, Any]:
    """What storage keeps of validated metadata (``storage.clients.insert_client`` and
    ``replace_client_metadata`` take these keywords)."""
    return {
        "name": metadata.name,
        "auth_method": metadata.auth_method,
        "redirect_uris": metadata.redirect_uris,
        "grant_types": metadata.grant_types,
        "scope": metadata.scope,
        "jwks": metadata.jwks,
        "jwks_uri": metadata.jwks_uri,
        "resources": metadata.resources,
        "access_token_ttl": metadata.access_token_ttl,
        "id_token_alg": metadata.id_token_alg,
        "post_logout_redirect_uris": metadata.post_logout_redirect_uris,
        "backchannel_logout_uri": metadata.backchannel_logout_uri,
        "backchannel_logout_session_required": metadata.backchannel_logout_session_required,
        "assertion_audience": metadata.assertion_audience,
        "application_type": metadata.application_type,
        "extra_metadata": metadata.extra_metadata,
        "backchannel_token_delivery_mode": metadata.backchannel_token_delivery_mode,
        "backchannel_client_notification_endpoint": metadata.backchannel_client_notification_endpoint,
        "dpop_bound_access_tokens": metadata.dpop_bound_access_tokens,
    }


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
            may_exchange_for=metadata.may_exchange_for,
            **stored_metadata(metadata),
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
    check_logout_uris(post_logout_redirect_uris, backchannel_logout_uri, current.public)
    return fd.clients.replace_logout(
        client_id,
        post_logout_redirect_uris=post_logout_redirect_uris,
        backchannel_logout_uri=backchannel_logout_uri,
        backchannel_logout_session_required=backchannel_logout_session_required,
    )


def render_metadata(client: ClientRecord) -> dict[str, Any]:
    """The client's registered metadata by RFC 7591 §2 names, as RFC 7591 §3.2.1 and RFC 7592 §3 answer it (and the
    command line shows it): every stored value, defaults included; never the secret."""
    out: dict[str, Any] = {
        "client_id": client.client_id,
        "client_name": client.name,
        "redirect_uris": list(client.redirect_uris),
        "grant_types": list(client.grant_types),
        "response_types": ["code"] if "authorization_code" in client.grant_types else [],
        "token_endpoint_auth_method": client.auth_method,
        "scope": " ".join(client.scope),
        "client_id_issued_at": client.created_at,
        "application_type": client.application_type,
    }
    if client.jwks is not None:
        out["jwks"] = client.jwks
    if client.jwks_uri:
        out["jwks_uri"] = client.jwks_uri
    if client.auth_method == "private_key_jwt":
        out["assertion_audience"] = client.assertion_audience  # frontdesk's own name: no RFC 7591 one exists
    if client.resources:
        out["resources"] = list(client.resources)
    if client.access_token_ttl:
        out["access_token_lifetime"] = client.access_token_ttl
    if client.id_token_alg:
        out["id_token_signed_response_alg"] = client.id_token_alg
    if client.post_logout_redirect_uris:
        out["post_logout_redirect_uris"] = list(client.post_logout_redirect_uris)
    if client.backchannel_logout_uri:
        out["backchannel_logout_uri"] = client.backchannel_logout_uri
        out["backchannel_logout_session_required"] = client.backchannel_logout_session_required
    if client.backchannel_token_delivery_mode:  # CIBA Core 1.0 §4
        out["backchannel_token_delivery_mode"] = client.backchannel_token_delivery_mode
    if client.backchannel_client_notification_endpoint:
        out["backchannel_client_notification_endpoint"] = client.backchannel_client_notification_endpoint
    if client.dpop_bound_access_tokens:
        out["dpop_bound_access_tokens"] = True
    out.update({k: v for k, v in client.extra_metadata.items() if k in DISPLAY_FIELDS})
    return out
