"""The checks of single client metadata fields (RFC 7591 §2, OpenID Connect Registration 1.0 §2, RP-Initiated Logout
1.0 §3.1, Back-Channel Logout 1.0 §2.2), each raising :class:`ClientError` with its RFC 7591 §3.2.2 code and the
field named. ``oauth.registration.validate`` runs them in order; nothing here stores anything."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from ..errors import OAuthError
from ..protocol.redirect_uri import validate_redirect_uri

__all__ = [
    "APPLICATION_TYPES",
    "DISPLAY_FIELDS",
    "ClientError",
    "Limits",
    "UnknownScope",
    "check_application_type",
    "check_display_fields",
    "check_jwks",
    "check_jwks_uri",
    "check_limits",
    "check_logout_uris",
    "check_response_types",
    "on_redirect_hosts",
]

MAX_JWKS_URI = 2048
# OpenID Connect Registration 1.0 §2 application_type; "web" is its default.
APPLICATION_TYPES = ("web", "native")
# RFC 7591 §2 fields kept for display and read-back only: URLs a person may follow from the consent page, and plain
# strings. Never used to decide anything.
DISPLAY_URIS = ("client_uri", "logo_uri", "tos_uri", "policy_uri")
DISPLAY_STRINGS = ("software_id", "software_version")
DISPLAY_FIELDS = (*DISPLAY_URIS, "contacts", *DISPLAY_STRINGS)


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
class Limits:
    """How much one registration may hold (``[registration]``): a self-registered client's metadata is stored and
    shown to people, so none of it may be unbounded (RFC 7591 §5)."""

    max_redirect_uris: int
    max_uri_length: int
    max_name_length: int


def _split(uri: str) -> SplitResult | None:
    """The parts of ``uri``, or None when urllib refuses it (an unclosed or bad IP literal, RFC 3986 §3.2.2)."""
    try:
        return urlsplit(uri)
    except ValueError:
        return None


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_jwks(jwks: Any) -> dict[str, Any]:
    """RFC 7591 §2 ``jwks``: a JWK Set (RFC 7517 §5) of public keys only."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise ClientError("jwks must be a JWK Set with at least one key")
    for key in jwks["keys"]:
        if not isinstance(key, dict) or key.get("kty") not in ("RSA", "EC", "OKP"):
            raise ClientError("jwks keys must be public RSA, EC or OKP keys")
        if any(p in key for p in ("d", "p", "q", "dp", "dq", "qi")):
            raise ClientError("jwks must hold public keys only")
    return jwks


def _check_https_uri(uri: str, field: str, max_length: int) -> None:
    """An https URL with a host, and nothing that makes a fetch or a link go elsewhere than it says (user
    information) or that a URL cannot carry (spaces, controls)."""
    parts = _split(uri)
    if parts is None or parts.scheme != "https" or not parts.hostname:
        raise ClientError(f"{field} must be an https URL with a host")
    if not uri.isprintable() or " " in uri or len(uri) > max_length:
        raise ClientError(
            f"{field} must not carry spaces or control characters, nor be longer than {max_length} characters"
        )
    if parts.username is not None or parts.fragment or "#" in uri:
        raise ClientError(f"{field} must not carry user information or a fragment")
    try:
        parts.port  # noqa: B018 - raises ValueError on a port out of range or not a number
    except ValueError:
        raise ClientError(f"{field} has an invalid port") from None


def check_jwks_uri(jwks_uri: str) -> None:
    """RFC 7591 §2: the URL of the client's JWK Set, which this server fetches."""
    _check_https_uri(jwks_uri, "jwks_uri", MAX_JWKS_URI)


def check_logout_uris(
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


def check_application_type(application_type: str, redirect_uris: Sequence[str]) -> None:
    """OpenID Connect Registration 1.0 §2: a ``web`` client's redirect URIs are https and never on localhost or a
    loopback address (a web app runs on a server others reach); a ``native`` one may also use loopback http or a
    private-use scheme (RFC 8252 §7), which ``validate_redirect_uri`` judges. A mismatch is ``invalid_redirect_uri``
    with the reason, so that a native client that forgot to say so learns what to send."""
    if application_type not in APPLICATION_TYPES:
        raise ClientError(f"application_type must be one of {', '.join(APPLICATION_TYPES)}")
    if application_type == "native":
        return
    for uri in redirect_uris:
        parts = _split(uri)
        host = (parts.hostname or "") if parts is not None else ""
        if parts is None or parts.scheme.lower() != "https":
            raise ClientError(
                f"redirect URI {uri!r} is not https: a web client may only use https redirect URIs "
                '(send "application_type": "native" for loopback or private-use scheme redirect URIs)',
                "invalid_redirect_uri",
            )
        if host == "localhost" or host.endswith(".localhost") or _is_loopback(host):
            raise ClientError(
                f"redirect URI {uri!r} is on this machine: a web client may not use localhost or a loopback address "
                '(send "application_type": "native")',
                "invalid_redirect_uri",
            )


def check_response_types(response_types: Sequence[str] | None, grant_types: Sequence[str]) -> tuple[str, ...]:
    """RFC 7591 §2.1: ``code`` goes with the authorization_code grant and needs it, and the client that has that
    grant uses ``code`` (the only response type here, OAuth 2.1 §4.1). Left out: what the grant types imply."""
    implied = ("code",) if "authorization_code" in grant_types else ()
    if response_types is None:
        return implied
    asked = tuple(dict.fromkeys(response_types))
    for response_type in asked:
        if response_type != "code":
            raise ClientError(f"response_types: {response_type!r} is not supported (only code, OAuth 2.1 §4.1)")
    if asked != implied:
        raise ClientError(
            'response_types must be ["code"] exactly when grant_types holds authorization_code (RFC 7591 §2.1)'
        )
    return asked


def check_display_fields(fields: Mapping[str, Any], limits: Limits | None) -> dict[str, Any]:
    """RFC 7591 §2 display fields: URLs (https only: a person may follow them from the consent page), ``contacts``
    as a list of strings, the software strings; bounded by ``limits`` when given."""
    max_uri = limits.max_uri_length if limits else MAX_JWKS_URI
    max_text = limits.max_name_length if limits else 255
    out: dict[str, Any] = {}
    for name in DISPLAY_URIS:
        value = fields.get(name)
        if value is not None:
            _check_https_uri(value, name, max_uri)
            out[name] = value
    contacts = fields.get("contacts")
    if contacts is not None:
        if limits is not None and len(contacts) > limits.max_redirect_uris:
            raise ClientError(f"contacts may hold at most {limits.max_redirect_uris} entries")
        for contact in contacts:
            if not contact.strip() or not contact.isprintable() or len(contact) > max_text:
                raise ClientError(f"contacts entries must be printable and at most {max_text} characters")
        out["contacts"] = list(contacts)
    for name in DISPLAY_STRINGS:
        value = fields.get(name)
        if value is not None:
            if not value.isprintable() or len(value) > max_text:
                raise ClientError(f"{name} must be printable and at most {max_text} characters")
            out[name] = value
    return out


def on_redirect_hosts(display: Mapping[str, Any], redirect_uris: Sequence[str]) -> dict[str, Any]:
    """RFC 7591 §5: the display URLs of a client nobody vetted SHOULD share a host with its redirect URIs. One that
    does not is left out of what is stored and answered (§3.2.1 lets the server replace what was asked; the answer
    shows what was kept), not refused: refusing would turn away clients whose redirects are on loopback or a
    private-use scheme (MCP clients: a ``client_uri`` on github.com and a ``localhost`` redirect) over fields no one
    needs to sign in, while keeping them would let a client at evil.example link a bank's policy or logo."""
    hosts = {parts.hostname for parts in map(_split, redirect_uris) if parts is not None and parts.hostname}
    kept = dict(display)
    for name in DISPLAY_URIS:
        value = kept.get(name)
        parts = _split(value) if isinstance(value, str) else None
        if value is not None and (parts is None or parts.hostname not in hosts):
            del kept[name]
    return kept


def check_limits(name: str, redirect_uris: Sequence[str], post_logout: Sequence[str], limits: Limits | None) -> None:
    """The counts and lengths a registration may hold (``[registration]``), before any URI is parsed."""
    if limits is None:
        return
    if len(name) > limits.max_name_length or not name.isprintable():
        raise ClientError(f"client_name must be printable and at most {limits.max_name_length} characters")
    for field, uris in (("redirect_uris", redirect_uris), ("post_logout_redirect_uris", post_logout)):
        if len(uris) > limits.max_redirect_uris:
            raise ClientError(
                f"{field} may hold at most {limits.max_redirect_uris} URIs",
                "invalid_redirect_uri" if field == "redirect_uris" else "invalid_client_metadata",
            )
        for uri in uris:
            if len(uri) > limits.max_uri_length:
                raise ClientError(
                    f"{field}: a URI may be at most {limits.max_uri_length} characters",
                    "invalid_redirect_uri" if field == "redirect_uris" else "invalid_client_metadata",
                )
