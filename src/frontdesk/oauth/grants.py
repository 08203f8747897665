"""The token endpoint's grant types (RFC 6749 §4.1.3, §4.4, §6; RFC 8628 §3.4; OAuth 2.1 §4).

Each grant is a short list of named checks and one transaction. Whatever a grant writes — consuming a device code,
the tokens, the audit event — commits together or not at all. The two hot grants that spend a code or a refresh
token write theirs with the spend, in as few statements as the store allows (``oauth.redemption``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection

from ..core import Frontdesk
from ..errors import (
    AccessDenied,
    ExpiredToken,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    OAuthError,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from ..protocol import rfc7636
from ..protocol.ciba import CIBA_GRANT
from ..protocol.forms import Params
from ..protocol.rfc8707 import check_resource
from ..protocol.scope import OIDC_SCOPES, parse_scope
from ..storage import audit
from ..storage.clients import ClientRecord, mark_used
from ..storage.db import Raw, now, transaction
from ..storage.device import consume_device, device_for, poll_device
from ..storage.grants import (
    CodeRow,
    GrantRow,
    RefreshRow,
    bind_grant_key,
    code_for,
    insert_refresh,
    refresh_for,
    session_of,
)
from ..storage.redemption import InOne, Spent, redeem_in_one, rotate_in_one, session
from . import ciba_grant
from .authorization_details import token_details
from .decoupled import poll_answer, tokens_for_approval
from .dpop import check_binding
from .redemption import (
    Issuance,
    answer,
    in_one,
    issued_in_one,
    mint,
    narrowed_resource,
    narrowed_scope,
    redeem,
    theft,
    wants_refresh,
)
from .resources import ResourceRow, resolve, scopes_beyond_registration
from .token_exchange import TOKEN_EXCHANGE, token_exchange
from .tokens import mint_access_token

__all__ = ["DEVICE_CODE", "GRANT_TYPES", "GrantType", "check_scope", "exchange"]

DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
Response = dict[str, Any]
Jkt = str | None  # the thumbprint of the key of a token request's checked DPoP proof (RFC 9449 §6.1), if it had one

# A client the operator did not register is purged once unused for a while (``housekeeping``), so each token issued
# to one records the day (``last_used_at``). The token endpoint is the hot path: nothing is written for the
# operator's clients, and for the others at most once a day per client and process (this memo, keyed by the row as
# created, so a client registered again under the same client_id is a new one); the conditional UPDATE makes the
# processes agree. The memo is a hint: at worst a process writes once more, or the day recorded is a day old.
USED_EVERY = 86400
_MEMO_MAX = 10_000
_used: dict[tuple[str, int], int] = {}


def _use_due(client: ClientRecord, at: int) -> bool:
    """Whether this process should record a use of the client now (see ``USED_EVERY``)."""
    if client.vetted:
        return False
    last = _used.get((client.client_id, client.created_at))
    return last is None or not 0 <= at - last < USED_EVERY


def _record_use(conn: Connection | Raw, client: ClientRecord, at: int) -> None:
    """Write ``last_used_at`` for a client nobody vetted, when due."""
    if not _use_due(client, at):
        return
    if len(_used) >= _MEMO_MAX:
        _used.clear()
    mark_used(conn, client.client_id, at, USED_EVERY)
    _used[(client.client_id, client.created_at)] = at


def check_scope(
    fd: Frontdesk, client: ClientRecord, requested: tuple[str, ...], resources: Sequence[ResourceRow] = ()
) -> tuple[str, ...]:
    """Every scope must be known and registered for the client (RFC 6749 §3.3), or be one a client nobody vetted
    may ask for because it belongs to a resource the request names (``resources.scopes_beyond_registration``)."""
    known = fd.scopes()
    if not known.keys() >= set(requested):
        known = fd.scopes(fresh=True)
    for scope in requested:
        if scope not in known:
            raise InvalidScope(f"unknown scope {scope!r}")
    beyond = [s for s in requested if s not in client.scope]
    allowed = scopes_beyond_registration(fd, client, beyond, resources)
    for scope in beyond:
        if scope not in allowed:
            raise InvalidScope(f"the client is not registered for scope {scope!r}")
    return requested


def _issue(
    fd: Frontdesk,
    conn: Connection | Raw,
    client: ClientRecord,
    grant: GrantRow,
    scope: tuple[str, ...],
    resources: Sequence[ResourceRow],
    nonce: str | None,
    at: int,
    details: Sequence[dict[str, Any]] | None = None,
    jkt: Jkt = None,
) -> Response:
    """The tokens of a grant made or answered here (device code, CIBA), written in the caller's transaction."""
    # RFC 9396 §6, §7: the grant's details (or those the token request narrowed them to), in token and response.
    details = grant.authorization_details if details is None else details
    refresh = None
    if wants_refresh(client, grant):
        if jkt is not None and client.public:  # RFC 9449 §5: a public client's, to the proof's key
            bind_grant_key(conn, grant.id, jkt)
        refresh = insert_refresh(conn, grant=grant, at=at, idle=fd.settings.lifetimes.refresh_idle)
    _record_use(conn, client, at)
    sid = session_of(conn, grant.id) if "openid" in scope and grant.user_id else None
    return answer(fd, Issuance(client, grant, scope, resources, at, details, nonce, jkt, sid), refresh)


_Row = TypeVar("_Row", CodeRow, RefreshRow)


def _read_or_spend(
    fd: Frontdesk, db: Raw, client: ClientRecord, params: Params, secret: str, at: int, ip: str | None, jkt: Jkt,
    spent: Spent, read: Callable[[Raw, str], _Row | None],
    in_one_statement: Callable[[Raw, str, int, InOne], tuple[_Row | None, bool]],
) -> _Row | Response | None:  # fmt: skip
    """The code or refresh token ``secret`` as ``read`` reads it, for the checks of the two-statement path; or,
    where one statement serves (``in_one``), read and spent by it when every check holds, and then the response."""
    planned = in_one(fd, db, spent, client, params, at, ip, jkt)
    if planned is None:
        return read(db, secret)
    _record_use(db, client, at)  # as on the two-statement path: a statement of its own before the spend
    row, done = in_one_statement(db, secret, at, planned[0])
    return issued_in_one(fd, db, client, row, planned, at, jkt) if row is not None and done else row


def authorization_code(
    fd: Frontdesk, client: ClientRecord, params: Params, ip: str | None, jkt: Jkt = None
) -> Response:
    code = params.get("code")
    if code is None:
        raise InvalidRequest("code is required")
    at = now()
    with session(fd.engine) as db:
        row = _read_or_spend(fd, db, client, params, code, at, ip, jkt, "code", code_for, redeem_in_one)
        if isinstance(row, dict):
            return row
        if row is None:
            raise InvalidGrant("the code is invalid")
        if row.client_id != client.client_id:
            raise InvalidGrant("the code was issued to another client")
        # OAuth 2.1 §4.1.3/§10.2: an OAuth 2.1 client sends no redirect_uri (PKCE binds the code); one that does
        # (OAuth 2.0, RFC 6749 §4.1.3) must send the authorization request's exactly.
        redirect_uri = params.get("redirect_uri")
        if redirect_uri is not None and redirect_uri != row.redirect_uri:
            raise InvalidGrant("redirect_uri does not match the authorization request")
        rfc7636.verify(params.get("code_verifier"), row.code_challenge)
        if row.expires_at <= at:
            raise InvalidGrant("the code has expired")
        if row.dpop_jkt is not None and row.dpop_jkt != jkt:  # RFC 9449 §10: the key named at /authorize
            raise InvalidGrant("the code must be redeemed with a DPoP proof of the key named at authorization")
        if row.consumed_at is None:  # spent already: a replay (below)
            if row.grant.revoked_at is not None:
                raise InvalidGrant("the grant is no longer valid")
            resources = narrowed_resource(fd, db, params, row.grant)
            details = token_details(fd, params.get("authorization_details"), row.grant.authorization_details)
            event = ("token.issued", ip, {"grant_type": "authorization_code", "grant_id": row.grant.id})
            scope = row.grant.scope
            what = Issuance(client, row.grant, scope, resources, at, details, row.nonce, jkt, row.sid)
            issued = mint(fd, what, event)
            # Before the spend: on PostgreSQL a statement of its own, so that failing it spends nothing.
            _record_use(db, client, at)
            body = redeem(db, "code", code, at, issued)
            if body is not None:
                return body
    raise theft(fd, row.grant, "code.replayed", client, ip)


def refresh_token(fd: Frontdesk, client: ClientRecord, params: Params, ip: str | None, jkt: Jkt = None) -> Response:
    token = params.get("refresh_token")
    if token is None:
        raise InvalidRequest("refresh_token is required")
    at = now()
    with session(fd.engine) as db:
        row = _read_or_spend(fd, db, client, params, token, at, ip, jkt, "refresh", refresh_for, rotate_in_one)
        if isinstance(row, dict):
            return row
        if row is None or row.client_id != client.client_id:
            raise InvalidGrant("the refresh token is invalid")
        if row.grant.revoked_at is not None or row.expires_at <= at:
            raise InvalidGrant("the refresh token is no longer valid")
        if row.grant.dpop_jkt is not None and row.grant.dpop_jkt != jkt:
            raise InvalidGrant("the refresh token is bound to another DPoP key")  # RFC 9449 §5
        scope, resources = narrowed_scope(params, row.grant), narrowed_resource(fd, db, params, row.grant)
        details = token_details(fd, params.get("authorization_details"), row.grant.authorization_details)
        if row.consumed_at is None:  # spent already: a reuse (below)
            event = ("token.refreshed", ip, {"grant_id": row.grant.id})
            issued = mint(fd, Issuance(client, row.grant, scope, resources, at, details, None, jkt, row.sid), event)
            # Before the spend: on PostgreSQL a statement of its own, so that failing it spends nothing.
            _record_use(db, client, at)
            body = redeem(db, "refresh", token, at, issued)
            if body is not None:
                return body
        consumed_at = row.consumed_at or at
    grace = fd.settings.lifetimes.refresh_reuse_grace
    if grace > 0 and at - consumed_at <= grace:  # grace 0: every reuse is theft, even within the same second
        raise InvalidGrant("the refresh token was already used")
    raise theft(fd, row.grant, "refresh.reused", client, ip)


def client_credentials(
    fd: Frontdesk, client: ClientRecord, params: Params, ip: str | None, jkt: Jkt = None
) -> Response:
    requested = parse_scope(params.get("scope"))
    if not OIDC_SCOPES.keys().isdisjoint(requested):
        raise InvalidScope("OpenID Connect scopes need a person; client_credentials has none")
    resources = resolve(fd, fd.engine, check_resource(params.getall("resource")))
    if requested:
        scope = check_scope(fd, client, requested, resources)
    else:
        scope = tuple(s for s in client.scope if s not in OIDC_SCOPES)
    at = now()
    access = mint_access_token(fd, client, scope, resources, None, at, jkt=jkt)
    if _use_due(client, at):  # a client that registered with an initial access token may use it (RFC 7591 §3)
        with transaction(fd.engine) as conn:
            _record_use(conn, client, at)
    # Nothing here is written but the audit event, so it joins the next audit batch (storage/audit.py).
    audit.record_soon(
        fd.engine, "token.issued", "success", client_id=client.client_id, ip=ip, grant_type="client_credentials"
    )
    token_type = "DPoP" if jkt else "Bearer"  # RFC 9449 §5
    body: Response = {"access_token": access.token, "token_type": token_type, "expires_in": access.expires_in}
    if scope:
        body["scope"] = " ".join(scope)
    return body


def device_code(fd: Frontdesk, client: ClientRecord, params: Params, ip: str | None, jkt: Jkt = None) -> Response:
    code = params.get("device_code")
    if code is None:
        raise InvalidRequest("device_code is required")
    at = now()
    pending: OAuthError | None = None
    with transaction(fd.engine) as conn:
        row = device_for(conn, code)
        if row is None or row.client_id != client.client_id:
            raise InvalidGrant("the device code is invalid")
        if row.status == "consumed":
            raise InvalidGrant("the device code was already used")
        if row.expires_at <= at:
            raise ExpiredToken("the device code has expired")
        if row.status == "denied":
            raise AccessDenied("the person denied the request")
        if row.status == "pending":
            pending, interval = poll_answer(row.last_polled_at, row.interval, at)  # RFC 8628 §3.5
            poll_device(conn, row.digest, at, interval)
        elif consume_device(conn, row.digest):
            assert row.user_id is not None
            return tokens_for_approval(
                fd,
                conn,
                client,
                grant_type=DEVICE_CODE,
                user_id=row.user_id,
                scope=row.scope,
                resource=row.resource,
                auth_time=row.auth_time,
                amr=row.amr,
                authorization_details=None,
                issue=_issue,
                ip=ip,
                at=at,
                jkt=jkt,
            )
        else:
            raise InvalidGrant("the device code was already used")
    raise pending


def ciba(fd: Frontdesk, client: ClientRecord, params: Params, ip: str | None, jkt: Jkt = None) -> Response:
    """OpenID Connect CIBA Core 1.0 §10.1 (``oauth.ciba_grant``), issuing (and DPoP-binding) as the others do."""
    return ciba_grant.redeem(fd, client, params, ip, _issue, jkt=jkt)


Handler = Callable[[Frontdesk, ClientRecord, Params, "str | None"], Response]
BindingHandler = Callable[[Frontdesk, ClientRecord, Params, "str | None", "str | None"], Response]


@dataclass(frozen=True, slots=True)
class GrantType:
    """A grant type this server serves, declared once: the token endpoint dispatches on it, discovery lists it
    (RFC 8414 §2 ``grant_types_supported``) and registration judges a client's ``grant_types`` by it (RFC 7591 §2)."""

    name: str
    handle: Handler
    # RFC 6749 §2.1: whether a public client (no credentials) may be registered for it. client_credentials has
    # nothing but the client's credentials to go on (RFC 6749 §4.4), so a public client cannot use it.
    public: bool
    # Whether it goes through the authorization endpoint, so the client needs a redirect URI (RFC 6749 §3.1.2).
    redirect: bool = False
    # Registered for a client that names no grant types.
    default: bool = False
    # RFC 9449 §5: the handler binding its tokens to a DPoP key; without one a proof is refused, not ignored.
    bind: BindingHandler | None = None


GRANT_TYPES: dict[str, GrantType] = {
    grant.name: grant
    for grant in (
        GrantType(
            "authorization_code", authorization_code, public=True, redirect=True, default=True, bind=authorization_code
        ),
        GrantType("refresh_token", refresh_token, public=True, default=True, bind=refresh_token),
        GrantType("client_credentials", client_credentials, public=False, bind=client_credentials),
        GrantType(DEVICE_CODE, device_code, public=True, bind=device_code),
        GrantType(TOKEN_EXCHANGE, token_exchange, public=False, bind=token_exchange),  # RFC 8693 §5: no public client
        GrantType(CIBA_GRANT, ciba, public=False, bind=ciba),  # CIBA Core 1.0 §7.1: confidential clients only
    )
}


def exchange(fd: Frontdesk, client: ClientRecord, params: Params, ip: str | None, jkt: Jkt = None) -> Response:
    grant_type = params.get("grant_type")
    if grant_type is None:
        raise InvalidRequest("grant_type is required")
    grant = GRANT_TYPES.get(grant_type)
    if grant is None:
        # RFC 9700 §2.4 and OAuth 2.1 §10: password and implicit are gone.
        raise UnsupportedGrantType(f"grant_type {grant_type!r} is not supported")
    if grant_type not in client.grant_types:
        raise UnauthorizedClient(f"the client is not allowed the {grant_type} grant")
    check_binding(client, grant_type, grant.bind is not None, jkt)
    return grant.handle(fd, client, params, ip) if grant.bind is None else grant.bind(fd, client, params, ip, jkt)
