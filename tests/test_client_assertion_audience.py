"""The audience of a private_key_jwt client assertion (RFC 7523 §3 as draft-ietf-oauth-rfc7523bis-09 narrows it):
the issuer identifier as a single string; for a client registered with the ``token-endpoint`` relaxation, also this
server's token endpoint URL as a single string; never an array, never another server."""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from conftest import ISSUER, remember
from frontdesk.core import Frontdesk
from frontdesk.oauth import registration
from frontdesk.oauth.registration import ClientError, render_metadata
from frontdesk.protocol.rfc7523 import ASSERTION_TYPE

TOKEN_ENDPOINT = ISSUER + "/token"


@pytest.fixture
def key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "k1", "alg": "ES256"}, private=True)


def register(fd: Frontdesk, key: ECKey, client_id: str, **extra: Any) -> None:
    registration.register(
        fd,
        name="Key-holding service",
        client_id=client_id,
        auth_method="private_key_jwt",
        jwks={"keys": [key.as_dict(private=False)]},
        redirect_uris=[],
        grant_types=["client_credentials"],
        scope="calendar.read",
        **extra,
    )


@pytest.fixture
def strict(fd: Frontdesk, key: ECKey) -> str:
    register(fd, key, "strict-client")
    return "strict-client"


@pytest.fixture
def relaxed(fd: Frontdesk, key: ECKey) -> str:
    register(fd, key, "relaxed-client", assertion_audience="token-endpoint")
    return "relaxed-client"


async def token_with(http: httpx.AsyncClient, key: ECKey, client_id: str, aud: Any, seen: set[str]) -> httpx.Response:
    at = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "jti": secrets.token_urlsafe(12),
        "iat": at,
        "exp": at + 60,
    }
    assertion = jwt.encode({"alg": "ES256", "kid": "k1"}, claims, key)
    remember(seen, assertion)
    return await http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "scope": "calendar.read",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
    )


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"


async def test_issuer_as_a_single_string_is_accepted(http, key, strict, secrets_seen):
    """The issuer identifier, as one string, authenticates a client registered with the default."""
    response = await token_with(http, key, strict, ISSUER, secrets_seen)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "aud",
    [
        TOKEN_ENDPOINT,
        [ISSUER],
        [ISSUER, "https://other-as.example"],
        [TOKEN_ENDPOINT],
        ["https://other-as.example", TOKEN_ENDPOINT],
        ISSUER + "/",
        "https://other-as.example",
        None,
        1,
        {"iss": ISSUER},
    ],
    ids=repr,
)
async def test_by_default_anything_but_the_issuer_string_is_invalid_client(http, key, strict, secrets_seen, aud):
    """By default the token endpoint URL, any array (even one holding only the issuer), a near miss of the issuer
    and any other value are 401 invalid_client."""
    assert_refused(await token_with(http, key, strict, aud, secrets_seen))


@pytest.mark.parametrize("aud", [ISSUER, TOKEN_ENDPOINT])
async def test_relaxed_client_may_name_the_issuer_or_the_token_endpoint(http, key, relaxed, secrets_seen, aud):
    """A client registered with assertion_audience=token-endpoint may use either single string."""
    response = await token_with(http, key, relaxed, aud, secrets_seen)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "aud",
    [[TOKEN_ENDPOINT], [TOKEN_ENDPOINT, "https://other-as.example/token"], [ISSUER, TOKEN_ENDPOINT], "https://x/token"],
    ids=repr,
)
async def test_relaxed_client_is_still_refused_arrays_and_other_servers(http, key, relaxed, secrets_seen, aud):
    """The relaxation is for one more single string only: arrays and foreign endpoints stay 401 invalid_client."""
    assert_refused(await token_with(http, key, relaxed, aud, secrets_seen))


def test_the_relaxation_is_recorded_and_shown_in_metadata(fd, key, strict, relaxed):
    """The client's metadata names its assertion audience; the default is the issuer."""
    strict_client, relaxed_client = fd.clients.get(strict, cached=False), fd.clients.get(relaxed, cached=False)
    assert strict_client is not None
    assert relaxed_client is not None
    assert render_metadata(strict_client)["assertion_audience"] == "issuer"
    assert render_metadata(relaxed_client)["assertion_audience"] == "token-endpoint"


@pytest.mark.parametrize(
    ("auth_method", "audience"), [("client_secret_basic", "token-endpoint"), ("private_key_jwt", "anything")]
)
def test_the_relaxation_is_only_for_private_key_jwt_and_only_named_values(fd, key, auth_method, audience):
    """An assertion audience for a client that makes no assertions, or one not named, is refused at registration."""
    with pytest.raises(ClientError, match="assertion audience"):
        registration.register(
            fd,
            name="App",
            redirect_uris=[],
            grant_types=["client_credentials"],
            auth_method=auth_method,
            jwks={"keys": [key.as_dict(private=False)]} if auth_method == "private_key_jwt" else None,
            assertion_audience=audience,
        )
