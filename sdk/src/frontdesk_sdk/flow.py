"""The vault's API without I/O (DESIGN §6, "Proxy / SDK"): builds requests, reads answers, and remembers resolved
connections.

Each operation is a generator in httpx's own manner (``httpx.Auth.auth_flow``): it yields the
:class:`httpx.Request` to send and receives the :class:`httpx.Response`, so that :mod:`.client` drives the same
code with a blocking and with an async httpx client.
"""

from __future__ import annotations

import json as jsonlib
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, unquote

import httpx

from .models import AuthorizationRequired, Connection, ConnectSession, VaultAPIError, VaultUnreachable
from .secret import Secret

__all__ = ["Call", "Core", "Owner"]

T = TypeVar("T")
Flow = Generator[httpx.Request, httpx.Response, T]

AUTHORIZATION_REQUIRED = 424


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose account a connect link is for, as the link's page shows it: ``display_name``, the platform's name
    for its user; ``subject``, a frontdesk person's id, when the link must work only for that person signed in."""

    display_name: str | None = None
    subject: str | None = None

    def fields(self) -> dict[str, str]:
        return {k: v for k, v in (("display_name", self.display_name), ("subject", self.subject)) if v is not None}


@dataclass(frozen=True, slots=True)
class _Resolved:
    connection_id: str
    scopes: frozenset[str]
    until: float


class Core:
    """The vault's API without I/O: builds requests, reads answers, and remembers resolved connections."""

    def __init__(self, base_url: str, api_key: str | Secret, timeout: float | httpx.Timeout, cache: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key if isinstance(api_key, Secret) else Secret(api_key)
        self.timeout = httpx.Timeout(timeout)
        self.cache_seconds = cache
        self.resolved: dict[tuple[str, str], _Resolved] = {}

    # --- the operations ----------------------------------------------------------------------------------------

    def check(
        self, user: str, integration: str, scopes: Sequence[str], owner: Owner
    ) -> Flow[Connection | AuthorizationRequired]:
        body = {"user": user, "integration": integration, "scopes": list(scopes), **owner.fields()}
        answer = self._ok((yield self._build("POST", "/vault/check", json=body)))
        if answer.get("status") == "connected":
            connection = Connection.from_json(answer["connection"])
            self._remember(connection)
            return connection
        if answer.get("status") == "authorization_required":
            self.resolved.pop((user, integration), None)
            return AuthorizationRequired.from_json(answer)
        raise VaultAPIError(None, "unexpected_answer", "the vault's check answer has no known status")

    def request(
        self,
        user: str,
        integration: str,
        method: str,
        path: str,
        call: Call,
        scopes: Sequence[str],
    ) -> Flow[httpx.Response | AuthorizationRequired]:
        path = _relative(path)  # refused before anything is sent
        found = yield from self._resolve(user, integration, scopes)
        if isinstance(found, AuthorizationRequired):
            return found
        response = yield self._proxied(found, method, path, call)
        if _no_such_connection(response):
            # Deleted since it was resolved. The vault answered without calling the provider, so resolving afresh
            # and sending once more is safe even for a POST; anything the provider answered is never re-sent.
            self.resolved.pop((user, integration), None)
            found = yield from self._resolve(user, integration, scopes)
            if isinstance(found, AuthorizationRequired):
                return found
            response = yield self._proxied(found, method, path, call)
        if response.status_code == AUTHORIZATION_REQUIRED and _json(response).get("status") == "authorization_required":
            self.resolved.pop((user, integration), None)
            return AuthorizationRequired.from_json(_json(response))
        if response.status_code == 401 and 'realm="frontdesk-vault"' in response.headers.get("www-authenticate", ""):
            raise self._error(response)  # the vault refused the API key; a provider's 401 is only passed on
        return _detached(response)

    def connections(self, user: str, integration: str | None) -> Flow[list[Connection]]:
        params = {"user": user} if integration is None else {"user": user, "integration": integration}
        answer = self._ok((yield self._build("GET", "/vault/connections", params=params)))
        return [Connection.from_json(c) for c in answer["connections"]]

    def connect_session(
        self,
        user: str,
        integration: str,
        scopes: Sequence[str],
        params: Mapping[str, str] | None,
        return_url: str | None,
        owner: Owner,
    ) -> Flow[ConnectSession]:
        body: dict[str, Any] = {"user": user, "integration": integration, "scopes": list(scopes), **owner.fields()}
        if params:
            body["params"] = dict(params)
        if return_url is not None:
            body["return_url"] = return_url
        answer = self._ok((yield self._build("POST", "/vault/connect-sessions", json=body)))
        return ConnectSession(answer["id"], answer["connect_url"], answer["expires_at"])

    def delete(self, connection_id: str) -> Flow[bool]:
        response = yield self._build("DELETE", f"/vault/connections/{quote(connection_id, safe='')}")
        self.resolved = {k: v for k, v in self.resolved.items() if v.connection_id != connection_id}
        if response.status_code == 404:
            return False
        return bool(self._ok(response).get("deleted"))

    # --- the parts -----------------------------------------------------------------------------------------------

    def _resolve(self, user: str, integration: str, scopes: Sequence[str]) -> Flow[str | AuthorizationRequired]:
        cached = self.resolved.get((user, integration))
        if cached is not None and cached.until > time.monotonic() and cached.scopes.issuperset(scopes):
            return cached.connection_id
        found = yield from self.check(user, integration, scopes, Owner())
        return found if isinstance(found, AuthorizationRequired) else found.id

    def _remember(self, connection: Connection) -> None:
        if self.cache_seconds > 0:
            until = time.monotonic() + self.cache_seconds
            entry = _Resolved(connection.id, frozenset(connection.scopes), until)
            self.resolved[(connection.user, connection.integration)] = entry

    def _build(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        content: bytes | str | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Request:
        sent = httpx.Headers(headers)
        sent["Authorization"] = "Bearer " + self.api_key.value  # after the caller's: theirs never replaces it
        url = httpx.URL(self.base_url + path)
        if params is not None:
            url = url.copy_merge_params(params)  # added to a query in the path, where httpx.Request would replace it
        return httpx.Request(
            method, url, json=json, content=content, data=data, headers=sent,
            extensions={"timeout": self.timeout.as_dict()},
        )  # fmt: skip

    def _proxied(self, connection_id: str, method: str, path: str, call: Call) -> httpx.Request:
        where = f"/vault/proxy/{quote(connection_id, safe='')}/{path}"
        return self._build(
            method.upper(), where, params=call.params, json=call.json, content=call.content, data=call.data,
            headers=call.headers,
        )  # fmt: skip

    def _ok(self, response: httpx.Response) -> dict[str, Any]:
        if not response.is_success:
            raise self._error(response)
        body = _json(response)
        if not body:
            raise VaultAPIError(response.status_code, "unexpected_answer", "the vault's answer is not a JSON object")
        return body

    def _error(self, response: httpx.Response) -> VaultAPIError:
        body = _json(response)
        error = str(body.get("error") or "http_error")
        description = str(body.get("error_description") or response.reason_phrase or "no description")
        # The vault never echoes the key; whatever stands at base_url instead might.
        description = description.replace(self.api_key.value, "[redacted]")
        return VaultAPIError(response.status_code, error[:64], description[:300])

    def unreachable(self, exc: httpx.HTTPError) -> VaultUnreachable:
        return VaultUnreachable(
            None, "unreachable", f"could not reach the vault at {self.base_url} ({type(exc).__name__})"
        )


@dataclass(frozen=True, slots=True)
class Call:
    """What a tool sends through the proxy, besides the method and path."""

    params: Any = None
    json: Any = None
    content: bytes | str | None = None
    data: Mapping[str, str] | None = None
    headers: Mapping[str, str] | None = None


def _relative(path: str) -> str:
    """``path`` under the provider's API base. Dot segments are refused before anything is sent: httpx resolves them
    in the URL, so ``../../connections`` would reach the vault's own API with the platform's key."""
    trimmed = path.lstrip("/")
    route = trimmed.split("?", 1)[0].split("#", 1)[0]
    if "\\" in route or any(unquote(segment) in (".", "..") for segment in route.split("/")):
        raise ValueError("the path must stay under the provider's API base: no '.' or '..' segments")
    return trimmed


def _json(response: httpx.Response) -> dict[str, Any]:
    if response.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return {}
    try:
        body = jsonlib.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _no_such_connection(response: httpx.Response) -> bool:
    """The vault's own 404 for an unknown connection id (web/vault.py ``_not_found``), not a provider's 404."""
    body = _json(response)
    return response.status_code == 404 and isinstance(body, dict) and body.get("error") == "unknown_connection"


def _detached(response: httpx.Response) -> httpx.Response:
    """The provider's answer, its ``request`` replaced by one without the API key: tool code may log or return it."""
    sent = response.request
    kept = [(k, v) for k, v in sent.headers.multi_items() if k.lower() != "authorization"]
    response.request = httpx.Request(sent.method, sent.url, headers=kept, content=sent.content)
    return response
