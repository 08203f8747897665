"""The vault over HTTP for the platform: its API (Bearer API key) and the proxy that calls a provider's API for the
person. The connect link and callback a person's browser follows are web/vault_connect.py.

The connection listing, reading one connection and the proxy also take a person's access token for the vault
(issue 14, vault/person_tokens.py): it reaches that person's connections of the integrations its scopes name, and
anything else is a 403 that names nothing of anyone else's. The other calls remain the platform's (403 for such a
token); a token that is not a live one for the vault is a 401, as an unknown API key is (RFC 6750 §3.1).

A person's token may also come as ``Authorization: DPoP`` with a proof (RFC 9449 §7.1): one bound to a key (``cnf.jkt``)
must, and is refused as a 401 with the ``DPoP`` challenge when it comes as Bearer, without its proof, or with a proof
already spent (``oauth.dpop.verify_resource_proof``). API keys come as Bearer only, as before.

API errors are JSON ``{"error", "error_description"}`` with a 4xx, or 503 with ``Retry-After`` when the provider is
down; a connection that is missing or dead answers **424** with the ``authorization_required`` body, so a caller can
tell "connect first" from anything the provider itself said.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypedDict

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import Response

from ..core import Frontdesk
from ..crypto.aead import DecryptionFailed
from ..oauth.dpop import ALGORITHMS, ResourceProofRefused, verify_resource_proof
from ..secret import PREFIXES
from ..vault import oauth
from ..vault.api_key_store import ApiKeyRecord
from ..vault.catalog import CatalogError
from ..vault.person_tokens import NotReachable, PersonVault
from ..vault.proxy import AuthorizationRequired, PendingCall, PreparedCall, ResponseTooLarge
from ..vault.refresh import BackingOff
from ..vault.service import Vault, vault_of
from ..vault.store import ConnectionRecord, VaultError
from .http import json_response, read_body, read_json

__all__ = ["check", "connect_sessions", "connection", "connections", "credentials", "proxy"]

log = logging.getLogger("frontdesk.vault")
AUTHORIZATION_REQUIRED = 424
_DPOP_CHALLENGE = f'DPoP algs="{" ".join(ALGORITHMS)}"'
Handler = Callable[[Request, Vault, ApiKeyRecord], Awaitable[Response]]
PersonHandler = Callable[[Request, Vault, PersonVault], Awaitable[Response]]


def _vault(request: Request) -> Vault:
    fd: Frontdesk = request.app.state.fd
    return vault_of(fd)


def _error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": error, "error_description": description}, status, headers)


def _unauthorized() -> Response:
    # RFC 9449 §7.1: a resource that takes both schemes names both challenges.
    return _error(
        401, "invalid_token", "send the platform's API key, or a person's access token for the vault, as Bearer token",
        {"WWW-Authenticate": f'Bearer realm="frontdesk-vault", error="invalid_token", {_DPOP_CHALLENGE}'},
    )  # fmt: skip


def _proof_refused(exc: ResourceProofRefused) -> Response:
    return json_response(exc.body(), exc.status, exc.headers())


def _not_reachable(exc: NotReachable, dpop: bool = False) -> Response:
    """RFC 6750 §3.1 ``insufficient_scope``. The scope it lacks is named only for the person's own connection: for
    anyone else's, or none, the answer is the same and says nothing of what exists. A token that came as DPoP is
    answered with the DPoP challenge (RFC 9449 §7.1)."""
    challenge = _DPOP_CHALLENGE if dpop else 'Bearer realm="frontdesk-vault"'
    if exc.scope is None:
        return _error(
            403, "insufficient_scope", "this token does not reach that connection",
            {"WWW-Authenticate": f'{challenge}, error="insufficient_scope"'},
        )  # fmt: skip
    return _error(
        403, "insufficient_scope", f"this token's scopes do not include {exc.scope}",
        {"WWW-Authenticate": f'{challenge}, error="insufficient_scope", scope="{exc.scope}"'},
    )  # fmt: skip


def _platform_only() -> Response:
    return _error(
        403, "insufficient_scope", "this call takes the platform's API key: a person's token only lists and calls",
        {"WWW-Authenticate": 'Bearer realm="frontdesk-vault", error="insufficient_scope"'},
    )  # fmt: skip


def _presented(request: Request) -> tuple[str, str] | None:
    """The credential and its scheme: ``bearer`` (an API key or a person's token) or ``dpop`` (a person's token with
    a proof, RFC 9449 §7.1)."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    scheme, key = scheme.lower(), key.strip()
    return (scheme, key) if scheme in ("bearer", "dpop") and key else None


def _api_key_shaped(key: str) -> bool:
    return key.startswith(PREFIXES["api_key"])


def _public_url(fd: Frontdesk, request: Request) -> str:
    """The request's URL as the client addressed it, for a proof's ``htu`` (RFC 9449 §4.3 item 9): the issuer's
    base and the path exactly as sent (percent-encoding kept; ``normalize_htu`` compares), without the query."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
    root = request.scope.get("root_path") or ""
    return fd.url(path.removeprefix(root) if root and path.startswith(root) else path)


def _person(request: Request, vault: Vault, scheme: str, token: str) -> PersonVault | Response:
    """The vault as a person's token reaches it, once its presentation is right (RFC 9449 §7.1: a bound token only
    as DPoP with a fresh proof of its key; a bearer one only as Bearer); else the 401. Blocking (the replay insert)."""
    if scheme == "dpop" and _api_key_shaped(token):
        return _unauthorized()
    claims = vault.person_tokens(token)
    if claims is None:
        return _unauthorized()
    fd: Frontdesk = request.app.state.fd
    try:
        verify_resource_proof(fd, request.method, _public_url(fd, request), request.headers, claims)
    except ResourceProofRefused as exc:
        return _proof_refused(exc)
    person = vault.for_person(claims)
    return person if person is not None else _unauthorized()


def api(handler: Handler, person: PersonHandler | None = None) -> Callable[[Request], Awaitable[Response]]:
    """An API endpoint: the API key checked first, vault errors turned into their JSON answers. With ``person``,
    a person's token for the vault is answered by it; without, such a token is refused with 403."""

    async def endpoint(request: Request) -> Response:
        vault = _vault(request)
        presented = _presented(request)
        if presented is None:
            return _unauthorized()
        scheme, key = presented

        async def checked() -> Response:
            record = await anyio.to_thread.run_sync(vault.authenticate, key) if scheme == "bearer" else None
            if record is not None:
                return await handler(request, vault, record)
            if scheme == "bearer" and _api_key_shaped(key):
                return _unauthorized()
            someone = await anyio.to_thread.run_sync(_person, request, vault, scheme, key)
            if isinstance(someone, Response):
                return someone
            return _platform_only() if person is None else await person(request, vault, someone)

        return await _answered(request, checked())

    return endpoint


async def _answered(request: Request, work: Awaitable[Response]) -> Response:
    """``work``'s response, or the JSON answer to the vault error it raised."""
    try:
        return await work
    except NotReachable as exc:
        return _not_reachable(exc, dpop=(_presented(request) or ("",))[0] == "dpop")
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


class _Owner(TypedDict):
    display_name: str | None
    subject: str | None


def _owner(body: dict[str, Any]) -> _Owner:
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


async def _connections(request: Request, vault: Vault, key: ApiKeyRecord) -> Response:
    user = request.query_params.get("user")
    if not user:
        raise VaultError("give the user whose connections to list: ?user=…")
    integration = request.query_params.get("integration")
    found = await anyio.to_thread.run_sync(vault.connections_of, user, integration)
    return json_response({"connections": [c.public() for c in found]})


async def _persons_connections(request: Request, vault: Vault, person: PersonVault) -> Response:
    """The token's person's connections it reaches: ``user`` is not needed (given, it narrows to the connections
    made for that platform user id, among the person's own)."""
    user = request.query_params.get("user")
    found = await anyio.to_thread.run_sync(person.connections, request.query_params.get("integration"))
    if user and user != person.token.subject:
        found = [c for c in found if c.user == user]
    return json_response({"connections": [c.public() for c in found]})


connections = api(_connections, person=_persons_connections)


async def _connection(request: Request, vault: Vault, key: ApiKeyRecord) -> Response:
    try:
        record = await _record(request, vault)
    except LookupError:
        return _not_found()
    if request.method == "DELETE":
        revoked = await anyio.to_thread.run_sync(vault.delete, record)
        return json_response({"deleted": True, "revoked_at_provider": revoked})
    return json_response(record.public())


async def _persons_connection(request: Request, vault: Vault, person: PersonVault) -> Response:
    """One of the person's connections. Disconnecting is the person's own act, on their account page."""
    if request.method == "DELETE":
        return _platform_only()
    record = await anyio.to_thread.run_sync(person.connection, request.path_params["connection_id"])
    return json_response(record.public())


connection = api(_connection, person=_persons_connection)


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
    presented = _presented(request)
    if presented is None:
        return _unauthorized()
    return await _answered(request, _proxied(request, vault, *presented))


async def _proxied(request: Request, vault: Vault, scheme: str, key: str) -> Response:
    call = await anyio.to_thread.run_sync(_prepare, request, vault, scheme, key)
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
    request: Request, vault: Vault, scheme: str, key: str
) -> PreparedCall | PendingCall | AuthorizationRequired | Response:
    connection_id, path, query = request.path_params["connection_id"], request.path_params["path"], request.url.query
    if scheme == "dpop" or not _api_key_shaped(key):
        person = _person(request, vault, scheme, key)
        if isinstance(person, Response):
            return person
        return person.prepare(connection_id, path, query)  # NotReachable: a 403 (_answered)
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
