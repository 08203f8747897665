"""Dynamic client registration (RFC 7591) and client configuration management (RFC 7592): one black-box test (or a
few) per item of the agents checklist's section 1 (/work/shared/reference/agents-checklist.md, AG-DCR-01…07), named
after its ID and doing the **Test:** it names, over HTTP against the production app, on both databases.

Not applicable: AG-DCR-06's 403 ("forbidden"). Every holder of a client's registration access token may read,
replace and delete that client (RFC 7592 §2 leaves the policy to the server); any other request is a 401 that never
tells whether the client exists, which test_AG_DCR_06_* prove."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import ISSUER, Registered, code_for
from test_registration_dynamic import register, restrict

WEB = "https://app.example/cb"
LOOPBACK = "http://127.0.0.1:8976/callback"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_registration_error(response: httpx.Response, error: str, names: str) -> None:
    """RFC 7591 §3.2.2: 400, a JSON body with the code, and a description naming what was refused."""
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == error
    assert names in response.json()["error_description"]


@pytest.fixture
async def client(http: httpx.AsyncClient, secrets_seen: set[str]) -> dict[str, Any]:
    """A self-registered public web client with a logo, as /register answered it."""
    response = await register(
        http,
        secrets_seen,
        client_name="Notes",
        redirect_uris=[WEB],
        token_endpoint_auth_method="none",
        logo_uri="https://app.example/logo.png",
        scope="openid profile offline_access",
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def update_of(client: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """An RFC 7592 §2.2 update body: the client's metadata without what the server issued."""
    issued = ("registration_access_token", "registration_client_uri", "client_secret_expires_at", "client_id_issued_at")
    return {**{k: v for k, v in client.items() if k not in issued and k != "client_secret"}, **changes}


async def test_AG_DCR_01_minimal_body_gets_201_with_defaults(http, secrets_seen):
    """RFC 7591 §3.2.1: every stored value comes back, defaults included, with the secret and
    client_secret_expires_at 0 (never), never cached."""
    response = await register(http, secrets_seen, redirect_uris=[WEB])
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["client_id"]
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert "authorization_code" in body["grant_types"]
    assert body["response_types"] == ["code"]
    assert body["redirect_uris"] == [WEB]
    assert body["client_secret"]
    assert body["client_secret_expires_at"] == 0


async def test_AG_DCR_02_refusals_carry_the_rfc7591_error_codes(http, secrets_seen):
    """RFC 7591 §3.2.2: a redirect URI is refused as invalid_redirect_uri, any other field as
    invalid_client_metadata; a software statement as unapproved_software_statement."""
    evil = await register(http, secrets_seen, client_name="App", redirect_uris=["http://evil.example/cb"])
    assert_registration_error(evil, "invalid_redirect_uri", "http://evil.example/cb")
    token = await register(http, secrets_seen, client_name="App", redirect_uris=[WEB], response_types=["token"])
    assert_registration_error(token, "invalid_client_metadata", "response_types")
    statement = await register(http, secrets_seen, client_name="App", redirect_uris=[WEB], software_statement="a.b.c")
    assert_registration_error(statement, "unapproved_software_statement", "software statement")


async def test_AG_DCR_03_unknown_metadata_is_dropped(http, secrets_seen):
    """RFC 7591 §2: the server ignores metadata it does not understand, so it never echoes it."""
    response = await register(http, secrets_seen, client_name="App", redirect_uris=[WEB], foo=1)
    assert response.status_code == 201, response.text
    assert "foo" not in response.json()


async def test_AG_DCR_03_display_urls_off_the_redirect_host_are_dropped(http, fd, secrets_seen):
    """RFC 7591 §5: client_uri, logo_uri, policy_uri and tos_uri SHOULD share a redirect URI's host; the ones that
    do are kept, the others are left out of the client and of the answer."""
    response = await register(
        http,
        secrets_seen,
        client_name="App",
        redirect_uris=[WEB],
        client_uri="https://app.example/",
        logo_uri="https://bank.example/logo.png",
        policy_uri="https://app.example/policy",
        tos_uri="https://bank.example/tos",
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["client_uri"] == "https://app.example/"
    assert body["policy_uri"] == "https://app.example/policy"
    assert "logo_uri" not in body
    assert "tos_uri" not in body
    stored = fd.clients.get(body["client_id"], cached=False)
    assert stored is not None
    assert stored.extra_metadata == {"client_uri": "https://app.example/", "policy_uri": "https://app.example/policy"}


async def test_AG_DCR_03_a_loopback_client_keeps_its_registration_but_not_foreign_display_urls(http, secrets_seen):
    """What MCP clients send (a project page and a localhost redirect) still registers: only the link goes."""
    response = await register(
        http,
        secrets_seen,
        client_name="MCP Inspector",
        redirect_uris=[LOOPBACK],
        token_endpoint_auth_method="none",
        application_type="native",
        client_uri="https://github.com/modelcontextprotocol/inspector",
    )
    assert response.status_code == 201, response.text
    assert "client_uri" not in response.json()


async def test_AG_DCR_04_registration_is_rate_limited_per_address(http, fd, secrets_seen):
    """RFC 7591 §5: 200 registrations a minute from one address meet a 429 (by default after 20 an hour)."""
    limit, _window = fd.settings.rate_limits.registration_per_ip
    statuses = []
    for _ in range(200):
        statuses.append((await register(http, secrets_seen, client_name="Spam", redirect_uris=[WEB])).status_code)
        if statuses[-1] == 429:
            break
    assert statuses[-1] == 429
    assert statuses == [201] * limit + [429]


async def test_AG_DCR_04_sensitive_scope_is_refused_without_an_initial_access_token(http, fd, browser, secrets_seen):
    """RFC 9700 §4.15.1: open registration cannot reach a restricted scope; asking for it later at /authorize is
    invalid_scope. The client_id is the server's, never a URL that would pass for a metadata document (CIMD §6.9)."""
    restrict(fd, "admin")
    refused = await register(http, secrets_seen, client_name="Admin", redirect_uris=[WEB], scope="openid admin")
    assert_registration_error(refused, "invalid_client_metadata", "scope admin")
    registered = await register(
        http, secrets_seen, client_name="App", redirect_uris=[WEB], token_endpoint_auth_method="none"
    )
    body = registered.json()
    assert not body["client_id"].startswith("https://")
    response = await browser.authorize(
        response_type="code",
        client_id=body["client_id"],
        redirect_uri=WEB,
        scope="openid admin",
        state="s",
        code_challenge="x" * 43,
        code_challenge_method="S256",
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith(WEB + "?")
    assert "error=invalid_scope" in response.headers["location"]


async def test_AG_DCR_04_consent_says_the_client_is_unverified(http, browser, secrets_seen):
    """RFC 7591 §5: all of it is self-asserted; the person is told so before allowing."""
    body = (
        await register(http, secrets_seen, client_name="Bank", redirect_uris=[WEB], token_endpoint_auth_method="none")
    ).json()
    page = await browser.authorize(
        consent=None,
        response_type="code",
        client_id=body["client_id"],
        redirect_uri=WEB,
        scope="openid",
        state="s",
        code_challenge="x" * 43,
        code_challenge_method="S256",
    )
    assert page.status_code == 200, page.text
    assert "registered itself and was not checked by the operator" in page.text


async def test_AG_DCR_05_registration_management_round_trip(http, fd, browser, client, secrets_seen):
    """RFC 7592 §3, §2.2, §2.3: the answer carries registration_client_uri (used verbatim) and a high-entropy
    registration_access_token; a PUT without logo_uri removes it; a client_secret that is not the current one is
    400; after DELETE (204) the client's refresh token fails."""
    uri, token = client["registration_client_uri"], client["registration_access_token"]
    assert uri == f"{ISSUER}/register/{client['client_id']}"
    assert len(token) >= 32
    registered = Registered(client["client_id"], None, WEB)
    code, verifier = await code_for(browser, registered)
    tokens = await http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": WEB,
            "client_id": registered.client_id,
            "code_verifier": verifier,
        },
    )
    assert tokens.status_code == 200, tokens.text
    refresh_token = tokens.json()["refresh_token"]

    body = update_of(client)
    del body["logo_uri"]
    replaced = await http.put(uri, json=body, headers=bearer(token))
    assert replaced.status_code == 200, replaced.text
    assert "logo_uri" not in replaced.json()
    assert (await http.get(uri, headers=bearer(token))).json().get("logo_uri") is None

    mine = await http.put(uri, json=update_of(client, client_secret="mine"), headers=bearer(token))
    assert_registration_error(mine, "invalid_client_metadata", "client_secret")

    assert (await http.delete(uri, headers=bearer(token))).status_code == 204
    refreshed = await http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": registered.client_id},
    )
    assert refreshed.status_code in (400, 401)
    assert refreshed.json()["error"] in ("invalid_grant", "invalid_client")


async def test_AG_DCR_06_a_bad_registration_access_token_is_401_with_a_bearer_challenge(http, client):
    response = await http.get(client["registration_client_uri"], headers=bearer("fd_rat_not-the-right-token"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert response.headers["www-authenticate"].startswith("Bearer ")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_AG_DCR_06_one_clients_token_on_anothers_uri_is_401(http, client, secrets_seen):
    other = (await register(http, secrets_seen, client_name="B", redirect_uris=[WEB])).json()
    for method in ("GET", "PUT", "DELETE"):
        response = await http.request(
            method,
            other["registration_client_uri"],
            headers=bearer(client["registration_access_token"]),
            json=update_of(other) if method == "PUT" else None,
        )
        assert response.status_code == 401, (method, response.text)
    assert (
        await http.get(other["registration_client_uri"], headers=bearer(other["registration_access_token"]))
    ).status_code == 200


async def test_AG_DCR_06_an_unknown_client_is_401_and_the_token_is_revoked(http, client):
    """RFC 7592 §2: the server MUST NOT tell that the client does not exist, and revokes the token presented."""
    token = client["registration_access_token"]
    response = await http.get(f"{ISSUER}/register/no-such-client", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert (await http.get(client["registration_client_uri"], headers=bearer(token))).status_code == 401


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_AG_DCR_06_an_unsupported_method_is_405(http, client, method):
    response = await http.request(
        method, client["registration_client_uri"], headers=bearer(client["registration_access_token"]), json={}
    )
    assert response.status_code == 405
    assert {"GET", "PUT", "DELETE"} <= {m.strip() for m in response.headers["allow"].split(",")}


async def test_AG_DCR_07_loopback_redirect_needs_application_type_native(http, secrets_seen):
    """OpenID Connect Registration §2: a web client (the default) may not use loopback; a native one may."""
    body = {"client_name": "CLI", "redirect_uris": [LOOPBACK], "token_endpoint_auth_method": "none"}
    refused = await register(http, secrets_seen, **body)
    assert_registration_error(refused, "invalid_redirect_uri", "native")
    native = await register(http, secrets_seen, **body, application_type="native")
    assert native.status_code == 201, native.text
    assert native.json()["application_type"] == "native"
