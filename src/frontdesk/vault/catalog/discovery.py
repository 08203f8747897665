"""Endpoints from a provider's metadata: OpenID Connect Discovery 1.0 and RFC 8414 (OAuth 2.0 Authorization Server
Metadata), for providers whose file names a ``discovery_url`` instead of their endpoints (generic OpenID Connect,
frontdesk itself)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import cast
from urllib.parse import urlsplit

import httpx

from .model import CatalogError, Provider
from .templates import fill, url_problem

__all__ = ["issuer_of", "resolve_discovery"]

OIDC_WELL_KNOWN = "/.well-known/openid-configuration"
RFC8414_WELL_KNOWN = "/.well-known/oauth-authorization-server"


def issuer_of(url: str) -> str | None:
    """The issuer a metadata URL belongs to: OIDC Discovery §4 appends, RFC 8414 §3.1 inserts the well-known part."""
    parts = urlsplit(url)
    if parts.path.endswith(OIDC_WELL_KNOWN):
        return f"{parts.scheme}://{parts.netloc}{parts.path.removesuffix(OIDC_WELL_KNOWN)}"
    if parts.path.startswith(RFC8414_WELL_KNOWN):
        return f"{parts.scheme}://{parts.netloc}{parts.path.removeprefix(RFC8414_WELL_KNOWN)}"
    return None


async def resolve_discovery(provider: Provider, values: Mapping[str, str], client: httpx.AsyncClient) -> Provider:
    """A copy of ``provider`` whose missing endpoints come from its discovery document; unchanged without one.

    Fields set in the provider file win over the document. The document's ``issuer`` must be exactly the issuer its
    URL names (OIDC Discovery §4.3, RFC 8414 §3.3), and every endpoint https (or http to a loopback host).
    Raises ``httpx.HTTPError`` when the document cannot be fetched (the caller may retry), :class:`CatalogError`
    when it cannot be used. Nothing is cached here: the caller owns the client and any cache.
    """
    if provider.discovery_url is None:
        return provider
    url = fill(provider.discovery_url, values, provider)
    where = f"{provider.source_file}: discovery_url"
    issuer = issuer_of(url)
    if issuer is None:
        raise CatalogError(f"{where}: {url!r} is not a {OIDC_WELL_KNOWN} or {RFC8414_WELL_KNOWN} URL")
    response = await client.get(url, headers={"Accept": "application/json"})
    response.raise_for_status()
    try:
        document = response.json()
    except ValueError:
        raise CatalogError(f"{where}: {url} did not answer with JSON") from None
    if not isinstance(document, dict):
        raise CatalogError(f"{where}: {url} did not answer with a JSON object")
    if document.get("issuer") != issuer:
        raise CatalogError(f"{where}: the document's issuer {document.get('issuer')!r} is not {issuer!r}")

    def endpoint(key: str, required: bool) -> str | None:
        value = document.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str):
            raise CatalogError(f"{where}: {key}: missing or not a string")
        # Our URLs are templates, so a brace in a published endpoint would be read as a variable.
        problem = url_problem(value) or ("no '{' or '}'" if "{" in value or "}" in value else None)
        if problem:
            raise CatalogError(f"{where}: {key}: {value!r}: {problem}")
        return value

    return replace(
        provider,
        authorize_url=provider.authorize_url or cast(str, endpoint("authorization_endpoint", True)),
        token_url=provider.token_url or cast(str, endpoint("token_endpoint", True)),
        revoke_url=provider.revoke_url or endpoint("revocation_endpoint", False),
        userinfo_url=provider.userinfo_url or endpoint("userinfo_endpoint", False),
        issuer=issuer,
        iss_parameter=document.get("authorization_response_iss_parameter_supported") is True,
    )
