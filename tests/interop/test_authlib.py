"""authlib's OAuth 2 client (Python) against frontdesk: client_credentials with client_secret_basic and with
private_key_jwt (RFC 7523), and the assertion checks frontdesk makes (replay, audience).

authlib's ``PrivateKeyJWT`` puts the token endpoint URL in ``aud`` unless it is given another value. frontdesk
accepts only the issuer identifier by default (draft-ietf-oauth-rfc7523bis), so authlib is configured with the
issuer — ``PrivateKeyJWT(issuer)`` — or the client is registered with ``--assertion-audience token-endpoint``."""

from __future__ import annotations

import json
import secrets
import time
import warnings
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from .conftest import Server

with warnings.catch_warnings(record=True):
    # authlib ≥ 1.7 announces that it will move from httpx to httpx2; httpx is what this project uses, and
    # authlib's own "always" filter would otherwise let the notice past pytest's filterwarnings = error.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated", category=DeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client, OAuthError

pytestmark = pytest.mark.interop

HTTP_TIMEOUT = 10.0
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SCOPE = "calendar.read"


@dataclass(frozen=True)
class KeyClient:
    client_id: str
    key: ECKey


@pytest.fixture(scope="module")
def calendar_scope(frontdesk_server: Server) -> str:
    frontdesk_server.cli("scope", "create", SCOPE, "--description", "See your calendar events — not change them")
    return SCOPE


@pytest.fixture(scope="module")
def metadata(frontdesk_server: Server) -> dict[str, Any]:
    return frontdesk_server.metadata()


def _key_client(
    frontdesk_server: Server, calendar_scope: str, tmp_path_factory: pytest.TempPathFactory, *extra: str
) -> KeyClient:
    key = ECKey.generate_key("P-256", parameters={"kid": "interop-" + secrets.token_hex(4), "alg": "ES256"})
    public = {**key.as_dict(private=False), "use": "sig", "alg": "ES256"}
    jwks_file = tmp_path_factory.mktemp("client") / "client-jwks.json"
    jwks_file.write_text(json.dumps({"keys": [public]}))
    created = frontdesk_server.cli(
        "client",
        "create",
        "--name",
        "Key-holding service",
        "--auth-method",
        "private_key_jwt",
        "--jwks",
        str(jwks_file),
        "--grant-type",
        "client_credentials",
        "--scope",
        calendar_scope,
        *extra,
    )
    assert created["token_endpoint_auth_method"] == "private_key_jwt"
    assert "client_secret" not in created
    return KeyClient(created["client_id"], key)


@pytest.fixture(scope="module")
def key_client(frontdesk_server: Server, calendar_scope: str, tmp_path_factory: pytest.TempPathFactory) -> KeyClient:
    """A client registered with ``--auth-method private_key_jwt --jwks FILE`` holding one P-256 public key."""
    return _key_client(frontdesk_server, calendar_scope, tmp_path_factory)


@pytest.fixture(scope="module")
def relaxed_key_client(
    frontdesk_server: Server, calendar_scope: str, tmp_path_factory: pytest.TempPathFactory
) -> KeyClient:
    """The same, registered with ``--assertion-audience token-endpoint``: its assertions may name the token
    endpoint, as authlib's do by default."""
    return _key_client(frontdesk_server, calendar_scope, tmp_path_factory, "--assertion-audience", "token-endpoint")


def verified_access_token(token: str, metadata: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a JWT access token whose signature checks out against the server's published JWKS."""
    jwks = httpx.get(metadata["jwks_uri"], timeout=HTTP_TIMEOUT)
    assert jwks.status_code == 200, jwks.text
    keys = KeySet.import_key_set(jwks.json())
    decoded = jwt.decode(token, keys, algorithms=["ES256", "RS256", "EdDSA"])
    jwt.JWTClaimsRegistry(iss={"essential": True, "value": metadata["issuer"]}, exp={"essential": True}).validate(
        decoded.claims
    )
    return dict(decoded.header), dict(decoded.claims)


def assert_client_credentials_token(token: dict[str, Any], client_id: str, metadata: dict[str, Any]) -> None:
    assert token["token_type"].lower() == "bearer"
    assert token["scope"] == SCOPE
    assert "refresh_token" not in token
    header, claims = verified_access_token(token["access_token"], metadata)
    assert header["typ"] == "at+jwt"
    assert claims["aud"] == metadata["issuer"]
    assert claims["client_id"] == client_id
    assert claims["sub"] == client_id
    assert claims["scope"] == SCOPE
    assert claims["exp"] > time.time()


def assertion(key_client: KeyClient, aud: str | list[str], jti: str | None = None, lifetime: int = 120) -> str:
    now = int(time.time())
    claims = {
        "iss": key_client.client_id,
        "sub": key_client.client_id,
        "aud": aud,
        "jti": jti or secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + lifetime,
    }
    header = {"alg": "ES256", "kid": key_client.key.kid, "typ": "JWT"}
    return jwt.encode(header, claims, key_client.key)


def token_request(metadata: dict[str, Any], client_assertion: str) -> httpx.Response:
    return httpx.post(
        metadata["token_endpoint"],
        data={
            "grant_type": "client_credentials",
            "scope": SCOPE,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion,
        },
        timeout=HTTP_TIMEOUT,
    )


def assert_invalid_client(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert "access_token" not in response.json()


def test_client_credentials_with_client_secret_basic(frontdesk_server: Server, calendar_scope: str, metadata):
    """authlib obtains a client_credentials token with client_secret_basic, and it is an at+jwt access token for
    this issuer, signed by a key in the server's JWKS."""
    created = frontdesk_server.cli(
        "client",
        "create",
        "--name",
        "Calendar sync service",
        "--grant-type",
        "client_credentials",
        "--scope",
        calendar_scope,
    )
    assert created["token_endpoint_auth_method"] == "client_secret_basic"
    with OAuth2Client(
        created["client_id"],
        created["client_secret"],
        token_endpoint_auth_method="client_secret_basic",
        scope=calendar_scope,
        timeout=HTTP_TIMEOUT,
    ) as oauth:
        token = oauth.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert_client_credentials_token(dict(token), created["client_id"], metadata)


def test_client_credentials_with_private_key_jwt(key_client: KeyClient, metadata):
    """authlib's PrivateKeyJWT, given the issuer as the assertion's audience, obtains a client_credentials token
    twice (a fresh jti each time)."""
    with OAuth2Client(
        key_client.client_id,
        key_client.key,
        token_endpoint_auth_method=PrivateKeyJWT(metadata["issuer"], alg="ES256"),
        scope=SCOPE,
        timeout=HTTP_TIMEOUT,
    ) as oauth:
        first = oauth.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
        second = oauth.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert_client_credentials_token(dict(first), key_client.client_id, metadata)
    assert_client_credentials_token(dict(second), key_client.client_id, metadata)
    assert first["access_token"] != second["access_token"]


def test_authlib_default_audience_needs_the_token_endpoint_relaxation(
    key_client: KeyClient, relaxed_key_client: KeyClient, metadata
):
    """authlib's PrivateKeyJWT left to its default (aud = the token endpoint URL) is refused for a client registered
    with the default, and obtains a token for one registered with --assertion-audience token-endpoint."""
    for client in (key_client, relaxed_key_client):
        with OAuth2Client(
            client.client_id,
            client.key,
            token_endpoint_auth_method=PrivateKeyJWT(alg="ES256"),
            scope=SCOPE,
            timeout=HTTP_TIMEOUT,
        ) as oauth:
            if client is key_client:
                with pytest.raises(OAuthError) as refused:
                    oauth.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
                assert refused.value.error == "invalid_client"
            else:
                token = oauth.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
                assert_client_credentials_token(dict(token), client.client_id, metadata)


def test_client_assertion_audience_is_the_issuer(key_client: KeyClient, metadata):
    """A hand-made assertion whose aud is the issuer identifier is accepted; the token endpoint URL, or an array
    holding the issuer, is 401 invalid_client."""
    response = token_request(metadata, assertion(key_client, metadata["issuer"]))
    assert response.status_code == 200, response.text
    assert_client_credentials_token(response.json(), key_client.client_id, metadata)
    assert_invalid_client(token_request(metadata, assertion(key_client, metadata["token_endpoint"])))
    assert_invalid_client(token_request(metadata, assertion(key_client, [metadata["issuer"]])))


def test_replayed_client_assertion_is_rejected(key_client: KeyClient, metadata):
    """The same assertion (same jti) presented a second time gets 401 invalid_client."""
    once = assertion(key_client, metadata["issuer"])
    first = token_request(metadata, once)
    assert first.status_code == 200, first.text
    assert_invalid_client(token_request(metadata, once))
    # A new assertion with the same jti is a replay too, not only the same bytes.
    jti = secrets.token_urlsafe(16)
    assert token_request(metadata, assertion(key_client, metadata["issuer"], jti=jti)).status_code == 200
    assert_invalid_client(token_request(metadata, assertion(key_client, metadata["issuer"], jti=jti)))


def test_client_assertion_for_another_audience_is_rejected(key_client: KeyClient, metadata):
    """An assertion addressed to another server (wrong aud) gets 401 invalid_client."""
    assert_invalid_client(token_request(metadata, assertion(key_client, "https://other-as.example/token")))
