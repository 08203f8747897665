"""The vault over HTTP for the platform: its API (Bearer API key) and the proxy that calls a provider's API for the
person. The connect link and callback a person's browser follows are web/vault_connect.py.

API errors are JSON ``{"error", "error_description"}`` with a 4xx, or 503 with ``Retry-After`` when the provider is
down; a connection that is missing or dead answers **424** with the ``authorization_required`` body, so a caller can
tell "connect first" from anything the provider itself said.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import Response

from ..core import Frontdesk
from ..crypto.aead import DecryptionFailed
from ..vault import oauth
from ..vault.api_key_store import ApiKeyRecord
from ..vault.catalog import CatalogError
from ..vault.proxy import AuthorizationRequired, PendingCall, PreparedCall, ResponseTooLarge
from ..vault.refresh import BackingOff
from ..vault.service import Vault, vault_of
from ..vault.store import ConnectionRecord, VaultError
from .http import json_response, read_body, read_json

__all__ = ["check", "connect_sessions", "connection", "connections", "credentials", "proxy"]

log = logging.getLogger("frontdesk.vault")
AUTHORIZATION_REQUIRED = 424
Handler = Callable[[Request, Vault, ApiKeyRecord], Awaitable[Response]]


def _vault(request: Request) -> Vault:
    fd: Frontdesk = request.app.state.fd
    return vault_of(fd)


def _error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": error, "error_description": description}, status, headers)


def _unauthorized() -> Response:
    return _error(
        401, "invalid_token", "send the platform's API key as a Bearer token",
        {"WWW-Authenticate": 'Bearer realm="frontdesk-vault", error="invalid_token"'},
    )  # fmt: skip


def _bearer(request: Request) -> str | None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key else None


def api(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """An API endpoint: the API key checked first, vault errors turned into their JSON answers."""

    async def endpoint(request: Request) -> Response:
        vault = _vault(request)
        key = _bearer(request)
        if key is None:
            return _unauthorized()

        async def checked() -> Response:
            record = await anyio.to_thread.run_sync(vault.authenticate, key)
            return _unauthorized() if record is None else await handler(request, vault, record)

        return await _answered(request, checked())

    return endpoint


async def _answered(request: Request, work: Awaitable[Response]) -> Response:
    """``work``'s response, or the JSON answer to the vault error it raised."""
    try:
        return await work
    except (VaultError, CatalogError) as exc:
        return _error(400, "invalid_request", str(exc))
    except BackingOff as exc:
        retry = exc.retry_after()
        return _error(503, "temporarily_unavailable", "the provider failed recently", {"Retry-After": str(retry)})
    except oauth.ProviderError as exc:
        return _error(503, "temporarily_unavailable", exc.description or exc.code, {"Retry-After": "30"})
    except ResponseTooLarge as exc:
        return _error(502, "bad_gateway", str(exc))
    except DecryptionFailed:
        # A sealed record that does not open under its own id: altered or moved, never silently "fixed".
        log.error("vault record failed authentication", extra={"path": request.url.path})
        return _error(500, "server_error", "the stored credentials could not be read")


async def _json(request: Request, vault: Vault) -> dict[str, Any]:
    # The shared strict reader (web/http.py): a lone surrogate, deep nesting or a NUL is a 400 invalid_request,
    # as JSON like every vault error, rather than a server error; a body over the limit stays a 413.
    return await read_json(request, vault.settings.max_body_bytes)


def _string(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise VaultError(f"{name} must be a non-empty string")
    return value


def _owner(body: dict[str, Any]) -> dict[str, str | None]:
    """Who a connect link is for, as its page says it: the platform's name for its user, and the frontdesk person
    who must be signed in to use it, when platform users are frontdesk people."""
    return {
        "display_name": _string(body, "display_name", required=False),
        "subject": _string(body, "subject", required=False),
    }


def _strings(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise VaultError(f"{name} must be a list of strings")
    return value


async def _record(request: Request, vault: Vault) -> ConnectionRecord:
    record = await anyio.to_thread.run_sync(vault.connection, request.path_params["connection_id"])
    if record is None:
        raise LookupError
    return record


def _not_found() -> Response:
    return _error(404, "unknown_connection", "no such connection")


# --- the platform's API ----------------------------------------------------------------------------------------


@api
async def connect_sessions(request: Request, vault: Vault, key: ApiKeyRecord) -> Response:
    body = await _json(request, vault)
    params = body.get("params", {})
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        raise VaultError("params must be an object of strings")
    user, integration = _string(body, "user"), _string(body, "integration")
    assert user is not None
    assert integration is not None
    owner = _owner(body)
    session = await anyio.to_thread.run_sync(
        lambda: vault.create_connect_session(
            user, integration, _strings(body, "scopes"), params, _string(body, "return_url", required=False), **owner
        )
    )
    return json_response({"id": session.id, "connect_url": session.url, "expires_at": session.expires_at}, 201)


@api
async def connections(request: Request, vault: Vault, key: ApiKeyRecord) -> Response:
    user = request.query_params.get("user")
    if not user:
        raise VaultError("give the user whose connections to list: ?user=…")
    integration = request.query_params.get("integration")
    found = await anyio.to_thread.run_sync(vault.connections_of, user, integration)
    return json_response({"connections": [c.public() for c in found]})


@api
async def connection(request: Request, vault: Vault, key: ApiKeyRecord) -> Response:
    try:
        record = await _record(request, vault)
    except LookupError:
        return _not_found()
    if request.method == "DELETE":
        revoked = await anyio.to_thread.run_sync(vault.delete, record)
        return json_response({"deleted": True, "revoked_at_provider": revoked})
    return json_response(record.public())


@api
async def credentials(request: Request, vault: Vault, key: ApiKeyRecord) -> Response:
    """Raw token export: a separate, admin-only call, audited (the field notes' ``read_credentials`` gate)."""
    if not key.may_export:
        return _error(403, "insufficient_scope", "this API key may not export tokens; create one with --export")
    try:
        record = await _record(request, vault)
    except LookupError:
        return _not_found()
    return json_response(await anyio.to_thread.run_sync(vault.export, record, key.id))


@api
async def check(request: Request, vault: Vault, key: ApiKeyRecord) -> Response:
    """For a tool about to run: ``connected`` with the connection, or ``authorization_required`` with a link for
    the scopes granted so far plus those needed now (incremental authorization)."""
    body = await _json(request, vault)
    user, integration = _string(body, "user"), _string(body, "integration")
    assert user is not None
    assert integration is not None
    needed = _strings(body, "scopes")
    owner = _owner(body)

    def decide() -> dict[str, Any]:
        vault.integration(integration)
        found = vault.connections_of(user, integration)
        if found and found[0].status == "active" and all(s in found[0].scopes for s in needed):
            return {"status": "connected", "connection": found[0].public()}
        return vault.authorization_required(user, integration, needed, **owner).body()

    return json_response(await anyio.to_thread.run_sync(decide))


async def proxy(request: Request) -> Response:
    """``ANY /vault/proxy/{connection_id}/{path}``: the provider's API called as the person. All that blocks
    before the call (the API key, the connection, its credential) is one trip to the thread pool, and the call's
    own bookkeeping none (``Vault.proxy``)."""
    vault = _vault(request)
    key = _bearer(request)
    if key is None:
        return _unauthorized()
    return await _answered(request, _proxied(request, vault, key))


async def _proxied(request: Request, vault: Vault, key: str) -> Response:
    params = request.path_params
    call = await anyio.to_thread.run_sync(
        _prepare, vault, key, params["connection_id"], params["path"], request.url.query
    )
    if isinstance(call, Response):
        return call
    if isinstance(call, PendingCall):
        call = await vault.ready(call)
    if isinstance(call, AuthorizationRequired):
        return json_response(call.body(), AUTHORIZATION_REQUIRED)
    body = await read_body(request, vault.settings.max_proxy_body)
    client: httpx.AsyncClient = request.app.state.vault_http
    result = await vault.proxy(call, request.method, request.headers, body, client)
    if isinstance(result, AuthorizationRequired):
        return json_response(result.body(), AUTHORIZATION_REQUIRED)
    return Response(result.content, result.status, headers=_merge(result.headers))


def _prepare(
    vault: Vault, key: str, connection_id: str, path: str, query: str
) -> PreparedCall | PendingCall | AuthorizationRequired | Response:
    api_key, call = vault.prepare_for(key, connection_id, path, query)
    if api_key is None:
        return _unauthorized()
    if call is None:
        return _not_found()
    return call


def _merge(headers: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers:
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out
