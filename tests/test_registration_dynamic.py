"""Dynamic client registration (RFC 7591 §3) at ``POST /register``, over HTTP on both databases: the answer and its
defaults, each refused field named with its RFC 7591 §3.2.2 code, the ``[registration] mode`` policy with initial
access tokens, the rate limit, and a self-registered client that then signs a person in."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from conftest import ISSUER, Browser, Registered, code_for, remember
from frontdesk.core import Frontdesk
from frontdesk.oauth.initial_access_tokens import create_initial_access_token, revoke_initial_access_token
from frontdesk.storage import audit

WEB = "https://app.example/cb"


def configure(fd: Frontdesk, **registration: Any) -> None:
    """Change ``[registration]`` of this test's frontdesk (before the ``http`` fixture, for the route table)."""
    fd.settings = dataclasses.replace(
        fd.settings, registration=dataclasses.replace(fd.settings.registration, **registration)
    )


async def register(http: httpx.AsyncClient, seen: set[str], token: str | None = None, **body: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await http.post("/register", json=body, headers=headers)
    if response.status_code == 201:
        remember(seen, response.json().get("registration_access_token"))
    return response


def iat(fd: Frontdesk, seen: set[str], **options: Any) -> str:
    token, _ = create_initial_access_token(
        fd, name=options.pop("name", "partner"), expires_in=options.get("expires_in"), uses=options.get("uses")
    )
    remember(seen, token)
    return token


def restrict(fd: Frontdesk, scope: str) -> None:
    fd.create_scope(scope, f"Administer {scope}")
    with fd.engine.begin() as conn:
        conn.execute(text("UPDATE scopes SET restricted = :yes WHERE name = :name"), {"yes": True, "name": scope})


@pytest.fixture
def closed(fd: Frontdesk) -> None:
    configure(fd, mode="closed")


@pytest.fixture
def token_mode(fd: Frontdesk) -> None:
    configure(fd, mode="token")


async def test_AG_DCR_01_a_minimal_registration_gets_201_with_every_default(http, secrets_seen):
    """RFC 7591 §3.2.1: the answer holds every registered value, defaults included, and the secret once."""
    response = await register(http, secrets_seen, redirect_uris=[WEB], client_name="Notes")
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["client_name"] == "Notes"
    assert body["redirect_uris"] == [WEB]
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["response_types"] == ["code"]
    assert body["application_type"] == "web"
    assert body["scope"] == "openid profile email offline_access"
    assert body["client_secret"].startswith("fd_cs_")
    assert body["client_secret_expires_at"] == 0
    assert isinstance(body["client_id_issued_at"], int)
    assert body["registration_access_token"].startswith("fd_rat_")
    assert body["registration_client_uri"] == f"{ISSUER}/register/{body['client_id']}"
    assert not body["client_id"].startswith("https://")  # CIMD §6.9: never a URL that looks like a document


async def test_a_public_client_gets_no_secret(http, secrets_seen):
    response = await register(
        http, secrets_seen, client_name="CLI", redirect_uris=[WEB], token_endpoint_auth_method="none"
    )
    assert response.status_code == 201, response.text
    assert "client_secret" not in response.json()
    assert "client_secret_expires_at" not in response.json()


async def test_a_client_secret_sent_by_the_client_is_never_used(http, secrets_seen):
    """RFC 7591 §3.2.1: the server issues the secret; one in the request is ignored."""
    mine = "my-own-chosen-secret-value"
    response = await register(http, secrets_seen, client_name="App", redirect_uris=[WEB], client_secret=mine)
    assert response.status_code == 201
    assert response.json()["client_secret"] != mine


async def test_AG_DCR_03_unknown_fields_are_dropped_and_display_fields_kept(http, secrets_seen):
    response = await register(
        http,
        secrets_seen,
        client_name="App",
        redirect_uris=[WEB],
        foo=1,
        logo_uri="https://app.example/logo.png",
        contacts=["dev@app.example"],
        software_id="4NRB1-0XZABZI9E6-5SM3R",
        software_version="2.1",
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert "foo" not in body
    assert body["logo_uri"] == "https://app.example/logo.png"
    assert body["contacts"] == ["dev@app.example"]
    assert (body["software_id"], body["software_version"]) == ("4NRB1-0XZABZI9E6-5SM3R", "2.1")


async def test_the_client_name_defaults_to_the_redirect_host(http, secrets_seen):
    response = await register(http, secrets_seen, redirect_uris=[WEB], token_endpoint_auth_method="none")
    assert response.status_code == 201
    assert response.json()["client_name"] == "app.example"


@pytest.mark.parametrize(
    ("body", "error", "field"),
    [
        ({"redirect_uris": ["http://evil.example/cb"]}, "invalid_redirect_uri", "http://evil.example/cb"),
        ({"redirect_uris": ["https://app.example/cb#x"]}, "invalid_redirect_uri", "fragment"),
        ({"redirect_uris": ["myapp:/cb"], "application_type": "native"}, "invalid_redirect_uri", "private-use"),
        ({"redirect_uris": "https://app.example/cb"}, "invalid_redirect_uri", "redirect_uris"),
        ({"redirect_uris": []}, "invalid_redirect_uri", "redirect URI"),
        ({"response_types": ["token"]}, "invalid_client_metadata", "response_types"),
        (
            {"grant_types": ["client_credentials"], "response_types": ["code"]},
            "invalid_client_metadata",
            "response_types",
        ),
        ({"grant_types": ["password"]}, "invalid_client_metadata", "password"),
        ({"grant_types": "authorization_code"}, "invalid_client_metadata", "grant_types"),
        ({"token_endpoint_auth_method": "client_secret_jwt"}, "invalid_client_metadata", "token_endpoint_auth_method"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata", "jwks"),
        ({"jwks": {"keys": []}, "jwks_uri": "https://app.example/jwks"}, "invalid_client_metadata", "jwks_uri"),
        ({"jwks": {"anything": "stored"}}, "invalid_client_metadata", "jwks must be a JWK Set"),
        ({"scope": "openid launch-missiles"}, "invalid_client_metadata", "launch-missiles"),
        ({"scope": ["openid"]}, "invalid_client_metadata", "scope"),
        ({"client_name": 7}, "invalid_client_metadata", "client_name"),
        ({"client_name": "x" * 201}, "invalid_client_metadata", "client_name"),
        ({"contacts": "dev@app.example"}, "invalid_client_metadata", "contacts"),
        ({"logo_uri": "http://app.example/logo.png"}, "invalid_client_metadata", "logo_uri"),
        ({"application_type": "desktop"}, "invalid_client_metadata", "application_type"),
        ({"id_token_signed_response_alg": "none"}, "invalid_client_metadata", "id_token_signed_response_alg"),
        ({"backchannel_logout_session_required": "yes"}, "invalid_client_metadata", "backchannel_logout"),
        ({"redirect_uris": [f"https://app.example/{i}" for i in range(11)]}, "invalid_redirect_uri", "at most 10"),
        ({"redirect_uris": ["https://app.example/" + "a" * 2000]}, "invalid_redirect_uri", "at most 2000"),
    ],
)
async def test_AG_DCR_02_each_refused_field_is_named_with_its_code(http, secrets_seen, body, error, field):
    """RFC 7591 §3.2.2: 400 with invalid_redirect_uri or invalid_client_metadata, the field in the description."""
    response = await register(http, secrets_seen, **{"client_name": "App", "redirect_uris": [WEB], **body})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error
    assert field in response.json()["error_description"]


async def test_AG_DCR_07_a_loopback_redirect_needs_a_native_application_type(http, secrets_seen):
    """OpenID Connect Registration §2: web (the default) is https off this machine; native may use loopback."""
    loopback = {"client_name": "CLI", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}
    refused = await register(http, secrets_seen, **loopback)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_redirect_uri"
    assert "native" in refused.json()["error_description"]
    on_localhost = await register(http, secrets_seen, **{**loopback, "redirect_uris": ["https://localhost/cb"]})
    assert on_localhost.json()["error"] == "invalid_redirect_uri"
    native = await register(http, secrets_seen, **loopback, application_type="native")
    assert native.status_code == 201, native.text
    assert native.json()["application_type"] == "native"


async def test_a_native_client_with_a_secret_signs_in_at_its_exact_loopback_redirect(
    http, fd, browser: Browser, secrets_seen
):
    """What MCP SDKs register: native, client_secret_post, a loopback redirect URI with its port."""
    redirect = "http://127.0.0.1:3030/callback"
    body = (
        await register(
            http,
            secrets_seen,
            client_name="MCP client",
            redirect_uris=[redirect],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="client_secret_post",
            application_type="native",
            scope="openid profile",
        )
    ).json()
    registered = Registered(body["client_id"], body["client_secret"], redirect)
    code, verifier = await code_for(browser, registered, scope="openid profile")
    tokens = await http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect,
            "client_id": registered.client_id,
            "client_secret": body["client_secret"],
            "code_verifier": verifier,
        },
    )
    assert tokens.status_code == 200, tokens.text


async def test_software_statements_are_not_approved(http, secrets_seen):
    response = await register(http, secrets_seen, client_name="App", redirect_uris=[WEB], software_statement="e.y.z")
    assert response.status_code == 400
    assert response.json()["error"] == "unapproved_software_statement"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'["a"]', "application/json"),
        (b"{not json", "application/json"),
        (b"client_name=App", "application/x-www-form-urlencoded"),
        (b'{"client_name": "App"}', "text/plain"),
    ],
)
async def test_only_a_json_object_is_a_registration_request(http, content, content_type):
    response = await http.post("/register", content=content, headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


async def test_a_body_over_the_limit_is_413(http, fd):
    padding = "x" * (fd.settings.max_body_bytes + 1)
    response = await http.post("/register", json={"client_name": padding})
    assert response.status_code == 413


async def test_AG_DCR_04_client_credentials_needs_an_initial_access_token(http, fd, secrets_seen):
    """RFC 7591 §3, RFC 9700 §4.15.1: open registration gives only what a person must consent to."""
    service = {"client_name": "Batch", "grant_types": ["client_credentials"], "response_types": []}
    refused = await register(http, secrets_seen, **service)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_client_metadata"
    assert "client_credentials" in refused.json()["error_description"]
    assert "initial access token" in refused.json()["error_description"]
    allowed = await register(http, secrets_seen, iat(fd, secrets_seen), **service)
    assert allowed.status_code == 201, allowed.text
    assert allowed.json()["grant_types"] == ["client_credentials"]


async def test_AG_DCR_04_a_restricted_scope_needs_an_initial_access_token(http, fd, secrets_seen):
    restrict(fd, "admin")
    asked = {"client_name": "Admin", "redirect_uris": [WEB], "scope": "openid admin"}
    refused = await register(http, secrets_seen, **asked)
    assert refused.status_code == 400
    assert "scope admin" in refused.json()["error_description"]
    allowed = await register(http, secrets_seen, iat(fd, secrets_seen), **asked)
    assert allowed.status_code == 201, allowed.text
    assert allowed.json()["scope"] == "openid admin"


async def test_an_initial_access_token_opens_as_many_registrations_as_it_has_uses(http, fd, secrets_seen):
    token = iat(fd, secrets_seen, uses=1)
    assert (await register(http, secrets_seen, token, client_name="A", redirect_uris=[WEB])).status_code == 201
    spent = await register(http, secrets_seen, token, client_name="B", redirect_uris=[WEB])
    assert spent.status_code == 401
    assert spent.json()["error"] == "invalid_token"
    assert spent.headers["www-authenticate"].startswith("Bearer ")
    assert 'error="invalid_token"' in spent.headers["www-authenticate"]


async def test_an_expired_initial_access_token_is_invalid(http, fd, secrets_seen, clock):
    token = iat(fd, secrets_seen, expires_in=60)
    clock.advance(61)
    response = await register(http, secrets_seen, token, client_name="A", redirect_uris=[WEB])
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


async def test_a_revoked_or_unknown_initial_access_token_is_invalid(http, fd, secrets_seen):
    """RFC 6750 §3.1: even where open registration would allow the request, a bad token is refused."""
    token, row = create_initial_access_token(fd, name="gone", expires_in=None, uses=None)
    remember(secrets_seen, token)
    assert revoke_initial_access_token(fd, row.id)
    for bad in (token, "fd_iat_not-a-token-anyone-issued"):
        response = await register(http, secrets_seen, bad, client_name="A", redirect_uris=[WEB])
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_token"
    basic = await http.post("/register", json={"client_name": "A", "redirect_uris": [WEB]}, auth=("a", "b"))
    assert basic.status_code == 401


async def test_token_mode_needs_an_initial_access_token_for_every_registration(token_mode, http, fd, secrets_seen):
    refused = await register(http, secrets_seen, client_name="A", redirect_uris=[WEB])
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_token"
    assert refused.headers["www-authenticate"] == 'Bearer realm="frontdesk"'  # RFC 6750 §3.1: no error, no token
    allowed = await register(http, secrets_seen, iat(fd, secrets_seen), client_name="A", redirect_uris=[WEB])
    assert allowed.status_code == 201


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"])
async def test_the_registration_endpoint_is_advertised_when_open(http, path):
    assert (await http.get(path)).json()["registration_endpoint"] == f"{ISSUER}/register"


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"])
async def test_closed_registration_has_no_endpoint(closed, http, path):
    assert "registration_endpoint" not in (await http.get(path)).json()
    assert (await http.post("/register", json={"client_name": "A", "redirect_uris": [WEB]})).status_code == 404


async def test_AG_DCR_04_registrations_are_rate_limited_per_address(http, fd, secrets_seen):
    fd.settings = dataclasses.replace(
        fd.settings, rate_limits=dataclasses.replace(fd.settings.rate_limits, registration_per_ip=(2, 3600))
    )
    for _ in range(2):
        assert (await register(http, secrets_seen, client_name="A", redirect_uris=[WEB])).status_code == 201
    limited = await register(http, secrets_seen, client_name="A", redirect_uris=[WEB])
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0


async def test_a_registration_is_audited_without_its_secrets(http, fd, secrets_seen):
    token = iat(fd, secrets_seen)
    body = (await register(http, secrets_seen, token, client_name="A", redirect_uris=[WEB])).json()
    event = next(e for e in audit.tail(fd.engine) if e.event == "client.registered")
    assert event.client_id == body["client_id"]
    assert event.ip == "203.0.113.7"
    assert event.detail["registered_by"] == "self"
    assert event.detail["initial_access_token"] is True
    assert event.detail["initial_access_token_id"]
    assert not {body["client_secret"], body["registration_access_token"], token} & set(map(str, event.detail.values()))


async def test_a_self_registered_client_is_marked_and_signs_a_person_in(http, fd, browser: Browser, secrets_seen):
    """A native public client registered over HTTP completes the code flow with PKCE."""
    body = (
        await register(
            http,
            secrets_seen,
            client_name="Agent",
            redirect_uris=["http://127.0.0.1/callback"],
            token_endpoint_auth_method="none",
            application_type="native",
            scope="openid profile",
        )
    ).json()
    client = fd.clients.get(body["client_id"], cached=False)
    assert client is not None
    assert client.registered_by == "self"
    assert client.application_type == "native"
    registered = Registered(body["client_id"], None, "http://127.0.0.1/callback")
    code, verifier = await code_for(browser, registered, scope="openid profile")
    tokens = await http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": registered.redirect_uri,
            "client_id": registered.client_id,
            "code_verifier": verifier,
        },
    )
    assert tokens.status_code == 200, tokens.text
    assert "access_token" in tokens.json()
