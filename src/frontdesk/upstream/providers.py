"""The upstream providers an operator lets people sign in with: an OpenID Connect provider added by its discovery
document (OpenID Connect Discovery 1.0), or a plain OAuth 2.0 one (GitHub, say) added by its endpoints and a
UserInfo-like URL. Each provider's client secret is sealed under the master key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..config import is_loopback_host
from ..core import Frontdesk
from ..secret import Secret
from ..storage.db import now, transaction
from ..storage.upstream import delete_provider, insert_provider, provider_rows

__all__ = [
    "DISCOVERY_PATH",
    "TOKEN_AUTH_METHODS",
    "Provider",
    "ProviderError",
    "add_provider",
    "callback_url",
    "client_secret",
    "discover",
    "find_provider",
    "list_providers",
    "remove_provider",
    "sign_in_buttons",
]

DISCOVERY_PATH = "/.well-known/openid-configuration"
TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")
TIMEOUT = 10.0


class ProviderError(ValueError):
    """A provider that cannot be added as described; the message says why."""


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    display_name: str
    kind: str  # oidc | oauth2
    issuer: str | None
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str | None
    jwks_uri: str | None
    token_auth_method: str
    iss_parameter: bool
    client_id: str
    scope: tuple[str, ...]
    created_at: int

    def public(self) -> dict[str, Any]:
        """What ``upstream list`` shows: everything but the secret."""
        return {
            "name": self.name,
            "display_name": self.display_name,
            "kind": self.kind,
            "issuer": self.issuer,
            "authorization_endpoint": self.authorization_endpoint,
            "token_endpoint": self.token_endpoint,
            "userinfo_endpoint": self.userinfo_endpoint,
            "jwks_uri": self.jwks_uri,
            "token_endpoint_auth_method": self.token_auth_method,
            "client_id": self.client_id,
            "scope": " ".join(self.scope),
        }


def _provider(row: Any) -> Provider:
    return Provider(
        row.name,
        row.display_name,
        row.kind,
        row.issuer,
        row.authorization_endpoint,
        row.token_endpoint,
        row.userinfo_endpoint,
        row.jwks_uri,
        row.token_auth_method,
        bool(row.iss_parameter),
        row.client_id,
        tuple(row.scope.split()),
        row.created_at,
    )


def _check_url(name: str, url: Any) -> str:
    """https, or plain http on a loopback host (a provider run next to frontdesk, in development and tests)."""
    if not isinstance(url, str):
        raise ProviderError(f"{name} is missing")
    parts = urlsplit(url)
    secure = parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname or ""))
    if not secure or not parts.hostname or parts.fragment or any(c.isspace() for c in url):
        raise ProviderError(f"{name} must be an https URL without a fragment, got {url!r}")
    return url


def _aad(name: str) -> bytes:
    return b"upstream_provider:" + name.encode()


def callback_url(fd: Frontdesk, name: str) -> str:
    """The redirect URI to register at the provider."""
    return fd.url(f"/upstream/{name}/callback")


def discover(http: httpx.Client, url: str) -> dict[str, Any]:
    """The provider's metadata, checked as OpenID Connect Discovery 1.0 §4.3 asks: its issuer is exactly the URL
    the document was fetched under, and every endpoint is https."""
    issuer = url.removesuffix(DISCOVERY_PATH)
    _check_url("the discovery URL", url)
    try:
        response = http.get(issuer + DISCOVERY_PATH, headers={"Accept": "application/json"}, timeout=TIMEOUT)
        response.raise_for_status()
        doc = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ProviderError(f"cannot read {issuer + DISCOVERY_PATH}: {exc}") from None
    if not isinstance(doc, dict):
        raise ProviderError("the discovery document is not a JSON object")
    if doc.get("issuer") != issuer:
        raise ProviderError(f"the discovery document names issuer {doc.get('issuer')!r}, not {issuer!r}")
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        _check_url(name, doc.get(name))
    if doc.get("userinfo_endpoint") is not None:
        _check_url("userinfo_endpoint", doc["userinfo_endpoint"])
    return doc


def _token_auth_method(doc: dict[str, Any], chosen: str | None) -> str:
    supported = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    if chosen is not None:
        if chosen not in supported:
            raise ProviderError(f"the provider does not support {chosen} at its token endpoint")
        return chosen
    for method in ("client_secret_basic", "client_secret_post"):
        if method in supported:
            return method
    raise ProviderError("the provider supports neither client_secret_basic nor client_secret_post")


def add_provider(
    fd: Frontdesk,
    http: httpx.Client,
    name: str,
    *,
    client_id: str,
    client_secret: Secret | None,
    discovery_url: str | None = None,
    authorization_endpoint: str | None = None,
    token_endpoint: str | None = None,
    userinfo_endpoint: str | None = None,
    display_name: str | None = None,
    scope: str | None = None,
    token_auth_method: str | None = None,
) -> Provider:
    """Register a provider: by ``discovery_url`` (OpenID Connect), or by its endpoints (plain OAuth 2.0, which then
    needs ``userinfo_endpoint`` to learn who signed in)."""
    if not _NAME.fullmatch(name):
        raise ProviderError("a provider name is 1 to 32 lowercase letters, digits or '-', starting with a letter")
    if not client_id:
        raise ProviderError("client_id must not be empty")
    if token_auth_method is not None and token_auth_method not in TOKEN_AUTH_METHODS:
        raise ProviderError(f"token endpoint auth method must be one of {', '.join(TOKEN_AUTH_METHODS)}")
    row: dict[str, Any]
    if discovery_url is not None:
        if authorization_endpoint or token_endpoint or userinfo_endpoint:
            raise ProviderError("give a discovery URL or endpoints, not both")
        doc = discover(http, discovery_url)
        row = {
            "kind": "oidc",
            "issuer": doc["issuer"],
            "authorization_endpoint": doc["authorization_endpoint"],
            "token_endpoint": doc["token_endpoint"],
            "userinfo_endpoint": doc.get("userinfo_endpoint"),
            "jwks_uri": doc["jwks_uri"],
            "token_auth_method": _token_auth_method(doc, token_auth_method),
            "iss_parameter": doc.get("authorization_response_iss_parameter_supported") is True,
            "scope": scope or "openid email profile",
        }
    else:
        row = {
            "kind": "oauth2",
            "issuer": None,
            "authorization_endpoint": _check_url("the authorization endpoint", authorization_endpoint),
            "token_endpoint": _check_url("the token endpoint", token_endpoint),
            "userinfo_endpoint": _check_url("the userinfo URL", userinfo_endpoint),
            "jwks_uri": None,
            "token_auth_method": token_auth_method or "client_secret_basic",
            "iss_parameter": False,
            "scope": scope or "",
        }
    if (row["token_auth_method"] == "none") != (client_secret is None):
        raise ProviderError("a client secret is needed, except with token endpoint auth method none")
    row.update(
        name=name,
        display_name=(display_name or name.capitalize()).strip()[:100],
        client_id=client_id,
        client_secret=fd.master.seal(client_secret.value.encode(), _aad(name)) if client_secret else None,
        created_at=now(),
    )
    with transaction(fd.engine) as conn:
        if not insert_provider(conn, row):
            raise ProviderError(f"provider {name!r} already exists")
    found = find_provider(fd, name)
    assert found is not None
    return found


def list_providers(fd: Frontdesk) -> list[Provider]:
    with transaction(fd.engine, readonly=True) as conn:
        return [_provider(r) for r in provider_rows(conn)]


def find_provider(fd: Frontdesk, name: str) -> Provider | None:
    with transaction(fd.engine, readonly=True) as conn:
        rows = provider_rows(conn, name)
    return _provider(rows[0]) if rows else None


def client_secret(fd: Frontdesk, name: str) -> Secret | None:
    with transaction(fd.engine, readonly=True) as conn:
        rows = provider_rows(conn, name)
    if not rows or rows[0].client_secret is None:
        return None
    return Secret(fd.master.open(rows[0].client_secret, _aad(name)).decode())


def remove_provider(fd: Frontdesk, name: str) -> bool:
    """Delete a provider; the accounts people made through it stay, without the link."""
    with transaction(fd.engine) as conn:
        return delete_provider(conn, name)


def sign_in_buttons(fd: Frontdesk, interaction_id: str) -> list[dict[str, str]]:
    """One "Continue with …" button per provider for an interaction's sign-in page: its words and form action."""
    return [
        {"display_name": p.display_name, "action": f"/interaction/{interaction_id}/upstream/{p.name}"}
        for p in list_providers(fd)
    ]
