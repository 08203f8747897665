"""The kit with the official MCP Python SDK's server, over streamable HTTP, with real frontdesk tokens: the SDK's
own auth with the kit as its token verifier, and examples/mcp_server.py (the kit in front, per-tool step-up)."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

from conftest import ISSUER
from frontdesk.resource_server import JWTValidator, ProtectedResource
from frontdesk.resource_server.mcp import TokenVerifier, auth_settings

from .conftest import OTHER_RESOURCE, READ, RESOURCE, WRITE, Caller

EXAMPLE = Path(__file__).parents[2] / "examples" / "mcp_server.py"
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
}
METADATA_URL = "https://tools.example/.well-known/oauth-protected-resource/mcp"


def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mcp_server_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def answer(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC message of a streamable HTTP response, sent as JSON or as one server-sent event."""
    if response.headers["content-type"].startswith("application/json"):
        return dict(response.json())
    data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
    return dict(json.loads(data[-1]))


class Session:
    """An MCP client session over streamable HTTP (initialize, then calls with the session id)."""

    def __init__(self, client: httpx.AsyncClient, token: str | None) -> None:
        self.client = client
        self.headers = dict(ACCEPT)
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.next_id = 2

    async def initialize(self) -> httpx.Response:
        response = await self.client.post("/mcp", json=INITIALIZE, headers=self.headers)
        if response.status_code == 200:
            self.headers["mcp-session-id"] = response.headers["mcp-session-id"]
            self.headers["mcp-protocol-version"] = "2025-11-25"
            done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            assert (await self.client.post("/mcp", json=done, headers=self.headers)).status_code == 202
        return response

    async def call(self, method: str, params: dict[str, Any] | None = None) -> httpx.Response:
        message = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params or {}}
        self.next_id += 1
        return await self.client.post("/mcp", json=message, headers=self.headers)


Serve = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]


@asynccontextmanager
async def serving(app: Any, server: MCPServer) -> AsyncIterator[httpx.AsyncClient]:
    # The SDK's session manager runs a task group: entered and left in the test's own task (a fixture's
    # teardown would run in another).
    async with server.session_manager.run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://tools.example") as client:
            yield client


@pytest.fixture
def sdk_auth(http: httpx.AsyncClient, registered: None) -> Serve:
    """An MCPServer with the SDK's own auth, the kit as its TokenVerifier."""
    resource = ProtectedResource(RESOURCE, [ISSUER], [READ])
    validator = JWTValidator(ISSUER, RESOURCE, http=http)
    server = MCPServer("notes", token_verifier=TokenVerifier(validator), auth=auth_settings(resource, [READ]))

    @server.tool()
    def echo(text: str) -> str:
        return text

    security = TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=["tools.example"])
    app = server.streamable_http_app(transport_security=security)
    return lambda: serving(app, server)


@pytest.fixture
def notes(http: httpx.AsyncClient, registered: None) -> Serve:
    """examples/mcp_server.py, in process, its validator reaching the frontdesk under test."""
    app, server = example().build(ISSUER, RESOURCE, http=http)
    return lambda: serving(app, server)


async def test_sdk_initialize_with_a_frontdesk_token_succeeds(sdk_auth: Serve, caller: Caller) -> None:
    async with sdk_auth() as client:
        response = await Session(client, await caller.token()).initialize()
        assert response.status_code == 200, response.text
        assert answer(response)["result"]["serverInfo"]["name"] == "notes"


async def test_sdk_initialize_without_a_token_is_401_with_resource_metadata(sdk_auth: Serve) -> None:
    async with sdk_auth() as client:
        response = await Session(client, None).initialize()
        assert response.status_code == 401
        assert f'resource_metadata="{METADATA_URL}"' in response.headers["www-authenticate"]


async def test_sdk_refuses_a_token_for_another_mcp_server(sdk_auth: Serve, caller: Caller) -> None:
    """MCP §Access Token Privilege Restriction: the verifier refuses another audience."""
    async with sdk_auth() as client:
        response = await Session(client, await caller.token(resource=OTHER_RESOURCE)).initialize()
        assert response.status_code == 401


async def test_example_serves_its_metadata(notes: Serve) -> None:
    async with notes() as client:
        response = await client.get("/.well-known/oauth-protected-resource/mcp")
        assert response.status_code == 200
        assert response.json()["resource"] == RESOURCE
        assert response.json()["authorization_servers"] == [ISSUER]
        assert response.json()["scopes_supported"] == [READ, WRITE]


async def test_example_without_a_token_is_401_naming_metadata_and_scope(notes: Serve) -> None:
    """MCP 2025-11-25: the challenge names the metadata and the scope; no error code when no token came."""
    async with notes() as client:
        response = await Session(client, None).initialize()
        assert response.status_code == 401
        challenge = response.headers["www-authenticate"]
        assert challenge == f'Bearer scope="{READ}", resource_metadata="{METADATA_URL}"'


async def test_example_tools_work_with_a_read_token(notes: Serve, caller: Caller) -> None:
    async with notes() as client:
        session = Session(client, await caller.token(READ))
        assert (await session.initialize()).status_code == 200
        listed = answer(await session.call("tools/list"))["result"]["tools"]
        assert {t["name"] for t in listed} == {"list_notes", "add_note", "whoami"}
        who = answer(await session.call("tools/call", {"name": "whoami", "arguments": {}}))
        assert who["result"]["structuredContent"]["client_id"] == "agent-backend"


async def test_example_tool_needing_more_scope_answers_403_with_every_scope(notes: Serve, caller: Caller) -> None:
    """The MCP step-up: ``insufficient_scope`` with all the scopes the call needs, in one challenge."""
    async with notes() as client:
        session = Session(client, await caller.token(READ))
        await session.initialize()
        response = await session.call("tools/call", {"name": "add_note", "arguments": {"text": "hi"}})
        assert response.status_code == 403
        challenge = response.headers["www-authenticate"]
        assert 'error="insufficient_scope"' in challenge
        assert f'scope="{READ} {WRITE}"' in challenge
        assert f'resource_metadata="{METADATA_URL}"' in challenge
        assert response.json()["error"] == "insufficient_scope"


async def test_example_tool_runs_after_the_step_up(notes: Serve, caller: Caller) -> None:
    async with notes() as client:
        session = Session(client, await caller.token(f"{READ} {WRITE}"))
        await session.initialize()
        added = answer(await session.call("tools/call", {"name": "add_note", "arguments": {"text": "hi"}}))
        assert added["result"]["content"][0]["text"] == "kept; you have 1 notes"
        listed = answer(await session.call("tools/call", {"name": "list_notes", "arguments": {}}))
        assert listed["result"]["structuredContent"]["result"] == ["hi"]
