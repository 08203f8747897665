"""Talking OAuth to a provider: the authorization URL, the code exchange, the refresh and the revocation, with each
provider's quirks read from its catalog entry.

Errors are sorted by what the vault must do next, not by HTTP status: :class:`GrantDead` (the person must connect
again), :class:`Transient` (try later, keep the connection) and :class:`ProviderRefused` (the integration is
misconfigured: a wrong client secret is not the person's fault, so it never marks a connection dead).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from ..protocol.rfc7636 import s256
from .catalog import Provider, fill
from .integration_store import Integration
from .store import Credentials

__all__ = [
    "GrantDead",
    "ProviderError",
    "ProviderRefused",
    "TokenSet",
    "Transient",
    "authorization_url",
    "exchange_code",
    "refresh",
    "revoke",
]

log = logging.getLogger("frontdesk.vault")

# Error codes that mean the grant behind a refresh token is gone for good. RFC 6749 §5.2 says invalid_grant;
# GitHub answers 200 with "bad_refresh_token"; Slack answers {"ok": false, "error": "invalid_refresh_token"}.
DEAD_GRANT = frozenset({"invalid_grant", "bad_refresh_token", "invalid_refresh_token", "token_revoked"})
MAX_TOKEN_RESPONSE = 256 * 1024


class ProviderError(Exception):
    """Carries the provider's error code and a description that never holds a token."""

    def __init__(self, code: str, description: str = "") -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description


class GrantDead(ProviderError):
    pass


class Transient(ProviderError):
    pass


class ProviderRefused(ProviderError):
    pass


@dataclass(frozen=True, slots=True, repr=False)
class TokenSet:
    credentials: Credentials
    expires_in: int | None
    scopes: tuple[str, ...] | None  # None: the provider did not say, the requested ones were granted
    kept: Mapping[str, str]

    def __repr__(self) -> str:
        return f"TokenSet(expires_in={self.expires_in}, scopes={self.scopes})"


def scope_string(provider: Provider, scopes: Sequence[str]) -> str:
    return provider.scope_separator.join(dict.fromkeys(scopes))


def authorization_url(
    provider: Provider,
    integration: Integration,
    values: Mapping[str, str],
    *,
    redirect_uri: str,
    state: str,
    verifier: str | None,
    scopes: Sequence[str],
) -> str:
    params: dict[str, str] = {
        "response_type": "code",
        "client_id": integration.client_id,
        "redirect_uri": redirect_uri,
        "state": state,
        **provider.authorize_params,
    }
    if scopes:
        params[provider.scope_param] = scope_string(provider, scopes)
    if provider.pkce and verifier:
        params["code_challenge"] = s256(verifier)
        params["code_challenge_method"] = "S256"
    url = fill(provider.authorize_url, values, provider)
    return url + ("&" if "?" in url else "?") + urlencode(params)


def _dig(data: Mapping[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _expires_in(provider: Provider, value: Any) -> int | None:
    """``expires_in`` as seconds: absent (never expires), a number, a numeric string, or milliseconds."""
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ProviderRefused("invalid_response", "expires_in is not a number") from None
    if provider.expires_in_unit == "milliseconds":
        seconds /= 1000
    return max(int(seconds), 0)


def parse_token_response(provider: Provider, body: Mapping[str, Any], old: Credentials | None = None) -> TokenSet:
    node: Any = body
    for part in provider.token_path:
        node = node.get(part) if isinstance(node, Mapping) else None
    if not isinstance(node, Mapping):
        raise ProviderRefused("invalid_response", "the token response has no " + ".".join(provider.token_path))
    access = node.get("access_token")
    if not isinstance(access, str) or not access:
        raise ProviderRefused("invalid_response", "the token response has no access_token")
    refresh_token = node.get("refresh_token")
    if not isinstance(refresh_token, str) or not refresh_token:
        # Google, Salesforce and HubSpot often answer a refresh without a new refresh token: keep the one we have.
        refresh_token = old.refresh_token if old else None
    scope = node.get("scope")
    scopes = None
    if isinstance(scope, str):
        separator = provider.scope_separator if provider.scope_separator in scope else " "
        scopes = tuple(s for s in scope.split(separator) if s)
    kept = {}
    for path, name in provider.keep.items():
        value = _dig(body, path)
        if isinstance(value, str | int | float | bool):
            kept[name] = str(value)
    token_type = node.get("token_type")
    credentials = Credentials(access, refresh_token, token_type if isinstance(token_type, str) else "Bearer")
    return TokenSet(credentials, _expires_in(provider, node.get("expires_in")), scopes, kept)


def _post(
    http: httpx.Client, integration: Integration, url: str, data: dict[str, str], auth_style: str, as_json: bool
) -> httpx.Response:
    """A POST to the provider with the integration's client authentication: HTTP Basic, or in the body."""
    headers = {"Accept": "application/json"}
    secret = integration.client_secret.value if integration.client_secret else None
    body: dict[str, Any] = {"json" if as_json else "data": data}
    if auth_style == "basic" and secret is not None:
        body["auth"] = httpx.BasicAuth(integration.client_id, secret)
    else:
        data["client_id"] = integration.client_id
        if secret is not None:
            data["client_secret"] = secret
    return http.post(url, headers=headers, **body)


def _token_request(
    http: httpx.Client, provider: Provider, integration: Integration, url: str, data: dict[str, str]
) -> dict[str, Any]:
    as_json = provider.body_format == "json" or provider.client_auth == "json"
    try:
        response = _post(http, integration, url, dict(data), provider.client_auth, as_json)
    except httpx.TimeoutException:
        raise Transient("timeout", f"{provider.display_name} did not answer in time") from None
    except httpx.HTTPError as exc:
        raise Transient("unreachable", f"{provider.display_name} could not be reached ({type(exc).__name__})") from None
    if response.status_code >= 500 or response.status_code == 429:
        raise Transient("provider_error", f"{provider.display_name} answered {response.status_code}")
    if len(response.content) > MAX_TOKEN_RESPONSE:
        raise ProviderRefused("invalid_response", "the token response is too large")
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise ProviderRefused("invalid_response", f"{provider.display_name} answered {response.status_code}, not JSON")
    error = body.get("error")
    if body.get("ok") is False and not error:
        error = "request_failed"
    if response.status_code >= 400 or error:
        code = str(error or f"http_{response.status_code}")[:64]
        description = str(body.get("error_description") or "")[:200]
        if code in DEAD_GRANT:
            raise GrantDead(code, description)
        raise ProviderRefused(code, description)
    return body


def exchange_code(
    http: httpx.Client,
    provider: Provider,
    integration: Integration,
    values: Mapping[str, str],
    *,
    code: str,
    redirect_uri: str,
    verifier: str | None,
) -> TokenSet:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, **provider.token_params}
    if provider.pkce and verifier:
        data["code_verifier"] = verifier
    body = _token_request(http, provider, integration, fill(provider.token_url, values, provider), data)
    return parse_token_response(provider, body)


def refresh(
    http: httpx.Client, provider: Provider, integration: Integration, values: Mapping[str, str], old: Credentials
) -> TokenSet:
    if not old.refresh_token:
        raise GrantDead("no_refresh_token", "the provider gave no refresh token")
    data = {"grant_type": "refresh_token", "refresh_token": old.refresh_token, **provider.refresh_params}
    url = fill(provider.refresh_url or provider.token_url, values, provider)
    return parse_token_response(provider, _token_request(http, provider, integration, url, data), old)


def revoke(
    http: httpx.Client, provider: Provider, integration: Integration, values: Mapping[str, str], old: Credentials
) -> bool:
    """RFC 7009 revocation where the provider has it. Revoking the refresh token ends the grant at most providers;
    failures are logged and the caller deletes locally anyway."""
    if not provider.revoke_url:
        return False
    token, hint = (old.refresh_token, "refresh_token") if old.refresh_token else (old.access_token, "access_token")
    data = {"token": token, "token_type_hint": hint}
    try:
        url = fill(provider.revoke_url, values, provider)
        response = _post(http, integration, url, data, provider.revoke_auth, provider.revoke_auth == "json")
    except httpx.HTTPError as exc:
        log.warning("revocation at the provider failed", extra={"provider": provider.name, "error": type(exc).__name__})
        return False
    if response.status_code >= 400:
        log.warning(
            "revocation at the provider refused", extra={"provider": provider.name, "status": response.status_code}
        )
        return False
    return True
