"""MCP authorization (revisions 2025-06-18, 2025-11-25, 2026-07-28): one black-box test (or a few) per item of the
agents checklist's section 3 (/work/shared/reference/agents-checklist.md, AG-MCP-01…08), named after its ID and
doing the **Test:** it names, against the production app on both databases; the resource-server items (MCP-06's
metadata and challenges, MCP-07) against ``frontdesk.resource_server`` guarding a small app with real tokens.

AG-MCP-08 is a rule for an MCP server that proxies to a third-party API under one static client (the confused
deputy); frontdesk is no such proxy. What it ships to the same end is tested instead: a client it has not seen
before gets the consent page, never a silent redirect on the strength of another client's consent."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from conftest import ISSUER, RS1, Registered, code_for, pkce, query, remember
from frontdesk.core import Frontdesk
from frontdesk.oauth import resources
from frontdesk.oauth.registration import register
from frontdesk.resource_server import BearerAuth, JWTValidator, ProtectedResource
from test_registration_dynamic import register as register_over_http

from .test_rfc9700 import metadata_paths, redeem_public, refresh_as

MCP = "https://tools.example/mcp"
OTHER_MCP = "https://other-tools.example/mcp"


def claims_of(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


async def tokens(http: httpx.AsyncClient, browser: Any, client: Registered, **extra: str) -> dict[str, Any]:
    code, verifier = await code_for(browser, client, **extra)
    response = await redeem_public(http, client, code, verifier)
    assert response.status_code == 200, response.text
    return dict(response.json())


# --- AG-MCP-01 ----------------------------------------------------------------------------------------------------


async def test_AG_MCP_01_both_discovery_documents_list_S256(http):
    """RFC 8414 and OpenID Connect Discovery: both documents, both with code_challenge_methods_supported ∋ S256."""
    for path in metadata_paths():
        response = await http.get(path)
        assert response.status_code == 200
        assert "S256" in response.json()["code_challenge_methods_supported"]
        assert all(value.startswith("https://") for key, value in response.json().items() if key.endswith("_endpoint"))


# --- AG-MCP-02 ----------------------------------------------------------------------------------------------------


async def test_AG_MCP_02_issuer_is_the_url_the_document_came_from(http):
    """RFC 8414 §3.3, OIDC Discovery §4.3: ``issuer`` byte-equals the issuer the well-known URL was built from."""
    for path in metadata_paths():
        response = await http.get(path)
        assert response.json()["issuer"].encode() == ISSUER.encode()
        assert f'"issuer": "{ISSUER}"'.encode() in response.content.replace(b'":"', b'": "')


# --- AG-MCP-03 ----------------------------------------------------------------------------------------------------


async def test_AG_MCP_03_access_token_aud_is_the_requested_resource(http, browser, public, resource_servers):
    """RFC 8707: ``resource`` at /authorize and /token makes the access token's audience."""
    issued = await tokens(http, browser, public, resource=RS1)
    assert claims_of(issued["access_token"])["aud"] in (RS1, [RS1])


async def test_AG_MCP_03_uppercase_scheme_and_host_are_the_same_resource(http, browser, public, resource_servers):
    issued = await tokens(http, browser, public, resource="HTTPS://RS1.EXAMPLE")
    assert claims_of(issued["access_token"])["aud"] in (RS1, [RS1])


async def test_AG_MCP_03_a_fragment_is_invalid_target(http, browser, public, resource_servers):
    """RFC 8707 §2: the resource is an absolute URI without a fragment."""
    _, challenge = pkce()
    response = await browser.authorize(
        response_type="code",
        client_id=public.client_id,
        redirect_uri=public.redirect_uri,
        scope="openid",
        state="s",
        code_challenge=challenge,
        code_challenge_method="S256",
        resource=RS1 + "#frag",
    )
    assert response.status_code == 303
    assert query(response.headers["location"])["error"] == "invalid_target"


# --- AG-MCP-04 ----------------------------------------------------------------------------------------------------


async def test_AG_MCP_04_a_rotated_refresh_token_reused_is_invalid_grant(http, browser, public):
    """MCP Token Theft, OAuth 2.1 §4.3.1: a public client's refresh tokens rotate; the old one is then refused."""
    first = (await tokens(http, browser, public))["refresh_token"]
    rotated = await refresh_as(http, public, first)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["refresh_token"] != first
    replayed = await refresh_as(http, public, first)
    assert replayed.status_code == 400
    assert replayed.json()["error"] == "invalid_grant"


async def test_AG_MCP_04_access_tokens_are_short_lived(http, browser, public):
    issued = await tokens(http, browser, public)
    assert 0 < issued["expires_in"] <= 3600


# --- AG-MCP-05 ----------------------------------------------------------------------------------------------------


async def test_AG_MCP_05_a_denial_redirect_carries_iss(http, browser, public):
    """RFC 9207: ``iss`` in the error response as in the success one, and the metadata flag that says so."""
    _, challenge = pkce()
    params = {
        "response_type": "code",
        "client_id": public.client_id,
        "redirect_uri": public.redirect_uri,
        "scope": "openid",
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    denied = query((await browser.authorize(consent="deny", **params)).headers["location"])
    assert denied["error"] == "access_denied"
    assert denied["iss"] == ISSUER
    allowed = query((await browser.authorize(**params)).headers["location"])
    assert allowed["iss"] == ISSUER
    for path in metadata_paths():
        assert (await http.get(path)).json()["authorization_response_iss_parameter_supported"] is True


# --- AG-MCP-06 ----------------------------------------------------------------------------------------------------


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def guarded(validator: JWTValidator, resource: ProtectedResource, scopes: list[str]) -> httpx.AsyncClient:
    app = BearerAuth(Starlette(routes=[Route("/mcp", hello)]), validator, resource, required_scopes=scopes)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://tools.example")


async def test_AG_MCP_06_offline_access_is_the_servers_never_the_resources(http, fd, secrets_seen):
    """MCP 2026-07-28 Refresh Tokens: frontdesk lists offline_access in its scopes_supported; the kit's protected
    resource metadata and challenges never name it, and refuses to be told to."""
    for path in metadata_paths():
        assert "offline_access" in (await http.get(path)).json()["scopes_supported"]
    resources.create(fd, MCP, "Tools", "tools.read")
    resource = ProtectedResource(MCP, [ISSUER], ["tools.read"])
    async with JWTValidator(ISSUER, MCP, http=http) as validator:
        api = guarded(validator, resource, ["tools.read"])
        metadata = (await api.get("/.well-known/oauth-protected-resource/mcp")).json()
        challenge = (await api.get("/mcp")).headers["www-authenticate"]
        bad = (await api.get("/mcp", headers={"Authorization": "Bearer nope"})).headers["www-authenticate"]
    assert "offline_access" not in json.dumps(metadata)
    assert "offline_access" not in challenge + bad
    with pytest.raises(ValueError, match="offline_access"):
        ProtectedResource(MCP, [ISSUER], ["tools.read", "offline_access"])


# --- AG-MCP-07 ----------------------------------------------------------------------------------------------------


async def test_AG_MCP_07_a_token_for_another_mcp_url_is_401(http, fd, secrets_seen):
    """MCP Token Handling: a token whose audience is another MCP server is refused as invalid_token."""
    resources.create(fd, MCP, "Tools", "tools.read")
    resources.create(fd, OTHER_MCP, "Other tools", "tools.read")
    client, secret = register(
        fd,
        name="Agent",
        client_id="mcp-agent",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scope="tools.read",
    )
    assert secret is not None
    remember(secrets_seen, secret)

    async def token_for(audience: str) -> str:
        response = await http.post(
            "/token",
            auth=(client.client_id, secret),
            data={"grant_type": "client_credentials", "scope": "tools.read", "resource": audience},
        )
        assert response.status_code == 200, response.text
        value: str = response.json()["access_token"]
        remember(secrets_seen, value)
        return value

    async with JWTValidator(ISSUER, MCP, http=http) as validator:
        api = guarded(validator, ProtectedResource(MCP, [ISSUER], ["tools.read"]), ["tools.read"])
        other = await api.get("/mcp", headers={"Authorization": f"Bearer {await token_for(OTHER_MCP)}"})
        own = await api.get("/mcp", headers={"Authorization": f"Bearer {await token_for(MCP)}"})
    assert other.status_code == 401
    assert 'error="invalid_token"' in other.headers["www-authenticate"]
    assert own.status_code == 200
    assert (await api.get("/mcp")).status_code == 401


# --- AG-MCP-08 (what frontdesk ships to the same end) ---------------------------------------------------------


async def test_AG_MCP_08_a_new_client_sees_consent_not_a_redirect(
    http, fd: Frontdesk, browser, confidential, secrets_seen
):
    """The person already consented to another client for the same scopes: a client registered since, asking for
    the same, gets the consent page (per-client consent), not a 302 back to it."""
    await code_for(browser, confidential, scope="openid profile")
    body = (
        await register_over_http(
            http,
            secrets_seen,
            client_name="New agent",
            redirect_uris=[confidential.redirect_uri],
            scope="openid profile",
        )
    ).json()
    newcomer = Registered(body["client_id"], body["client_secret"], confidential.redirect_uri)
    _, challenge = pkce()
    page = await browser.authorize(
        consent=None,
        response_type="code",
        client_id=newcomer.client_id,
        redirect_uri=newcomer.redirect_uri,
        scope="openid profile",
        state="s",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    assert page.status_code == 200, page.text
    assert 'value="allow"' in page.text
    assert "location" not in page.headers
