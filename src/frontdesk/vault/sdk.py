"""The vault's Python SDK for the platform's backend: call a provider's API as one of your users without ever holding
their tokens (DESIGN §6, "Proxy / SDK").

One implementation, two clients, in httpx's own manner (``httpx.Auth.auth_flow``): each operation is a generator
that yields the :class:`httpx.Request` to send and receives the :class:`httpx.Response`. :class:`VaultClient` drives
it with a blocking :class:`httpx.Client`, :class:`AsyncVaultClient` with an :class:`httpx.AsyncClient`; neither
knows anything about the vault's API.

``request`` *returns* an :class:`AuthorizationRequired` when the person must connect (or reconnect, or grant more
scopes) first, rather than raising it: the union return type makes a type checker insist that tool code handles
"connect first" and hands it on as a structured result, where an exception is easily turned into an error string
for the language model (field notes §5.2). Exceptions are kept for what tool code cannot act on: a refused API key,
a malformed call, a vault that cannot be reached (:class:`VaultAPIError`, :class:`VaultUnreachable`).

The API key is held as a :class:`~frontdesk.secret.Secret`; nothing the SDK returns, raises or shows holds it.
This module and :mod:`frontdesk.vault.agent` import only httpx and :mod:`frontdesk.secret`, so a platform's backend
can use them without the server's dependencies.
"""

from __future__ import annotations

import json as jsonlib
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self, TypeVar
from urllib.parse import quote, unquote

import httpx

from ..secret import Secret

__all__ = [
    "AsyncVaultClient",
    "AuthorizationRequired",
    "ConnectSession",
    "Connection",
    "VaultAPIError",
    "VaultClient",
    "VaultUnreachable",
]

T = TypeVar("T")
Flow = Generator[httpx.Request, httpx.Response, T]
Reason = Literal["not_connected", "needs_reauth", "missing_scopes"]

# A provider call goes vault → provider (30 s there), so the vault gets a little longer than that.
DEFAULT_TIMEOUT = httpx.Timeout(40.0, connect=5.0)
# How long a resolved (user, integration) → connection id is reused before /vault/check is asked again. Short, and a
# connection deleted or dead meanwhile is noticed at the proxy in any case (404 then resolved afresh, or 424).
DEFAULT_CACHE_SECONDS = 15.0
AUTHORIZATION_REQUIRED = 424


class VaultAPIError(Exception):
    """The vault refused a call (a bad API key, an unknown integration, a malformed request). Carries the wire
    ``error`` code and the vault's description, never the API key."""

    def __init__(self, status: int | None, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}" if status is None else f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description


class VaultUnreachable(VaultAPIError):
    """The vault could not be reached, or its answer could not be read; worth retrying later."""


@dataclass(frozen=True, slots=True)
class Connection:
    """A person's connection as the vault shows it: status, scopes, expiry; never a token."""

    id: str
    integration: str
    user: str
    status: Literal["active", "needs_reauth", "revoked"]
    scopes: tuple[str, ...]
    metadata: Mapping[str, str]
    expires_at: int | None
    refreshed_at: int | None
    last_used_at: int | None
    last_error: str | None
    created_at: int
    updated_at: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Connection:
        return cls(
            data["id"], data["integration"], data["user"], data["status"], tuple(data["scopes"]),
            dict(data.get("metadata") or {}), data.get("expires_at"), data.get("refreshed_at"),
            data.get("last_used_at"), data.get("last_error"), data["created_at"], data["updated_at"],
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class AuthorizationRequired:
    """The person must connect first: a single-use link from the vault, bound to that person, for the scopes granted
    so far plus those needed now, and a message in plain words for the chat."""

    integration: str
    scopes: tuple[str, ...]
    authorization_url: str
    message: str
    reason: Reason
    connect_session_id: str
    expires_at: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuthorizationRequired:
        return cls(
            data["integration"], tuple(data["scopes"]), data["authorization_url"], data["message"], data["reason"],
            data["connect_session_id"], data["expires_at"],
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ConnectSession:
    id: str
    connect_url: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class _Owner:
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


class _Core:
    """The vault's API without I/O: builds requests, reads answers, and remembers resolved connections."""

    def __init__(self, base_url: str, api_key: str | Secret, timeout: float | httpx.Timeout, cache: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key if isinstance(api_key, Secret) else Secret(api_key)
        self.timeout = httpx.Timeout(timeout)
        self.cache_seconds = cache
        self.resolved: dict[tuple[str, str], _Resolved] = {}

    # --- the operations ----------------------------------------------------------------------------------------

    def check(
        self, user: str, integration: str, scopes: Sequence[str], owner: _Owner
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
        call: _Call,
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
        owner: _Owner,
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
        found = yield from self.check(user, integration, scopes, _Owner())
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

    def _proxied(self, connection_id: str, method: str, path: str, call: _Call) -> httpx.Request:
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
class _Call:
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


class VaultClient:
    """The vault's API for a blocking backend. ``request`` resolves (user, integration) to a connection, calls the
    provider through the vault's proxy, and returns its answer or :class:`AuthorizationRequired`."""

    def __init__(
        self,
        base_url: str,
        api_key: str | Secret,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
    ) -> None:
        self._core = _Core(base_url, api_key, timeout, cache_seconds)
        self._http = httpx.Client(transport=transport, follow_redirects=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._core.base_url!r}, api_key={self._core.api_key!r})"

    def request(
        self,
        user: str,
        integration: str,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        content: bytes | str | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        scopes: Sequence[str] = (),
    ) -> httpx.Response | AuthorizationRequired:
        """Call ``path`` (relative to the provider's API base; :class:`ValueError` for '.' or '..' segments) as
        ``user``. Never retried here: the vault already refreshes and retries once on a provider 401."""
        call = _Call(params, json, content, data, headers)
        return self._run(self._core.request(user, integration, method, path, call, scopes))

    def check(
        self,
        user: str,
        integration: str,
        scopes: Sequence[str] = (),
        *,
        display_name: str | None = None,
        subject: str | None = None,
    ) -> Connection | AuthorizationRequired:
        """The connection, or the answer to give the person: its link names ``display_name`` (the person's name on
        the platform) and, with ``subject`` (a frontdesk person's id), works only for that person signed in."""
        return self._run(self._core.check(user, integration, scopes, _Owner(display_name, subject)))

    def connections(self, user: str, integration: str | None = None) -> list[Connection]:
        return self._run(self._core.connections(user, integration))

    def connect_session(
        self,
        user: str,
        integration: str,
        scopes: Sequence[str] = (),
        params: Mapping[str, str] | None = None,
        return_url: str | None = None,
        *,
        display_name: str | None = None,
        subject: str | None = None,
    ) -> ConnectSession:
        """A connect link for ``user``; ``display_name`` and ``subject`` as in :meth:`check`."""
        owner = _Owner(display_name, subject)
        return self._run(self._core.connect_session(user, integration, scopes, params, return_url, owner))

    def delete(self, connection_id: str) -> bool:
        """Revoke at the provider where it can and forget the connection; False when there was no such connection."""
        return self._run(self._core.delete(connection_id))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _run(self, flow: Flow[T]) -> T:
        try:
            request = next(flow)
            while True:
                try:
                    response = self._http.send(request)
                except httpx.HTTPError as exc:
                    raise self._core.unreachable(exc) from None
                request = flow.send(response)
        except StopIteration as done:
            value: T = done.value
            return value


class AsyncVaultClient:
    """:class:`VaultClient` for an asyncio or trio backend: the same operations, awaited."""

    def __init__(
        self,
        base_url: str,
        api_key: str | Secret,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
    ) -> None:
        self._core = _Core(base_url, api_key, timeout, cache_seconds)
        self._http = httpx.AsyncClient(transport=transport, follow_redirects=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._core.base_url!r}, api_key={self._core.api_key!r})"

    async def request(
        self,
        user: str,
        integration: str,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        content: bytes | str | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        scopes: Sequence[str] = (),
    ) -> httpx.Response | AuthorizationRequired:
        """As :meth:`VaultClient.request`."""
        call = _Call(params, json, content, data, headers)
        return await self._run(self._core.request(user, integration, method, path, call, scopes))

    async def check(
        self,
        user: str,
        integration: str,
        scopes: Sequence[str] = (),
        *,
        display_name: str | None = None,
        subject: str | None = None,
    ) -> Connection | AuthorizationRequired:
        """As :meth:`VaultClient.check`."""
        return await self._run(self._core.check(user, integration, scopes, _Owner(display_name, subject)))

    async def connections(self, user: str, integration: str | None = None) -> list[Connection]:
        return await self._run(self._core.connections(user, integration))

    async def connect_session(
        self,
        user: str,
        integration: str,
        scopes: Sequence[str] = (),
        params: Mapping[str, str] | None = None,
        return_url: str | None = None,
        *,
        display_name: str | None = None,
        subject: str | None = None,
    ) -> ConnectSession:
        """As :meth:`VaultClient.connect_session`."""
        owner = _Owner(display_name, subject)
        return await self._run(self._core.connect_session(user, integration, scopes, params, return_url, owner))

    async def delete(self, connection_id: str) -> bool:
        return await self._run(self._core.delete(connection_id))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _run(self, flow: Flow[T]) -> T:
        try:
            request = next(flow)
            while True:
                try:
                    response = await self._http.send(request)
                except httpx.HTTPError as exc:
                    raise self._core.unreachable(exc) from None
                request = flow.send(response)
        except StopIteration as done:
            value: T = done.value
            return value
