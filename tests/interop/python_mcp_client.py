"""The official MCP Python SDK's client (PyPI ``mcp``: ``OAuthClientProvider`` on the streamable HTTP transport)
driving an MCP server whose tokens come from frontdesk, as an MCP host would: the SDK finds frontdesk from the
server's 401, registers itself (or names its metadata document, or uses a client the operator registered), and sends
the person to the authorization URL; here the redirect handler is a scripted person (``scripted_person``).

``connect`` returns what ``mcp_client.mjs`` prints for the TypeScript SDK, so one set of assertions reads both."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from conftest import remember
from scripted_person import Answered, sign_in_and_consent

TIMEOUT = 30.0


def claims_of(jwt: str) -> dict[str, Any]:
    """The payload of a JWT, unverified: what the test reads of a token (the kit verified it)."""
    payload = jwt.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


@dataclass
class _Storage:
    """The SDK's ``TokenStorage``, in memory; every token it is handed is remembered (the suite's log scan)."""

    client: OAuthClientInformationFull | None = None
    tokens: OAuthToken | None = None
    claims: list[dict[str, Any]] = field(default_factory=list)

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        remember(set(), tokens.access_token, tokens.refresh_token)
        self.tokens = tokens
        self.claims.append(claims_of(tokens.access_token))

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        remember(set(), client_info.client_secret)
        self.client = client_info


def _structured(result: Any) -> Any:
    assert not result.is_error, result
    if result.structured_content is not None:
        content = result.structured_content
        # A tool returning a bare value has it wrapped as {"result": …} (MCP structured output).
        return content["result"] if isinstance(content, dict) and set(content) == {"result"} else content
    return result.content[0].text


async def connect(
    server_url: str,
    redirect_uri: str,
    username: str,
    password: str,
    note: str,
    *,
    client_metadata_url: str | None = None,
    client_id: str | None = None,
) -> dict[str, Any]:
    """Connect (dynamic registration by default; ``client_metadata_url`` or a pre-registered ``client_id``
    instead), then initialize, list and call tools, and step up to ``notes.write`` for ``add_note``."""
    requests: list[str] = []
    answers: list[Answered] = []
    authorization_requests: list[dict[str, str]] = []
    storage = _Storage()
    if client_id is not None:
        storage.client = OAuthClientInformationFull(
            client_id=client_id, redirect_uris=[redirect_uri], token_endpoint_auth_method="none"
        )

    async def redirect_handler(authorization_url: str) -> None:
        authorization_requests.append(dict(parse_qsl(urlsplit(authorization_url).query)))
        answers.append(await sign_in_and_consent(authorization_url, redirect_uri, username, password))

    async def callback_handler() -> AuthorizationCodeResult:
        answered = answers[-1]
        code = answered.parameter("code")
        assert code is not None, f"no code in the redirect back: {answered.callback}"
        remember(set(), code)
        return AuthorizationCodeResult(code=code, state=answered.parameter("state"), iss=answered.parameter("iss"))

    async def record(request: httpx2.Request) -> None:
        requests.append(f"{request.method} {request.url.copy_with(query=None)}")

    metadata = OAuthClientMetadata(
        client_name="MCP Python SDK (frontdesk interop)",
        redirect_uris=[redirect_uri],  # type: ignore[list-item]  # pydantic parses the str
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    provider = OAuthClientProvider(
        server_url, metadata, storage, redirect_handler, callback_handler, client_metadata_url=client_metadata_url
    )
    result: dict[str, Any] = {"requests": requests}
    http = httpx2.AsyncClient(auth=provider, timeout=TIMEOUT, event_hooks={"request": [record]})
    # mode="legacy": the initialize handshake (the 2025 revisions), not the 2026 server/discover probe.
    async with http, Client(streamable_http_client(server_url, http_client=http), mode="legacy") as client:
        server_info = client.server_info
        result["initialized"] = {
            "protocol_version": client.protocol_version,
            "server_name": server_info.name if server_info else None,
        }
        result["tools"] = sorted(tool.name for tool in (await client.list_tools()).tools)
        result["whoami"] = _structured(await client.call_tool("whoami", {}))
        result["add_note"] = _structured(await client.call_tool("add_note", {"text": note}))
        result["whoami_after_step_up"] = _structured(await client.call_tool("whoami", {}))
        result["notes"] = _structured(await client.call_tool("list_notes", {}))
    assert storage.client is not None
    result["client_id"] = storage.client.client_id
    result["consent_pages"] = [page for answered in answers for page in answered.consent_pages]
    result["authorization_requests"] = authorization_requests
    result["redirect_params"] = [sorted(dict(parse_qsl(urlsplit(a.callback).query))) for a in answers]
    result["token_claims"] = storage.claims
    return result
