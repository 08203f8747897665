"""private_key_jwt with keys published at the client's jwks_uri (RFC 7591 §2): fetched, cached, and a failure to read
them is invalid_client. The client's JWKS host is a peer, so it is played by a stand-in for httpx.get."""

from __future__ import annotations

import secrets
import time

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from frontdesk import client_auth
from frontdesk.protocol.rfc7523 import ASSERTION_TYPE

JWKS_URI = "https://client.example/jwks.json"


@pytest.fixture
def key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "k1", "alg": "ES256"}, private=True)


@pytest.fixture
def fetches(monkeypatch, key) -> list[str]:
    """Every fetch of a JWKS URI, answered with the client's public key set."""
    seen: list[str] = []
    client_auth._jwks_cache.clear()

    def get(url: str, **_: object) -> httpx.Response:
        seen.append(url)
        return httpx.Response(200, json={"keys": [key.as_dict(private=False)]}, request=httpx.Request("GET", url))

    monkeypatch.setattr(client_auth.httpx, "get", get)
    return seen


def assertion(key: ECKey, client_id: str) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": "https://as.example",
        "jti": secrets.token_urlsafe(12),
        "iat": now,
        "exp": now + 60,
    }
    return jwt.encode({"alg": "ES256", "kid": "k1"}, claims, key)


async def token(http, key: ECKey, client_id: str) -> httpx.Response:
    return await http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(key, client_id),
        },
    )


async def test_keys_at_jwks_uri_authenticate_and_are_cached(http, fd, key, fetches):
    """Assertions verify against the keys at jwks_uri, which are fetched once and then served from the cache."""
    fd.clients.create(
        name="Agent",
        client_id="agent",
        redirect_uris=[],
        grant_types=["client_credentials"],
        auth_method="private_key_jwt",
        jwks_uri=JWKS_URI,
        scope="calendar.read",
    )
    for _ in range(3):
        response = await token(http, key, "agent")
        assert response.status_code == 200, response.text
    assert fetches == [JWKS_URI]


async def test_unreadable_jwks_uri_is_invalid_client(http, fd, key, monkeypatch):
    """When the client's JWKS cannot be read, authentication fails with 401 invalid_client, not a server error."""
    client_auth._jwks_cache.clear()

    def down(url: str, **_: object) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    monkeypatch.setattr(client_auth.httpx, "get", down)
    fd.clients.create(
        name="Agent",
        client_id="agent2",
        redirect_uris=[],
        grant_types=["client_credentials"],
        auth_method="private_key_jwt",
        jwks_uri=JWKS_URI,
        scope="calendar.read",
    )
    response = await token(http, key, "agent2")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_jwks_uri_must_be_https(fd):
    """A jwks_uri that is not https is refused at registration."""
    with pytest.raises(ValueError, match="https"):
        fd.clients.create(
            name="Agent",
            client_id="agent3",
            redirect_uris=[],
            grant_types=["client_credentials"],
            auth_method="private_key_jwt",
            jwks_uri="http://client.example/jwks.json",
        )
