"""The vault over HTTP: the platform's API (Bearer API key), the connect link and callback a person's browser
follows, and the proxy that calls a provider's API for the person.

API errors are JSON ``{"error", "error_description"}`` with a 4xx, or 503 with ``Retry-After`` when the provider is
down; a connection that is missing or dead answers **424** with the ``authorization_required`` body, so a caller can
tell "connect first" from anything the provider itself said.
"""

from __future__ import annotations

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
from ..vault.service import (
    AuthorizationRequired,
    ConnectFailed,
    PendingCall,
    PreparedCall,
    ResponseTooLarge,
    Vault,
)
from ..vault.store import ApiKeyRecord, ConnectionRecord, VaultError
from .account import to_sign_in, visitor_of
from .authorize import posted_form, problem, see_other
from .cookies import session_token
from .http import json_response, read_body, read_json
from .pages import page

__all__ = [
    "callback",
    "check",
    "connect",
    "connect_confirmed",
    "connect_resumed",
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
    "wrong_person": (
        "This link is for someone else",
        "This connect link was made for another person, not for the one signed in here. If it is yours, sign out, "
        "open the link again and sign in as yourself. If someone sent it to you, close this page.",
    ),
}
# Back from signing in, a link that needs its person signed in comes here; the link waits in a cookie meanwhile.
RESUME_PATH = "/vault/connect"
_START_AGAIN = "Open the link again from the app."


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
    owner = _owner(body)

    def decide() -> dict[str, Any]:
        vault.integration(integration)
        found = store.connections_of(vault.engine, user, integration)
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


def _link_cookie(vault: Vault) -> tuple[str, str]:
    """(name, path) of the cookie that holds a connect link while its person signs in. ``__Host-`` under https,
    like every cookie here (web/cookies.py), so no sibling host can plant a link of its own; that rules out a
    narrower path, which only a plain-http development issuer keeps."""
    if vault.settings.secure_cookies:
        return "__Host-fd_vault_link", "/"
    return "fd_vault_link", RESUME_PATH


def _csrf(request: Request, browser: str) -> str:
    fd: Frontdesk = request.app.state.fd
    return fd.csrf_token("vault connect:" + browser)


def _failed(exc: ConnectFailed) -> Response:
    return _problem(exc.reason, {"unknown": 404, "wrong_person": 403}.get(exc.reason, 410))


async def connect(request: Request) -> Response:
    """The connect link: a page that names the account the connection will belong to, and asks to continue.
    Opening it uses nothing up: a link forwarded unopened shows its owner to whoever opens it."""
    return await _confirm(request, request.path_params["token"])


async def connect_resumed(request: Request) -> Response:
    """Back from signing in: the link this browser was holding."""
    token = request.cookies.get(_link_cookie(_vault(request))[0])
    return await _confirm(request, token) if token else _problem("unknown", 404)


async def _confirm(request: Request, token: str) -> Response:
    fd: Frontdesk = request.app.state.fd
    vault = _vault(request)
    try:
        shown = await anyio.to_thread.run_sync(vault.connect_page, token)
    except ConnectFailed as exc:
        return _failed(exc)
    except (VaultError, CatalogError):
        return _problem("unavailable", 503)
    if shown.subject is not None:
        visitor = await anyio.to_thread.run_sync(visitor_of, fd, session_token(request, fd))
        if visitor is None:
            # The interaction row keeps only RESUME_PATH: the link itself never reaches the database.
            response = await anyio.to_thread.run_sync(to_sign_in, fd, RESUME_PATH)
            name, path = _link_cookie(vault)
            response.set_cookie(
                name, token, max_age=vault.settings.lifetimes.connect_session, path=path,
                httponly=True, secure=vault.settings.secure_cookies, samesite="lax",
            )  # fmt: skip
            return response
        if visitor.person.id != shown.subject:
            return _problem("wrong_person", 403)
    # The browser the connection must finish in (the callback checks it); kept when this browser has one already,
    # so two links opened side by side both finish.
    browser = request.cookies.get(_cookie(vault)) or secrets.token_urlsafe(32)
    response = page(
        "vault_connect.html", title=f"Connect {shown.provider}", provider=shown.provider, account=shown.account,
        named=shown.named, words=shown.words, action=f"/vault/connect/{token}", csrf=_csrf(request, browser),
    )  # fmt: skip
    response.set_cookie(
        _cookie(vault), browser, max_age=vault.settings.lifetimes.connect_session, path="/",
        httponly=True, secure=vault.settings.secure_cookies, samesite="lax",
    )  # fmt: skip
    return response


async def connect_confirmed(request: Request) -> Response:
    """The person chose to continue: bind the link to this browser, then on to the provider."""
    fd: Frontdesk = request.app.state.fd
    vault = _vault(request)
    token = request.path_params["token"]
    browser = request.cookies.get(_cookie(vault))
    if not browser:
        return problem("This form has expired", _START_AGAIN, 403)
    form = await posted_form(request, fd, _csrf(request, browser), _START_AGAIN)
    if isinstance(form, Response):
        return form
    signed_in = session_token(request, fd)
    visitor = await anyio.to_thread.run_sync(visitor_of, fd, signed_in) if signed_in else None
    subject = visitor.person.id if visitor else None
    try:
        url = await anyio.to_thread.run_sync(vault.start, token, browser, subject)
    except ConnectFailed as exc:
        # Signed out since the page was shown: the link's page leads through signing in again.
        return see_other(f"/vault/connect/{token}") if exc.reason == "sign_in" else _failed(exc)
    except (oauth.ProviderError, VaultError, CatalogError):
        return _problem("unavailable", 503)
    response = see_other(url)
    name, path = _link_cookie(vault)
    response.delete_cookie(name, path=path, secure=vault.settings.secure_cookies, httponly=True)
    return response


async def callback(request: Request) -> Response:
    """Where the provider sends the person back: ``{issuer}/vault/callback``, registered at the provider."""
    vault = _vault(request)
    q = request.query_params
    try:
        _, return_url, provider = await anyio.to_thread.run_sync(
            vault.finish, q.get("state"), q.get("code"), q.get("error"), request.cookies.get(_cookie(vault)),
            q.get("iss"),
        )  # fmt: skip
    except ConnectFailed as exc:
        response = _problem(exc.reason, 400)
    except (oauth.ProviderError, VaultError, CatalogError, TemporarilyUnavailable):
        # oauth.ProviderError: the provider's discovery document could not be fetched to check `iss` or exchange.
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
