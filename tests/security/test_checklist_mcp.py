"""MCP authorization: one test (or a few) per item of the security checklist's §3.1 (MCP-AS-01 … MCP-AS-13), §3.4
(MCP-RS-01 … MCP-RS-07) and the last three of §3.2 (CIMD-09 … CIMD-11), /work/shared/reference/security-checklist.md,
named after its ID, with the checklist's black-box **Test:** as its body, over HTTP against the production app on
both databases. Many of these behaviours are also tested under the agents checklist's IDs (test_agents_mcp.py,
test_agents_prm.py, test_agents_cimd.py, test_agents_dcr.py); here each is tested as the security checklist words it.

The MCP server is frontdesk's own ``{issuer}/mcp`` (web/mcp.py), so frontdesk is both the authorization server and
the MCP server's origin (MCP-AS-11). Its resource-server tests (MCP-RS-*) run the SDK's session manager in the test's
own task (``mcp.serve_forever``, what the app's lifespan runs), so that a token that passes reaches the tools; the
provider a tool call reaches (MCP-RS-04's "mock upstream") is tests/vault's fake provider, a real server on loopback.

frontdesk signs people in through upstream providers with its own static client id at each (src/frontdesk/upstream),
which makes it the "proxy" authorization server of MCP-AS-12/13. The upstream here is played by an httpx transport
in place of the network (its token and userinfo endpoints), as tests/test_upstream.py plays node-oidc-provider; the
test itself is the browser at the provider, which hands back a code and the ``state`` it was given.

One issuer per deployment, served at its host's root: the tenant forms of MCP-AS-01's URLs (``…/tenant1``) reduce
to the two root well-known URLs, which BCP-30 also pins."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio
import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from conftest import ISSUER, RS1, Browser, Registered, code_for, csrf_of, pkce, query, remember
from frontdesk.config import RateLimits
from frontdesk.core import Frontdesk
from frontdesk.oauth import resources
from frontdesk.oauth.registration import register
from frontdesk.protocol.rfc7523 import ASSERTION_TYPE
from frontdesk.secret import Secret
from frontdesk.upstream import add_provider
from frontdesk.vault import api_key_store, mcp_tools
from frontdesk.web import mcp
from metadata_host import MetadataHost
from resource_server.test_mcp import Session, answer
from test_authorize import (
    assert_code_redirect,
    assert_error_redirect,
    assert_interaction,
    assert_no_redirect,
    consent_page,
    form_action,
    params_for,
)
from test_client_metadata_document import CALLBACK, authorize_params, document
from test_registration_dynamic import register as register_over_http
from test_upstream import refusals
from vault.conftest import bearer as vault_bearer
from vault.conftest import reopen, through_provider
from vault.fake_provider import CLIENT_ID, CLIENT_SECRET, Fake, running

from .test_agents_cimd import assert_error_page, relax
from .test_rfc9700 import assert_no_redirect_to, metadata_paths, payload_of, redeem_public, refresh_as

MCP = ISSUER + "/mcp"
PRM = "/.well-known/oauth-protected-resource/mcp"
OTHER_MCP = "https://other.example/mcp"
TOOL_SCOPES = " ".join(mcp_tools.TOOL_SCOPES.values())
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
UPSTREAM = "https://idp.example"
UPSTREAM_SECRET = "frontdesk-at-idp-" + "s" * 32


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def challenge_of(response: httpx.Response) -> str:
    return response.headers["www-authenticate"]


def set_cookies(*responses: httpx.Response) -> list[str]:
    return [cookie for response in responses for cookie in response.headers.get_list("set-cookie")]


def assert_host_cookie(cookie: str) -> None:
    """``__Host-`` with Secure, HttpOnly, SameSite=Lax and Path=/, and no Domain (RFC 6265bis §4.1.3.2)."""
    name = cookie.split("=", 1)[0]
    attributes = [a.strip().lower() for a in cookie.split(";")[1:]]
    assert name.startswith("__Host-"), cookie
    assert {"secure", "httponly", "samesite=lax", "path=/"} <= set(attributes), cookie
    assert not any(a.startswith("domain=") for a in attributes), cookie


# --- MCP clients and their tokens -------------------------------------------------------------------------------------


@pytest.fixture
def mcp_agent(fd: Frontdesk, http: httpx.AsyncClient) -> Registered:
    """An MCP client (public, PKCE) the operator registered for the tools' scopes; after ``http``, whose app adds
    the tools' scopes when it is built."""
    mcp_tools.add_tool_scopes(fd)
    client, _ = register(
        fd,
        name="MCP Agent",
        client_id="mcp-agent",
        auth_method="none",
        redirect_uris=["https://agent.example/cb"],
        grant_types=["authorization_code", "refresh_token"],
        scope=f"openid offline_access {TOOL_SCOPES}",
    )
    return Registered(client.client_id, None, "https://agent.example/cb")


async def tokens_for(
    http: httpx.AsyncClient, browser: Browser, client: Registered, scope: str, **extra: str
) -> dict[str, Any]:
    """The token response for ``client`` through the real pages (sign-in, consent, a PKCE redemption)."""
    code, verifier = await code_for(browser, client, scope=scope, **extra)
    data = {"grant_type": "authorization_code", "client_id": client.client_id, "code": code}
    data |= {"redirect_uri": client.redirect_uri, "code_verifier": verifier}
    if "resource" in extra:
        data["resource"] = extra["resource"]
    response = await http.post("/token", data=data)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def mcp_token(http: httpx.AsyncClient, browser: Browser, client: Registered, scope: str) -> str:
    return str((await tokens_for(http, browser, client, scope, resource=MCP))["access_token"])


@asynccontextmanager
async def mcp_running(http: httpx.AsyncClient) -> AsyncIterator[None]:
    """The MCP SDK's session manager running for ``http``'s app, as the app's lifespan runs it, in this task."""
    app = http._transport.app.app  # type: ignore[attr-defined]
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(mcp.serve_forever, app)
        while not app.state.mcp.running:
            await anyio.sleep(0.01)
        yield
        tasks.cancel_scope.cancel()


def resigned(fd: Frontdesk, token: str, **changes: Any) -> str:
    """``token`` signed again by frontdesk's own key with the same header type, some claims changed."""
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    return fd.keys.sign({**payload_of(token), **changes}, header["alg"], header["typ"])


def tools_call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": arguments}}


LIST_TOOLS = {"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {}}


@pytest.fixture
def host(fd: Frontdesk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MetadataHost]:
    """The clients' https host on loopback (tests/metadata_host.py), trusted as an operator would trust it, and
    frontdesk allowed to fetch from loopback (the named relaxation) for their metadata documents."""
    relax(fd, allow_private_metadata_hosts=True)
    with MetadataHost(tmp_path) as running:
        monkeypatch.setenv("SSL_CERT_FILE", str(running.cafile))
        yield running


def fake_vault(fd: Frontdesk, provider: Fake, home: Path, seen: set[str]) -> None:
    """The vault with tests/vault's fake provider in the operator's catalog and an integration ``cal`` for it."""
    fd.settings = replace(fd.settings, vault_providers_dir=str(home / "providers"))
    provider.provider_file(home / "providers")
    reopen(fd).add_integration("cal", "fake", CLIENT_ID, CLIENT_SECRET, ["calendar.read"])
    remember(seen, CLIENT_SECRET)
    fd.scopes(fresh=True)


# --- the upstream sign-in provider ----------------------------------------------------------------------------------


@dataclass
class Upstream:
    """An upstream OAuth 2.0 provider where frontdesk is the client ``frontdesk-at-idp``: codes it hands out (the
    test plays the person consenting there), its token endpoint (PKCE checked) and its userinfo."""

    codes: dict[str, tuple[str, str]] = field(default_factory=dict)  # code -> (code_challenge, subject)
    access_tokens: dict[str, str] = field(default_factory=dict)  # token -> subject
    requests: list[httpx.Request] = field(default_factory=list)

    def consent(self, authorization_url: str, subject: str = "carol") -> str:
        """The person signs in and consents at the provider: the callback URL (path and query) it sends them to."""
        params = {k: v[0] for k, v in parse_qs(urlsplit(authorization_url).query).items()}
        assert params["client_id"] == "frontdesk-at-idp"
        assert params["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        self.codes[code] = (params["code_challenge"], subject)
        back = urlsplit(params["redirect_uri"])
        assert f"{back.scheme}://{back.netloc}" == ISSUER
        return back.path + "?" + urlencode({"code": code, "state": params["state"]})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/token":
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            challenge, subject = self.codes.pop(form.get("code", ""), ("", ""))
            verifier = form.get("code_verifier", "")
            if not subject or b64(hashlib.sha256(verifier.encode()).digest()) != challenge:
                return httpx.Response(400, json={"error": "invalid_grant"})
            token = "idp-at-" + secrets.token_urlsafe(24)
            self.access_tokens[token] = subject
            return httpx.Response(200, json={"access_token": token, "token_type": "Bearer", "expires_in": 300})
        if request.url.path == "/userinfo":
            subject = self.access_tokens.get(request.headers.get("authorization", "").removeprefix("Bearer "), "")
            if not subject:
                return httpx.Response(401)
            claims = {"sub": subject, "email": f"{subject}@idp.example", "email_verified": True, "name": "Carol"}
            return httpx.Response(200, json=claims)
        return httpx.Response(404)


@pytest.fixture
def upstream(fd: Frontdesk, monkeypatch: pytest.MonkeyPatch, secrets_seen: set[str]) -> Upstream:
    """The provider registered in frontdesk as ``idp`` (by its endpoints), its network played by ``Upstream``."""
    provider = Upstream()
    real = httpx.Client

    def client(*args: Any, **kwargs: Any) -> httpx.Client:
        return real(*args, transport=httpx.MockTransport(provider), **kwargs)

    monkeypatch.setattr("frontdesk.upstream.arrival.httpx.Client", client)
    remember(secrets_seen, UPSTREAM_SECRET)
    with httpx.Client() as unused:
        add_provider(
            fd, unused, "idp", client_id="frontdesk-at-idp", client_secret=Secret(UPSTREAM_SECRET),
            authorization_endpoint=f"{UPSTREAM}/authorize", token_endpoint=f"{UPSTREAM}/token",
            userinfo_endpoint=f"{UPSTREAM}/userinfo", display_name="Idp",
        )  # fmt: skip
    return provider


async def leave_for_upstream(
    http: httpx.AsyncClient, client: Registered, **overrides: str
) -> tuple[httpx.Response, httpx.Response, httpx.Response]:
    """/authorize for ``client`` in a browser nobody signed in: its answer, the sign-in page it leads to, and the
    answer to pressing "Continue with Idp" there (a 303 to the provider)."""
    started = await http.get("/authorize", params=params_for(client, **{"scope": "openid", **overrides}))
    assert_interaction(started, "login")
    page = await http.get(started.headers["location"])
    assert page.status_code == 200, page.text
    button = re.search(r'<form method="post" action="(/interaction/[^"/]+/upstream/idp)"', page.text)
    assert button, page.text
    out = await http.post(button.group(1), data={"csrf": csrf_of(page.text)})
    assert out.status_code == 303, out.text
    assert out.headers["location"].startswith(f"{UPSTREAM}/authorize?")
    return started, page, out


async def dcr_client(http: httpx.AsyncClient, seen: set[str], name: str) -> Registered:
    """A public client that registered itself (RFC 7591), as an MCP client does."""
    body = {"client_name": name, "redirect_uris": ["https://agent.example/cb"], "token_endpoint_auth_method": "none"}
    response = await register_over_http(http, seen, **body, scope="openid profile")
    assert response.status_code == 201, response.text
    return Registered(response.json()["client_id"], None, "https://agent.example/cb")


# === 3.1 Authorization server (MCP-AS) ==============================================================================


TENANT = urlsplit(ISSUER).path  # "": one issuer at the host's root


@pytest.mark.parametrize(
    "path",
    dict.fromkeys(
        (
            f"/.well-known/oauth-authorization-server{TENANT}",
            f"/.well-known/openid-configuration{TENANT}",
            f"{TENANT}/.well-known/openid-configuration",
        )
    ),
)
async def test_MCP_AS_01_metadata_at_the_well_known_urls_names_the_issuer_exactly(http, path):
    """RFC 8414 §3 and OpenID Connect Discovery §4: each form of the well-known URL for this issuer (no path, so
    the tenant forms are these) is 200 JSON whose ``issuer`` is the issuer, byte for byte."""
    response = await http.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == "application/json"
    assert response.json()["issuer"] == ISSUER
    assert f'"issuer":"{ISSUER}"'.encode() in response.content.replace(b'": "', b'":"')


@pytest.mark.parametrize("path", metadata_paths())
async def test_MCP_AS_02_metadata_lists_what_an_mcp_client_needs(http, path):
    meta = (await http.get(path)).json()
    assert meta["authorization_endpoint"] == f"{ISSUER}/authorize"
    assert meta["token_endpoint"] == f"{ISSUER}/token"
    assert "code" in meta["response_types_supported"]
    assert "S256" in meta["code_challenge_methods_supported"]
    assert {"authorization_code", "refresh_token"} <= set(meta["grant_types_supported"])
    assert not {"password", "implicit"} & set(meta["grant_types_supported"])
    assert "none" in meta["token_endpoint_auth_methods_supported"]
    # Each "iff": DCR is open here, CIMD on, iss sent (MCP-AS-08 proves it is).
    assert meta["registration_endpoint"] == f"{ISSUER}/register"
    assert (await http.post("/register", json={})).status_code != 404
    assert meta["client_id_metadata_document_supported"] is True
    assert meta["authorization_response_iss_parameter_supported"] is True


@pytest.mark.parametrize("kind", ["public", "confidential"])
async def test_MCP_AS_03_oauth_2_1_for_public_and_confidential_clients(http, browser, public, confidential, kind):
    """OAuth 2.1 for P and C alike (the details: test_rfc9700.py and test_oauth21.py): PKCE required, the exact
    redirect URI only, a code used once, its replay refused, and refresh tokens rotated."""
    client = {"public": public, "confidential": confidential}[kind]
    auth = {} if client.secret is None else {"auth": (client.client_id, client.secret)}
    without_pkce = await browser.authorize(**params_for(client, code_challenge=None, code_challenge_method=None))
    assert_error_redirect(without_pkce, client.redirect_uri, "invalid_request")
    assert_no_redirect(await http.get("/authorize", params=params_for(client, redirect_uri=client.redirect_uri + "/")))
    code, verifier = await code_for(browser, client)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": client.redirect_uri}
    data |= {"code_verifier": verifier, "client_id": client.client_id}
    issued = await http.post("/token", data=data, **auth)
    assert issued.status_code == 200, issued.text
    replayed = await http.post("/token", data=data, **auth)
    assert replayed.status_code == 400
    assert replayed.json()["error"] == "invalid_grant"
    # The replay revoked the grant: its refresh token no longer works either (RFC 9700 §4.2.4).
    assert (await refresh_as(http, client, issued.json()["refresh_token"])).json()["error"] == "invalid_grant"
    rotated = await refresh_as(http, client, (await tokens_of(http, browser, client))["refresh_token"])
    assert rotated.status_code == 200, rotated.text


async def tokens_of(http: httpx.AsyncClient, browser: Browser, client: Registered) -> dict[str, Any]:
    code, verifier = await code_for(browser, client)
    if client.secret is None:
        response = await redeem_public(http, client, code, verifier)
    else:
        data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
        response = await http.post("/token", data=data, auth=(client.client_id, client.secret))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_MCP_AS_04_resource_in_both_requests_is_the_audience(http, browser, mcp_agent):
    """RFC 8707 §2: ``resource`` at /authorize and at /token makes the access token's ``aud``."""
    issued = await tokens_for(http, browser, mcp_agent, "vault.connections.read", resource=MCP)
    assert payload_of(issued["access_token"])["aud"] in (MCP, [MCP])


@pytest.mark.parametrize("resource", [MCP + "#frag", "/mcp", "mcp", "//as.example/mcp"])
async def test_MCP_AS_04_a_fragment_or_relative_resource_is_invalid_target(http, browser, mcp_agent, resource):
    """RFC 8707 §2: an absolute URI without a fragment, or invalid_target (after sign-in, as an error redirect)."""
    response = await browser.authorize(**params_for(mcp_agent, scope="vault.connections.read", resource=resource))
    assert_error_redirect(response, mcp_agent.redirect_uri, "invalid_target")
    code, verifier = await code_for(browser, mcp_agent, scope="vault.connections.read", resource=MCP)
    data = {"grant_type": "authorization_code", "client_id": mcp_agent.client_id, "code": code}
    data |= {"redirect_uri": mcp_agent.redirect_uri, "code_verifier": verifier, "resource": resource}
    token = await http.post("/token", data=data)
    assert token.status_code == 400, token.text
    assert token.json()["error"] == "invalid_target"


async def test_MCP_AS_04_a_token_request_outside_the_authorized_resources_is_invalid_target(
    http, browser, mcp_agent, fd
):
    resources.create(fd, RS1, "Resource server one")
    code, verifier = await code_for(browser, mcp_agent, scope="vault.connections.read", resource=MCP)
    data = {"grant_type": "authorization_code", "client_id": mcp_agent.client_id, "code": code}
    data |= {"redirect_uri": mcp_agent.redirect_uri, "code_verifier": verifier}
    outside = await http.post("/token", data={**data, "resource": RS1})
    assert outside.status_code == 400, outside.text
    assert outside.json()["error"] == "invalid_target"
    inside = await http.post("/token", data={**data, "resource": MCP})
    assert inside.status_code == 200, inside.text  # the refusal did not use the code up
    refreshed = await refresh_as(http, mcp_agent, inside.json()["refresh_token"], resource=RS1)
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_target"


@pytest.mark.parametrize("spelling", ["HTTPS://AS.EXAMPLE/mcp", "https://As.Example:443/mcp"])
async def test_MCP_AS_04_case_different_scheme_and_host_name_the_same_resource(http, browser, mcp_agent, spelling):
    """RFC 3986 §6.2.2: scheme and host are case-insensitive; the audience is the URI as registered. (Trailing
    slash policy: ``/mcp/`` is another path, so another resource, RFC 3986 §6.2.3 normalises only an empty path.)"""
    issued = await tokens_for(http, browser, mcp_agent, "vault.connections.read", resource=spelling)
    assert payload_of(issued["access_token"])["aud"] in (MCP, [MCP])
    slash = await browser.authorize(**params_for(mcp_agent, scope="vault.connections.read", resource=MCP + "/"))
    assert_error_redirect(slash, mcp_agent.redirect_uri, "invalid_target")


async def test_MCP_AS_05_public_refresh_tokens_rotate_and_access_tokens_are_short_lived(http, browser, mcp_agent):
    """BCP-19 for P: RT1 → RT2 ≠ RT1; RT1 again → invalid_grant, and then RT2 too (the family is revoked)."""
    issued = await tokens_for(http, browser, mcp_agent, "vault.connections.read", resource=MCP)
    assert 0 < issued["expires_in"] <= 3600
    claims = payload_of(issued["access_token"])
    assert claims["exp"] - claims["iat"] <= 3600
    rotated = await refresh_as(http, mcp_agent, issued["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["refresh_token"] != issued["refresh_token"]
    assert 0 < rotated.json()["expires_in"] <= 3600
    reused = await refresh_as(http, mcp_agent, issued["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    after = await refresh_as(http, mcp_agent, rotated.json()["refresh_token"])
    assert after.status_code == 400
    assert after.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("path", metadata_paths())
async def test_MCP_AS_06_every_endpoint_in_the_metadata_is_https(http, path):
    meta = (await http.get(path)).json()
    urls = {k: v for k, v in meta.items() if k.endswith(("_endpoint", "_uri")) and isinstance(v, str)}
    assert urls
    assert all(v.startswith("https://") for v in urls.values()), urls


async def test_MCP_AS_06_dcr_refuses_plain_http_off_loopback_and_takes_loopback_on_any_port(http, secrets_seen):
    refused = await register_over_http(
        http, secrets_seen, redirect_uris=["http://app.example/cb"], token_endpoint_auth_method="none",
        application_type="native",
    )  # fmt: skip
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_redirect_uri"
    for uri in ("http://localhost:3000/cb", "http://127.0.0.1:51004/cb", "http://localhost:65535/cb"):
        taken = await register_over_http(
            http, secrets_seen, redirect_uris=[uri], token_endpoint_auth_method="none", application_type="native"
        )
        assert taken.status_code == 201, (uri, taken.text)
        assert taken.json()["redirect_uris"] == [uri]


async def test_MCP_AS_06_a_metadata_document_with_a_plain_http_redirect_uri_is_refused(http, host, browser):
    """CIMD: the document's redirect URIs are judged as registration judges them."""
    bad = host.url("/bad.json")
    host.serve_document("/bad.json", document(bad, redirect_uris=["http://app.example/cb"]))
    assert_error_page(
        await http.get("/authorize", params=authorize_params(bad, pkce()[1], redirect_uri="http://app.example/cb"))
    )
    for name, loopback in (("lh", "http://localhost:3000/cb"), ("ip", "http://127.0.0.1:3000/cb")):
        url = host.url(f"/{name}.json")
        host.serve_document(f"/{name}.json", document(url, redirect_uris=[loopback], application_type="native"))
        page = await browser.authorize(consent=None, **authorize_params(url, pkce()[1], redirect_uri=loopback))
        assert page.status_code == 200, page.text
        assert 'value="allow"' in page.text


async def test_MCP_AS_07_exact_redirect_uris_and_no_open_redirect(http, browser, confidential, public):
    """BCP-01/02 (exact match; only a loopback port varies) and BCP-31…33 (no open redirector, sign-in before any
    error redirect, the consent page names the destination), in brief: test_rfc9700.py has the full matrices."""
    for near_miss in ("https://app.example/cb/", "https://APP.example/cb", "https://app.example/cb?x=1",
                      "https://app.example.evil.com/cb", "http://app.example/cb"):  # fmt: skip
        assert_no_redirect(await http.get("/authorize", params=params_for(confidential, redirect_uri=near_miss)))
    assert_no_redirect(await http.get("/authorize", params=params_for(public, redirect_uri="http://127.0.0.1:5/cb2")))
    before = await http.get("/authorize", params=params_for(confidential, scope="bogus"))
    assert_interaction(before, "login")  # BCP-32: no error redirect before sign-in
    evil = {"next": "https://evil.example", "return_to": "https://evil.example"}
    assert_no_redirect_to(await http.get("/authorize", params={**params_for(confidential), **evil}), "evil.example")
    page = await consent_page(browser, confidential)
    assert "you will be sent to <strong>app.example</strong>" in page.text  # BCP-33
    loopback = await browser.authorize(**params_for(public, redirect_uri="http://127.0.0.1:51004/cb"))
    assert_code_redirect(loopback, "http://127.0.0.1:51004/cb")


async def test_MCP_AS_08_code_state_and_iss_each_once_and_iss_unnormalized(http, browser, confidential):
    """RFC 9207 §2, MCP conformance ``authorization-code-grant``: in the success and in an error redirect, each of
    ``code`` (success only), ``state`` and ``iss`` appears once, and ``iss`` is the issuer exactly as published."""
    issuer = (await http.get("/.well-known/oauth-authorization-server")).json()["issuer"]
    denied = await browser.authorize(consent="deny", **params_for(confidential))  # first: consent is remembered
    success = await browser.authorize(**params_for(confidential))
    for response, names in ((success, ("code", "state", "iss")), (denied, ("error", "state", "iss"))):
        assert response.status_code == 303
        raw = parse_qs(urlsplit(response.headers["location"]).query, keep_blank_values=True)
        for name in names:
            assert len(raw.get(name, [])) == 1, (name, raw)
        assert raw["iss"][0] == issuer == ISSUER  # no trailing slash added, no case folded
    assert "code" not in parse_qs(urlsplit(denied.headers["location"]).query)
    for path in metadata_paths():
        assert (await http.get(path)).json()["authorization_response_iss_parameter_supported"] is True


async def test_MCP_AS_09_refresh_tokens_follow_the_documented_offline_access_policy(http, browser, mcp_agent):
    """README "Clients": a refresh token is issued when the client has the refresh_token grant, and for an OpenID
    request only when offline_access was granted (OpenID Connect Core §11). offline_access is advertised."""
    for path in metadata_paths():
        assert "offline_access" in (await http.get(path)).json()["scopes_supported"]
    offline = await tokens_for(http, browser, mcp_agent, "openid offline_access vault.connections.read", resource=MCP)
    assert offline["refresh_token"]
    assert "offline_access" in offline["scope"].split()
    online = await tokens_for(http, browser, mcp_agent, "openid vault.connections.read", resource=MCP)
    assert "refresh_token" not in online
    not_openid = await tokens_for(http, browser, mcp_agent, "vault.connections.read", resource=MCP)
    assert not_openid["refresh_token"]


async def test_MCP_AS_10_consent_shows_the_redirect_host(http, browser, secrets_seen):
    client = await dcr_client(http, secrets_seen, "Research Agent")
    page = await consent_page(browser, client, scope="openid")
    assert "you will be sent to <strong>agent.example</strong>" in page.text
    assert "Any program on this device" not in page.text


async def test_MCP_AS_10_a_localhost_only_client_gets_a_warning(http, browser, secrets_seen):
    registered = await register_over_http(
        http, secrets_seen, client_name="Local Agent", redirect_uris=["http://localhost:33418/callback"],
        token_endpoint_auth_method="none", application_type="native", scope="openid",
    )  # fmt: skip
    assert registered.status_code == 201, registered.text
    client = Registered(registered.json()["client_id"], None, "http://localhost:40123/callback")
    page = await consent_page(browser, client, scope="openid")
    assert "<strong>localhost:40123</strong>, a program on this device" in page.text
    assert 'class="device-only"' in page.text
    assert "Any program on this device could be using this app’s name" in page.text


async def test_MCP_AS_11_authorize_token_and_register_at_the_mcp_servers_origin(http, mcp_agent):
    """MCP 2025-03-26 Fallbacks: the authorization base URL is the MCP URL without its path; there /authorize,
    /token and /register are the OAuth endpoints (an OAuth answer, never 404), the very ones the metadata lists."""
    prm = (await http.get(PRM)).json()
    parts = urlsplit(prm["resource"])
    base = f"{parts.scheme}://{parts.netloc}"
    assert prm["resource"] == MCP
    meta = (await http.get("/.well-known/oauth-authorization-server")).json()
    for name, path in (("authorization_endpoint", "/authorize"), ("token_endpoint", "/token"),
                       ("registration_endpoint", "/register")):  # fmt: skip
        assert meta[name] == base + path
    started = await http.get(base + "/authorize", params=params_for(mcp_agent, scope="vault.connections.read"))
    assert_interaction(started, "login")
    bare = await http.get(base + "/authorize")
    assert bare.status_code == 400
    assert bare.headers["content-type"].startswith("text/html")
    token = await http.post(base + "/token", data={"grant_type": "authorization_code"})
    assert token.status_code in (400, 401)
    assert token.json()["error"] in ("invalid_request", "invalid_client")
    registration = await http.post(base + "/register", json={"redirect_uris": ["http://app.example/cb"]})
    assert registration.status_code == 400
    assert registration.json()["error"] == "invalid_redirect_uri"


async def test_MCP_AS_12_a_new_dcr_client_gets_frontdesks_own_pages_never_the_upstream(
    http, fd, upstream, secrets_seen
):
    """The confused deputy: frontdesk holds one client id at the upstream. A client that registered itself is sent
    to frontdesk's sign-in page (not to the provider), and once the person signed in through the provider, a second
    new client gets frontdesk's consent page naming it and its redirect host, framed nowhere and CSRF-protected; the
    provider's tokens never reach a client."""
    first = await dcr_client(http, secrets_seen, "First Agent")
    _, page, out = await leave_for_upstream(http, first)
    assert "Continue with Idp" in page.text
    callback = await http.get(upstream.consent(out.headers["location"]))
    assert callback.status_code == 303, callback.text
    consent = await Browser(http, "", "").follow(await http.get(callback.headers["location"]))
    assert consent.status_code == 200, consent.text
    assert "An app that calls itself “First Agent” is asking to:" in consent.text
    allowed = await http.post(form_action(consent.text), data={"csrf": csrf_of(consent.text), "decision": "allow"})
    assert_code_redirect(allowed, first.redirect_uri)

    second = await dcr_client(http, secrets_seen, "Second Agent")
    trail: list[httpx.Response] = []
    response = await http.get("/authorize", params=params_for(second, scope="openid"))
    while response.status_code in (302, 303):
        trail.append(response)
        assert response.headers["location"].startswith("/interaction/"), response.headers["location"]
        response = await http.get(response.headers["location"])
    assert trail, "the request went nowhere"
    assert response.status_code == 200, response.text
    assert "An app that calls itself “Second Agent” is asking to:" in response.text
    assert "registered itself and was not checked" in response.text
    assert "you will be sent to <strong>agent.example</strong>" in response.text
    assert csrf_of(response.text)
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert len(upstream.codes) == 0
    assert [r.url.path for r in upstream.requests] == ["/token", "/userinfo"]  # the first sign-in only


async def test_MCP_AS_12_the_upstream_token_never_reaches_the_client(http, upstream, secrets_seen):
    client = await dcr_client(http, secrets_seen, "Agent")
    verifier, challenge = pkce()
    _, _, out = await leave_for_upstream(http, client, scope="openid profile", code_challenge=challenge)
    back = await http.get(upstream.consent(out.headers["location"]))
    consent = await Browser(http, "", "").follow(await http.get(back.headers["location"]))
    allowed = await http.post(form_action(consent.text), data={"csrf": csrf_of(consent.text), "decision": "allow"})
    code = query(allowed.headers["location"])["code"]
    issued = await redeem_public(http, client, code, verifier)
    assert issued.status_code == 200, issued.text
    [upstream_token] = upstream.access_tokens
    remember(secrets_seen, upstream_token)
    assert upstream_token not in issued.text
    assert upstream_token not in json.dumps(payload_of(issued.json()["access_token"]))
    userinfo = await http.get("/userinfo", headers={"Authorization": f"Bearer {issued.json()['access_token']}"})
    assert upstream_token not in userinfo.text


async def test_MCP_AS_12_mcp_tokens_live_with_the_session_the_upstream_sign_in_opened(http, upstream, mcp_agent):
    """Bind MCP tokens to the upstream session: the grant an MCP client gets from a person who signed in through
    the provider belongs to the session that sign-in opened (the ID token's ``sid``), and without offline_access it
    ends with that session. Signed out, the MCP server refuses its token, and no refresh token was ever issued to
    outlive it. (frontdesk cannot learn of a sign-out at the provider itself: it has no logout channel from it.)"""
    verifier, challenge = pkce()
    scope = "openid vault.connections.read"
    _, _, out = await leave_for_upstream(http, mcp_agent, scope=scope, resource=MCP, code_challenge=challenge)
    back = await http.get(upstream.consent(out.headers["location"]))
    consent = await Browser(http, "", "").follow(await http.get(back.headers["location"]))
    allowed = await http.post(form_action(consent.text), data={"csrf": csrf_of(consent.text), "decision": "allow"})
    data = {"grant_type": "authorization_code", "client_id": mcp_agent.client_id, "resource": MCP}
    data |= {"code": query(allowed.headers["location"])["code"], "code_verifier": verifier}
    issued = await http.post("/token", data={**data, "redirect_uri": mcp_agent.redirect_uri})
    assert issued.status_code == 200, issued.text
    tokens = issued.json()
    assert "refresh_token" not in tokens
    assert payload_of(tokens["id_token"])["sid"]
    async with mcp_running(http):
        assert (await Session(http, tokens["access_token"]).initialize()).status_code == 200
        signed_out = await http.get("/logout", params={"id_token_hint": tokens["id_token"]})
        assert signed_out.status_code in (200, 303), signed_out.text
        refused = await Session(http, tokens["access_token"]).initialize()
        assert refused.status_code == 401, refused.text
        assert 'error="invalid_token"' in challenge_of(refused)


@pytest.mark.parametrize("case", ["missing", "mismatched", "reused", "expired"])
async def test_MCP_AS_13_the_upstream_callback_refuses_a_bad_state(http, fd, upstream, secrets_seen, clock, case):
    """The callback takes the ``state`` it issued, once, from the browser that left, within the interaction's
    lifetime (10 minutes); anything else is a 400 page and nobody is signed in."""
    client = await dcr_client(http, secrets_seen, "Agent")
    _, _, out = await leave_for_upstream(http, client)
    callback = upstream.consent(out.headers["location"])
    path, raw = callback.split("?", 1)
    params = {k: v[0] for k, v in parse_qs(raw).items()}
    if case == "missing":
        callback = path + "?" + urlencode({"code": params["code"]})
    elif case == "mismatched":
        callback = path + "?" + urlencode({"code": params["code"], "state": secrets.token_urlsafe(32)})
    elif case == "reused":
        assert (await http.get(callback)).status_code == 303
    else:
        clock.advance(601)
    refused = await http.get(callback)
    assert refused.status_code == 400, refused.text
    assert "location" not in refused.headers
    assert refusals(fd)[-1] == ("replayed" if case == "reused" else "unknown_state")  # why: the state, nothing else
    assert not [c for c in set_cookies(refused) if c.startswith("__Host-fd_session=")]  # nobody signed in


async def test_MCP_AS_13_the_state_is_random_and_the_cookies_are_host_only(http, upstream, secrets_seen):
    """The ``state`` is 256 random bits, new for each trip; every cookie of the trip (the interaction's, the one
    binding the trip to this browser, the session) is ``__Host-``, Secure, HttpOnly, SameSite=Lax; and the callback
    opened in another browser is refused."""
    client = await dcr_client(http, secrets_seen, "Agent")
    started, page, out = await leave_for_upstream(http, client)
    again = await http.post(out.request.url.path, data={"csrf": csrf_of(page.text)})  # "Continue with Idp" again
    states = [query(r.headers["location"])["state"] for r in (out, again)]
    assert states[0] != states[1]
    assert all(len(base64.urlsafe_b64decode(s + "==")) >= 32 for s in states)
    callback = upstream.consent(again.headers["location"])
    async with httpx.AsyncClient(transport=http._transport, base_url=ISSUER) as stranger:
        assert (await stranger.get(callback)).status_code == 400
    back = await http.get(callback)
    assert back.status_code == 303
    cookies = set_cookies(started, out, again, back, await http.get(back.headers["location"]))
    assert any(c.startswith("__Host-fd_ix_") for c in cookies), cookies
    assert len([c for c in set_cookies(out) if not c.startswith("__Host-fd_ix_")]) == 1, set_cookies(out)
    assert any(c.startswith("__Host-fd_session=") for c in cookies), cookies
    for cookie in cookies:
        assert_host_cookie(cookie)


def _binding_cookie(http: httpx.AsyncClient, action: str) -> Any:
    """The jar's binding cookie of the interaction a consent form posts to (``/interaction/<id>/consent``)."""
    name = f"__Host-fd_ix_{action.split('/')[2]}"
    [cookie] = [c for c in http.cookies.jar if c.name == name]
    return cookie


def assert_refused(response: httpx.Response) -> None:
    """A consent answer refused: an error page (a bad CSRF token is 403, an unknown binding 400), nowhere sent."""
    assert response.status_code in (400, 403), response.text
    assert "location" not in response.headers


async def test_MCP_AS_13_a_consent_cookie_answers_for_its_own_client_only(http, upstream, secrets_seen):
    """The consent cookie bound to the ``client_id``: each authorization request's consent is an interaction of
    one client, held by a cookie of its own (``__Host-fd_ix_<id>``, a random value checked against the stored
    interaction) from which its page's CSRF token is derived. Neither the token nor the cookie of one app's consent
    page answers another's, so a person's "Allow" for one app never issues a code to another."""
    first = await dcr_client(http, secrets_seen, "First Agent")
    first_verifier, challenge = pkce()
    _, _, out = await leave_for_upstream(http, first, code_challenge=challenge)
    back = await http.get(upstream.consent(out.headers["location"]))
    first_page = await Browser(http, "", "").follow(await http.get(back.headers["location"]))
    second = await dcr_client(http, secrets_seen, "Second Agent")
    second_verifier, challenge = pkce()
    started = await http.get("/authorize", params=params_for(second, scope="openid", code_challenge=challenge))
    second_page = await Browser(http, "", "").follow(started)
    assert "“First Agent”" in first_page.text
    assert "“Second Agent”" in second_page.text
    first_at, second_at = form_action(first_page.text), form_action(second_page.text)
    first_cookie, second_cookie = _binding_cookie(http, first_at), _binding_cookie(http, second_at)
    assert first_cookie.value != second_cookie.value

    crossed = await http.post(second_at, data={"csrf": csrf_of(first_page.text), "decision": "allow"})
    assert_refused(crossed)
    own_value = second_cookie.value
    second_cookie.value = first_cookie.value  # the first's binding under the second's name, with the first's token
    crossed = await http.post(second_at, data={"csrf": csrf_of(first_page.text), "decision": "allow"})
    assert_refused(crossed)
    second_cookie.value = own_value

    for client, page, verifier in ((second, second_page, second_verifier), (first, first_page, first_verifier)):
        allowed = await http.post(form_action(page.text), data={"csrf": csrf_of(page.text), "decision": "allow"})
        assert_code_redirect(allowed, client.redirect_uri)
        issued = await redeem_public(http, client, query(allowed.headers["location"])["code"], verifier)
        assert issued.status_code == 200, issued.text
        assert payload_of(issued.json()["access_token"])["client_id"] == client.client_id


# === 3.2 Client ID Metadata Documents (CIMD-09 … 11) ================================================================


async def test_CIMD_09_a_private_key_jwt_document_client_with_a_jwks_uri_must_authenticate(
    http, host, browser, secrets_seen
):
    """CIMD §6.2: ``private_key_jwt`` with a ``jwks_uri`` makes the client confidential: its code redeemed without a
    ``client_assertion`` is invalid_client (and the code stays unused); with an assertion signed by the key at
    the jwks_uri the same code gets tokens."""
    key = ECKey.generate_key("P-256", parameters={"kid": "k1", "alg": "ES256"}, private=True)
    host.serve_document("/jwks.json", {"keys": [key.as_dict(private=False)]})
    url = host.url("/c.json")
    host.serve_document(
        "/c.json", document(url, token_endpoint_auth_method="private_key_jwt", jwks_uri=host.url("/jwks.json"))
    )
    verifier, challenge = pkce()
    response = await browser.authorize(**authorize_params(url, challenge))
    code = assert_code_redirect(response, CALLBACK, state="s1")["code"]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": verifier}
    unauthenticated = await http.post("/token", data={**data, "client_id": url})
    assert unauthenticated.status_code == 401, unauthenticated.text
    assert unauthenticated.json()["error"] == "invalid_client"
    at = int(time.time())
    claims = {"iss": url, "sub": url, "aud": ISSUER, "jti": secrets.token_urlsafe(12), "iat": at, "exp": at + 60}
    assertion = jwt.encode({"alg": "ES256", "kid": "k1"}, claims, key)
    remember(secrets_seen, assertion)
    signed = await http.post(
        "/token", data={**data, "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
    )
    assert signed.status_code == 200, signed.text


async def test_CIMD_10_consent_names_the_client_id_host_and_shows_no_remote_logo(http, host, browser):
    """CIMD §6.4: the page names the app by its client_id's host. §6.7's logo: frontdesk shows no logo at all, so
    none is fetched or hot-linked: its pages load nothing from another origin (RFC 9700 §4.2.4, BCP-38), and a
    picture chosen by an unchecked client would lend it a look of trust the host name does not."""
    url = host.url("/c.json")
    host.serve_document("/c.json", document(url, logo_uri=host.url("/logo.png")))
    page = await browser.authorize(consent=None, **authorize_params(url, pkce()[1]))
    assert page.status_code == 200, page.text
    assert f"<strong>App at localhost:{host.port}</strong> is asking to:" in page.text
    assert "<img" not in page.text
    assert "logo.png" not in page.text
    assert host.hits("/logo.png") == 0
    # Nor could a remote logo load: images only from this origin (CSP Level 2 §7.10).
    assert "img-src 'self'" in page.headers["content-security-policy"].split("; ")


@pytest.mark.parametrize("rate_limits", [RateLimits(registration_per_ip=(1000, 3600))])
async def test_CIMD_11_no_registered_client_id_starts_with_https(http, secrets_seen):
    """CIMD §6.9: a client id this server generates can never be taken for a metadata document's URL."""
    ids = set()
    for number in range(100):
        response = await register_over_http(
            http, secrets_seen, client_name=f"Agent {number}", redirect_uris=["https://agent.example/cb"],
            token_endpoint_auth_method="none",
        )  # fmt: skip
        assert response.status_code == 201, response.text
        ids.add(response.json()["client_id"])
    assert len(ids) == 100
    assert not [i for i in ids if i.lower().startswith(("https:", "http:"))]


# === 3.4 MCP server as resource server (MCP-RS) =====================================================================


async def test_MCP_RS_01_protected_resource_metadata_names_the_mcp_url_and_this_server(http):
    """RFC 9728 §3: at the path-suffixed well-known URL, ``resource`` is the MCP URL it was built from."""
    response = await http.get(PRM)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == "application/json"
    body = response.json()
    assert body["resource"] == MCP
    assert urlsplit(MCP).path == PRM.removeprefix("/.well-known/oauth-protected-resource")
    assert body["authorization_servers"] == [ISSUER]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_MCP_RS_02_no_token_is_401_naming_metadata_and_scope_without_error(http, method):
    response = await http.request(method, "/mcp", json=LIST_TOOLS if method == "POST" else None, headers=MCP_HEADERS)
    assert response.status_code == 401, response.text
    header = challenge_of(response)
    assert header.startswith("Bearer ")
    assert f'resource_metadata="{ISSUER}{PRM}"' in header
    assert f'scope="{mcp_tools.FIRST_SCOPE}"' in header
    assert "error" not in header


@pytest.mark.parametrize("case", ["expired", "bad-signature", "revoked", "wrong-issuer", "garbage"])
async def test_MCP_RS_03_a_bad_or_expired_token_is_401_invalid_token(http, fd, browser, mcp_agent, clock, case):
    """Each token is refused with ``error="invalid_token"``; the same token unspoiled (re-signed unchanged for the
    wrong issuer) is accepted, so the one change is what is refused."""
    if case == "expired":
        clock.advance(-2 * 3600)
    token = await mcp_token(http, browser, mcp_agent, "vault.connections.read")
    good = token
    if case == "expired":
        clock.advance(2 * 3600)
        good = None
    elif case == "bad-signature":
        head, body, signature = token.split(".")
        raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
        raw[5] ^= 0x01
        token = f"{head}.{body}.{b64(bytes(raw))}"
    elif case == "wrong-issuer":
        good = resigned(fd, token)
        token = resigned(fd, token, iss="https://elsewhere.example")
    elif case == "garbage":
        token = "not-a-token"
    async with mcp_running(http):
        if good is not None:
            accepted = await Session(http, good).initialize()
            assert accepted.status_code == 200, accepted.text
        if case == "revoked":
            revoked = await http.post("/revoke", data={"token": token, "client_id": mcp_agent.client_id})
            assert revoked.status_code == 200, revoked.text
        refused = await Session(http, token).initialize()
    assert refused.status_code == 401, refused.text
    assert 'error="invalid_token"' in challenge_of(refused)
    assert f'resource_metadata="{ISSUER}{PRM}"' in challenge_of(refused)


async def test_MCP_RS_04_a_token_for_another_mcp_server_is_401(http, fd, browser, mcp_agent):
    """RFC 8707, BCP-25: a token whose ``aud`` is https://other.example/mcp does not open this server's /mcp."""
    resources.create(fd, OTHER_MCP, "Another MCP server")
    issued = await tokens_for(http, browser, mcp_agent, "vault.connections.read", resource=OTHER_MCP)
    assert payload_of(issued["access_token"])["aud"] in (OTHER_MCP, [OTHER_MCP])
    async with mcp_running(http):
        refused = await Session(http, issued["access_token"]).initialize()
        own = await Session(http, await mcp_token(http, browser, mcp_agent, "vault.connections.read")).initialize()
    assert refused.status_code == 401, refused.text
    assert 'error="invalid_token"' in challenge_of(refused)
    assert own.status_code == 200, own.text


async def test_MCP_RS_04_the_clients_token_is_never_passed_upstream(
    http, fd, browser, mcp_agent, tmp_path, secrets_seen
):
    """MCP Token Passthrough: a tool call reaching the person's connected account at a provider (tests/vault's fake
    provider, a real HTTP server on loopback, which records every API call) carries the connection's own token
    there; the MCP client's token appears in no request the provider sees."""
    with running(Fake()) as provider:
        fake_vault(fd, provider, tmp_path, secrets_seen)
        mcp_tools.add_tool_scopes(fd)
        register(
            fd, name="Caller", client_id="mcp-caller", auth_method="none", redirect_uris=[mcp_agent.redirect_uri],
            grant_types=["authorization_code"], scope="vault.call vault:cal",
        )  # fmt: skip
        caller = Registered("mcp-caller", None, mcp_agent.redirect_uri)
        token = await mcp_token(http, browser, caller, "vault.call vault:cal")
        _, key = api_key_store.create_api_key(fd.vault.engine, "platform")
        remember(secrets_seen, key.value)
        alice = next(u.id for u in fd.users.list() if u.username == "alice")
        link = await http.post(
            "/vault/connect-sessions", json={"user": alice, "integration": "cal"}, headers=vault_bearer(key.value)
        )
        assert link.status_code == 201, link.text
        assert (await through_provider(http, link.json()["connect_url"])).status_code == 200
        remember(secrets_seen, *provider.access, *provider.refresh)
        async with mcp_running(http):
            session = Session(http, token)
            assert (await session.initialize()).status_code == 200
            called = await session.call("tools/call", tools_call("call_api", integration="cal", method="GET",
                                                                 path="events")["params"])  # fmt: skip
    assert called.status_code == 200, called.text
    result = answer(called)["result"]
    assert not result["isError"], result
    assert result["structuredContent"]["status"] == 200  # the provider accepted the connection's own token
    assert token not in json.dumps(result)
    assert provider.api_calls, "the provider was never called"
    for seen in provider.api_calls:
        assert token not in json.dumps(seen)
        assert seen["headers"]["authorization"].removeprefix("Bearer ") in provider.access


async def test_MCP_RS_05_a_tool_without_its_scope_is_403_naming_every_scope_it_needs(http, browser, mcp_agent):
    """MCP 2025-11-25 step-up: ``insufficient_scope`` with ``scope`` = all the call needs and ``resource_metadata``;
    a token that holds them (a broader set) passes. frontdesk's tool scopes are flat names: no ``prefix:*`` covers
    them, so "broader" is the superset (the kit's ``files:*`` hierarchy: test_agents_prm.py AG-PRM-05)."""
    narrow = await mcp_token(http, browser, mcp_agent, "vault.connections.read")
    broad = await mcp_token(http, browser, mcp_agent, TOOL_SCOPES)
    call = tools_call("start_connection", integration="nosuch")
    async with mcp_running(http):
        session = Session(http, narrow)
        assert (await session.initialize()).status_code == 200
        refused = await session.call("tools/call", call["params"])
        wide = Session(http, broad)
        assert (await wide.initialize()).status_code == 200
        passed = await wide.call("tools/call", call["params"])
    assert refused.status_code == 403, refused.text
    header = challenge_of(refused)
    assert 'error="insufficient_scope"' in header
    assert 'scope="vault.connect"' in header
    assert f'resource_metadata="{ISSUER}{PRM}"' in header
    assert passed.status_code == 200, passed.text


async def test_MCP_RS_06_the_token_comes_in_the_header_on_every_request_and_a_session_is_no_credential(
    http, browser, mcp_agent
):
    """A live ``Mcp-Session-Id`` without the token is 401; the token in ``?access_token=`` counts as no token
    (RFC 6750 §2.3 is gone from OAuth 2.1, §5.1); with the header the same session goes on."""
    token = await mcp_token(http, browser, mcp_agent, "vault.connections.read")
    async with mcp_running(http):
        session = Session(http, token)
        assert (await session.initialize()).status_code == 200
        session_id = session.headers["mcp-session-id"]
        headers = {k: v for k, v in session.headers.items() if k != "Authorization"}
        bare = await http.post("/mcp", json=LIST_TOOLS, headers=headers)
        in_query = await http.post("/mcp", params={"access_token": token}, json=LIST_TOOLS, headers=headers)
        with_header = await session.call("tools/list")
    assert session_id
    for refused in (bare, in_query):
        assert refused.status_code == 401, refused.text
        assert "error" not in challenge_of(refused)  # no credentials were sent, as far as the server cares
    assert with_header.status_code == 200, with_header.text


async def test_MCP_RS_07_offline_access_is_in_neither_the_metadata_nor_a_challenge(http, browser, mcp_agent):
    """MCP 2026-07-28 Refresh Tokens: the authorization server's business; the resource never asks for it."""
    body = (await http.get(PRM)).json()
    assert "offline_access" not in body.get("scopes_supported", [])
    assert set(mcp_tools.TOOL_SCOPES.values()) <= set(body["scopes_supported"])
    narrow = await mcp_token(http, browser, mcp_agent, "vault.connections.read")
    challenges = [challenge_of(await http.post("/mcp", json=LIST_TOOLS, headers=MCP_HEADERS))]
    challenges.append(
        challenge_of(await http.post("/mcp", json=LIST_TOOLS, headers={**MCP_HEADERS, "Authorization": "Bearer x"}))
    )
    async with mcp_running(http):
        session = Session(http, narrow)
        await session.initialize()
        call = tools_call("call_api", integration="x", method="GET", path="/")
        challenges.append(challenge_of(await session.call("tools/call", call["params"])))
    assert all("offline_access" not in c for c in challenges), challenges
    assert 'error="insufficient_scope"' in challenges[-1]
