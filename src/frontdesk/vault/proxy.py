"""Calling a provider's API as the person: the target URL, a fresh credential, the call, and what comes back.

The caller names a path under the provider's API base, never a host (no SSRF: vault/paths.py); the credential is
injected here and stripped from the answer; a 401 refreshes once and retries once. A connection that is missing or
dead is answered with :class:`AuthorizationRequired`, a connect link made here, never by a language model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import anyio
import httpx
from sqlalchemy import Engine

from ..config import Settings, is_loopback_host
from ..storage import audit
from ..storage.db import now, transaction
from . import oauth, store
from .callers import Caller
from .catalog import Provider, allowed_hosts, fill
from .connect import Connector, plain_words
from .integrations import Integrations
from .paths import PathRefused, api_path, api_query
from .pool import Answer, ProviderClient, ResponseTooLarge
from .refresh import Flight, Fresh, Refresher, serves
from .store import ConnectionRecord, Credentials, VaultError

__all__ = [
    "AuthorizationRequired",
    "PendingCall",
    "PreparedCall",
    "Proxy",
    "ProxyResponse",
    "ResponseTooLarge",
]

# Request headers a caller may pass through to the provider: content negotiation and conditional requests, plus
# vendor headers (X-GitHub-Api-Version…). Never Authorization, Cookie, Host or forwarding headers.
_PASS_HEADERS = frozenset(
    {"accept", "accept-language", "content-type", "if-match", "if-none-match", "if-modified-since", "prefer"}
)
_DROP_RESPONSE_HEADERS = frozenset(
    {
        "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authenticate",
        "proxy-authorization", "set-cookie", "content-length", "content-encoding", "strict-transport-security",
        "alt-svc",
    }
)  # fmt: skip


# Why a tool gets a connect link instead of an API result.
Reason = Literal["not_connected", "needs_reauth", "missing_scopes"]


@dataclass(frozen=True, slots=True)
class AuthorizationRequired:
    """What a tool gets instead of an API result when the person must connect (or reconnect) first."""

    integration: str
    scopes: tuple[str, ...]
    authorization_url: str
    message: str
    reason: Reason
    connect_session_id: str
    expires_at: int

    def body(self) -> dict[str, Any]:
        return {
            "status": "authorization_required",
            "integration": self.integration,
            "scopes": list(self.scopes),
            "authorization_url": self.authorization_url,
            "message": self.message,
            "reason": self.reason,
            "connect_session_id": self.connect_session_id,
            "expires_at": self.expires_at,
        }


@dataclass(frozen=True, slots=True)
class ProxyResponse:
    status: int
    headers: list[tuple[str, str]]
    content: bytes


@dataclass(frozen=True, slots=True, repr=False)
class PreparedCall:
    """A proxied call made ready by :meth:`Proxy.prepare`: where it goes, and with which credential.

    No repr: the URL carries the caller's query, which is not logged (only the path is audited)."""

    record: ConnectionRecord
    url: str
    provider: Provider
    credentials: Credentials
    note_use: bool  # the connection's last_used_at is due (store.LAST_USED_EVERY), or another caller is calling
    caller: Caller | None = None


@dataclass(frozen=True, slots=True, repr=False)
class PendingCall:
    """A proxied call whose credential another caller in this process is refreshing: :meth:`Proxy.ready` waits for
    that refresh on the event loop, so that a storm of calls after expiry holds no worker thread while it waits."""

    record: ConnectionRecord
    url: str
    provider: Provider
    flight: Flight
    caller: Caller | None = None


@dataclass(slots=True)
class Proxy:
    settings: Settings
    engine: Engine
    integrations: Integrations
    connector: Connector
    refresher: Refresher

    def fresh(
        self, record: ConnectionRecord, *, force: bool = False, stale: str | None = None, row: Any = None
    ) -> Fresh:
        integration, provider, values = self.integrations.resolve(record.integration, record.meta)
        return self.refresher.fresh(record.id, integration, provider, values, force=force, stale=stale, row=row)

    def authorization_required(
        self,
        user: str,
        integration_name: str,
        needed: Sequence[str] = (),
        reason: Reason | None = None,
        *,
        display_name: str | None = None,
        subject: str | None = None,
    ) -> AuthorizationRequired:
        """A connect link for ``user``, asking for what they granted plus what is needed now (incremental), and a
        message in plain words. The link comes from here, never from a language model. ``display_name`` and
        ``subject`` as for :meth:`Connector.create_session`."""
        integration = self.integrations.integration(integration_name)
        entry = self.integrations.catalog.get(integration.provider)
        existing = store.connections_of(self.engine, user, integration_name)
        record = existing[0] if existing else None
        granted = record.scopes if record and record.status == "active" else ()
        missing = [s for s in needed if s not in granted]
        if reason is None:
            if record is None:
                reason = "not_connected"
            elif record.status != "active":
                reason = "needs_reauth"
            else:
                reason = "missing_scopes"
        scopes = list(dict.fromkeys([*granted, *needed])) if needed else list(record.scopes if record else ())
        params = {
            v.name: record.meta[v.name]
            for v in entry.variables
            if record is not None and v.source == "connection" and v.name in record.meta
        }
        session = self.connector.create_session(
            user, integration_name, scopes, params, display_name=display_name, subject=subject
        )
        words = plain_words(entry, missing or needed)  # nothing specific needed: the provider's own words
        if reason == "needs_reauth":
            message = f"My connection to {words} has stopped working. Reconnect it here, then ask me again."
        else:
            message = f"I need access to {words} to do that. Connect it here."
        return AuthorizationRequired(
            integration_name,
            tuple(dict.fromkeys([*self.integrations.scopes_of(integration), *scopes])),
            session.url,
            message,
            reason,
            session.id,
            session.expires_at,
        )

    def prepare(
        self, record: ConnectionRecord, path: str, query: str, row: Any = None, *, caller: Caller | None = None
    ) -> PreparedCall | PendingCall | AuthorizationRequired:
        """The blocking half of a proxied call, all of it before the call: the provider URL (:class:`VaultError`
        off its API hosts), then the credential, refreshed first when due, or a connect link when there is none.
        ``row`` is the connection as just read: it is read again only for a refresh. A refresh already in flight
        is not waited for here: the :class:`PendingCall` goes to :meth:`ready`. ``caller`` is who calls, for the
        audit event and the connection's ``last_used_by``."""
        integration, provider, values = self.integrations.resolve(record.integration, record.meta)
        url = _target(provider, values, path, query)
        fresh = self.refresher.begin(record.id, integration, provider, values, row=row)
        if not isinstance(fresh, Fresh):
            return PendingCall(record, url, provider, fresh, caller)
        if fresh.credentials is None:
            return self.authorization_required(record.user, record.integration)
        return PreparedCall(fresh.record, url, provider, fresh.credentials, _use_due(fresh.record, caller), caller)

    async def ready(self, pending: PendingCall) -> PreparedCall | AuthorizationRequired:
        """The call, once the refresh it waited for is over (its outcome is this call's: a refresh that failed
        raises here as it did for the caller that ran it)."""
        fresh = await asyncio.wrap_future(pending.flight)
        record = pending.record
        if fresh.credentials is None:
            return await anyio.to_thread.run_sync(self.authorization_required, record.user, record.integration)
        used = _use_due(fresh.record, pending.caller)
        return PreparedCall(fresh.record, pending.url, pending.provider, fresh.credentials, used, pending.caller)

    async def call(
        self, call: PreparedCall, method: str, headers: Mapping[str, str], body: bytes, client: httpx.AsyncClient
    ) -> ProxyResponse | AuthorizationRequired:
        """Call the provider's API as the person: credentials injected here, stripped from whatever comes back;
        on 401, refresh once and retry once (the token may have been revoked or rotated early). The app's client
        carries the proxy's own connections (vault/pool.py); any other goes through httpx."""
        record, provider = call.record, call.provider
        outgoing = [(k, v) for k, v in headers.items() if k.lower() in _PASS_HEADERS or _vendor_header(k)]
        direct = client.connections if isinstance(client, ProviderClient) else None
        limit, extra = self.settings.max_proxy_body, provider.api.extra_headers.items()

        async def send(credentials: Credentials) -> ProxyResponse:
            token = credentials.access_token
            # By lower-case name: the provider's headers, the credential last, replace any the caller sent.
            placed = {k.lower(): (k, v) for k, v in outgoing}
            placed.update((k.lower(), (k, v.replace("{access_token}", token))) for k, v in extra)
            placed[provider.api.header.lower()] = (
                provider.api.header,
                provider.api.value.replace("{access_token}", token),
            )
            if direct is not None:  # the app's own connections, without httpx's layers (vault/pool.py)
                status, kept, content = await direct.send(method, call.url, placed.values(), body, limit)
            else:
                status, kept, content = await _through_httpx(client, method, call.url, [*placed.values()], body, limit)
            # The body was decoded from any content-encoding: the headers that described the wire form go.
            return ProxyResponse(status, [(k, v) for k, v in kept if k not in _DROP_RESPONSE_HEADERS], content)

        credentials = call.credentials
        try:
            response = await send(credentials)
            if response.status == 401:
                again = await self._refused(record, credentials.access_token)
                if isinstance(again, AuthorizationRequired):
                    return again
                credentials = again
                response = await send(credentials)
        except httpx.TimeoutException:
            raise oauth.Transient("timeout", f"{provider.display_name} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise oauth.Transient(
                "unreachable", f"{provider.display_name} could not be reached ({type(exc).__name__})"
            ) from None
        await self._audit_call(call, method, response.status)
        return _stripped(response, credentials)

    async def _refused(self, record: ConnectionRecord, stale: str) -> Credentials | AuthorizationRequired:
        """The provider refused ``stale``: a refreshed credential, or a connect link when the grant is gone. A
        refresh of the connection already in flight is waited for on the event loop (see :class:`PendingCall`)."""
        outcome = await anyio.to_thread.run_sync(self._force, record, stale)
        if not isinstance(outcome, Fresh):
            fresh = await asyncio.wrap_future(outcome)
            if not serves(fresh, True, stale):
                fresh = await anyio.to_thread.run_sync(lambda: self.fresh(record, force=True, stale=stale))
        else:
            fresh = outcome
        if fresh.credentials is None:
            return await anyio.to_thread.run_sync(self.authorization_required, record.user, record.integration)
        return fresh.credentials

    def _force(self, record: ConnectionRecord, stale: str) -> Fresh | Flight:
        integration, provider, values = self.integrations.resolve(record.integration, record.meta)
        return self.refresher.begin(record.id, integration, provider, values, force=True, stale=stale)

    async def _audit_call(self, call: PreparedCall, method: str, status: int) -> None:
        record, parts, caller = call.record, urlsplit(call.url), call.caller
        outcome = "success" if status < 400 else "failure"
        detail: dict[str, Any] = {
            "connection": record.id, "integration": record.integration, "user": record.user, "method": method,
            "host": parts.netloc, "path": parts.path[:200], "status": status,
            **(caller.audit() if caller else {}),
        }  # fmt: skip
        # A person's token: the app (or agent) and the person are the event's own columns, the actor chain
        # (RFC 8693 §4.1) its detail, so the person's activity and the operator's audit both see who acted.
        columns = {"client_id": caller.client_id, "user_id": caller.person} if caller and caller.for_person else {}
        if call.note_use:
            await anyio.to_thread.run_sync(self._used, record.id, outcome, detail, columns, caller)
        else:
            # Nothing else is written for the call, so its event joins the next audit batch (storage/audit.py):
            # a queued row under `frontdesk serve`, written at once where no audit writer runs.
            audit.record_soon(self.engine, "vault.proxy", outcome, **columns, **detail)

    def _used(
        self,
        connection_id: str,
        outcome: str,
        detail: dict[str, Any],
        columns: dict[str, str | None],
        caller: Caller | None,
    ) -> None:
        """Once a minute, or when another caller calls, a call also notes the connection's last use and who made
        it: the event then lands with that write."""
        with transaction(self.engine) as conn:
            store.touch(conn, connection_id, now(), caller.stored() if caller else None)
            audit.record(conn, "vault.proxy", outcome, **columns, **detail)


def _use_due(record: ConnectionRecord, caller: Caller | None) -> bool:
    """Whether a call notes the connection's use: once a minute, and whenever an app or agent with a person's
    token is not the last caller, so that the person's account page names the one that really used it last."""
    if store.last_used_due(record.last_used_at, now()):
        return True
    return caller is not None and caller.for_person and caller.stored() != record.last_used_by


def _target(provider: Provider, values: Mapping[str, str], path: str, query: str) -> str:
    """The provider URL a proxied call goes to, or :class:`VaultError` when it would leave the provider's API base
    path (in any encoding: vault/paths.py) or its declared API hosts (no SSRF: the caller names a path, never a
    host)."""
    try:
        relative, encoded_query = api_path(path), api_query(query)
    except PathRefused as exc:
        raise VaultError(str(exc)) from None
    base = fill(provider.api.base_url, values, provider).rstrip("/")
    url = base + "/" + relative
    if encoded_query:
        url += "?" + encoded_query
    parts = urlsplit(url)
    if "@" in parts.netloc or (parts.hostname or "") not in allowed_hosts(provider, values):
        raise VaultError(f"{parts.netloc!r} is not one of the provider's API hosts")
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback_host(parts.hostname or "")):
        raise VaultError("the provider's API must be reached over https")
    return url


def _vendor_header(name: str) -> bool:
    lower = name.lower()
    return lower.startswith("x-") and not lower.startswith("x-forwarded") and lower not in ("x-real-ip", "x-api-key")


async def _through_httpx(
    client: httpx.AsyncClient, method: str, url: str, headers: list[tuple[str, str]], body: bytes, limit: int
) -> Answer:
    """The call through ``client.send``, for a client that carries no connections of the proxy's own (a test's
    mock transport, an embedding without the app, the app's own under a proxy from the environment)."""
    # As client.build_request, but for its cookie jar: the client is shared by every person's calls and keeps the
    # cookies providers set, so one person's provider session would go out with the next person's call (and a jar
    # that holds cookies costs ~80 µs a request to consult).
    merged = client.headers.copy()
    merged.update(headers)
    timeout = {"timeout": client.timeout.as_dict()}
    request = httpx.Request(method, url, headers=merged, content=body or None, extensions=timeout)
    response = await client.send(request, stream=True)
    try:
        # Read at most `limit`: the answer is held whole so the credential can be stripped from it.
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise ResponseTooLarge(f"the provider's answer is larger than {limit} bytes")
            chunks.append(chunk)
    finally:
        await response.aclose()
    return Answer(response.status_code, response.headers.multi_items(), b"".join(chunks))


def _stripped(response: ProxyResponse, credentials: Credentials) -> ProxyResponse:
    """The provider's answer with every trace of the credential removed: some APIs echo the request back."""
    secrets_ = [s for s in (credentials.access_token, credentials.refresh_token) if s]
    content = response.content
    headers = response.headers
    for secret in secrets_:
        content = content.replace(secret.encode(), b"[redacted]")
        headers = [(name, value.replace(secret, "[redacted]")) for name, value in headers]
    return ProxyResponse(response.status, headers, content)
