"""The operator's integrations and the catalog entries they use: what every connect, refresh and proxied call starts
from, so both are cached (DESIGN §3): an integration for a few seconds, a provider's discovery document an hour.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import anyio
import httpx
from sqlalchemy import Engine

from . import integration_store, oauth
from .catalog import Catalog, CatalogError, Provider, resolve_discovery, scope_problem
from .integration_store import Integration
from .keys import VaultKeys
from .store import VaultError

__all__ = ["DISCOVERY_CACHE_SECONDS", "INTEGRATION_CACHE_SECONDS", "Integrations"]

DISCOVERY_CACHE_SECONDS = 3600.0
INTEGRATION_CACHE_SECONDS = 5.0


@dataclass(slots=True)
class Integrations:
    engine: Engine
    keys: VaultKeys
    catalog: Catalog
    _resolved: dict[str, tuple[float, Provider]] = field(default_factory=dict)
    _integrations: dict[str, tuple[float, Integration]] = field(default_factory=dict)

    def integration(self, name: str) -> Integration:
        """Cached for a few seconds, like clients (DESIGN §3): every proxied call needs it."""
        cached = self._integrations.get(name)
        if cached and time.monotonic() - cached[0] < INTEGRATION_CACHE_SECONDS:
            return cached[1]
        found = integration_store.integration(self.engine, self.keys, name)
        if found is None:
            self._integrations.pop(name, None)
            raise VaultError(f"no integration named {name!r}")
        self._integrations[name] = (time.monotonic(), found)
        return found

    def add(
        self,
        name: str,
        provider: str,
        client_id: str,
        client_secret: str | None,
        scopes: Sequence[str] | None = None,
        params: Mapping[str, str] | None = None,
        vault_scope: tuple[str, str] | None = None,
    ) -> Integration:
        """``scopes`` given replace the provider's default scopes (a provider may refuse one of them); None asks
        for the defaults. The integration keeps the whole list, so what it asks for is what the operator saw.
        ``vault_scope`` is the authorization server's scope for it, stored with it (``integration_store``)."""
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
        return integration_store.add_integration(
            self.engine, self.keys, name=name, provider=provider, client_id=client_id, client_secret=client_secret,
            scopes=chosen, params=params, vault_scope=vault_scope,
        )  # fmt: skip

    def scopes_of(self, integration: Integration) -> tuple[str, ...]:
        """What every connection of ``integration`` asks for: its own list, or, made before revision 0008, the
        provider's defaults and its list on top (as it did then, so it keeps working)."""
        base = self.catalog.get(integration.provider).default_scopes if integration.adds_default_scopes else ()
        return tuple(dict.fromkeys([*base, *integration.scopes]))

    def values(self, integration: Integration, meta: Mapping[str, str], provider: Provider) -> dict[str, str]:
        """The provider's template variables for one connection: defaults, then the integration's, then its own."""
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

    def resolve(self, name: str, meta: Mapping[str, str]) -> tuple[Integration, Provider, dict[str, str]]:
        """The integration ``name``, its provider and a connection's template values (``meta``): what a refresh,
        a provider call or a revocation needs."""
        integration = self.integration(name)
        provider = self.provider(integration)
        return integration, provider, self.values(integration, meta, provider)
