"""OAuth 2.0 Protected Resource Metadata (RFC 9728): the document that tells a client (an MCP client, say) which
authorization server issues tokens for this resource and which scopes it knows.

The document lives at the resource's well-known URL, the suffix inserted between host and path (§3.1:
``https://tools.example/mcp`` → ``https://tools.example/.well-known/oauth-protected-resource/mcp``). MCP clients
(2025-11-25) try that path-suffixed URL first and the root ``/.well-known/oauth-protected-resource`` next, so both
are served.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urlsplit

from .discovery import check_endpoint

__all__ = ["WELL_KNOWN", "ProtectedResource"]

WELL_KNOWN = "/.well-known/oauth-protected-resource"


@dataclass(frozen=True, slots=True)
class ProtectedResource:
    """What a resource server says about itself (RFC 9728 §2)."""

    resource: str
    authorization_servers: Sequence[str]
    scopes_supported: Sequence[str] = ()
    resource_name: str | None = None
    resource_documentation: str | None = None
    _parts: SplitResult = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_endpoint(self.resource)
        parts = urlsplit(self.resource)
        # §1.2: the resource identifier is an https URL with no query and no fragment.
        if parts.query or parts.fragment:
            raise ValueError("a resource identifier has no query or fragment (RFC 9728 §1.2)")
        if not self.authorization_servers:
            raise ValueError("name at least one authorization server (MCP: authorization_servers is required)")
        for server in self.authorization_servers:
            check_endpoint(server)
        # MCP 2026-07-28 "Refresh Tokens": offline_access is the client's business with the authorization server,
        # never something a resource advertises or challenges for.
        if "offline_access" in self.scopes_supported:
            raise ValueError("offline_access is not a scope of a resource")
        object.__setattr__(self, "authorization_servers", tuple(self.authorization_servers))
        object.__setattr__(self, "scopes_supported", tuple(self.scopes_supported))
        object.__setattr__(self, "_parts", parts)

    @property
    def metadata_path(self) -> str:
        """§3.1: the path of the path-suffixed well-known URL (a terminating slash of the resource is dropped)."""
        return WELL_KNOWN + self._parts.path.rstrip("/")

    @property
    def metadata_paths(self) -> tuple[str, ...]:
        """Where the document is served: the path-suffixed URL and, for MCP clients' fallback, the root one."""
        return tuple(dict.fromkeys((self.metadata_path, WELL_KNOWN)))

    @property
    def metadata_url(self) -> str:
        """The URL a ``WWW-Authenticate`` challenge names in ``resource_metadata`` (§5.1)."""
        return f"{self._parts.scheme}://{self._parts.netloc}{self.metadata_path}"

    def document(self) -> dict[str, Any]:
        """§2, §3.2: the metadata; empty optional members are left out."""
        doc: dict[str, Any] = {
            "resource": self.resource,  # §3.3: identical to the identifier the well-known URL was built from
            "authorization_servers": list(self.authorization_servers),
            "bearer_methods_supported": ["header"],  # OAuth 2.1 §5.1: never the query, never the body
        }
        if self.scopes_supported:
            doc["scopes_supported"] = list(self.scopes_supported)
        if self.resource_name:
            doc["resource_name"] = self.resource_name
        if self.resource_documentation:
            doc["resource_documentation"] = self.resource_documentation
        return doc

    def body(self) -> bytes:
        return json.dumps(self.document()).encode()
