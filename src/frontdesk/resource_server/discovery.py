"""Reading the authorization server's published documents: RFC 8414 metadata and the JWKS it names.

Fetches are small and bounded: no redirects followed (a redirect could point the keys elsewhere), a size cap, a
timeout, JSON objects only, and https endpoints (plain http only on a loopback host, for development).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from .tokens import AuthorizationServerUnavailable

__all__ = ["MAX_DOCUMENT_BYTES", "TIMEOUT", "ServerMetadata", "check_endpoint", "fetch_json", "metadata_url"]

MAX_DOCUMENT_BYTES = 256 * 1024
TIMEOUT = 5.0


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(url: str) -> str:
    """``url`` when it is absolute https (or http on loopback); raises ``ValueError`` otherwise."""
    parts = urlsplit(url)
    if not parts.hostname or parts.scheme not in ("https", "http") or parts.fragment:
        raise ValueError(f"{url!r} is not an absolute http(s) URL")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ValueError(f"{url!r} must use https (plain http only on a loopback host)")
    return url


def metadata_url(issuer: str) -> str:
    """RFC 8414 §3.1: the well-known suffix goes between the host and the issuer's path."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server{path}"


async def fetch_json(http: httpx.AsyncClient, url: str, *, timeout: float = TIMEOUT) -> dict[str, Any]:
    """GET ``url`` and return its JSON object; any failure is :class:`AuthorizationServerUnavailable`."""
    try:
        async with http.stream(
            "GET", url, headers={"Accept": "application/json"}, timeout=timeout, follow_redirects=False
        ) as response:
            if response.status_code != 200:
                raise AuthorizationServerUnavailable(f"{url} answered {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise AuthorizationServerUnavailable(f"{url} sent more than {MAX_DOCUMENT_BYTES} bytes")
    except httpx.HTTPError as exc:
        raise AuthorizationServerUnavailable(f"{url}: {type(exc).__name__}") from None
    try:
        document = json.loads(body)
    except ValueError:
        raise AuthorizationServerUnavailable(f"{url} did not send JSON") from None
    if not isinstance(document, dict):
        raise AuthorizationServerUnavailable(f"{url} did not send a JSON object")
    return document


@dataclass(frozen=True, slots=True)
class ServerMetadata:
    """The endpoints a resource server needs from RFC 8414 §2 metadata."""

    issuer: str
    jwks_uri: str | None
    introspection_endpoint: str | None

    @classmethod
    async def discover(cls, http: httpx.AsyncClient, issuer: str) -> ServerMetadata:
        document = await fetch_json(http, metadata_url(issuer))
        # RFC 8414 §3.3: the issuer in the document must be identical to the one it was fetched for.
        if document.get("issuer") != issuer:
            raise AuthorizationServerUnavailable(f"the metadata names issuer {document.get('issuer')!r}, not {issuer}")
        endpoints: dict[str, str | None] = {}
        for name in ("jwks_uri", "introspection_endpoint"):
            value = document.get(name)
            try:
                endpoints[name] = check_endpoint(value) if isinstance(value, str) else None
            except ValueError as exc:
                raise AuthorizationServerUnavailable(f"{name}: {exc}") from None
        return cls(issuer, endpoints["jwks_uri"], endpoints["introspection_endpoint"])
