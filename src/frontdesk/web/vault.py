"""The vault over HTTP: the platform's API (Bearer API key), the connect link and callback a person's browser
follows, and the proxy that calls a provider's API for the person.

API errors are JSON ``{"error", "error_description"}`` with a 4xx, or 503 with ``Retry-After`` when the provider is
down; a connection that is missing or dead answers **424** with the ``authorization_required`` body, so a caller can
tell "connect first" from anything the provider itself said.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..core import Frontdesk
from ..crypto.aead import DecryptionFailed
from ..errors import TemporarilyUnavailable
from ..storage.db import now
from ..vault import oauth, store
from ..vault.catalog import CatalogError
from ..vault.refresh import BackingOff
from ..vault.service import AuthorizationRequired, ConnectFailed, PreparedCall, ResponseTooLarge, Vault
from ..vault.store import ApiKeyRecord, ConnectionRecord, VaultError
from .http import json_response, read_body
from .pages import page

__all__ = [
    "callback",
    "check",
    "connect",
    "connect_sessions",
    "connection",
    "connections",
    "credentials",
    "proxy",
]

log = logging.getLogger("frontdesk.vault")
AUTHORIZATION_REQUIRED = 424
Handler = Callable[[Request, Vault, ApiKeyRecord], Awaitable[Response]]

# What a person reads when a connect link cannot go on: what happened, and what to do.
_PAGES = {
    "unknown": ("Link not recognised", "This connect link is not valid. Go back to the app and ask it for a new one."),
    "expired": ("Link expired", "This connect link has expired. Go back to the app and ask it for a new one."),
    "used": ("Link already used", "This connect link has already been used. Go back to the app and start again."),
    "other_browser": (
        "Finish in the same browser",
        "This connection was started in another browser. Open the link again from the app, in this browser.",
    ),
    "denied": ("Not connected", "You did not give access, so nothing was connected. You can close this window."),
    "exchange_failed": (
        "Could not connect",
        "The service did not accept the connection. Go back to the app and try again in a moment.",
    ),
    "unavailable": ("Try again in a moment", "The service could not be reached. Go back to the app and try again."),
}


def _vault(request: Request) -> Vault:
    fd: Frontdesk = request.app.state.fd
    assert fd.vault is not None
    return fd.vault


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
            record = await anyio.to_thread.run_sync(store.authenticate_api_key, vault.engine, key)
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
        retry = max(exc.retry_at - now(), 1)
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
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise VaultError("the request body must be application/json")
    try:
        body = json.loads(await read_body(request, vault.settings.max_body_bytes))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise VaultError("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise VaultError("the request body must be a JSON object")
    return body


def _string(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise VaultError(f"{name} must be a non-empty string")
    return value


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
    session = await anyio.to_thread.run_sync(
        lambda: vault.create_connect_session(
            user, integration, _strings(body, "scopes"), params, _string(body, "return_url", required=False)
        )
    )
    return json_response({"id": session.id, "connect_url": session.url, "expires_at": session.expires_at}, 201)


@api
async def connections(request: Request, vault: Vault, key: ApiKeyRecord) -> Response:
    user = request.query_params.get("user")
    if not user:
        raise VaultError("give the user whose connections to list: ?user=…")
    integration = request.query_params.get("integration")
    found = await anyio.to_thread.run_sync(store.connections_of, vault.engine, user, integration)
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

    def decide() -> dict[str, Any]:
        vault.integration(integration)
        found = store.connections_of(vault.engine, user, integration)
        if found and found[0].status == "active" and all(s in found[0].scopes for s in needed):
            return {"status": "connected", "connection": found[0].public()}
        return vault.authorization_required(user, integration, needed).body()

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
) -> PreparedCall | AuthorizationRequired | Response:
    api_key, row = store.api_key_and_connection(vault.engine, key, connection_id)
    if api_key is None:
        return _unauthorized()
    if row is None:
        return _not_found()
    return vault.prepare(store.record_of(row), path, query, row)


def _merge(headers: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers:
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


# --- the person's browser --------------------------------------------------------------------------------------


def _cookie(vault: Vault) -> str:
    return "__Host-fd_vault" if vault.settings.secure_cookies else "fd_vault"


def _problem(reason: str, status: int = 400) -> Response:
    title, message = _PAGES[reason]
    return page("error.html", status, title=title, message=message)


async def connect(request: Request) -> Response:
    """The connect link: bind it to this browser, then on to the provider."""
    vault = _vault(request)
    browser = secrets.token_urlsafe(32)
    try:
        url = await anyio.to_thread.run_sync(vault.start, request.path_params["token"], browser)
    except ConnectFailed as exc:
        return _problem(exc.reason, 404 if exc.reason == "unknown" else 410)
    except (oauth.ProviderError, VaultError, CatalogError):
        return _problem("unavailable", 503)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        _cookie(vault), browser, max_age=vault.settings.lifetimes.connect_session, path="/",
        httponly=True, secure=vault.settings.secure_cookies, samesite="lax",
    )  # fmt: skip
    return response


async def callback(request: Request) -> Response:
    """Where the provider sends the person back: ``{issuer}/vault/callback``, registered at the provider."""
    vault = _vault(request)
    q = request.query_params
    try:
        _, return_url, provider = await anyio.to_thread.run_sync(
            vault.finish, q.get("state"), q.get("code"), q.get("error"), request.cookies.get(_cookie(vault))
        )
    except ConnectFailed as exc:
        response = _problem(exc.reason, 400)
    except (VaultError, CatalogError, TemporarilyUnavailable):
        response = _problem("unavailable", 503)
    else:
        if return_url:
            response = RedirectResponse(return_url, status_code=303)
        else:
            response = page(
                "done.html", title=f"{provider.display_name} connected",
                message=f"Your {provider.display_name} account is connected. You can close this window and go back.",
            )  # fmt: skip
    response.delete_cookie(_cookie(vault), path="/", secure=vault.settings.secure_cookies, httponly=True)
    return response
