"""private_key_jwt with keys published at the client's jwks_uri (RFC 7591 §2): fetched without blocking the event loop,
cached, a failure cached briefly too, the body bounded, and a failure to read them is invalid_client. The client's
JWKS host is a peer, so it is played by an httpx transport in place of the network."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from frontdesk.oauth import client_auth, registration
from frontdesk.oauth.registration import ClientError
from frontdesk.protocol.rfc7523 import ASSERTION_TYPE

JWKS_URI = "https://client.example/jwks.json"


@pytest.fixture
def key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "k1", "alg": "ES256"}, private=True)


Answer = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def jwks_host(monkeypatch) -> Iterator[Callable[[Answer], list[str]]]:
    """Play the client's JWKS host with ``answer``; returns the list of URLs fetched. The cache starts empty."""

    def install(answer: Answer) -> list[str]:
        seen: list[str] = []

        async def handler(request: httpx.Request) -> httpx.Response:
            seen.append(str(request.url))
            return answer(request)

        monkeypatch.setattr(client_auth.client_keys, "transport", httpx.MockTransport(handler))
        return seen

    client_auth.client_keys.clear()
    yield install
    client_auth.client_keys.clear()


@pytest.fixture
def fetches(jwks_host, key) -> list[str]:
    """Every fetch of a JWKS URI, answered with the client's public key set."""
    return jwks_host(lambda request: httpx.Response(200, json={"keys": [key.as_dict(private=False)]}))


def register(fd, client_id: str) -> None:
    registration.register(
        fd,
        name="Agent",
        client_id=client_id,
        redirect_uris=[],
        grant_types=["client_credentials"],
        auth_method="private_key_jwt",
        jwks_uri=JWKS_URI,
        scope="calendar.read",
    )


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
    registration.register(
        fd,
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


async def test_unreadable_jwks_uri_is_invalid_client(http, fd, key, jwks_host):
    """When the client's JWKS cannot be read, authentication fails with 401 invalid_client, not a server error."""

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    jwks_host(down)
    register(fd, "agent2")
    response = await token(http, key, "agent2")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "answer",
    [
        lambda request: httpx.Response(500, text="oops"),
        lambda request: httpx.Response(302, headers={"location": "https://elsewhere.example/jwks.json"}),
        lambda request: httpx.Response(200, content=b"not json"),
        lambda request: httpx.Response(200, content=b'{"keys": "\\ud800"}'),
        lambda request: httpx.Response(200, content=b"[" * 5000 + b"]" * 5000),
        lambda request: httpx.Response(200, json=["keys"]),
    ],
    ids=["500", "redirect", "not-json", "lone-surrogate", "deep-nesting", "not-a-key-set"],
)
async def test_a_bad_answer_from_the_jwks_host_is_invalid_client(http, fd, key, jwks_host, answer):
    """A failed, redirected or unusable answer from the client's JWKS host is 401 invalid_client; a redirect is
    not followed (the keys are those at the registered URL, nowhere else)."""
    fetched = jwks_host(answer)
    register(fd, "agent4")
    response = await token(http, key, "agent4")
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert fetched == [JWKS_URI]


async def test_a_failure_is_remembered_briefly_and_then_tried_again(http, fd, key, jwks_host, monkeypatch):
    """After a failed read, requests within the next thirty seconds fail without a fetch each; after that the host
    is asked again, and keys it now serves authenticate."""
    up = False

    def flaky(request: httpx.Request) -> httpx.Response:
        if not up:
            raise httpx.ConnectError("connection refused")
        return httpx.Response(200, json={"keys": [key.as_dict(private=False)]})

    fetched = jwks_host(flaky)
    register(fd, "agent5")
    for _ in range(3):
        assert (await token(http, key, "agent5")).status_code == 401
    assert fetched == [JWKS_URI]
    up = True
    later = time.monotonic() + client_auth.client_keys.failure_ttl + 1
    monkeypatch.setattr(client_auth.time, "monotonic", lambda: later)
    response = await token(http, key, "agent5")
    assert response.status_code == 200, response.text
    assert fetched == [JWKS_URI, JWKS_URI]


async def test_an_oversized_key_set_is_not_read_to_the_end(http, fd, key, jwks_host):
    """A JWKS host that sends more than the bound (declared or not) gets invalid_client, and the body is not kept."""
    padding = {"kty": "oct", "k": "A" * (client_auth.client_keys.max_bytes + 1)}
    jwks_host(lambda request: httpx.Response(200, json={"keys": [key.as_dict(private=False), padding]}))
    register(fd, "agent6")
    response = await token(http, key, "agent6")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_a_slow_jwks_host_does_not_hold_up_other_requests(http, fd, key, jwks_host, confidential):
    """While the client's JWKS host takes its time, the event loop serves other requests: the fetch is awaited, not
    made with a blocking call."""
    release = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200, json={"keys": [key.as_dict(private=False)]})

    client_auth.client_keys.clear()
    client_auth.client_keys.transport = httpx.MockTransport(slow)
    try:
        register(fd, "agent7")
        waiting = asyncio.ensure_future(token(http, key, "agent7"))
        other = await asyncio.wait_for(http.get("/jwks"), timeout=5)
        assert other.status_code == 200
        assert not waiting.done()
        release.set()
        assert (await asyncio.wait_for(waiting, timeout=5)).status_code == 200
    finally:
        client_auth.client_keys.transport = None
        client_auth.client_keys.clear()


async def test_jwks_uri_must_be_https(fd):
    """A jwks_uri that is not https is refused at registration."""
    with pytest.raises(ClientError, match="https"):
        registration.register(
            fd,
            name="Agent",
            client_id="agent3",
            redirect_uris=[],
            grant_types=["client_credentials"],
            auth_method="private_key_jwt",
            jwks_uri="http://client.example/jwks.json",
        )


async def test_a_rotated_key_is_read_again_once_the_cached_set_is_old_enough(http, fd, key, jwks_host, monkeypatch):
    """A client that adds a new key to its set and signs with it is not locked out for the cache's five minutes:
    an assertion naming a kid the cached set lacks reads the set again, at most once per ``refetch_after``."""
    rotated = ECKey.generate_key("P-256", parameters={"kid": "k2", "alg": "ES256"}, private=True)
    published = [key.as_dict(private=False)]
    fetched = jwks_host(lambda request: httpx.Response(200, json={"keys": list(published)}))
    register(fd, "rotating")
    assert (await token(http, key, "rotating")).status_code == 200
    published.append(rotated.as_dict(private=False))

    def signed_with_k2() -> str:
        now = int(time.time())
        claims = {"iss": "rotating", "sub": "rotating", "aud": "https://as.example", "jti": secrets.token_urlsafe(12)}
        return jwt.encode({"alg": "ES256", "kid": "k2"}, {**claims, "iat": now, "exp": now + 60}, rotated)

    form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE}
    # Within refetch_after of the last read, an unknown kid does not make another fetch.
    refused = await http.post("/token", data={**form, "client_assertion": signed_with_k2()})
    assert refused.status_code == 401, refused.text
    assert fetched == [JWKS_URI]
    monkeypatch.setattr(client_auth.client_keys, "refetch_after", 0.0)
    accepted = await http.post("/token", data={**form, "client_assertion": signed_with_k2()})
    assert accepted.status_code == 200, accepted.text
    assert fetched == [JWKS_URI, JWKS_URI]
    # The old key still works from the new set, with no further fetch.
    assert (await token(http, key, "rotating")).status_code == 200
    assert fetched == [JWKS_URI, JWKS_URI]


async def test_a_failed_reread_keeps_the_key_set_it_had(http, fd, key, jwks_host, monkeypatch):
    """Naming an unknown kid while the client's host is down does not throw away the keys that still verify."""
    up = [True]

    def answer(request: httpx.Request) -> httpx.Response:
        if not up[0]:
            raise httpx.ConnectError("connection refused")
        return httpx.Response(200, json={"keys": [key.as_dict(private=False)]})

    jwks_host(answer)
    register(fd, "steady")
    assert (await token(http, key, "steady")).status_code == 200
    up[0] = False
    monkeypatch.setattr(client_auth.client_keys, "refetch_after", 0.0)
    stranger = ECKey.generate_key("P-256", parameters={"kid": "k9", "alg": "ES256"}, private=True)
    now = int(time.time())
    claims = {"iss": "steady", "sub": "steady", "aud": "https://as.example", "jti": "j-1", "iat": now, "exp": now + 60}
    unknown = jwt.encode({"alg": "ES256", "kid": "k9"}, claims, stranger)
    form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE}
    assert (await http.post("/token", data={**form, "client_assertion": unknown})).status_code == 401
    assert (await token(http, key, "steady")).status_code == 200
