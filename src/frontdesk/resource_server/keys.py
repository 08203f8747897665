"""The authorization server's signing keys, cached (RFC 7517 JWK Set; RFC 9068 §4; OpenID Connect Core §10.1.1).

An authorization server rotates by publishing a new key in its JWKS, under a new ``kid``, before it signs with it.
The cached set therefore serves for ``ttl`` seconds and is fetched again at once when a token names a kid the set
lacks, but at most once per ``refetch_floor`` seconds: tokens with made-up kids cannot make the resource server
hammer the authorization server. A failed fetch keeps the set already held.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key

from .discovery import fetch_json
from .tokens import AuthorizationServerUnavailable

__all__ = ["REFETCH_FLOOR", "TTL", "KeyCache", "PublicKey"]

TTL = 300.0
REFETCH_FLOOR = 10.0

PublicKey = RSAKey | ECKey | OKPKey
_KTY = {"RSA": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}  # by alg prefix


@dataclass(frozen=True, slots=True)
class _Key:
    kid: str | None
    alg: str | None
    key: PublicKey


def _usable(jwk: Any) -> _Key | None:
    """A JWK fit to verify signatures (RFC 7517 §4.2: ``use`` is ``sig`` when present), or None."""
    if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig" or jwk.get("kty") not in ("RSA", "EC", "OKP"):
        return None
    try:
        key = import_key(jwk)
    except (JoseError, ValueError, TypeError, KeyError):
        return None
    if not isinstance(key, RSAKey | ECKey | OKPKey):
        return None
    kid, alg = jwk.get("kid"), jwk.get("alg")
    return _Key(kid if isinstance(kid, str) else None, alg if isinstance(alg, str) else None, key)


def _parse(jwks: Mapping[str, Any]) -> tuple[_Key, ...]:
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        raise AuthorizationServerUnavailable("the JWKS has no keys array")
    return tuple(k for k in map(_usable, keys) if k is not None)


def _fits(key: _Key, alg: str) -> bool:
    kty = next((t for prefix, t in _KTY.items() if alg.startswith(prefix)), None)
    return key.key.key_type == kty and (key.alg is None or key.alg == alg)


class KeyCache:
    """One authorization server's JWK Set, fetched from ``locate()``'s URL (or fixed, when ``jwks`` is given)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        locate: Callable[[], Awaitable[str]] | None = None,
        *,
        jwks: Mapping[str, Any] | None = None,
        ttl: float = TTL,
        refetch_floor: float = REFETCH_FLOOR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (locate is None) == (jwks is None):
            raise ValueError("give either where to fetch the JWKS or the JWKS itself")
        self._http = http
        self._locate = locate
        self._ttl = ttl
        self._floor = refetch_floor
        self._clock = clock
        self._keys: tuple[_Key, ...] | None = _parse(jwks) if jwks is not None else None
        self._fetched_at = -float("inf")
        self._unknown_at = -float("inf")  # the last refetch for an unknown kid
        self._lock = asyncio.Lock()
        self.fetches = 0  # how many times the set was fetched: for metrics and tests

    async def key_for(self, kid: str | None, alg: str) -> PublicKey | None:
        """The key that may have signed a token with this ``kid`` and ``alg``, or None when there is none."""
        keys = self._keys
        if self._locate is not None and self._due(keys, kid):
            keys = await self._refresh(kid)
        return _pick(keys or (), kid, alg)

    def _due(self, keys: tuple[_Key, ...] | None, kid: str | None) -> bool:
        at = self._clock()
        if keys is None:
            if at - self._unknown_at < self._floor:  # the last try failed a moment ago
                raise AuthorizationServerUnavailable("the key set could not be fetched; retrying shortly")
            return True
        if at - self._fetched_at >= self._ttl:
            return True
        # Only refetches for unknown kids count towards the floor: a rotation just after a scheduled fetch is
        # still picked up at once.
        unknown = kid is not None and all(k.kid != kid for k in keys)
        return unknown and at - self._unknown_at >= self._floor

    async def _refresh(self, kid: str | None) -> tuple[_Key, ...] | None:
        async with self._lock:
            # Another request may have fetched while this one waited: single flight.
            if not self._due(self._keys, kid):
                return self._keys
            assert self._locate is not None
            at = self._clock()
            if self._keys is not None and at - self._fetched_at < self._ttl:
                self._unknown_at = at
            try:
                url = await self._locate()
                self.fetches += 1
                keys = _parse(await fetch_json(self._http, url))
            except AuthorizationServerUnavailable:
                # Keep verifying with the set held, and try again only after the floor: an outage of the
                # authorization server must not make every request wait for a timeout.
                self._unknown_at = at
                self._fetched_at = max(self._fetched_at, at - self._ttl + self._floor)
                if self._keys is None:
                    raise
                return self._keys
            self._keys, self._fetched_at = keys, at
            return keys


def _pick(keys: tuple[_Key, ...], kid: str | None, alg: str) -> PublicKey | None:
    if kid is not None:
        return next((k.key for k in keys if k.kid == kid and _fits(k, alg)), None)
    # RFC 7515 §4.1.4: without a kid, only an unambiguous key is used.
    fitting = [k.key for k in keys if _fits(k, alg)]
    return fitting[0] if len(fitting) == 1 else None
