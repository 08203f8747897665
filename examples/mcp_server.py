"""A small MCP server whose access tokens come from frontdesk: the official MCP Python SDK (``mcp``), streamable
HTTP, guarded by ``frontdesk.resource_server``.

- Every request needs a token frontdesk issued for this server (``aud`` = ``MCP_RESOURCE``) with ``notes.read``.
  Without one the answer is ``401`` with ``WWW-Authenticate: Bearer resource_metadata="…"``: an MCP client reads
  the RFC 9728 metadata there, finds frontdesk, registers itself and signs the person in.
- ``add_note`` also needs ``notes.write``. Calling it with a read-only token answers ``403 insufficient_scope``
  with ``scope="notes.read notes.write"``, and the client steps up: it asks the person for the new scope.
- ``whoami`` shows what the token says: the person (``sub``), the app (``client_id``) and the scopes.

Environment: ``FRONTDESK_ISSUER`` (default ``http://127.0.0.1:8000``), ``MCP_RESOURCE`` (this server's URL, the
resource its tokens name; default ``http://127.0.0.1:8001/mcp``), ``MCP_HOST`` and ``MCP_PORT`` (where to listen;
default ``127.0.0.1`` and the resource URL's port).
Register the resource first: ``frontdesk resource create http://127.0.0.1:8001/mcp --name "Notes" --scope
"notes.read notes.write"``. See examples/README.md.
"""

from __future__ import annotations

import os
from collections import defaultdict
from urllib.parse import urlsplit

import httpx
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp

from frontdesk.resource_server import JWTValidator, ProtectedResource
from frontdesk.resource_server.mcp import protect

READ, WRITE = "notes.read", "notes.write"


def _caller() -> str:
    token = get_access_token()
    assert token is not None  # the kit lets no request without one reach a tool
    return token.subject or token.client_id


def build(issuer: str, resource_url: str, *, http: httpx.AsyncClient | None = None) -> tuple[ASGIApp, MCPServer]:
    """The protected app and its MCP server (tests run the app in process; ``http`` reaches frontdesk)."""
    notes: dict[str, list[str]] = defaultdict(list)  # by person: one person never sees another's notes
    server = MCPServer("frontdesk notes", instructions="Keeps short notes for the signed-in person.")

    @server.tool()
    def list_notes() -> list[str]:
        """The signed-in person's notes, oldest first."""
        return list(notes[_caller()])

    @server.tool()
    def add_note(text: str) -> str:
        """Keep a note for the signed-in person (needs the notes.write scope)."""
        notes[_caller()].append(text[:500])
        return f"kept; you have {len(notes[_caller()])} notes"

    @server.tool()
    def whoami() -> dict[str, object]:
        """Who the access token says is calling: the person, the app and the scopes granted."""
        token = get_access_token()
        assert token is not None
        return {"subject": token.subject, "client_id": token.client_id, "scopes": token.scopes}

    resource = ProtectedResource(resource_url, [issuer], [READ, WRITE], resource_name="frontdesk notes")
    validator = JWTValidator(issuer, resource_url, http=http)
    parts = urlsplit(resource_url)
    # Built without the SDK's own auth: protect() adds the kit in front, with per-tool scopes for the step-up.
    app = server.streamable_http_app(streamable_http_path=parts.path or "/", host=parts.hostname or "127.0.0.1")
    return protect(app, validator, resource, required_scopes=[READ], tools={"add_note": [WRITE]}), server


def main() -> None:
    import uvicorn

    issuer = os.environ.get("FRONTDESK_ISSUER", "http://127.0.0.1:8000")
    resource_url = os.environ.get("MCP_RESOURCE", "http://127.0.0.1:8001/mcp")
    parts = urlsplit(resource_url)
    port = int(os.environ.get("MCP_PORT", parts.port or (443 if parts.scheme == "https" else 80)))
    app, _ = build(issuer, resource_url)
    print(f"MCP server at {resource_url}, tokens from {issuer}", flush=True)
    uvicorn.run(app, host=os.environ.get("MCP_HOST", "127.0.0.1"), port=port)


if __name__ == "__main__":
    main()
