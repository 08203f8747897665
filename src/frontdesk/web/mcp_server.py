"""The vault's MCP server (official ``mcp`` SDK) and its three tools, as web/mcp.py mounts it at ``{issuer}/mcp``.

Each tool reads the person from the request's token (``get_access_token()``: the kit put it there), does its work in
``vault/mcp_tools.py`` and answers a plain-words tool error (``ToolError``) for anything it refuses. This module
imports the SDK, which is optional: web/mcp.py imports it only when the SDK is installed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import httpx
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import ToolAnnotations

from ..core import Frontdesk
from ..vault import mcp_tools
from ..vault.person_tokens import PersonVault
from ..vault.service import Vault, vault_of

__all__ = ["vault_server"]

T = TypeVar("T")
Query = dict[str, str | int | float | bool | list[str | int | float | bool]]


def vault_server(fd: Frontdesk, http: Callable[[], httpx.AsyncClient | None]) -> MCPServer:
    """The SDK server with the tools; ``http`` gives the app's HTTP client for proxied calls once the app runs."""
    tools = _Tools(fd, http)
    server: MCPServer = MCPServer(
        "frontdesk vault",
        instructions=(
            "Reach the accounts the person connected (calendar, mail, CRM…) through their provider's API, as that "
            "person, without ever seeing a password or token. When a tool answers authorization_required, give the "
            "person the link (or let them open it) and try again once they have connected."
        ),
    )

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def list_connections(integration: str | None = None) -> dict[str, Any]:
        """The accounts the person connected that this token reaches: integration, provider, status and scopes
        (never a token). Give ``integration`` to see only that one."""
        vault, person = await tools.person()
        return await tools.run(mcp_tools.list_connections(vault, person, integration))

    @server.tool()
    async def call_api(
        method: str,
        path: str,
        connection: str | None = None,
        integration: str | None = None,
        query: Query | None = None,
        body: Any = None,
    ) -> dict[str, Any]:
        """Call the provider's API as the person, through one of their connections: name the ``connection`` (its
        id) or the ``integration``; ``path`` is under the provider's API (``calendars/primary/events``), ``body``
        is sent as JSON. The answer is the provider's status and body, or ``authorization_required`` with a link
        when the person must connect (or reconnect) first."""
        vault, person = await tools.person()
        try:
            call = mcp_tools.ApiCall.checked(
                connection, integration, method, path, query, body, vault.settings.max_body_bytes
            )
        except mcp_tools.ToolRefused as exc:
            raise ToolError(str(exc)) from None
        http = tools.http()
        return await tools.run(mcp_tools.call_api(vault, person, call, http))

    @server.tool()
    async def start_connection(integration: str, ctx: Context) -> dict[str, Any]:
        """A link for the person to connect (or reconnect) their account of ``integration``. Where the client
        supports it the person is shown the link directly (MCP URL elicitation); otherwise give them the link."""
        _, person = await tools.person()
        required = await tools.run(mcp_tools.start_connection(person, integration))
        return await _offered(ctx, required.body())

    return server


async def _offered(ctx: Context, answer: dict[str, Any]) -> dict[str, Any]:
    """MCP 2025-11-25 elicitation ``mode: "url"``: the connect link goes to the person through the client, out of
    the model's context, where the client declared it can; elsewhere the link is in the result for the person."""
    session = ctx.session
    capabilities = session.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    if elicitation is None or elicitation.url is None or not session.can_send_request:
        return answer
    try:
        result = await ctx.elicit_url(answer["message"], answer["authorization_url"], answer["connect_session_id"])
    except MCPError:
        return answer  # the client could not take it after all: the link travels in the result
    shown = {k: v for k, v in answer.items() if k != "authorization_url"}
    return {**shown, "elicitation": result.action}


@dataclass(slots=True)
class _Tools:
    """What every tool starts from: the person the request's token acts for, and the app's HTTP client."""

    fd: Frontdesk
    client: Callable[[], httpx.AsyncClient | None]

    async def person(self) -> tuple[Vault, PersonVault]:
        token = get_access_token()
        if token is None:  # BearerAuth lets no request through without one
            raise ToolError("no access token")
        # Checked again per call: a grant revoked during a session ends it at the next call, not the next session.
        person = await anyio.to_thread.run_sync(mcp_tools.person_of, self.fd, token.token)
        if person is None:
            raise ToolError("this access token is no longer valid: sign in again")
        return vault_of(self.fd), person

    def http(self) -> httpx.AsyncClient:
        client = self.client()
        if client is None:
            raise ToolError("the MCP server is starting; try again")
        return client

    @staticmethod
    async def run(work: Awaitable[T]) -> T:
        try:
            return await work
        except mcp_tools.ToolRefused as exc:
            raise ToolError(str(exc)) from None
