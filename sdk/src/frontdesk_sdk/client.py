"""The vault's Python SDK for the platform's backend: call a provider's API as one of your users without ever holding
their tokens (DESIGN §6, "Proxy / SDK").

One implementation, two clients, in httpx's own manner (``httpx.Auth.auth_flow``): each operation is a generator
that yields the :class:`httpx.Request` to send and receives the :class:`httpx.Response` (:mod:`.flow`).
:class:`VaultClient` drives it with a blocking :class:`httpx.Client`, :class:`AsyncVaultClient` with an
:class:`httpx.AsyncClient`; neither knows anything about the vault's API.

``request`` *returns* an :class:`AuthorizationRequired` when the person must connect (or reconnect, or grant more
scopes) first, rather than raising it: the union return type makes a type checker insist that tool code handles
"connect first" and hands it on as a structured result, where an exception is easily turned into an error string
for the language model (field notes §5.2). Exceptions are kept for what tool code cannot act on: a refused API key,
a malformed call, a vault that cannot be reached (:class:`VaultAPIError`, :class:`VaultUnreachable`).

The API key is held as a :class:`~.secret.Secret`; nothing the SDK returns, raises or shows holds it.
This package imports only httpx and the standard library, so a platform's backend can use it without the server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import httpx

from .flow import Call, Core, Flow, Owner, T
from .models import AuthorizationRequired, Connection, ConnectSession
from .secret import Secret

__all__ = ["AsyncVaultClient", "VaultClient"]

# A provider call goes vault → provider (30 s there), so the vault gets a little longer than that.
DEFAULT_TIMEOUT = httpx.Timeout(40.0, connect=5.0)
# How long a resolved (user, integration) → connection id is reused before /vault/check is asked again. Short, and a
# connection deleted or dead meanwhile is noticed at the proxy in any case (404 then resolved afresh, or 424).
DEFAULT_CACHE_SECONDS = 15.0


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
        self._core = Core(base_url, api_key, timeout, cache_seconds)
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
        call = Call(params, json, content, data, headers)
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
        return self._run(self._core.check(user, integration, scopes, Owner(display_name, subject)))

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
        owner = Owner(display_name, subject)
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
        self._core = Core(base_url, api_key, timeout, cache_seconds)
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
        call = Call(params, json, content, data, headers)
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
        return await self._run(self._core.check(user, integration, scopes, Owner(display_name, subject)))

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
        owner = Owner(display_name, subject)
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
