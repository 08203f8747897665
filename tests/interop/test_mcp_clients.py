"""The official MCP SDK clients — TypeScript (npm ``@modelcontextprotocol/sdk``, on the machine's Node.js) and
Python (PyPI ``mcp``) — connect to an MCP server protected by frontdesk (``examples/mcp_server.py``, its own
process) with nothing registered by hand: by dynamic registration (RFC 7591) and by client ID metadata document
(served over https on loopback, a throwaway CA trusted through ``SSL_CERT_FILE``); and, as before, with a client
the operator registered. Each finds frontdesk from the MCP server's 401 (``WWW-Authenticate resource_metadata`` →
RFC 9728 → RFC 8414), sends the person through the real sign-in and consent pages with PKCE and ``resource``
(RFC 8707), initializes, lists and calls tools, and steps up to a wider scope when a tool answers 403
``insufficient_scope``. The kit refuses a token minted for another resource."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from conftest import _backends, remember
from metadata_host import MetadataHost
from scripted_person import sign_in_and_consent
from servers import Server, _free_port, _stop, serving

from . import python_mcp_client
from .conftest import Person

pytestmark = pytest.mark.interop

HERE = Path(__file__).parent
EXAMPLE = HERE.parent.parent / "examples" / "mcp_server.py"
NPM_TIMEOUT = 300.0
CLIENT_TIMEOUT = 120.0
START_TIMEOUT = 30.0
READ, WRITE = "notes.read", "notes.write"
# Where MCP clients listen for the redirect back (RFC 8252 §7.3); nothing listens: the scripted person stops there.
REDIRECT_URI = "http://localhost:33418/callback"
# A resource of its own, with its own scope: a token for it must not open the notes server.
OTHER_RESOURCE, OTHER_SCOPE = "https://calendar.example/mcp", "calendar.read"


@dataclass(frozen=True)
class McpServer:
    url: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture(scope="module")
def metadata_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MetadataHost]:
    """The https host of the client ID metadata documents, started before frontdesk, which must trust its CA."""
    with MetadataHost(tmp_path_factory.mktemp("metadata-host")) as host:
        yield host


@pytest.fixture(scope="module", params=_backends())
def frontdesk_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, metadata_host: MetadataHost
) -> Iterator[Server]:
    """tests/interop's served frontdesk, which may fetch metadata documents from a loopback host (the logged
    development relaxation ``allow_private_metadata_hosts``) and trusts the metadata host's throwaway CA."""
    directory = tmp_path_factory.mktemp("frontdesk")
    config = directory / "frontdesk.toml"
    config.write_text("[registration]\nallow_private_metadata_hosts = true\n")
    env = {"FRONTDESK_CONFIG": str(config), "SSL_CERT_FILE": str(metadata_host.cafile)}
    with serving(request.param, directory, env=env) as server:
        yield server


def _wait_for(process: subprocess.Popen[bytes], url: str) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def mcp_server(frontdesk_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[McpServer]:
    """examples/mcp_server.py in its own process on a free port, its resource registered with the CLI as the
    README tells an operator to, and a second resource nobody serves here."""
    log = tmp_path_factory.mktemp("mcp-server") / "mcp_server.log"
    process: subprocess.Popen[bytes] | None = None
    for _ in range(3):
        port = _free_port()
        url = f"http://127.0.0.1:{port}/mcp"
        env = {**frontdesk_server.env, "FRONTDESK_ISSUER": frontdesk_server.issuer, "MCP_RESOURCE": url}
        with log.open("ab") as sink:
            process = subprocess.Popen(
                [sys.executable, str(EXAMPLE)], env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink
            )
        if _wait_for(process, f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp"):
            break
        _stop(process)
    else:
        pytest.fail(f"examples/mcp_server.py did not start; its log:\n{log.read_text()}")
    frontdesk_server.cli("resource", "create", url, "--name", "Notes", "--scope", f"{READ} {WRITE}")
    frontdesk_server.cli("resource", "create", OTHER_RESOURCE, "--name", "Calendar", "--scope", OTHER_SCOPE)
    try:
        yield McpServer(url, log)
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def node() -> str:
    """The node binary (Node.js 20 or newer), after ``npm ci`` in tests/interop when a dependency is missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("the MCP SDK interop test needs Node.js 20 or newer with npm on PATH", pytrace=False)
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
    match = re.match(r"v(\d+)\.", version.strip())
    if not match or int(match.group(1)) < 20:
        pytest.fail(f"@modelcontextprotocol/sdk needs Node.js 20 or newer; found {version.strip()!r}", pytrace=False)
    wanted = json.loads((HERE / "package.json").read_text())["dependencies"]
    if not all((HERE / "node_modules" / name / "package.json").exists() for name in wanted):
        command = [npm, "ci", "--no-audit", "--no-fund"]
        done = subprocess.run(command, cwd=HERE, capture_output=True, text=True, timeout=NPM_TIMEOUT, check=False)
        if done.returncode != 0:
            pytest.fail(f"`npm ci` in {HERE} failed:\n{done.stdout}{done.stderr}", pytrace=False)
    return node


@dataclass(frozen=True)
class Way:
    """How a client comes to have a client_id: ``register`` (RFC 7591), ``document`` (its metadata document's
    URL) or ``operator`` (``frontdesk client create``)."""

    name: str
    client_id: str | None = None
    client_metadata_url: str | None = None


WAYS = ["register", "document", "operator"]


def _way(name: str, sdk: str, frontdesk: Server, host: MetadataHost) -> Way:
    if name == "document":
        url = host.url(f"/{sdk}/client.json")
        host.serve_document(
            f"/{sdk}/client.json",
            {
                "client_id": url,
                "client_name": f"MCP {sdk} SDK (frontdesk interop)",
                "redirect_uris": [REDIRECT_URI],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
            },
            Cache_Control="max-age=600",
        )
        return Way(name, client_metadata_url=url)
    if name == "operator":
        created = frontdesk.cli(
            "client", "create", "--name", f"MCP {sdk} SDK", "--public", "--redirect-uri", REDIRECT_URI,
            "--grant-type", "authorization_code", "--grant-type", "refresh_token", "--scope", f"{READ} {WRITE}",
        )  # fmt: skip
        return Way(name, client_id=created["client_id"])
    return Way(name)


def _assert_connected(
    result: dict[str, Any], way: Way, frontdesk: Server, mcp: McpServer, person: Person, note: str
) -> None:
    """What both SDKs must have done, read from what they sent and got."""
    client_id = result["client_id"]
    requests = result["requests"]
    # MCP authorization: the 401's resource_metadata (RFC 9728 §5.1), then the metadata of the server it names
    # (RFC 8414 §3), then registration (RFC 7591) only when the client had no client_id.
    discovery = [
        f"GET {mcp.url.removesuffix('/mcp')}/.well-known/oauth-protected-resource/mcp",
        f"GET {frontdesk.issuer}/.well-known/oauth-authorization-server",
    ]
    assert [r for r in requests if r in discovery][:2] == discovery, requests
    registered = f"POST {frontdesk.issuer}/register" in requests
    assert registered is (way.name == "register"), requests
    shown = frontdesk.cli("client", "show", client_id)
    # Only an unvetted client carries the mark (CLI, account page, consent).
    assert shown.get("registered_by") == {"register": "self", "document": "document", "operator": None}[way.name]
    if way.client_metadata_url is not None:
        assert client_id == way.client_metadata_url
    if way.client_id is not None:
        assert client_id == way.client_id

    first, step_up = result["authorization_requests"]
    for request in (first, step_up):
        # PKCE S256 (RFC 7636, required by MCP), and the resource named (RFC 8707, MCP 2025-06-18).
        assert request["code_challenge_method"] == "S256"
        assert len(request["code_challenge"]) == 43
        assert request["resource"] == mcp.url
        assert request["client_id"] == client_id
    assert READ in first["scope"].split()
    assert WRITE not in first["scope"].split()
    assert {READ, WRITE} <= set(step_up["scope"].split())
    # RFC 9207: every redirect back names the issuer.
    assert all("iss" in params and "code" in params for params in result["redirect_params"])

    first_page, step_up_page = result["consent_pages"]
    assert READ in first_page
    assert WRITE not in first_page
    assert WRITE in step_up_page  # consent for the new scope, not a silent widening
    unchecked = "was not checked by the operator"
    assert (unchecked in first_page) is (way.name != "operator")
    if way.client_metadata_url is not None:
        # Client ID metadata document §6.4: the consent page names the document's host.
        assert f"App at {urlsplit(way.client_metadata_url).netloc}" in first_page

    for claims in result["token_claims"]:
        assert claims["aud"] == mcp.url
        assert claims["iss"] == frontdesk.issuer
        assert claims["client_id"] == client_id
        assert claims["sub"] == person.sub

    assert result["initialized"]["server_name"] == "frontdesk notes"
    assert result["initialized"]["protocol_version"] >= "2025-06-18"  # MCP's revisions with OAuth resource servers
    assert result["tools"] == ["add_note", "list_notes", "whoami"]
    whoami = result["whoami"]
    assert (whoami["subject"], whoami["client_id"]) == (person.sub, client_id)
    assert READ in whoami["scopes"]
    assert WRITE not in whoami["scopes"]
    assert {READ, WRITE} <= set(result["whoami_after_step_up"]["scopes"])
    assert result["add_note"].startswith("kept;")
    assert result["notes"][-1] == note


@pytest.mark.parametrize("way", WAYS)
async def test_python_sdk_connects_and_steps_up(
    way: str, frontdesk_server: Server, mcp_server: McpServer, metadata_host: MetadataHost, interop_person: Person
) -> None:
    """The MCP Python SDK connects with no operator in the loop (or with an operator's client), initializes, lists
    and calls tools, and steps up to notes.write through a second consent when add_note answers 403."""
    chosen = _way(way, "python", frontdesk_server, metadata_host)
    note = f"from the Python SDK, client by {way}"
    result = await python_mcp_client.connect(
        mcp_server.url,
        REDIRECT_URI,
        interop_person.username,
        interop_person.password,
        note,
        client_metadata_url=chosen.client_metadata_url,
        client_id=chosen.client_id,
    )
    _assert_connected(result, chosen, frontdesk_server, mcp_server, interop_person, note)


@pytest.mark.parametrize("way", WAYS)
def test_typescript_sdk_connects_and_steps_up(
    way: str,
    node: str,
    frontdesk_server: Server,
    mcp_server: McpServer,
    metadata_host: MetadataHost,
    interop_person: Person,
) -> None:
    """The MCP TypeScript SDK connects with no operator in the loop (or with an operator's client), initializes,
    lists and calls tools, and steps up to notes.write through a second consent when add_note answers 403."""
    chosen = _way(way, "typescript", frontdesk_server, metadata_host)
    note = f"from the TypeScript SDK, client by {way}"
    command = [
        node,
        str(HERE / "mcp_client.mjs"),
        f"--server={mcp_server.url}",
        f"--redirect-uri={REDIRECT_URI}",
        f"--username={interop_person.username}",
        f"--note={note}",
    ]
    if chosen.client_metadata_url is not None:
        command.append(f"--client-metadata-url={chosen.client_metadata_url}")
    if chosen.client_id is not None:
        command.append(f"--client-id={chosen.client_id}")
    env = {**os.environ, "MCP_PASSWORD": interop_person.password}
    done = subprocess.run(command, cwd=HERE, env=env, capture_output=True, text=True, timeout=CLIENT_TIMEOUT)
    context = f"mcp_client.mjs exited {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    context += (
        f"\nfrontdesk log:\n{frontdesk_server.log_text()[-5000:]}\nMCP server log:\n{mcp_server.log_text()[-5000:]}"
    )
    assert done.returncode == 0, context
    result = json.loads(done.stdout)
    assert result["ok"] is True, context
    _assert_connected(result, chosen, frontdesk_server, mcp_server, interop_person, note)


async def _token_for(frontdesk: Server, person: Person, client_id: str, resource: str, scope: str) -> str:
    """An access token from the code flow (PKCE S256) through the real pages, naming ``resource`` (RFC 8707)."""
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "resource": resource,
        "state": secrets.token_urlsafe(16),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    answered = await sign_in_and_consent(
        f"{frontdesk.issuer}/authorize?{urlencode(query)}", REDIRECT_URI, person.username, person.password
    )
    code = answered.parameter("code")
    remember(set(), code)
    async with httpx.AsyncClient(timeout=10.0) as http:
        response = await http.post(
            f"{frontdesk.issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "client_id": client_id,
                "code_verifier": verifier,
                "resource": resource,
            },
        )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    remember(set(), token, response.json().get("refresh_token"))
    assert python_mcp_client.claims_of(token)["aud"] == resource
    return token


async def test_the_kit_refuses_a_token_for_another_resource(
    frontdesk_server: Server, mcp_server: McpServer, interop_person: Person
) -> None:
    """A token frontdesk minted for another resource (its aud) opens nothing on the notes server: 401 invalid_token
    with the resource metadata, while the same client's token for the notes server is let in."""
    async with httpx.AsyncClient(timeout=10.0) as http:
        registered = await http.post(
            f"{frontdesk_server.issuer}/register",
            json={
                "client_name": "Two-resource app",
                "redirect_uris": [REDIRECT_URI],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
                "grant_types": ["authorization_code"],
            },
        )
        assert registered.status_code == 201, registered.text
        remember(set(), registered.json()["registration_access_token"])
        client_id = registered.json()["client_id"]
        initialize = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "1"},
            },
        }
        headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
        answers = {}
        for resource, scope in ((OTHER_RESOURCE, OTHER_SCOPE), (mcp_server.url, READ)):
            token = await _token_for(frontdesk_server, interop_person, client_id, resource, scope)
            answers[resource] = await http.post(
                mcp_server.url, json=initialize, headers={**headers, "Authorization": f"Bearer {token}"}
            )
    refused = answers[OTHER_RESOURCE]
    assert refused.status_code == 401, refused.text
    challenge = refused.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge
    assert f'resource_metadata="{mcp_server.url.removesuffix("/mcp")}/.well-known/oauth-protected-resource/mcp"' in (
        challenge
    )
    assert answers[mcp_server.url].status_code == 200, answers[mcp_server.url].text
