"""The vault's MCP tools (issue 14 item 3): what an AI assistant may do with one person's vault at ``{issuer}/mcp``.

web/mcp.py speaks MCP (the official SDK over streamable HTTP) and checks the token; this module is what the tools
do, on :class:`~.person_tokens.PersonVault` (the same entry the vault's HTTP API uses for a person's token):

- ``list_connections``: the person's connections (integration, provider, status, scopes; never a token);
- ``call_api``: one call through the proxy (vault/proxy.py: only the provider's API hosts, credentials injected there
  and stripped from the answer), the request and the result size-capped; a connection that is missing or dead gives
  the ``authorization_required`` answer with a connect link bound to the person, never an error string;
- ``start_connection``: that connect link.

Each tool needs its own scope (:data:`TOOL_SCOPES`, built-in scopes described for consent) and, where it names an
integration, that integration's ``vault:<name>`` (:func:`needed_scopes`: the step-up challenge asks for both at once,
MCP 2025-11-25 "Scope Challenge Handling"). Every call is audited with the client, the person and the actor chain.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

import anyio
import httpx

from ..core import Frontdesk
from ..crypto.aead import DecryptionFailed
from ..oauth.introspection import live_access_token
from ..oauth.resources import MCP_SCOPES, VAULT_SCOPE_PREFIX
from ..storage import audit
from . import integration_store, oauth
from .catalog import CatalogError
from .person_tokens import NotReachable, PersonVault
from .proxy import AuthorizationRequired, PendingCall, ProxyResponse, ResponseTooLarge
from .refresh import BackingOff
from .service import Vault, vault_of
from .store import ConnectionRecord, VaultError

__all__ = [
    "FIRST_SCOPE",
    "MAX_RESULT_BYTES",
    "METHODS",
    "TOOL_SCOPES",
    "ApiCall",
    "ToolRefused",
    "add_tool_scopes",
    "call_api",
    "list_connections",
    "needed_scopes",
    "person_of",
    "result_of",
    "start_connection",
]

log = logging.getLogger("frontdesk.vault")
T = TypeVar("T")

TOOL_SCOPES = {
    "list_connections": "vault.connections.read",
    "call_api": "vault.call",
    "start_connection": "vault.connect",
}
assert set(TOOL_SCOPES.values()) == set(MCP_SCOPES)
# What a client without a token is told to ask for first (RFC 6750 §3 ``scope``): seeing what is connected. The
# rest it asks for when a tool needs it, each at a step-up the person consents to.
FIRST_SCOPE = "vault.connections.read"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# A tool result goes into a language model's context: far below the proxy's own cap (max_proxy_body).
MAX_RESULT_BYTES = 256 * 1024
MAX_PATH = 2048


class ToolRefused(Exception):
    """The tool cannot do what was asked; the message, in plain words, is the tool's error result."""


def needed_scopes(tool: str, arguments: Mapping[str, Any], known: Collection[str]) -> tuple[str, ...]:
    """The scopes a ``tools/call`` of ``tool`` needs: the tool's own, and ``vault:<integration>`` when its
    ``integration`` argument names a known one (an unknown name asks for nothing the person could grant)."""
    own = TOOL_SCOPES.get(tool)
    if own is None:
        return ()
    integration = arguments.get("integration")
    scope = VAULT_SCOPE_PREFIX + integration if isinstance(integration, str) else None
    return (own, scope) if scope is not None and scope in known else (own,)


def add_tool_scopes(fd: Frontdesk) -> int:
    """Store the tools' scopes, with their words for the consent page, where they are missing; how many were added
    (a process starting at the same time may store one first: it is then known, and not counted)."""
    known = fd.scopes(fresh=True)
    added = sum(integration_store.add_scope(fd.engine, s, words) for s, words in MCP_SCOPES.items() if s not in known)
    if added:
        fd.scopes(fresh=True)
    return added


def person_of(fd: Frontdesk, token: str) -> PersonVault | None:
    """The person's vault for a token the kit accepted for ``/mcp`` (type, signature, issuer, audience, times), or
    None: when it is no longer live (a JWT cannot be recalled, so the grant's revocation is checked here, as
    introspection checks it: DESIGN §4), or acts for no person (a client's own token)."""
    live = live_access_token(fd, token)
    return vault_of(fd).for_person(live.claims) if live is not None else None


def _audited(person: PersonVault, tool: str, outcome: str, **detail: Any) -> None:
    caller = person.token.caller
    audit.record_soon(
        person.engine, "vault.mcp_tool", outcome, client_id=caller.client_id, user_id=caller.person, tool=tool,
        **caller.audit(), **{k: v for k, v in detail.items() if v is not None},
    )  # fmt: skip


async def _refusals(work: Awaitable[T]) -> T:
    """``work``'s result, or :class:`ToolRefused` saying in plain words what went wrong (no stack trace, no token)."""
    try:
        return await work
    except NotReachable as exc:
        # As the vault's HTTP API: the missing scope only for the person's own; nothing about anyone else's.
        if exc.scope is None:
            raise ToolRefused("this token does not reach that connection") from None
        raise ToolRefused(f"this token's scopes do not include {exc.scope}: ask the person for it") from None
    except (VaultError, CatalogError) as exc:
        raise ToolRefused(str(exc)) from None
    except BackingOff as exc:
        raise ToolRefused(f"the provider failed recently; try again in {exc.retry_after()} seconds") from None
    except oauth.ProviderError as exc:
        raise ToolRefused(f"the provider is unavailable: {exc.description or exc.code}") from None
    except ResponseTooLarge as exc:
        raise ToolRefused(str(exc)) from None
    except DecryptionFailed:
        log.error("vault record failed authentication")
        raise ToolRefused("the stored credentials could not be read") from None


async def _tool(person: PersonVault, tool: str, work: Awaitable[T], **detail: Any) -> T:
    try:
        result = await _refusals(work)
    except ToolRefused:
        await anyio.to_thread.run_sync(lambda: _audited(person, tool, "failure", **detail))
        raise
    await anyio.to_thread.run_sync(lambda: _audited(person, tool, "success", **detail))
    return result


def _shown(vault: Vault, record: ConnectionRecord) -> dict[str, Any]:
    """A connection as a tool shows it: what and whose, never a credential (those stay sealed in the store)."""
    try:
        provider = vault.provider(vault.integration(record.integration)).display_name
    except (VaultError, CatalogError):
        provider = None
    return {
        "id": record.id,
        "integration": record.integration,
        "provider": provider,
        "status": record.status,
        "scopes": list(record.scopes),
        "last_used_at": record.last_used_at,
        "created_at": record.created_at,
    }


async def list_connections(vault: Vault, person: PersonVault, integration: str | None) -> dict[str, Any]:
    def listed() -> dict[str, Any]:
        return {"connections": [_shown(vault, r) for r in person.connections(integration)]}

    return await _tool(person, "list_connections", anyio.to_thread.run_sync(listed), integration=integration)


async def start_connection(person: PersonVault, integration: str) -> AuthorizationRequired:
    """A connect link for the person (only they, signed in here, can use it), reconnecting their existing
    connection of ``integration`` in place."""
    work = anyio.to_thread.run_sync(person.authorization_required, integration)
    return await _tool(person, "start_connection", work, integration=integration)


@dataclass(frozen=True, slots=True)
class ApiCall:
    """A ``call_api`` request as the tool checked it: one connection (by id, or the person's active one of an
    integration), and the HTTP request to make on it."""

    connection: str | None
    integration: str | None
    method: str
    path: str
    query: str
    body: bytes

    @classmethod
    def checked(
        cls,
        connection: str | None,
        integration: str | None,
        method: str,
        path: str,
        query: Mapping[str, Any] | None,
        body: Any,
        max_body: int,
    ) -> ApiCall:
        if (connection is None) == (integration is None):
            raise ToolRefused("name either the connection (its id) or the integration, not both")
        method = method.upper()
        if method not in METHODS:
            raise ToolRefused(f"method must be one of {', '.join(METHODS)}")
        if not path or len(path) > MAX_PATH:
            raise ToolRefused(f"path must be 1 to {MAX_PATH} characters under the provider's API")
        if body is not None and method == "GET":
            raise ToolRefused("a GET request has no body")
        encoded = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        if len(encoded) > max_body:
            raise ToolRefused(f"the request body is larger than {max_body} bytes")
        return cls(connection, integration, method, path, _query(query), encoded)


def _query(query: Mapping[str, Any] | None) -> str:
    """The query string of ``{"name": value or [values]}`` (strings, numbers, booleans)."""
    pairs: list[tuple[str, str]] = []
    for name, value in (query or {}).items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, bool):
                item = "true" if item else "false"
            if not isinstance(item, str | int | float):
                raise ToolRefused("query values are strings, numbers or booleans, or lists of them")
            pairs.append((name, str(item)))
    return urlencode(pairs)


def _target(person: PersonVault, call: ApiCall) -> str | AuthorizationRequired:
    """The connection the call goes through, or a connect link when the person has none that works."""
    if call.connection is not None:
        record = person.connection(call.connection)
    else:
        assert call.integration is not None
        found = person.connections(call.integration)
        active = [r for r in found if r.status == "active"]
        if not active:
            return person.authorization_required(call.integration)
        record = active[0]
    if record.status != "active":
        return person.authorization_required(record.integration)
    return record.id


async def call_api(vault: Vault, person: PersonVault, call: ApiCall, client: httpx.AsyncClient) -> dict[str, Any]:
    """The provider's answer (:func:`result_of`), or the ``authorization_required`` answer."""

    async def made() -> dict[str, Any]:
        target = await anyio.to_thread.run_sync(_target, person, call)
        if isinstance(target, AuthorizationRequired):
            return target.body()
        prepared = await anyio.to_thread.run_sync(person.prepare, target, call.path, call.query)
        if isinstance(prepared, PendingCall):
            prepared = await vault.ready(prepared)
        if isinstance(prepared, AuthorizationRequired):
            # The proxy's link is made for the platform's user id; the person gets one bound to them.
            integration = prepared.integration
            return (await anyio.to_thread.run_sync(person.authorization_required, integration)).body()
        headers = {"accept": "application/json"}
        if call.body:
            headers["content-type"] = "application/json"
        answer = await vault.proxy(prepared, call.method, headers, call.body, client)
        if isinstance(answer, AuthorizationRequired):
            return (await anyio.to_thread.run_sync(person.authorization_required, answer.integration)).body()
        return result_of(answer)

    detail = {"connection": call.connection, "integration": call.integration, "method": call.method}
    return await _tool(person, "call_api", made(), **detail)


def result_of(answer: ProxyResponse, limit: int = MAX_RESULT_BYTES) -> dict[str, Any]:
    """The provider's answer as a tool result: its status, content type and body (JSON parsed, text as text), or
    :class:`ToolRefused` when it is larger than ``limit``. Its headers stay out (the proxy stripped credentials
    from them, but a model needs none of them)."""
    if len(answer.content) > limit:
        raise ToolRefused(f"the provider's answer is larger than {limit} bytes: ask for less (a filter, a page)")
    content_type = next((v for k, v in answer.headers if k.lower() == "content-type"), "")
    out: dict[str, Any] = {"status": answer.status, "content_type": content_type or None, "body": None}
    try:
        text = answer.content.decode("utf-8")
    except UnicodeDecodeError:
        out["note"] = f"{len(answer.content)} bytes that are not text, not shown"
        return out
    try:
        out["body"] = json.loads(text) if "json" in content_type.lower() and text else text or None
    except ValueError:
        out["body"] = text
    return out
