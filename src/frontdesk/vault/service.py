"""The vault's use cases behind one front: connect a person's account, keep it fresh, call its API for them, let it go.

One :class:`Vault` per process, opened by the composition root beside the authorization server on the same store and
audit log (DESIGN §2, §6) and attached to it; the web layer and the CLI reach it with :func:`vault_of`. The work is
done in its rooms, which share the store, keys and HTTP client opened here: :mod:`.integrations`, :mod:`.connect`,
:mod:`.proxy` and :mod:`.lifecycle`, on the refresher (:mod:`.refresh`). Database and token-endpoint work is
synchronous and runs on worker threads; the proxied API call itself is asynchronous.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine

from ..config import Settings
from ..core import Frontdesk
from ..oauth.resources import VAULT_SCOPE_PREFIX
from ..storage.db import transaction
from . import api_key_store, integration_store, lifecycle, person_tokens, store
from .accounts import ConnectedAccounts
from .callers import Caller
from .catalog import Catalog, CatalogError, Provider, load_catalog
from .connect import Connector, ConnectPage, ConnectSession, plain_words
from .integration_store import Integration
from .integrations import Integrations
from .keys import VaultKeys, check_keys, load_vault_keys
from .lifecycle import Lifecycle
from .person_tokens import PersonVault
from .proxy import AuthorizationRequired, PendingCall, PreparedCall, Proxy, ProxyResponse, Reason
from .refresh import Fresh, Refresher
from .store import ConnectionRecord
from .webhooks import Webhooks

__all__ = ["Vault", "open_vault", "vault_of"]

# Checks a person's access token (``person_tokens.verified_claims``): its claims, or None when it is not a live
# token of this server for the vault. Wired by open_vault; a vault opened without it accepts API keys only.
TokenCheck = Callable[[str], "dict[str, Any] | None"]


def _no_person_tokens(token: str) -> dict[str, Any] | None:
    return None


@dataclass(slots=True)
class Vault:
    settings: Settings
    engine: Engine
    keys: VaultKeys
    catalog: Catalog
    webhooks: Webhooks
    http: httpx.Client
    person_tokens: TokenCheck = _no_person_tokens
    refresher: Refresher = field(init=False)
    integrations: Integrations = field(init=False)
    connector: Connector = field(init=False)
    calls: Proxy = field(init=False)
    lifecycle: Lifecycle = field(init=False)
    accounts: ConnectedAccounts = field(init=False)

    def __post_init__(self) -> None:
        self.refresher = Refresher(self.engine, self.keys, self.http, partial(lifecycle.dead, self.webhooks))
        self.integrations = Integrations(self.engine, self.keys, self.catalog)
        self.connector = Connector(self.settings, self.engine, self.keys, self.integrations, self.http, self.webhooks)
        self.calls = Proxy(self.settings, self.engine, self.integrations, self.connector, self.refresher)
        self.lifecycle = Lifecycle(self.engine, self.keys, self.integrations, self.calls, self.webhooks, self.http)
        self.accounts = ConnectedAccounts(self.engine, self.integrations, self.lifecycle)

    def close(self) -> None:
        """Release the connections to providers (the core closes the vault it carries with itself)."""
        self.http.close()

    @property
    def callback_url(self) -> str:
        return self.connector.callback_url

    # Integrations (vault/integrations.py).

    def integration(self, name: str) -> Integration:
        return self.integrations.integration(name)

    def add_integration(
        self,
        name: str,
        provider: str,
        client_id: str,
        client_secret: str | None,
        scopes: Sequence[str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Integration:
        """The integration, and its scope ``vault:<name>`` for people's tokens (issue 14), described in plain words
        for the consent page."""
        entry = self.catalog.get(provider)
        scope = (VAULT_SCOPE_PREFIX + name, _scope_words(entry, name))
        return self.integrations.add(name, provider, client_id, client_secret, scopes, params, scope)

    def add_missing_scopes(self) -> int:
        """Give every integration made before people's tokens reached the vault its ``vault:<name>`` scope; how
        many were added."""
        added = 0
        for name, provider in integration_store.missing_scopes(self.engine, VAULT_SCOPE_PREFIX):
            try:
                words = _scope_words(self.catalog.get(provider), name)
            except CatalogError:
                words = f"Use your connected account ({name})"
            added += integration_store.add_scope(self.engine, VAULT_SCOPE_PREFIX + name, words)
        return added

    def scopes_of(self, integration: Integration) -> tuple[str, ...]:
        return self.integrations.scopes_of(integration)

    def values(self, integration: Integration, meta: Mapping[str, str], provider: Provider) -> dict[str, str]:
        return self.integrations.values(integration, meta, provider)

    def provider(self, integration: Integration) -> Provider:
        return self.integrations.provider(integration)

    # Connect links and the callback (vault/connect.py).

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
        return self.connector.create_session(
            user, integration_name, scopes, params, return_url, display_name=display_name, subject=subject
        )

    def connect_page(self, token: str) -> ConnectPage:
        return self.connector.page(token)

    def start(self, token: str, browser: str, subject: str | None = None) -> str:
        return self.connector.start(token, browser, subject)

    def finish(
        self, state: str | None, code: str | None, error: str | None, browser: str | None, iss: str | None = None
    ) -> tuple[ConnectionRecord, str | None, Provider]:
        return self.connector.finish(state, code, error, browser, iss)

    # Use: connections, fresh credentials, proxied calls (vault/proxy.py).

    def connection(self, connection_id: str) -> ConnectionRecord | None:
        with transaction(self.engine, readonly=True) as conn:
            row = store.connection(conn, connection_id)
        return store.record_of(row) if row else None

    def connections_of(self, user: str, integration_name: str | None = None) -> list[ConnectionRecord]:
        return store.connections_of(self.engine, user, integration_name)

    def authenticate(self, key: str) -> api_key_store.ApiKeyRecord | None:
        """The platform's API key (a Bearer token), None when unknown or revoked."""
        return api_key_store.authenticate_api_key(self.engine, key)

    def fresh(
        self, record: ConnectionRecord, *, force: bool = False, stale: str | None = None, row: Any = None
    ) -> Fresh:
        return self.calls.fresh(record, force=force, stale=stale, row=row)

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
        return self.calls.authorization_required(
            user, integration_name, needed, reason, display_name=display_name, subject=subject
        )

    def prepare(
        self, record: ConnectionRecord, path: str, query: str, row: Any = None
    ) -> PreparedCall | PendingCall | AuthorizationRequired:
        return self.calls.prepare(record, path, query, row)

    def prepare_for(
        self, key: str, connection_id: str, path: str, query: str
    ) -> tuple[api_key_store.ApiKeyRecord | None, PreparedCall | PendingCall | AuthorizationRequired | None]:
        """A proxied call as the platform's API key asks for it, its two lookups in one statement: the key (None
        when unknown or revoked, and nothing else done), then the call (None when there is no such connection)."""
        api_key, row = api_key_store.api_key_and_connection(self.engine, key, connection_id)
        if api_key is None or row is None:
            return api_key, None
        caller = Caller(api_key=api_key.id, api_key_name=api_key.name)
        return api_key, self.calls.prepare(store.record_of(row), path, query, row, caller=caller)

    async def ready(self, pending: PendingCall) -> PreparedCall | AuthorizationRequired:
        return await self.calls.ready(pending)

    async def proxy(
        self, call: PreparedCall, method: str, headers: Mapping[str, str], body: bytes, client: httpx.AsyncClient
    ) -> ProxyResponse | AuthorizationRequired:
        return await self.calls.call(call, method, headers, body, client)

    # A person's token instead of an API key (vault/person_tokens.py), and the person's own page (vault/accounts.py).

    def person(self, token: str) -> PersonVault | None:
        """The vault as a person's access token reaches it, or None when the token is not a live access token of
        this server, addressed to the vault, of a person (the answer is then 401 ``invalid_token``)."""
        claims = self.person_tokens(token)
        return self.for_person(claims) if claims is not None else None

    def for_person(self, claims: Mapping[str, Any]) -> PersonVault | None:
        """The vault for the claims of a token someone else validated (an MCP server with the resource-server
        kit): None when it acts for no person. Its ``vault:<integration>`` scopes still bound what it reaches."""
        token = person_tokens.person_token(claims)
        return PersonVault(token, self.engine, self.calls) if token is not None else None

    # Lifecycle (vault/lifecycle.py).

    def delete(self, record: ConnectionRecord) -> bool:
        return self.lifecycle.delete(record)

    def export(self, record: ConnectionRecord, api_key_id: str) -> dict[str, Any]:
        return self.lifecycle.export(record, api_key_id)

    def keepalive(self, limit: int = 100) -> int:
        return self.lifecycle.keepalive(limit)

    def rotate_keys(self, batch: int = 100) -> int:
        return self.lifecycle.rotate_keys(batch)


def _scope_words(entry: Provider, name: str) -> str:
    """The consent page's words for ``vault:<name>``: the provider's words for what a connection reaches."""
    return f"Use {plain_words(entry, ())} through your connected account ({name})"


def vault_of(fd: Frontdesk) -> Vault:
    """The vault the composition root attached to ``fd`` (the core knows it only as something it closes)."""
    vault = fd.vault
    if not isinstance(vault, Vault):
        raise RuntimeError("no vault is attached to this frontdesk: open it with frontdesk.asgi.open_frontdesk")
    return vault


def open_vault(fd: Frontdesk) -> Vault:
    """The vault on ``fd``'s store, refusing to open without its keys (vault/keys.py); the caller attaches it."""
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
    webhooks = Webhooks(settings.vault_webhook_url, settings.vault_webhook_secret)
    vault = Vault(settings, fd.engine, keys, catalog, webhooks, http, partial(person_tokens.verified_claims, fd))
    vault.add_missing_scopes()
    return vault
