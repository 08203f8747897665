"""The vault's use cases: connect a person's account, keep it fresh, call its API for them, let it go.

One :class:`Vault` per process, opened beside the authorization server on the same store and audit log. Database
and token-endpoint work is synchronous and runs on worker threads; the proxied API call itself is asynchronous.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import anyio
import httpx
from sqlalchemy import func, insert, select, update

from ..config import Settings, is_loopback_host
from ..secret import digest, new_token, same
from ..storage import audit
from ..storage.db import now, transaction
from ..storage.schema import User, VaultConnection, VaultConnectSession, VaultIntegration
from . import oauth, store
from .catalog import (
    Catalog,
    CatalogError,
    Provider,
    allowed_hosts,
    fill,
    load_catalog,
    resolve_discovery,
    scope_problem,
)
from .keys import VaultKeys, check_keys, load_vault_keys
from .paths import PathRefused, api_path, api_query
from .refresh import BackingOff, Flight, Fresh, Refresher, serves
from .store import ConnectionRecord, Credentials, Integration, VaultError
from .webhooks import Webhooks

if TYPE_CHECKING:
    from ..core import Frontdesk

__all__ = [
    "AuthorizationRequired",
    "ConnectFailed",
    "ConnectPage",
    "ConnectSession",
    "PendingCall",
    "PreparedCall",
    "ProxyResponse",
    "ResponseTooLarge",
    "Vault",
    "open_vault",
    "plain_words",
]

log = logging.getLogger("frontdesk.vault")
DISCOVERY_CACHE_SECONDS = 3600.0
INTEGRATION_CACHE_SECONDS = 5.0
MAX_PROXY_BODY = 10 * 1024 * 1024
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
_SCOPE = re.compile(r"[\x21-\x7e]{1,256}")
MAX_DISPLAY_NAME = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class ResponseTooLarge(Exception):
    """The provider answered with more than the proxy will hold (``max_proxy_body``)."""


class ConnectFailed(Exception):
    """A connect link or callback that cannot go on; ``reason`` picks the page the person sees."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class AuthorizationRequired:
    """What a tool gets instead of an API result when the person must connect (or reconnect) first."""

    integration: str
    scopes: tuple[str, ...]
    authorization_url: str
    message: str
    reason: Literal["not_connected", "needs_reauth", "missing_scopes"]
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
    """A proxied call made ready by :meth:`Vault.prepare`: where it goes, and with which credential.

    No repr: the URL carries the caller's query, which is not logged (only the path is audited)."""

    record: ConnectionRecord
    url: str
    provider: Provider
    credentials: Credentials
    note_use: bool  # the connection's last_used_at is due (store.LAST_USED_EVERY)


@dataclass(frozen=True, slots=True, repr=False)
class PendingCall:
    """A proxied call whose credential another caller in this process is refreshing: :meth:`Vault.ready` waits for
    that refresh on the event loop, so that a storm of calls after expiry holds no worker thread while it waits."""

    record: ConnectionRecord
    url: str
    provider: Provider
    flight: Flight


@dataclass(frozen=True, slots=True)
class ConnectSession:
    id: str
    url: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class ConnectPage:
    """What the person is told before a connect link sends them to the provider: whose account it joins."""

    provider: str  # "Google Calendar"
    account: str  # the platform's display name for its user, or the user id when it gave none
    named: bool  # whether ``account`` is a display name (else an id the person may not recognise)
    words: str  # what the connection reaches, in plain words
    subject: str | None  # the frontdesk person who must be signed in, when the platform asked for one


def plain_words(provider: Provider, scopes: Sequence[str]) -> str:
    """ "your Google Calendar and your Gmail", from the catalog's words for each scope, or the provider's name."""
    words = list(dict.fromkeys(provider.scope_words[s] for s in scopes if s in provider.scope_words))
    if not words:
        return provider.access_words or f"your {provider.display_name} account"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


@dataclass(slots=True)
class Vault:
    settings: Settings
    engine: Any
    keys: VaultKeys
    catalog: Catalog
    webhooks: Webhooks
    http: httpx.Client
    refresher: Refresher = field(init=False)
    _resolved: dict[str, tuple[float, Provider]] = field(default_factory=dict)
    _integrations: dict[str, tuple[float, Integration]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.refresher = Refresher(self.engine, self.keys, self.http, self._dead)

    @property
    def callback_url(self) -> str:
        return self.settings.issuer + "/vault/callback"

    # --- providers and integrations ----------------------------------------------------------------------------

    def integration(self, name: str) -> Integration:
        """Cached for a few seconds, like clients (DESIGN §3): every proxied call needs it."""
        cached = self._integrations.get(name)
        if cached and time.monotonic() - cached[0] < INTEGRATION_CACHE_SECONDS:
            return cached[1]
        found = store.integration(self.engine, self.keys, name)
        if found is None:
            self._integrations.pop(name, None)
            raise VaultError(f"no integration named {name!r}")
        self._integrations[name] = (time.monotonic(), found)
        return found

    def add_integration(
        self,
        name: str,
        provider: str,
        client_id: str,
        client_secret: str | None,
        scopes: Sequence[str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Integration:
        """``scopes`` given replace the provider's default scopes (a provider may refuse one of them); None asks
        for the defaults. The integration keeps the whole list, so what it asks for is what the operator saw."""
        entry = self.catalog.get(provider)
        chosen = list(dict.fromkeys(entry.default_scopes if scopes is None else scopes))
        for scope in chosen:
            if problem := scope_problem(scope, entry.scope_separator):
                raise VaultError(problem)
        params = dict(params or {})
        for key, value in params.items():
            variable = next((v for v in entry.variables if v.name == key and v.source == "integration"), None)
            if variable is None:
                raise VaultError(f"provider {provider!r} takes no integration parameter {key!r}")
            if not re.fullmatch(variable.pattern, value):
                raise VaultError(f"{key}={value!r} does not look like {variable.description or variable.pattern}")
        for variable in entry.variables:
            if variable.source == "integration" and variable.name not in params and variable.default is None:
                raise VaultError(f"provider {provider!r} needs --param {variable.name}=… ({variable.description})")
        return store.add_integration(
            self.engine, self.keys, name=name, provider=provider, client_id=client_id, client_secret=client_secret,
            scopes=chosen, params=params,
        )  # fmt: skip

    def scopes_of(self, integration: Integration) -> tuple[str, ...]:
        """What every connection of ``integration`` asks for: its own list, or, made before revision 0008, the
        provider's defaults and its list on top (as it did then, so it keeps working)."""
        base = self.catalog.get(integration.provider).default_scopes if integration.adds_default_scopes else ()
        return tuple(dict.fromkeys([*base, *integration.scopes]))

    def values(self, integration: Integration, meta: Mapping[str, str], provider: Provider) -> dict[str, str]:
        out = {v.name: v.default for v in provider.variables if v.default is not None}
        out.update(integration.params)
        out.update(meta)
        return out

    def provider(self, integration: Integration) -> Provider:
        """The catalog entry, its endpoints read from the discovery document when it has one (cached an hour)."""
        entry = self.catalog.get(integration.provider)
        if entry.discovery_url is None:
            return entry
        cached = self._resolved.get(integration.name)
        if cached and time.monotonic() - cached[0] < DISCOVERY_CACHE_SECONDS:
            return cached[1]
        values = self.values(integration, {}, entry)

        async def resolve() -> Provider:
            async with httpx.AsyncClient(timeout=10.0) as client:
                return await resolve_discovery(entry, values, client)

        try:
            resolved = anyio.run(resolve)
        except (CatalogError, httpx.HTTPError) as exc:
            raise oauth.Transient("discovery_failed", str(exc)) from None
        self._resolved[integration.name] = (time.monotonic(), resolved)
        return resolved

    # --- connect sessions ----------------------------------------------------------------------------------------

    def create_connect_session(
        self,
        user: str,
        integration_name: str,
        scopes: Sequence[str] = (),
        params: Mapping[str, str] | None = None,
        return_url: str | None = None,
        display_name: str | None = None,
        subject: str | None = None,
    ) -> ConnectSession:
        """A short-lived, single-use link bound to ``user``: whoever completes it connects *that* user's account.

        The link's page names the account (``display_name``, the platform's words for its user) before the person
        goes on, so someone sent a link that is not theirs can tell. ``subject``, a frontdesk person's id, makes
        the link work only for that person, signed in here."""
        # The platform's user id is stored and shown: no control characters (PostgreSQL refuses NUL in text outright).
        if not user or len(user) > 255 or _CONTROL.search(user):
            raise VaultError("user must be 1-255 characters of text")
        if subject is not None and (not subject or len(subject) > 255 or _CONTROL.search(subject)):
            raise VaultError("subject is not a person at this frontdesk")
        if display_name is not None and not (
            display_name.strip() and len(display_name) <= MAX_DISPLAY_NAME and not _CONTROL.search(display_name)
        ):
            raise VaultError(f"display_name must be 1-{MAX_DISPLAY_NAME} characters of text")
        integration = self.integration(integration_name)
        entry = self.catalog.get(integration.provider)
        if any(not isinstance(s, str) or not _SCOPE.fullmatch(s) for s in scopes):
            raise VaultError("scopes must be a list of scope strings")
        params = dict(params or {})
        for variable in entry.variables:
            if variable.source != "connection":
                continue
            value = params.get(variable.name)
            if value is None:
                raise VaultError(
                    f"integration {integration_name!r} needs params.{variable.name} ({variable.description})"
                )
            if not isinstance(value, str) or not re.fullmatch(variable.pattern, value):
                raise VaultError(
                    f"params.{variable.name} does not look like {variable.description or variable.pattern}"
                )
        allowed = {v.name for v in entry.variables if v.source == "connection"}
        if set(params) - allowed:
            raise VaultError(f"unknown params: {', '.join(sorted(set(params) - allowed))}")
        if return_url is not None:
            try:
                parts = urlsplit(return_url)
            except ValueError:  # an unclosed or bad IP literal ("https://[::1"), RFC 3986 §3.2.2
                raise VaultError("return_url must be an https URL") from None
            if not (parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname or ""))):
                raise VaultError("return_url must be an https URL")
        requested = list(dict.fromkeys([*self.scopes_of(integration), *scopes]))
        token = new_token("connect_link")
        session_id = "cs_" + secrets.token_urlsafe(12)
        at = now()
        expires_at = at + self.settings.lifetimes.connect_session
        with transaction(self.engine) as conn:
            if subject is not None:
                person = conn.execute(select(User.name, User.username).where(User.id == subject)).one_or_none()
                if person is None:
                    raise VaultError("subject is not a person at this frontdesk")
                display_name = display_name or person.name or person.username
            conn.execute(
                insert(VaultConnectSession),
                {
                    "id": session_id,
                    "digest": digest(token),
                    "user": user,
                    "integration": integration_name,
                    "scopes": json.dumps(requested),
                    "params": json.dumps(params, sort_keys=True),
                    "return_url": return_url,
                    "display_name": display_name.strip() if display_name else None,
                    "subject": subject,
                    "created_at": at,
                    "expires_at": expires_at,
                },
            )
            audit.record(
                conn, "vault.connect_session.created", "success", integration=integration_name, user=user,
                session=session_id, bound_to_person=subject is not None,
            )  # fmt: skip
        return ConnectSession(session_id, f"{self.settings.issuer}/vault/connect/{token}", expires_at)

    def connect_page(self, token: str) -> ConnectPage:
        """What the link's page says before the person goes on; :class:`ConnectFailed` when it cannot be used.
        Reading it changes nothing: the link is used only once the person chooses to continue (:meth:`start`)."""
        with transaction(self.engine, readonly=True) as conn:
            row = self._usable(conn, token, now())
        integration = self.integration(row.integration)
        entry = self.catalog.get(integration.provider)
        return ConnectPage(
            entry.display_name, row.display_name or row.user, row.display_name is not None,
            plain_words(entry, json.loads(row.scopes)), row.subject,
        )  # fmt: skip

    @staticmethod
    def _usable(conn: Any, token: str, at: int) -> Any:
        row = conn.execute(select(VaultConnectSession).where(VaultConnectSession.digest == digest(token))).one_or_none()
        if row is None:
            raise ConnectFailed("unknown")
        if row.opened_at is not None:
            raise ConnectFailed("used")
        if row.expires_at <= at:
            raise ConnectFailed("expired")
        return row

    def start(self, token: str, browser: str, subject: str | None = None) -> str:
        """The person chose to continue: bind the link to this browser, and send them to the provider with state
        and PKCE. ``subject`` is the frontdesk person signed in in this browser, if any: a link made for a person
        works for that person only."""
        at = now()
        state = new_token("connect_state")
        verifier = secrets.token_urlsafe(48)
        refused: str | None = None
        with transaction(self.engine) as conn:
            row = self._usable(conn, token, at)
            if row.subject is not None and subject != row.subject:
                # Not an error that undoes the transaction: the refusal is audited, the link stays usable.
                refused = "sign_in" if subject is None else "wrong_person"
                audit.record(
                    conn, "vault.connect_session.refused", "failure", integration=row.integration, user=row.user,
                    session=row.id, reason=refused,
                )  # fmt: skip
            else:
                sealed, _ = self.keys.seal(verifier.encode(), b"vault connect session:" + row.id.encode())
                won = conn.execute(
                    update(VaultConnectSession)
                    .where(VaultConnectSession.id == row.id, VaultConnectSession.opened_at.is_(None))
                    .values(opened_at=at, browser_digest=digest(browser), state_digest=digest(state), sealed=sealed)
                ).rowcount
                if not won:
                    raise ConnectFailed("used")
        if refused is not None:
            raise ConnectFailed(refused)
        integration = self.integration(row.integration)
        provider = self.provider(integration)
        values = self.values(integration, json.loads(row.params), provider)
        return oauth.authorization_url(
            provider, integration, values, redirect_uri=self.callback_url, state=state, verifier=verifier,
            scopes=json.loads(row.scopes),
        )  # fmt: skip

    def finish(
        self, state: str | None, code: str | None, error: str | None, browser: str | None, iss: str | None = None
    ) -> tuple[ConnectionRecord, str | None, Provider]:
        """The provider sent the person back. Only the browser that opened the link, only once, only in time, and
        only from the provider the person was sent to (``iss``, RFC 9207)."""
        if not state:
            raise ConnectFailed("unknown")
        self._check_issuer(state, iss)
        at = now()
        with transaction(self.engine) as conn:
            row = conn.execute(
                select(VaultConnectSession).where(VaultConnectSession.state_digest == digest(state))
            ).one_or_none()
            if row is None:
                raise ConnectFailed("unknown")
            if row.consumed_at is not None:
                raise ConnectFailed("used")
            if row.expires_at <= at:
                raise ConnectFailed("expired")
            if browser is None or row.browser_digest is None or not same(digest(browser), row.browser_digest):
                # The link was opened in another browser: a forwarded link must not attach an account to someone
                # else's user (DESIGN §6).
                raise ConnectFailed("other_browser")
            consumed = conn.execute(
                update(VaultConnectSession)
                .where(VaultConnectSession.id == row.id, VaultConnectSession.consumed_at.is_(None))
                .values(consumed_at=at)
            ).rowcount
            if not consumed:
                raise ConnectFailed("used")
            if error or not code:
                audit.record(
                    conn, "vault.connection.created", "denied", integration=row.integration, user=row.user,
                    reason=(error or "no_code")[:64],
                )  # fmt: skip
        if error or not code:
            raise ConnectFailed("denied", error or "")
        assert row.sealed is not None  # set when the link was opened, and state exists only from then on
        verifier = self.keys.open(row.sealed, b"vault connect session:" + row.id.encode()).decode()
        integration = self.integration(row.integration)
        provider = self.provider(integration)
        params = json.loads(row.params)
        values = self.values(integration, params, provider)
        try:
            tokens = oauth.exchange_code(
                self.http, provider, integration, values, code=code, redirect_uri=self.callback_url, verifier=verifier
            )
        except oauth.ProviderError as exc:
            with transaction(self.engine) as conn:
                audit.record(
                    conn, "vault.connection.created", "failure", integration=row.integration, user=row.user,
                    reason=exc.code,
                )  # fmt: skip
            raise ConnectFailed("exchange_failed", exc.code) from None
        scopes = tokens.scopes if tokens.scopes is not None else tuple(json.loads(row.scopes))
        with transaction(self.engine) as conn:
            record, created = store.save_connection(
                conn, self.keys, integration_name=row.integration, user=row.user, credentials=tokens.credentials,
                scopes=scopes, meta={**params, **tokens.kept},
                expires_at=at + tokens.expires_in if tokens.expires_in is not None else None,
            )  # fmt: skip
            conn.execute(
                update(VaultConnectSession).where(VaultConnectSession.id == row.id).values(connection_id=record.id)
            )
            audit.record(
                conn, "vault.connection.created" if created else "vault.connection.reconnected", "success",
                integration=row.integration, user=row.user, connection=record.id,
            )  # fmt: skip
        self.webhooks.send("connection.created" if created else "connection.reconnected", record.public())
        return record, row.return_url, provider

    def _check_issuer(self, state: str, iss: str | None) -> None:
        """RFC 9207 §2.4 (mix-up defence): where the provider's issuer is known (its discovery document), an ``iss``
        in the response must be exactly it, and one that advertises
        ``authorization_response_iss_parameter_supported`` must send it. Checked before the session is consumed:
        nothing is exchanged or attached, and the response the person's own provider sends still completes it."""
        with transaction(self.engine, readonly=True) as conn:
            row = conn.execute(
                select(VaultConnectSession.integration, VaultConnectSession.user).where(
                    VaultConnectSession.state_digest == digest(state)
                )
            ).one_or_none()
        if row is None:
            return  # finish refuses an unknown state
        provider = self.provider(self.integration(row.integration))
        if provider.issuer is None or iss == provider.issuer or (iss is None and not provider.iss_parameter):
            return
        reason = "issuer_missing" if iss is None else "issuer_mismatch"
        with transaction(self.engine) as conn:
            audit.record(
                conn, "vault.connection.created", "failure", integration=row.integration, user=row.user, reason=reason
            )
        raise ConnectFailed("exchange_failed", reason)

    # --- use ---------------------------------------------------------------------------------------------------

    def connection(self, connection_id: str) -> ConnectionRecord | None:
        with transaction(self.engine, readonly=True) as conn:
            row = store.connection(conn, connection_id)
        return store.record_of(row) if row else None

    def fresh(
        self, record: ConnectionRecord, *, force: bool = False, stale: str | None = None, row: Any = None
    ) -> Fresh:
        integration = self.integration(record.integration)
        provider = self.provider(integration)
        values = self.values(integration, record.meta, provider)
        return self.refresher.fresh(record.id, integration, provider, values, force=force, stale=stale, row=row)

    def authorization_required(
        self,
        user: str,
        integration_name: str,
        needed: Sequence[str] = (),
        reason: str | None = None,
        *,
        display_name: str | None = None,
        subject: str | None = None,
    ) -> AuthorizationRequired:
        """A connect link for ``user``, asking for what they granted plus what is needed now (incremental), and a
        message in plain words. The link comes from here, never from a language model. ``display_name`` and
        ``subject`` as for :meth:`create_connect_session`."""
        integration = self.integration(integration_name)
        entry = self.catalog.get(integration.provider)
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
        session = self.create_connect_session(
            user, integration_name, scopes, params, display_name=display_name, subject=subject
        )
        words = plain_words(entry, missing or needed)  # nothing specific needed: the provider's own words
        if reason == "needs_reauth":
            message = f"My connection to {words} has stopped working. Reconnect it here, then ask me again."
        else:
            message = f"I need access to {words} to do that. Connect it here."
        return AuthorizationRequired(
            integration_name,
            tuple(dict.fromkeys([*self.scopes_of(integration), *scopes])),
            session.url,
            message,
            reason,  # type: ignore[arg-type]
            session.id,
            session.expires_at,
        )

    def prepare(
        self, record: ConnectionRecord, path: str, query: str, row: Any = None
    ) -> PreparedCall | PendingCall | AuthorizationRequired:
        """The blocking half of a proxied call, all of it before the call: the provider URL (:class:`VaultError`
        off its API hosts), then the credential, refreshed first when due, or a connect link when there is none.
        ``row`` is the connection as just read: it is read again only for a refresh. A refresh already in flight
        is not waited for here: the :class:`PendingCall` goes to :meth:`ready`."""
        integration = self.integration(record.integration)
        provider = self.provider(integration)
        values = self.values(integration, record.meta, provider)
        url = _target(provider, values, path, query)
        fresh = self.refresher.begin(record.id, integration, provider, values, row=row)
        if not isinstance(fresh, Fresh):
            return PendingCall(record, url, provider, fresh)
        if fresh.credentials is None:
            return self.authorization_required(record.user, record.integration)
        used = store.last_used_due(fresh.record.last_used_at, now())
        return PreparedCall(fresh.record, url, provider, fresh.credentials, used)

    async def ready(self, pending: PendingCall) -> PreparedCall | AuthorizationRequired:
        """The call, once the refresh it waited for is over (its outcome is this call's: a refresh that failed
        raises here as it did for the caller that ran it)."""
        fresh = await asyncio.wrap_future(pending.flight)
        record = pending.record
        if fresh.credentials is None:
            return await anyio.to_thread.run_sync(self.authorization_required, record.user, record.integration)
        used = store.last_used_due(fresh.record.last_used_at, now())
        return PreparedCall(fresh.record, pending.url, pending.provider, fresh.credentials, used)

    async def proxy(
        self, call: PreparedCall, method: str, headers: Mapping[str, str], body: bytes, client: httpx.AsyncClient
    ) -> ProxyResponse | AuthorizationRequired:
        """Call the provider's API as the person: credentials injected here, stripped from whatever comes back;
        on 401, refresh once and retry once (the token may have been revoked or rotated early)."""
        record, provider = call.record, call.provider
        outgoing = {k: v for k, v in headers.items() if k.lower() in _PASS_HEADERS or _vendor_header(k)}

        async def send(credentials: Credentials) -> ProxyResponse:
            placed = dict(outgoing)
            placed.update(
                {
                    k: v.replace("{access_token}", credentials.access_token)
                    for k, v in provider.api.extra_headers.items()
                }
            )
            placed[provider.api.header] = provider.api.value.replace("{access_token}", credentials.access_token)
            # As client.build_request, but for its cookie jar: the client is shared by every person's calls and
            # keeps the cookies providers set, so one person's provider session would go out with the next
            # person's call (and a jar that holds cookies costs ~80 µs a request to consult).
            merged = client.headers.copy()
            merged.update(placed)
            timeout = {"timeout": client.timeout.as_dict()}
            request = httpx.Request(method, call.url, headers=merged, content=body or None, extensions=timeout)
            response = await client.send(request, stream=True)
            try:
                # Read at most max_proxy_body: the answer is held whole so the credential can be stripped from it.
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self.settings.max_proxy_body:
                        raise ResponseTooLarge(
                            f"the provider's answer is larger than {self.settings.max_proxy_body} bytes"
                        )
                    chunks.append(chunk)
            finally:
                await response.aclose()
            # aiter_bytes decoded any content-encoding: the headers that described the wire form go.
            kept = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _DROP_RESPONSE_HEADERS]
            return ProxyResponse(response.status_code, kept, b"".join(chunks))

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
        integration = self.integration(record.integration)
        provider = self.provider(integration)
        values = self.values(integration, record.meta, provider)
        return self.refresher.begin(record.id, integration, provider, values, force=True, stale=stale)

    async def _audit_call(self, call: PreparedCall, method: str, status: int) -> None:
        record, parts = call.record, urlsplit(call.url)
        outcome = "success" if status < 400 else "failure"
        detail: dict[str, Any] = {
            "connection": record.id, "integration": record.integration, "user": record.user, "method": method,
            "host": parts.netloc, "path": parts.path[:200], "status": status,
        }  # fmt: skip
        if call.note_use:
            await anyio.to_thread.run_sync(self._used, record.id, outcome, detail)
        else:
            # Nothing else is written for the call, so its event joins the next audit batch (storage/audit.py):
            # a queued row under `frontdesk serve`, written at once where no audit writer runs.
            audit.record_soon(self.engine, "vault.proxy", outcome, **detail)

    def _used(self, connection_id: str, outcome: str, detail: dict[str, Any]) -> None:
        """Once a minute a call also notes the connection's last use: the event then lands with that write."""
        with transaction(self.engine) as conn:
            store.touch(conn, connection_id, now())
            audit.record(conn, "vault.proxy", outcome, **detail)

    # --- lifecycle -----------------------------------------------------------------------------------------------

    def delete(self, record: ConnectionRecord) -> bool:
        """Revoke at the provider where it can, then delete here. Returns whether the provider confirmed."""
        with transaction(self.engine, readonly=True) as conn:
            row = store.connection(conn, record.id)
        if row is None:
            return False
        revoked = False
        try:
            integration = self.integration(record.integration)
            provider = self.provider(integration)
            values = self.values(integration, record.meta, provider)
            revoked = oauth.revoke(self.http, provider, integration, values, store.credentials_of(self.keys, row))
        except (VaultError, CatalogError, oauth.ProviderError) as exc:
            log.warning("could not revoke at the provider", extra={"connection": record.id, "error": str(exc)})
        with transaction(self.engine) as conn:
            store.delete_connection(conn, record.id)
            audit.record(
                conn, "vault.connection.deleted", "success", connection=record.id, integration=record.integration,
                user=record.user, revoked_at_provider=revoked,
            )  # fmt: skip
        self.webhooks.send("connection.deleted", {**record.public(), "revoked_at_provider": revoked})
        return revoked

    def export(self, record: ConnectionRecord, api_key_id: str) -> dict[str, Any]:
        """Raw tokens for an admin key, refreshed first when due; every export is audited."""
        fresh = self.fresh(record)
        with transaction(self.engine) as conn:
            audit.record(
                conn, "vault.connection.exported", "success" if fresh.credentials else "failure",
                connection=record.id, integration=record.integration, user=record.user, api_key=api_key_id,
            )  # fmt: skip
        if fresh.credentials is None:
            raise VaultError("the connection is not active")
        return {
            "access_token": fresh.credentials.access_token,
            "token_type": fresh.credentials.token_type,
            "expires_at": fresh.record.expires_at,
            "refresh_token": fresh.credentials.refresh_token,
        }

    def _dead(self, record: ConnectionRecord, reason: str) -> None:
        self.webhooks.send("connection.needs_reauth", {**record.public(), "reason": reason})

    def keepalive(self, limit: int = 100) -> int:
        """Refresh idle connections of providers that revoke unused refresh tokens, before they do."""
        at = now()
        due: list[ConnectionRecord] = []
        with transaction(self.engine, readonly=True) as conn:
            integrations = conn.execute(select(VaultIntegration.name, VaultIntegration.provider)).all()
            for name, provider_name in integrations:
                entry = self.catalog.providers.get(provider_name)
                if entry is None or entry.keepalive is None:
                    continue
                rows = conn.execute(
                    select(VaultConnection)
                    .where(
                        VaultConnection.integration == name,
                        VaultConnection.status == "active",
                        func.coalesce(VaultConnection.refreshed_at, VaultConnection.created_at) <= at - entry.keepalive,
                        func.coalesce(VaultConnection.retry_at, 0) <= at,
                    )
                    .limit(limit - len(due))
                ).all()
                due += [store.record_of(r) for r in rows]
                if len(due) >= limit:
                    break
        count = 0
        for record in due[:limit]:
            try:
                self.fresh(record, force=True)
                count += 1
            except (BackingOff, oauth.ProviderError, VaultError, CatalogError) as exc:
                log.info("keep-alive refresh failed", extra={"connection": record.id, "error": str(exc)})
        return count

    def rotate_keys(self, batch: int = 100) -> int:
        """Re-seal every record not sealed under the active key, a batch per transaction, while serving."""
        done = 0
        active = self.keys.active_id
        while True:
            with transaction(self.engine) as conn:
                rows = conn.execute(
                    select(VaultConnection).where(VaultConnection.key_id != active).limit(batch).with_for_update()
                ).all()
                for row in rows:
                    credentials = store.credentials_of(self.keys, row)
                    sealed, kid = credentials.seal(self.keys, row.id)
                    conn.execute(
                        update(VaultConnection)
                        .where(VaultConnection.id == row.id)
                        .values(credentials=sealed, key_id=kid)
                    )
                integrations = conn.execute(
                    select(VaultIntegration)
                    .where(VaultIntegration.key_id.is_not(None), VaultIntegration.key_id != active)
                    .limit(batch)
                    .with_for_update()
                ).all()
                for item in integrations:
                    assert item.client_secret is not None
                    aad = b"vault integration:" + item.name.encode()
                    sealed, kid = self.keys.seal(self.keys.open(item.client_secret, aad), aad)
                    resealed = {"client_secret": sealed, "key_id": kid}
                    conn.execute(update(VaultIntegration).where(VaultIntegration.name == item.name).values(**resealed))
                if rows or integrations:
                    count = len(rows) + len(integrations)
                    audit.record(conn, "vault.keys.rotated", "success", resealed=count, key=active)
            done += len(rows) + len(integrations)
            if not rows and not integrations:
                return done


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


def _stripped(response: ProxyResponse, credentials: Credentials) -> ProxyResponse:
    """The provider's answer with every trace of the credential removed: some APIs echo the request back."""
    secrets_ = [s for s in (credentials.access_token, credentials.refresh_token) if s]
    content = response.content
    headers = response.headers
    for secret in secrets_:
        content = content.replace(secret.encode(), b"[redacted]")
        headers = [(name, value.replace(secret, "[redacted]")) for name, value in headers]
    return ProxyResponse(response.status, headers, content)


def open_vault(fd: Frontdesk) -> Vault:
    settings = fd.settings
    keys = load_vault_keys(settings, fd.engine)
    check_keys(keys, fd.engine)
    extra = [Path(settings.vault_providers_dir)] if settings.vault_providers_dir else []
    home_dir = settings.home / "providers"
    if home_dir.is_dir():
        extra.append(home_dir)
    catalog = load_catalog(extra)
    # Redirects are not followed: a token endpoint or API that redirects is not where the credential was meant to go.
    http = httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0), follow_redirects=False)
    return Vault(
        settings, fd.engine, keys, catalog, Webhooks(settings.vault_webhook_url, settings.vault_webhook_secret), http
    )
