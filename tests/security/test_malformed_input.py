"""Malformed input that once made a 500 gets the spec's error instead, through both ways a request reaches an
endpoint: the Starlette router (``create_app``) and the app ``frontdesk serve`` runs (``asgi.served``), which calls
the hot endpoints (token, introspection) directly.

urllib raises ``ValueError`` on an unclosed or bad IP literal (``http://[::1``); ``json.loads`` accepts a lone
surrogate escape and recurses until ``RecursionError``; PostgreSQL refuses a NUL in a text column. None of that may
reach the wire as anything but a 4xx: RFC 6749 §5.2 JSON at the token endpoint, an error redirect or an error page at
the authorization endpoint (by whether the redirect URI is trusted yet, RFC 9700 §4.11.2), ``invalid_request`` JSON
on the vault API."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from accounts import account_page
from conftest import ISSUER, Registered, basic, csrf_of, pkce, query, remember
from frontdesk.asgi import served
from frontdesk.core import Frontdesk
from frontdesk.oauth.registration import ClientError, register
from frontdesk.vault import api_key_store
from frontdesk.web import create_app

BROKEN_IP_LITERALS = ["http://[::1", "https://[::1/cb", "http://a]b/", "https://[x]/", "https://a[b/"]


@pytest.fixture(params=["router", "served"])
async def app(request: pytest.FixtureRequest, fd: Frontdesk) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of the plain Starlette app, or of the app as ``frontdesk serve`` runs it. A 500 comes
    back as a response (not an exception in the test), so that a failure shows what the wire would have seen."""
    asgi: Any = create_app(fd) if request.param == "router" else served(fd)
    transport = httpx.ASGITransport(app=asgi, raise_app_exceptions=False, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER, follow_redirects=False) as client:
        yield client
    starlette: Starlette = asgi if isinstance(asgi, Starlette) else asgi.app
    await starlette.state.vault_http.aclose()


def assert_oauth_json(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == error


# --- resource indicators and redirect URIs with a broken IP literal -----------------------------------------------


@pytest.mark.parametrize("resource", BROKEN_IP_LITERALS)
async def test_token_resource_with_a_broken_ip_literal_is_invalid_target(app, confidential: Registered, resource):
    """RFC 8707 §2 at the token endpoint: a resource urllib cannot even split is 400 invalid_target as JSON."""
    response = await app.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "calendar.read", "resource": resource},
        auth=basic(confidential),
    )
    assert_oauth_json(response, 400, "invalid_target")


@pytest.mark.parametrize("resource", BROKEN_IP_LITERALS)
async def test_authorize_resource_with_a_broken_ip_literal_is_an_error_redirect(app, public: Registered, resource):
    """At /authorize the redirect URI is trusted by then, so the client hears invalid_target at it (RFC 6749
    §4.1.2.1), with state and iss (RFC 9207)."""
    _, challenge = pkce()
    response = await app.get(
        "/authorize",
        params={
            "response_type": "code",
            "client_id": public.client_id,
            "redirect_uri": public.redirect_uri,
            "scope": "openid",
            "state": "s1",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "prompt": "none",
            "resource": resource,
        },
    )
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(public.redirect_uri + "?")
    assert query(location) == {
        "error": "invalid_target",
        "error_description": "resource must be an absolute URI without a fragment",
        "state": "s1",
        "iss": ISSUER,
    }


@pytest.mark.parametrize("redirect_uri", ["http://[::1", "http://[::1/cb", "http://[::1]:99999/cb"])
async def test_authorize_redirect_uri_with_a_broken_ip_literal_is_an_error_page(app, public: Registered, redirect_uri):
    """A redirect URI that is not registered (nor a loopback variant of one) is never redirected to: an HTML page."""
    _, challenge = pkce()
    response = await app.get(
        "/authorize",
        params={
            "response_type": "code",
            "client_id": public.client_id,
            "redirect_uri": redirect_uri,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


async def test_device_authorization_resource_with_a_broken_ip_literal_is_invalid_target(app, fd, public):
    """RFC 8628 §3.1 takes the same resource parameter: the same invalid_target."""
    response = await app.post(
        "/device_authorization",
        data={"client_id": public.client_id, "scope": "openid", "resource": "http://[::1"},
    )
    assert_oauth_json(response, 400, "invalid_target")


@pytest.mark.parametrize("uri", BROKEN_IP_LITERALS)
def test_registration_refuses_a_redirect_uri_with_a_broken_ip_literal(fd, uri):
    """Registration answers invalid_redirect_uri (RFC 7591 §3.2.2), not urllib's ValueError."""
    with pytest.raises(ClientError) as refused:
        register(fd, name="App", redirect_uris=[uri], auth_method="none")
    assert refused.value.error == "invalid_redirect_uri"


@pytest.mark.parametrize("uri", BROKEN_IP_LITERALS)
def test_registration_refuses_a_post_logout_or_backchannel_uri_with_a_broken_ip_literal(fd, uri):
    """Sign-out URIs are registered like redirect URIs: invalid_client_metadata, not a ValueError."""
    with pytest.raises(ClientError) as refused:
        register(fd, name="App", redirect_uris=["https://app.example/cb"], post_logout_redirect_uris=[uri])
    assert refused.value.error == "invalid_client_metadata"
    with pytest.raises(ClientError) as refused:
        register(fd, name="App", redirect_uris=["https://app.example/cb"], backchannel_logout_uri=uri)
    assert refused.value.error == "invalid_client_metadata"


@pytest.mark.parametrize(
    "uri",
    ["https://[::1/jwks", "https://[x]/jwks", "https://client.example:99999/jwks", "https://u@client.example/jwks"],
)
def test_registration_refuses_a_jwks_uri_that_is_no_https_url(fd, uri):
    """A jwks_uri that urllib cannot split, with a port out of range or user information is refused at once, rather
    than failing every token request later."""
    with pytest.raises(ClientError, match="jwks_uri"):
        register(
            fd,
            name="Agent",
            redirect_uris=[],
            grant_types=["client_credentials"],
            auth_method="private_key_jwt",
            jwks_uri=uri,
        )


# --- client credentials that no store can look up ----------------------------------------------------------------


def _b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("sub", ["\ud800", "a\x00b"])
async def test_client_assertion_naming_an_unstorable_subject_is_invalid_client(app, sub):
    """An assertion whose sub is a lone surrogate or carries a NUL names no client: 401 invalid_client."""
    header = _b64url(b'{"alg":"ES256"}')
    payload = _b64url(json.dumps({"sub": sub, "iss": sub, "aud": ISSUER}).encode())
    response = await app.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": f"{header}.{payload}.{_b64url(b'sig')}",
        },
    )
    assert_oauth_json(response, 401, "invalid_client")


async def test_client_assertion_nested_deeper_than_the_parser_recurses_is_invalid_client(app):
    """An assertion whose payload nests five thousand arrays is 401 invalid_client, not a RecursionError."""
    header = _b64url(b'{"alg":"ES256"}')
    payload = _b64url(b"[" * 5_000 + b"]" * 5_000)
    response = await app.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": f"{header}.{payload}.{_b64url(b'sig')}",
        },
    )
    assert_oauth_json(response, 401, "invalid_client")


@pytest.mark.parametrize("user", [b"conf-client%00", b"conf\x00client", b"%ff%fe"])
async def test_basic_credentials_with_a_nul_or_bad_encoding_are_invalid_client(app, confidential, user):
    """Basic credentials whose client_id decodes to a NUL or to bytes that are not UTF-8 are 401 invalid_client."""
    import base64

    token = base64.b64encode(user + b":" + (confidential.secret or "").encode()).decode()
    response = await app.post(
        "/token", data={"grant_type": "client_credentials"}, headers={"authorization": f"Basic {token}"}
    )
    assert_oauth_json(response, 401, "invalid_client")


# --- the vault API's JSON bodies -----------------------------------------------------------------------------------


@pytest.fixture
def vault_key(fd: Frontdesk, secrets_seen: set[str]) -> str:
    """An API key, and an integration it can name, so that a body that parses reaches the store."""
    assert fd.vault is not None
    fd.vault.add_integration("cal", "github", "gh-client", "gh-secret-0123456789", ["repo"])
    remember(secrets_seen, "gh-secret-0123456789")
    _, key = api_key_store.create_api_key(fd.vault.engine, "platform backend")
    remember(secrets_seen, key.value)
    return key.value


VAULT_BODIES = {
    "deep-nesting": b'{"user": ' + b"[" * 5_000 + b"]" * 5_000 + b', "integration": "cal"}',
    "lone-surrogate": b'{"user": "\\ud800", "integration": "cal"}',
    "lone-low-surrogate": b'{"user": "u-1", "integration": "cal", "scopes": ["\\udc00"]}',
    "nul-in-a-string": b'{"user": "u\\u0000-1", "integration": "cal"}',
    "nul-in-a-key": b'{"user": "u-1", "integration": "cal", "params": {"a\\u0000": "b"}}',
    "not-utf-8": b'{"user": "\xff\xfe", "integration": "cal"}',
    "byte-order-mark": b'\xef\xbb\xbf{"user": "u-1", "integration": "cal"}',
    "nan": b'{"user": "u-1", "integration": "cal", "x": NaN}',
    "not-an-object": b'["user", "u-1"]',
    "empty": b"",
}


@pytest.mark.parametrize("path", ["/vault/connect-sessions", "/vault/check"])
@pytest.mark.parametrize("case", sorted(VAULT_BODIES))
async def test_vault_api_refuses_malformed_json_with_invalid_request(app, vault_key, path, case):
    """Whatever the JSON defect, the vault API answers 400 invalid_request as JSON, never a server error."""
    response = await app.post(
        path,
        content=VAULT_BODIES[case],
        headers={"authorization": f"Bearer {vault_key}", "content-type": "application/json"},
    )
    assert_oauth_json(response, 400, "invalid_request")


@pytest.mark.parametrize("return_url", ["https://[::1", "http://[::1/back", "https://[x]/"])
async def test_vault_connect_session_with_a_broken_return_url_is_invalid_request(app, vault_key, return_url):
    """A return_url urllib cannot split is 400 invalid_request like any other that is not https."""
    response = await app.post(
        "/vault/connect-sessions",
        json={"user": "u-1", "integration": "cal", "return_url": return_url},
        headers={"authorization": f"Bearer {vault_key}"},
    )
    assert_oauth_json(response, 400, "invalid_request")
    assert "return_url" in response.json()["error_description"]


@pytest.mark.parametrize(
    "owner",
    [{"user": "u\x001"}, {"user": "u-1\n"}, {"user": "u-1", "subject": "p\x00"}, {"user": "u-1", "subject": ""}],
    ids=["nul-user", "newline-user", "nul-subject", "empty-subject"],
)
async def test_vault_connect_session_owner_with_control_characters_is_invalid_request(app, vault_key, owner):
    """A platform user id or subject holding NUL or a control character is 400 invalid_request on both databases

    (PostgreSQL refuses NUL in text: that was a 500)."""
    response = await app.post(
        "/vault/connect-sessions",
        json={**owner, "integration": "cal"},
        headers={"authorization": f"Bearer {vault_key}"},
    )
    assert_oauth_json(response, 400, "invalid_request")


async def test_vault_api_still_reads_a_well_formed_body(app, vault_key):
    """The strict reader takes what a platform sends: a connect session is created."""
    response = await app.post(
        "/vault/connect-sessions",
        json={"user": "u-1", "integration": "cal", "scopes": ["repo"], "return_url": "https://platform.example/done"},
        headers={"authorization": f"Bearer {vault_key}"},
    )
    assert response.status_code == 201, response.text


# --- query strings that are not UTF-8 ------------------------------------------------------------------------------


async def _raw_get(fd: Frontdesk, dispatch: str, path: str, query_string: bytes) -> tuple[int, bytes]:
    """A GET whose query string holds raw bytes no HTTP client library would send, as a lenient server may pass
    them on."""
    asgi: Any = create_app(fd) if dispatch == "router" else served(fd)
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query_string,
        "headers": [(b"host", b"as.example")],
        "scheme": "https",
        "server": ("as.example", 443),
        "client": ("203.0.113.7", 5000),
        "root_path": "",
        "http_version": "1.1",
        "asgi": {"version": "3.0"},
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with contextlib.suppress(Exception):  # the server would log it; what counts here is what went on the wire
        await asgi(scope, receive, send)
    starlette: Starlette = asgi if isinstance(asgi, Starlette) else asgi.app
    await starlette.state.vault_http.aclose()
    assert sent, "no response at all: the connection would have been dropped"
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.parametrize("dispatch", ["router", "served"])
@pytest.mark.parametrize("path", ["/authorize", "/account", "/device", "/logout", "/vault/callback"])
async def test_a_query_that_is_not_utf_8_is_a_bad_request(fd, public, dispatch, path):
    """Raw bytes that are not UTF-8 in the query string (RFC 9112 §3.2 allows only ASCII there) are a 400, never a
    server error and never a connection closed without an answer."""
    status, body = await _raw_get(fd, dispatch, path, b"client_id=public-client&state=\xff\xfe")
    assert status == 400, body
    assert b"Traceback" not in body


# --- JSON inside a form field: the passkey credential ---------------------------------------------------------------


async def test_passkey_credential_nested_past_the_recursion_limit_is_a_readable_error(http, person):
    """A credential field nesting thousands of arrays is the page's "could not be read", not a RecursionError from
    the WebAuthn library's JSON parser."""
    security = await account_page(http, *person, "/account/security")
    response = await http.post(
        "/account/passkeys",
        data={"csrf": csrf_of(security.text), "name": "x", "credential": "[" * 5_000 + "]" * 5_000},
    )
    assert response.status_code == 400
    assert "could not be read" in response.text


@pytest.mark.parametrize(
    "target", ["/vault/connections?user=u%00", "/vault/connections/c%00", "/vault/connections?user=u&integration=%00"]
)
async def test_vault_api_nul_in_a_query_or_path_is_no_server_error(app, vault_key, target):
    """A NUL in a query parameter or path segment of the vault API (PostgreSQL text cannot hold one) is no server
    error: it matches nothing."""
    response = await app.get(target, headers={"authorization": f"Bearer {vault_key}"})
    assert response.status_code < 500, response.text
