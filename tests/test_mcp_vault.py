"""``{issuer}/mcp``, the vault's MCP server (issue 14 items 3 and 7): protected by frontdesk's own resource-server kit
(RFC 9728 metadata, RFC 6750 challenges, a step-up per tool), reaching only the token's person's connections, and
never putting a token in a result. The official Python MCP client (PyPI ``mcp``) signs a person in through the real
pages and calls the tools against a connection at node-oidc-provider (``running_op``: the ``node`` marker).

The wire rules run on the in-process app (``http``); the client's run needs the app's lifespan (the SDK's session
manager) and streaming responses, so there frontdesk is served by uvicorn in this process, on the same database.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import httpx2
import pytest
import uvicorn
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from mcp_types import ElicitRequestURLParams, ElicitResult

from conftest import ISSUER, RS1, Registered, basic, code_for, remember
from frontdesk.asgi import served
from frontdesk.core import Frontdesk
from frontdesk.oauth.account import revoke_app
from frontdesk.oauth.registration import register
from frontdesk.oauth.resources import ResourceError, create
from frontdesk.storage import audit
from frontdesk.vault.mcp_tools import ApiCall, ToolRefused, add_tool_scopes, needed_scopes, result_of
from frontdesk.vault.proxy import ProxyResponse
from peers.oidc_provider import Op, running_op
from scripted_person import Answered, sign_in_and_consent
from vault.people import ALICE_AT_OP, BOB_AT_OP, OP_CLIENT, PASSWORD, VAULT, World, connect, signed_in, world

MCP = ISSUER + "/mcp"
METADATA = "/.well-known/oauth-protected-resource/mcp"
TOOL_SCOPES = ("vault.connections.read", "vault.call", "vault.connect")
REDIRECT_URI = "http://localhost:33418/callback"  # nothing listens: the scripted person stops there
INITIALIZE = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}  # fmt: skip
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Op]:
    with running_op(tmp_path_factory.mktemp("op"), clients=[OP_CLIENT], accounts=[ALICE_AT_OP, BOB_AT_OP]) as up:
        yield up


@pytest.fixture
def w(fd: Frontdesk, op: Op, secrets_seen: set[str]) -> World:
    add_tool_scopes(fd)  # as the app does when it is built; the assistant below is registered for them
    made = world(fd, op, secrets_seen)
    fd.scopes(fresh=True)  # the integrations' scopes, at once (the cache is allowed to be seconds behind)
    return made


@pytest.fixture
def assistant(w: World, secrets_seen: set[str]) -> Registered:
    """An AI assistant the operator registered, for the tools and both integrations."""
    client, secret = register(
        w.fd, name="Assistant", client_id="assistant", redirect_uris=["https://assistant.example/cb"],
        grant_types=["authorization_code", "refresh_token"],
        scope=" ".join((*TOOL_SCOPES, "vault:calendar", "vault:mail")),
    )  # fmt: skip
    remember(secrets_seen, secret)
    return Registered(client.client_id, secret, "https://assistant.example/cb")


async def mcp_token(http: httpx.AsyncClient, client: Registered, scope: str, resource: str = MCP) -> str:
    """Alice's access token for ``client``, through the real forms."""
    browser = await signed_in(http, "alice")
    code, verifier = await code_for(browser, client, scope=scope, resource=resource)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": client.redirect_uri}
    answer = await http.post("/token", data={**data, "code_verifier": verifier}, auth=basic(client))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def tools_call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": name, "arguments": arguments}}


def challenge(response: httpx.Response) -> str:
    return response.headers["www-authenticate"]


# --- the resource and its challenges, on the wire -------------------------------------------------------------------


async def test_AG_PRM_02_the_metadata_names_mcp_exactly_with_the_tool_and_vault_scopes(
    http: httpx.AsyncClient, w: World
) -> None:
    answer = await http.get(METADATA)
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["resource"] == MCP
    assert document["authorization_servers"] == [ISSUER]
    assert set(TOOL_SCOPES) | {"vault:calendar", "vault:mail"} == set(document["scopes_supported"])
    assert "offline_access" not in document["scopes_supported"]  # AG-MCP-06


async def test_AG_PRM_03_no_token_is_401_naming_the_metadata_and_the_first_scope(http: httpx.AsyncClient) -> None:
    refused = await http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
    assert refused.status_code == 401, refused.text
    assert f'resource_metadata="{ISSUER}{METADATA}"' in challenge(refused)
    assert 'scope="vault.connections.read"' in challenge(refused)
    assert "error=" not in challenge(refused)


async def test_AG_MCP_07_a_token_for_the_vault_or_no_person_is_401_at_mcp(
    http: httpx.AsyncClient, w: World, assistant: Registered
) -> None:
    """The vault's own audience, another resource's, and a client's own token (no person) do not open /mcp."""
    create(w.fd, RS1, "Resource server one")
    for_vault = await mcp_token(http, assistant, "vault:calendar", resource=VAULT)
    for_rs1 = await mcp_token(http, assistant, "vault.call", resource=RS1)
    for token in (for_vault, for_rs1, "not.a.token"):
        refused = await http.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": f"Bearer {token}"})
        assert refused.status_code == 401, refused.text
        assert 'error="invalid_token"' in challenge(refused)


async def test_a_revoked_grant_ends_the_mcp_token_at_once(
    http: httpx.AsyncClient, w: World, assistant: Registered
) -> None:
    token = await mcp_token(http, assistant, "vault.connections.read")
    call = tools_call("call_api", integration="calendar", method="GET", path="me")
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {token}"}
    assert (await http.post("/mcp", json=call, headers=headers)).status_code == 403  # live: a scope short
    revoke_app(w.fd, w.alice, assistant.client_id, None)
    refused = await http.post("/mcp", json=call, headers=headers)
    assert refused.status_code == 401, refused.text
    assert 'error="invalid_token"' in challenge(refused)


async def test_AG_PRM_05_a_tool_without_its_scopes_is_403_naming_all_it_needs(
    http: httpx.AsyncClient, w: World, assistant: Registered
) -> None:
    token = await mcp_token(http, assistant, "vault.connections.read")
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {token}"}
    for call, needed in (
        (tools_call("call_api", integration="calendar", method="GET", path="me"), "vault.call vault:calendar"),
        (tools_call("start_connection", integration="mail"), "vault.connect vault:mail"),
        (tools_call("list_connections", integration="mail"), "vault.connections.read vault:mail"),
    ):
        refused = await http.post("/mcp", json=call, headers=headers)
        assert refused.status_code == 403, refused.text
        assert 'error="insufficient_scope"' in challenge(refused)
        assert f'scope="{needed}"' in challenge(refused)
        assert f'resource_metadata="{ISSUER}{METADATA}"' in challenge(refused)


async def test_mcp_is_a_built_in_resource_and_its_tool_scopes_are_its_own(w: World) -> None:
    scopes = w.fd.scopes(fresh=True)
    assert scopes["vault.call"] == "Use your connected accounts for you, within what each connection allows"
    with pytest.raises(ResourceError, match="built in"):
        create(w.fd, MCP, "Not the MCP server")
    with pytest.raises(ResourceError, match="MCP tools"):
        create(w.fd, RS1, "Resource server one", scope="vault.call")


# --- pure rules -----------------------------------------------------------------------------------------------------


def test_a_tool_needs_its_scope_and_the_known_integration_it_names() -> None:
    known = {"vault:calendar"}
    assert needed_scopes("call_api", {"integration": "calendar"}, known) == ("vault.call", "vault:calendar")
    assert needed_scopes("call_api", {"connection": "conn_1"}, known) == ("vault.call",)
    assert needed_scopes("start_connection", {"integration": "nosuch"}, known) == ("vault.connect",)
    assert needed_scopes("start_connection", {"integration": ["calendar"]}, known) == ("vault.connect",)
    assert needed_scopes("no_such_tool", {"integration": "calendar"}, known) == ()


def test_an_api_call_is_checked_before_it_leaves() -> None:
    ok = ApiCall.checked(None, "calendar", "get", "events", {"q": ["a b", 2], "on": True}, None, 100)
    assert (ok.method, ok.query, ok.body) == ("GET", "q=a+b&q=2&on=true", b"")
    for args in (
        ("conn_1", "calendar", "GET", "x", None, None),  # both
        (None, None, "GET", "x", None, None),  # neither
        (None, "calendar", "TRACE", "x", None, None),
        (None, "calendar", "GET", "", None, None),
        (None, "calendar", "GET", "x", None, {"a": 1}),  # a GET has no body
        (None, "calendar", "POST", "x", None, {"a": "x" * 200}),  # over the cap
        (None, "calendar", "GET", "x", {"q": {"nested": 1}}, None),
    ):
        with pytest.raises(ToolRefused):
            ApiCall.checked(*args, 100)  # type: ignore[arg-type]


def test_a_result_is_the_providers_status_and_body_capped_and_without_headers() -> None:
    json_answer = ProxyResponse(200, [("content-type", "application/json"), ("etag", "x")], b'{"a": 1}')
    assert result_of(json_answer) == {"status": 200, "content_type": "application/json", "body": {"a": 1}}
    assert result_of(ProxyResponse(200, [], b"\xff\xfe"))["note"] == "2 bytes that are not text, not shown"
    with pytest.raises(ToolRefused, match="larger than 4 bytes"):
        result_of(ProxyResponse(200, [], b"12345"), limit=4)


# --- the official Python MCP client, end to end ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _ToServer(httpx.AsyncHTTPTransport):
    """https://as.example as the browser sees it, served on loopback (the Host header stays the issuer's)."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self.port)
        inner = httpx.Request(request.method, url, headers=request.headers, stream=request.stream)
        return await super().handle_async_request(inner)


class _ToServer2(httpx2.AsyncHTTPTransport):
    """The same for the MCP SDK's HTTP client (httpx2)."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self.port)
        inner = httpx2.Request(request.method, url, headers=request.headers, stream=request.stream)
        return await super().handle_async_request(inner)


class ServedHere:
    """frontdesk as ``frontdesk serve`` runs it (lifespan included), on a loopback port of this process."""

    def __init__(self, fd: Frontdesk) -> None:
        self.port = _free_port()
        config = uvicorn.Config(served(fd), host="127.0.0.1", port=self.port, access_log=False, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive(), "the server did not start"
            assert time.monotonic() < deadline, "the server did not start in time"
            time.sleep(0.05)

    def stop(self) -> None:
        """Shut down; the lifespan's end writes the audit events queued meanwhile."""
        self.server.should_exit = True
        self.thread.join(20)


@pytest.fixture
def served_here(fd: Frontdesk) -> Iterator[ServedHere]:
    server = ServedHere(fd)
    yield server
    server.stop()


@dataclass
class _Storage:
    client: OAuthClientInformationFull | None = None
    tokens: OAuthToken | None = None
    scopes: list[str] = field(default_factory=list)

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        remember(set(), tokens.access_token, tokens.refresh_token)
        self.tokens = tokens
        self.scopes.append(tokens.scope or "")

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        remember(set(), client_info.client_secret)
        self.client = client_info


async def _elicited(context: Any, params: Any) -> ElicitResult:
    assert isinstance(params, ElicitRequestURLParams)
    _ELICITED.append(params.url)
    return ElicitResult(action="accept")


_ELICITED: list[str] = []


def _structured(result: Any) -> Any:
    assert not result.is_error, result
    return result.structured_content


@asynccontextmanager
async def _session(port: int, storage: _Storage, answers: list[Answered]) -> AsyncIterator[Client]:
    async def redirect_handler(authorization_url: str) -> None:
        answers.append(
            await sign_in_and_consent(authorization_url, REDIRECT_URI, "alice", PASSWORD, transport=_ToServer(port))
        )

    async def callback_handler() -> AuthorizationCodeResult:
        code = answers[-1].parameter("code")
        assert code is not None, answers[-1].callback
        remember(set(), code)
        return AuthorizationCodeResult(
            code=code, state=answers[-1].parameter("state"), iss=answers[-1].parameter("iss")
        )

    metadata = OAuthClientMetadata(
        client_name="MCP Python SDK (vault tools)", redirect_uris=[REDIRECT_URI],  # type: ignore[list-item]
        grant_types=["authorization_code", "refresh_token"], response_types=["code"], token_endpoint_auth_method="none",
    )  # fmt: skip
    provider = OAuthClientProvider(MCP, metadata, storage, redirect_handler, callback_handler)
    http = httpx2.AsyncClient(auth=provider, timeout=30.0, transport=_ToServer2(port))
    async with (
        http,
        Client(streamable_http_client(MCP, http_client=http), mode="legacy", elicitation_callback=_elicited) as client,
    ):
        yield client


async def test_the_python_mcp_client_signs_in_lists_the_tools_and_calls_the_persons_connection(
    http: httpx.AsyncClient, w: World, served_here: ServedHere
) -> None:
    """Dynamic registration, sign-in and consent through the real pages, a step-up per tool, Alice's calendar at
    the provider reached as her, Bob's not at all, a connect link by URL elicitation, and no token in any result."""
    calendar = await connect(http, w, "calendar", w.alice, ALICE_AT_OP)
    bobs = await connect(http, w, "calendar", w.bob, BOB_AT_OP)
    stored = [w.vault.fresh(r).credentials for r in (w.vault.connection(calendar), w.vault.connection(bobs)) if r]
    secrets_ = [s for c in stored if c for s in (c.access_token, c.refresh_token) if s]
    assert len(secrets_) >= 2
    storage, answers, results = _Storage(), list[Answered](), list[Any]()
    _ELICITED.clear()
    async with _session(served_here.port, storage, answers) as client:
        assert sorted(t.name for t in (await client.list_tools()).tools) == [
            "call_api", "list_connections", "start_connection",
        ]  # fmt: skip
        listed = _structured(await client.call_tool("list_connections", {"integration": "calendar"}))
        results.append(listed)
        assert [(c["id"], c["integration"], c["status"]) for c in listed["connections"]] == [
            (calendar, "calendar", "active")
        ]
        me = _structured(await client.call_tool("call_api", {"integration": "calendar", "method": "GET", "path": "me"}))
        results.append(me)
        assert (me["status"], me["body"]["sub"]) == (200, ALICE_AT_OP.id)
        refused = await client.call_tool("call_api", {"connection": bobs, "method": "GET", "path": "me"})
        results.append(refused.model_dump())
        assert refused.is_error
        assert "does not reach that connection" in refused.content[0].text
        started = _structured(await client.call_tool("start_connection", {"integration": "mail"}))
        results.append(started)
    assert (started["status"], started["reason"], started["elicitation"]) == (
        "authorization_required", "not_connected", "accept",
    )  # fmt: skip
    assert "authorization_url" not in started  # URL elicitation: the link went to the person, not the model
    assert [u.split("/fd_vc_")[0] for u in _ELICITED] == [ISSUER + "/vault/connect"]
    # The first token asked for what the first challenge named (the SDK adds offline_access, SEP-2207); each
    # tool's step-up added what it needed.
    assert set(storage.scopes[0].split()) - {"offline_access"} == {"vault.connections.read"}
    assert set(storage.scopes[-1].split()) >= {*TOOL_SCOPES, "vault:calendar", "vault:mail"}
    assert all("MCP Python SDK (vault tools)" in " ".join(a.consent_pages) for a in answers)
    text = json.dumps(results)
    assert not [s for s in secrets_ if s in text]


async def test_every_tool_call_is_audited_with_the_client_and_the_person(
    http: httpx.AsyncClient, w: World, served_here: ServedHere
) -> None:
    await connect(http, w, "calendar", w.alice, ALICE_AT_OP)
    storage: _Storage = _Storage()
    answers: list[Answered] = []
    async with _session(served_here.port, storage, answers) as client:
        _structured(await client.call_tool("call_api", {"integration": "calendar", "method": "GET", "path": "me"}))
        nosuch = {"connection": "conn_nosuch", "method": "GET", "path": "x"}
        assert (await client.call_tool("call_api", nosuch)).is_error
    served_here.stop()
    assert storage.client is not None
    events = [e for e in audit.tail(w.fd.engine, 200) if e.event in ("vault.mcp_tool", "vault.proxy")]
    shown = sorted((e.event, e.outcome, e.client_id, e.user_id, e.detail.get("tool")) for e in events)
    client_id = storage.client.client_id
    assert shown == [
        ("vault.mcp_tool", "failure", client_id, w.alice, "call_api"),
        ("vault.mcp_tool", "success", client_id, w.alice, "call_api"),
        ("vault.proxy", "success", client_id, w.alice, None),
    ]
