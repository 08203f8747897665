"""Upstream providers' key sets, cached per process (OpenID Connect Core 1.0 §10.1.1).

A provider rotates by publishing its new key in its JWKS before it signs with it, under a new ``kid``. A cached set
therefore serves for ``TTL`` seconds, and is fetched again at once when an ID token names a kid the set lacks — but
at most once per ``REFETCH_FLOOR`` seconds for one jwks_uri, so that ID tokens with made-up kids cannot make this
server hammer the provider. A token without a kid (a provider with a single key, §10.1) waits for the TTL.

No I/O here: the caller hands in how to fetch.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["MAX_PROVIDERS", "REFETCH_FLOOR", "TTL", "ProviderKeys"]

TTL = 300.0
REFETCH_FLOOR = 10.0
MAX_PROVIDERS = 64  # key sets kept; past this the least recently used is dropped

Fetch = Callable[[str], dict[str, Any]]


def _key_ids(jwks: dict[str, Any]) -> frozenset[str]:
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        return frozenset()
    return frozenset(k["kid"] for k in keys if isinstance(k, dict) and isinstance(k.get("kid"), str))


@dataclass(frozen=True, slots=True)
class _Cached:
    jwks: dict[str, Any]
    kids: frozenset[str]
    fetched_at: float
    tried_at: float  # the last fetch begun, successful or not: what the floor counts from


class ProviderKeys:
    """The key sets of upstream providers, by jwks_uri; safe to share between threads."""

    def __init__(
        self,
        *,
        ttl: float = TTL,
        refetch_floor: float = REFETCH_FLOOR,
        max_providers: int = MAX_PROVIDERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._floor = refetch_floor
        self._max = max_providers
        self._clock = clock
        self._cached: OrderedDict[str, _Cached] = OrderedDict()
        self._lock = threading.Lock()

    def key_set(self, jwks_uri: str, kid: str | None, fetch: Fetch) -> dict[str, Any]:
        """The provider's JWKS for an ID token signed with ``kid``: cached, or fetched with ``fetch(jwks_uri)``
        (whose errors pass through; a failed fetch leaves the cached set as it was)."""
        at = self._clock()
        with self._lock:
            cached = self._cached.get(jwks_uri)
            if cached is not None:
                self._cached.move_to_end(jwks_uri)
                if not self._due(cached, kid, at):
                    return cached.jwks
                # Claimed under the lock: other threads seeing the same unknown kid keep the set they have.
                self._cached[jwks_uri] = replace(cached, tried_at=at)
        jwks = fetch(jwks_uri)
        with self._lock:
            self._cached[jwks_uri] = _Cached(jwks, _key_ids(jwks), at, at)
            self._cached.move_to_end(jwks_uri)
            while len(self._cached) > self._max:
                self._cached.popitem(last=False)
        return jwks

    def _due(self, cached: _Cached, kid: str | None, at: float) -> bool:
        if at - cached.fetched_at >= self._ttl:
            return True
        return kid is not None and kid not in cached.kids and at - cached.tried_at >= self._floor
