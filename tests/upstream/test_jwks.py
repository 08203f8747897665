"""The upstream providers' key sets, cached per process: fetched once per TTL, again at once for a rotated key's new
kid, but never more than once per floor however many unknown kids arrive (OpenID Connect Core 1.0 §10.1.1). The
provider is a real HTTP server on loopback, serving a key set the tests change."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from frontdesk.secret import digest
from frontdesk.upstream.id_token import unverified_kid, validate_id_token
from frontdesk.upstream.jwks import REFETCH_FLOOR, TTL, ProviderKeys
from servers import loopback

OLD = RSAKey.generate_key(2048, parameters={"kid": "2026-11"}, private=True)
NEW = RSAKey.generate_key(2048, parameters={"kid": "2026-12"}, private=True)
ISSUER = "https://op.example"
T0 = 1_000.0


@dataclass
class Provider:
    """What the loopback provider serves at every path: ``keys`` as a JWKS; ``hits`` counts requests by path."""

    port: int = 0
    keys: list[RSAKey] = field(default_factory=list)
    hits: Counter[str] = field(default_factory=Counter)

    def uri(self, path: str = "/jwks") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def provider() -> Iterator[Provider]:
    state = Provider(keys=[OLD])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits[self.path] += 1
            body = json.dumps({"keys": [key.as_dict(private=False) for key in state.keys]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with loopback(Handler) as port:
        state.port = port
        yield state


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keys(clock: Clock) -> ProviderKeys:
    return ProviderKeys(clock=clock)


def fetch(uri: str) -> dict[str, Any]:
    response = httpx.get(uri, timeout=5.0)
    response.raise_for_status()
    jwks: dict[str, Any] = response.json()
    return jwks


def id_token(key: RSAKey, kid: str | None = None, at: float = T0) -> str:
    claims = {"iss": ISSUER, "aud": "frontdesk", "sub": "u1", "iat": int(at), "exp": int(at) + 300, "nonce": "n"}
    return jwt.encode({"alg": "RS256", "kid": kid or str(key.kid)}, claims, key)


def validated(keys: ProviderKeys, uri: str, token: str, at: float) -> dict[str, Any]:
    """The token's claims, checked against the key set the cache hands out for its kid (as a sign-in does)."""
    jwks = keys.key_set(uri, unverified_kid(token), fetch)
    return validate_id_token(
        token, jwks=jwks, issuer=ISSUER, client_id="frontdesk", nonce_digest=digest("n"), at=int(at)
    )


def test_the_key_set_is_fetched_once_per_ttl(keys, provider, clock):
    """ID tokens signed with a known key are checked against the cached set until the TTL ends, then it is fetched."""
    validated(keys, provider.uri(), id_token(OLD), clock.now)
    clock.now = T0 + TTL - 1
    validated(keys, provider.uri(), id_token(OLD, at=clock.now), clock.now)
    assert provider.hits["/jwks"] == 1
    clock.now = T0 + TTL
    validated(keys, provider.uri(), id_token(OLD, at=clock.now), clock.now)
    assert provider.hits["/jwks"] == 2


def test_a_rotated_key_is_picked_up_at_once(keys, provider, clock):
    """The provider publishes a new key and signs with it: its new kid is fetched at once, well within the TTL."""
    validated(keys, provider.uri(), id_token(OLD), clock.now)
    provider.keys = [NEW, OLD]
    clock.now = T0 + REFETCH_FLOOR
    assert validated(keys, provider.uri(), id_token(NEW, at=clock.now), clock.now)["sub"] == "u1"
    assert provider.hits["/jwks"] == 2


def test_unknown_kids_within_the_floor_fetch_once(keys, provider, clock):
    """Two ID tokens naming unknown kids within the floor make one fetch between them; after the floor, another."""
    keys.key_set(provider.uri(), "2026-11", fetch)
    clock.now = T0 + 60
    keys.key_set(provider.uri(), "bogus-1", fetch)
    clock.now = T0 + 60 + REFETCH_FLOOR - 1
    keys.key_set(provider.uri(), "bogus-2", fetch)
    assert provider.hits["/jwks"] == 2
    clock.now = T0 + 60 + REFETCH_FLOOR
    keys.key_set(provider.uri(), "bogus-3", fetch)
    assert provider.hits["/jwks"] == 3


def test_an_unknown_kid_just_after_a_fetch_waits_for_the_floor(keys, provider, clock):
    """A fetch for any reason starts the floor: an unknown kid right after the first fetch fetches nothing more."""
    keys.key_set(provider.uri(), "2026-11", fetch)
    keys.key_set(provider.uri(), "bogus", fetch)
    assert provider.hits["/jwks"] == 1


def test_the_cache_keeps_a_bounded_number_of_providers(provider, clock):
    """Past its size the least recently used provider's set is dropped and fetched again when next needed."""
    keys = ProviderKeys(max_providers=2, clock=clock)
    for path in ("/a", "/b", "/a", "/c", "/a", "/b"):
        keys.key_set(provider.uri(path), "2026-11", fetch)
    assert provider.hits == {"/a": 1, "/b": 2, "/c": 1}
