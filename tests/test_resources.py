"""Protected resources as objects (issue 13 item 4; RFC 8707): the ``frontdesk resource`` commands, invalid_target
for a resource nobody registered, the resource's token lifetime, its scopes in discovery, the scopes a client may ask
for because it names a resource (MCP 2025-11-25 scope selection), and step-up back to consent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update

from conftest import ISSUER, RS1, Browser, Registered, basic, code_for, pkce, query, remember
from frontdesk.cli import main
from frontdesk.cli import resources as resource_cli
from frontdesk.core import Frontdesk
from frontdesk.oauth.registration import register
from frontdesk.oauth.resources import create, delete
from frontdesk.protocol.rfc8707 import comparable
from frontdesk.storage import audit
from frontdesk.storage.db import transaction
from frontdesk.storage.schema import Scope
from test_token import verified_claims

MCP = "https://mcp.example/mcp"
FILES = "https://files.example/api"


def events(fd: Frontdesk, name: str) -> list[audit.AuditRecord]:
    return [e for e in audit.tail(fd.engine, 200) if e.event == name]


def assert_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error, response.text


def unvetted(fd: Frontdesk, secrets_seen: set[str], *, scope: str = "openid", secret: str | None = None) -> Registered:
    """A client that registered itself (RFC 7591): ``ClientRecord.vetted`` is False."""
    confidential = secret is not None
    client = fd.clients.insert(
        client_id=None,
        secret=secret,
        name="Agent That Registered Itself",
        auth_method="client_secret_basic" if confidential else "none",
        redirect_uris=["https://agent.example/cb"],
        grant_types=["authorization_code", "refresh_token", *(["client_credentials"] if confidential else [])],
        scope=scope.split(),
        jwks=None,
        jwks_uri=None,
        resources=[],
        access_token_ttl=None,
        id_token_alg=None,
        post_logout_redirect_uris=[],
        backchannel_logout_uri=None,
        backchannel_logout_session_required=False,
        assertion_audience="issuer",
        registered_by="self",
    )
    remember(secrets_seen, secret)
    return Registered(client.client_id, secret, "https://agent.example/cb")


def operators(fd: Frontdesk, secrets_seen: set[str], *, scope: str, ttl: int | None = None) -> Registered:
    """A confidential client the operator registered, allowed client_credentials."""
    client, secret = register(
        fd,
        name="Operator's Service",
        redirect_uris=["https://svc.example/cb"],
        grant_types=["authorization_code", "client_credentials"],
        scope=scope,
        access_token_ttl=ttl,
    )
    remember(secrets_seen, secret)
    return Registered(client.client_id, secret, "https://svc.example/cb")


async def client_credentials(http: httpx.AsyncClient, client: Registered, **extra: str) -> httpx.Response:
    return await http.post("/token", auth=basic(client), data={"grant_type": "client_credentials", **extra})


async def public_tokens(http: httpx.AsyncClient, browser: Browser, client: Registered, scope: str, **extra: str):
    """The code flow of a public client through the real forms, redeemed with its PKCE verifier."""
    code, verifier = await code_for(browser, client, scope=scope, **extra)
    return await http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "client_id": client.client_id,
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": client.redirect_uri,
        },
    )


# --- frontdesk resource … -----------------------------------------------------------------------------------------


@pytest.fixture
def cli(fd: Frontdesk, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """``frontdesk resource …`` in this process on the test's frontdesk: (exit status, stdout, stderr)."""
    monkeypatch.setattr(resource_cli, "open_for", lambda args: fd)

    def run(*argv: str) -> tuple[int, str, str]:
        status = main(["resource", *argv])
        out, err = capsys.readouterr()
        return status, out, err

    return run


def test_resource_create_registers_it_and_creates_its_missing_scopes(fd, cli):
    """resource create stores the resource and creates the scopes it names that do not exist, described by name."""
    fd.create_scope("files:read", "Read your files")
    status, out, err = cli("create", FILES, "--name", "Files API", "--scope", "files:read files:write", "--json")
    assert status == 0, err
    data = json.loads(out)
    assert data == {
        "uri": FILES,
        "name": "Files API",
        "scope": "files:read files:write",
        "access_token_ttl": None,
        "created_at": data["created_at"],
        "require_dpop": False,
        "created_scopes": ["files:write"],
    }
    scopes = fd.scopes(fresh=True)
    assert scopes["files:write"] == "files:write"
    assert scopes["files:read"] == "Read your files"  # an existing description is kept
    (event,) = events(fd, "resource.created")
    assert event.detail["resource"] == FILES
    assert event.detail["created_scopes"] == "files:write"


def test_resource_list_show_and_delete(fd, cli):
    """resource list and show print what create stored; delete removes it, audited, and show then fails."""
    assert cli("create", MCP, "--name", "Tools", "--scope", "tools:call", "--access-token-ttl", "120")[0] == 0
    status, out, _ = cli("list", "--json")
    assert status == 0
    assert [r["uri"] for r in json.loads(out)] == [MCP]
    status, out, _ = cli("show", MCP)
    assert status == 0
    assert "Tools" in out
    assert "120 s" in out
    assert "tools:call" in out
    status, out, _ = cli("delete", MCP)
    assert status == 0
    assert "deleted resource" in out
    assert [e.detail["resource"] for e in events(fd, "resource.deleted")] == [MCP]
    status, _, err = cli("show", MCP)
    assert status == 1
    assert "no resource" in err
    assert cli("delete", MCP)[0] == 1
    assert cli("list")[1].strip() == "no resources"
    assert "tools:call" in fd.scopes(fresh=True)  # its scope stays: clients may be registered for it


@pytest.mark.parametrize(
    ("uri", "scope", "message"),
    [
        ("https://x.example/api#top", "", "without a fragment"),
        ("/api", "", "absolute URI"),
        ("https://x.example/api?v=1", "", "no query"),
        ("https://x.example/" + "a" * 300, "", "at most 255"),
        ("https://x.example/caf\u00e9", "", "printable ASCII"),
        (ISSUER, "", "built in"),
        ("HTTPS://AS.EXAMPLE/", "", "built in"),
        ("https://x.example/api", "openid", "OpenID Connect scope"),
        ("https://x.example/api", 'bad"scope', "RFC 6749"),
    ],
)
def test_resource_create_refuses_what_cannot_be_a_resource(fd, cli, uri, scope, message):
    """resource create refuses a URI or scope that cannot be a resource's, and writes nothing."""
    status, _, err = cli("create", uri, "--name", "X", "--scope", scope)
    assert status == 1
    assert message in err
    assert cli("list", "--json")[1].strip() == "[]"
    assert events(fd, "resource.created") == []


def test_resource_create_refuses_a_uri_registered_already_in_any_spelling(fd, cli):
    """A second resource.create for the same resource (scheme and host in another case, the default port) fails,
    and the scope it would have brought is not created: nothing is half-written."""
    assert cli("create", "https://api.example/v1", "--name", "API")[0] == 0
    status, _, err = cli("create", "HTTPS://API.example:443/v1", "--name", "Again", "--scope", "newscope")
    assert status == 1
    assert "registered already" in err
    assert "newscope" not in fd.scopes(fresh=True)
    assert len(events(fd, "resource.created")) == 1


@pytest.mark.parametrize("ttl", ["0", "-5", "soon"])
def test_resource_create_access_token_ttl_must_be_positive_seconds(cli, ttl):
    """--access-token-ttl takes a positive number of seconds; anything else is a usage error (exit status 2)."""
    with pytest.raises(SystemExit) as exited:
        cli("create", MCP, "--name", "Tools", "--access-token-ttl", ttl)
    assert exited.value.code == 2


@pytest.mark.subprocess
def test_resource_commands_as_an_operator_runs_them(database_url: str, tmp_path: Path):
    """`python -m frontdesk resource create/list` against a fresh database, as in the README's few commands."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    env |= {"FRONTDESK_HOME": str(tmp_path), "FRONTDESK_DATABASE_URL": database_url, "FRONTDESK_ISSUER": ISSUER}

    def run(*argv: str) -> Any:
        done = subprocess.run(
            [sys.executable, "-m", "frontdesk", *argv], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    created = run("resource", "create", MCP, "--name", "Tools", "--scope", "tools:read tools:write", "--json")
    assert created["created_scopes"] == ["tools:read", "tools:write"]
    assert [r["uri"] for r in run("resource", "list", "--json")] == [MCP]
    assert {"tools:read", "tools:write"} <= {s["name"] for s in run("scope", "list", "--json")}


# --- invalid_target for a resource nobody registered (RFC 8707 §2) ------------------------------------------------


async def test_authorize_unregistered_resource_is_an_invalid_target_redirect(fd, browser, confidential):
    """/authorize with a resource nobody registered answers with an invalid_target error redirect."""
    create(fd, RS1, "Resource server one")
    _verifier, challenge = pkce()
    response = await browser.authorize(
        response_type="code",
        client_id=confidential.client_id,
        redirect_uri=confidential.redirect_uri,
        scope="openid",
        state="s1",
        code_challenge=challenge,
        code_challenge_method="S256",
        resource="https://unregistered.example/api",
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith(confidential.redirect_uri)
    params = query(response.headers["location"])
    assert params["error"] == "invalid_target"
    assert params["state"] == "s1"
    assert params["iss"] == ISSUER
    assert "unregistered.example" not in params.get("error_description", "")  # the request is not echoed


async def test_token_unregistered_resource_is_invalid_target(http, fd, secrets_seen):
    """/token (client_credentials) with a resource nobody registered is 400 invalid_target; a registered one is 200."""
    create(fd, RS1, "Resource server one")
    client = operators(fd, secrets_seen, scope="calendar.read")
    assert_error(await client_credentials(http, client, resource="https://rs9.example"), 400, "invalid_target")
    response = await client_credentials(http, client, resource=RS1)
    assert response.status_code == 200, response.text


async def test_device_authorization_unregistered_resource_is_invalid_target(http, public):
    """The device authorization endpoint (RFC 8628 §3.1) refuses an unregistered resource with invalid_target."""
    response = await http.post(
        "/device_authorization",
        data={"client_id": public.client_id, "scope": "openid", "resource": "https://rs9.example"},
    )
    assert_error(response, 400, "invalid_target")


async def test_deleted_resource_gets_no_new_token_not_even_by_refresh(http, fd, browser, confidential):
    """Once its resource is deleted, a grant's refresh token gets invalid_target rather than a token for it."""
    create(fd, RS1, "Resource server one")
    code, verifier = await code_for(browser, confidential, resource=RS1)
    tokens = await http.post(
        "/token",
        auth=basic(confidential),
        data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier},
    )
    assert tokens.status_code == 200, tokens.text
    assert delete(fd, RS1) is not None
    response = await http.post(
        "/token",
        auth=basic(confidential),
        data={"grant_type": "refresh_token", "refresh_token": tokens.json()["refresh_token"]},
    )
    assert_error(response, 400, "invalid_target")


async def test_userinfo_is_a_resource_built_in(http, fd, browser, confidential, secrets_seen):
    """resource = the issuer (this server's UserInfo) needs no registration, and its token works at /userinfo;
    another URI on this server does."""
    client = operators(fd, secrets_seen, scope="calendar.read")
    assert_error(await client_credentials(http, client, resource=ISSUER + "/api"), 400, "invalid_target")
    response = await client_credentials(http, client, resource=ISSUER)
    assert response.status_code == 200, response.text
    assert (await verified_claims(http, response.json()["access_token"]))["aud"] == ISSUER
    code, verifier = await code_for(browser, confidential, resource=ISSUER)
    tokens = await http.post(
        "/token",
        auth=basic(confidential),
        data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier},
    )
    assert tokens.status_code == 200, tokens.text
    userinfo = await http.get("/userinfo", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"})
    assert userinfo.status_code == 200, userinfo.text


@pytest.mark.parametrize("spelling", ["HTTPS://RS1.EXAMPLE", "https://rs1.example:443", "https://rs1.example/"])
async def test_resource_in_another_spelling_gets_the_registered_audience(http, fd, secrets_seen, spelling):
    """RFC 3986 §6.2.2–6.2.3: a resource differing only in case, default port or empty path is the registered one,
    and the token's aud is the URI it was registered under (the one its resource server checks)."""
    create(fd, RS1, "Resource server one")
    client = operators(fd, secrets_seen, scope="calendar.read")
    response = await client_credentials(http, client, resource=spelling)
    assert response.status_code == 200, response.text
    assert (await verified_claims(http, response.json()["access_token"]))["aud"] == RS1


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("HTTPS://Example.COM/a", "https://example.com/a"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:80", "http://example.com/"),
        ("https://example.com:/a", "https://example.com/a"),
        ("https://[::1]:443/a", "https://[::1]/a"),
    ],
)
def test_comparable_spellings_of_one_resource_are_equal(left, right):
    assert comparable(left) == comparable(right)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("https://example.com/A", "https://example.com/a"),  # the path is the resource server's: case-sensitive
        ("https://example.com:8443/a", "https://example.com/a"),
        ("http://example.com/a", "https://example.com/a"),
        ("https://example.com/a/", "https://example.com/a"),
        ("https://example.com/a?x=1", "https://example.com/a"),
        ("https://evil.example@example.com/a", "https://example.com/a"),
    ],
)
def test_comparable_keeps_different_resources_apart(left, right):
    assert comparable(left) != comparable(right)


@given(
    st.sampled_from(["http", "https", "HTTPS", "wss"]),
    st.from_regex(r"[A-Za-z0-9.-]{1,20}", fullmatch=True),
    st.sampled_from(["", ":443", ":80", ":8080", ":"]),
    st.from_regex(r"(/[A-Za-z0-9._~-]{0,8}){0,3}", fullmatch=True),
)
def test_comparable_is_idempotent(scheme, host, port, path):
    """Normalising a normalised URI changes nothing: one resource has one comparable form."""
    once = comparable(f"{scheme}://{host}{port}{path}")
    assert comparable(once) == once


# --- lifetime -------------------------------------------------------------------------------------------------------


async def lifetime(http: httpx.AsyncClient, response: httpx.Response) -> int:
    assert response.status_code == 200, response.text
    claims = await verified_claims(http, response.json()["access_token"])
    assert response.json()["expires_in"] == claims["exp"] - claims["iat"]
    return int(response.json()["expires_in"])


async def test_resource_access_token_ttl_applies_when_the_client_sets_none(http, fd, secrets_seen):
    """A token for a resource with an access-token lifetime lives that long; one for the issuer, the default."""
    create(fd, MCP, "Tools", access_token_ttl=90)
    client = operators(fd, secrets_seen, scope="calendar.read")
    assert await lifetime(http, await client_credentials(http, client, resource=MCP)) == 90
    default = fd.settings.lifetimes.access_token
    assert await lifetime(http, await client_credentials(http, client)) == default


@pytest.mark.parametrize(("client_ttl", "resource_ttl", "expected"), [(600, 120, 120), (60, 300, 60), (200, None, 200)])
async def test_shortest_of_client_and_resource_ttl_wins(http, fd, secrets_seen, client_ttl, resource_ttl, expected):
    """Both the client and the resource set a lifetime: the token lives the shorter of the two."""
    create(fd, MCP, "Tools", access_token_ttl=resource_ttl)
    client = operators(fd, secrets_seen, scope="calendar.read", ttl=client_ttl)
    assert await lifetime(http, await client_credentials(http, client, resource=MCP)) == expected


async def test_resource_ttl_applies_to_code_flow_tokens(http, fd, browser, confidential):
    """The authorization code grant mints the resource's lifetime too."""
    create(fd, RS1, "Resource server one", access_token_ttl=75)
    code, verifier = await code_for(browser, confidential, resource=RS1)
    response = await http.post(
        "/token",
        auth=basic(confidential),
        data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier},
    )
    assert await lifetime(http, response) == 75


def test_retired_keys_stay_published_as_long_as_a_resource_token_lives(fd):
    """A resource's long token lifetime keeps a retired signing key published that long (plus a minute)."""
    create(fd, MCP, "Tools", access_token_ttl=86_400)
    assert fd.longest_token_life() == 86_400 + 60


# --- discovery ----------------------------------------------------------------------------------------------------


async def test_discovery_scopes_supported_lists_resources_scopes(http, fd):
    """Both discovery documents list a resource's scopes beside OpenID Connect's and the configured ones."""
    create(fd, MCP, "Tools", scope="tools:read tools:write")
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        scopes = (await http.get(path)).json()["scopes_supported"]
        assert {"openid", "calendar.read", "tools:read", "tools:write"} <= set(scopes), path


# --- which scopes a client naming a resource may ask for -----------------------------------------------------------


async def test_unvetted_client_may_ask_for_scopes_of_the_resource_it_names(http, fd, secrets_seen):
    """A self-registered client gets a scope it is not registered for when it belongs to the resource it names."""
    create(fd, MCP, "Tools", scope="tools:read tools:write")
    agent = unvetted(fd, secrets_seen, scope="", secret="agent-secret-0123456789")
    response = await client_credentials(http, agent, resource=MCP, scope="tools:read")
    assert response.status_code == 200, response.text
    assert (await verified_claims(http, response.json()["access_token"]))["scope"] == "tools:read"


async def test_resource_scopes_are_lent_only_with_the_resource_and_only_to_unvetted_clients(http, fd, secrets_seen):
    """The scope a self-registered client gets by naming its resource is invalid_scope without the resource, with
    another resource, and for an operator's client (which stays within its registered scope) naming the resource."""
    create(fd, MCP, "Tools", scope="tools:read tools:write")
    create(fd, FILES, "Files", scope="files:read")
    agent = unvetted(fd, secrets_seen, scope="", secret="agent-secret-0123456789")
    operator = operators(fd, secrets_seen, scope="tools:read")
    assert (await client_credentials(http, agent, resource=MCP, scope="tools:write")).status_code == 200
    assert_error(await client_credentials(http, agent, scope="tools:write"), 400, "invalid_scope")
    assert_error(await client_credentials(http, agent, resource=FILES, scope="tools:write"), 400, "invalid_scope")
    assert_error(await client_credentials(http, operator, resource=MCP, scope="tools:write"), 400, "invalid_scope")


async def test_restricted_scope_of_a_resource_is_not_lent(http, fd, secrets_seen):
    """A scope the operator marked restricted needs registration (with an initial access token), not just the
    resource's name."""
    create(fd, MCP, "Tools", scope="tools:read tools:admin")
    with transaction(fd.engine) as conn:
        conn.execute(update(Scope).where(Scope.name == "tools:admin").values(restricted=True))
    agent = unvetted(fd, secrets_seen, scope="", secret="agent-secret-0123456789")
    assert_error(await client_credentials(http, agent, resource=MCP, scope="tools:admin"), 400, "invalid_scope")
    response = await client_credentials(http, agent, resource=MCP, scope="tools:read")
    assert response.status_code == 200, response.text


async def test_authorize_lends_resource_scopes_to_an_unvetted_client(http, fd, browser, secrets_seen):
    """At /authorize too: a public self-registered client naming the resource gets its scope, after consent."""
    create(fd, MCP, "Tools", scope="tools:read")
    agent = unvetted(fd, secrets_seen)
    response = await public_tokens(http, browser, agent, "openid tools:read", resource=MCP)
    assert response.status_code == 200, response.text
    claims = await verified_claims(http, response.json()["access_token"])
    assert claims["scope"] == "openid tools:read"
    assert claims["aud"] == MCP


# --- step-up (MCP insufficient_scope) -----------------------------------------------------------------------------


async def test_step_up_to_more_scopes_of_the_resource_goes_back_to_consent(http, fd, browser, secrets_seen):
    """After a token with tools:read, asking for tools:read tools:write shows the consent page listing tools:write;
    allowing it gives a token with both."""
    fd.create_scope("tools:write", "Change things with your tools")
    create(fd, MCP, "Tools", scope="tools:read tools:write")
    agent = unvetted(fd, secrets_seen)
    first = await public_tokens(http, browser, agent, "tools:read", resource=MCP)
    assert first.status_code == 200, first.text
    verifier, challenge = pkce()
    params = {
        "response_type": "code",
        "client_id": agent.client_id,
        "redirect_uri": agent.redirect_uri,
        "scope": "tools:read tools:write",
        "state": "step-up",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": MCP,
    }
    page = await browser.authorize(consent=None, **params)
    assert page.status_code == 200, page.text
    assert 'value="allow"' in page.text
    assert "Change things with your tools" in page.text
    done = await browser.authorize(**params)
    code = query(done.headers["location"])["code"]
    response = await http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "client_id": agent.client_id,
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": agent.redirect_uri,
        },
    )
    assert response.status_code == 200, response.text
    assert (await verified_claims(http, response.json()["access_token"]))["scope"] == "tools:read tools:write"


def test_resource_create_and_update_set_require_dpop(fd, cli):
    """RFC 9449 §7: --require-dpop at creation, and update --no-require-dpop / --require-dpop later."""
    status, out, err = cli("create", FILES, "--name", "Files API", "--require-dpop", "--json")
    assert status == 0, err
    assert json.loads(out)["require_dpop"] is True
    status, out, err = cli("update", FILES, "--no-require-dpop", "--json")
    assert status == 0, err
    assert json.loads(out)["require_dpop"] is False
    status, _, err = cli("update", "https://nowhere.example", "--require-dpop")
    assert status != 0
