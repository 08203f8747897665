"""What the token endpoint's two grants that spend something share — an authorization code (RFC 6749 §4.1.3,
OAuth 2.1 §4.1.3) and a refresh token, rotated (RFC 6749 §6, RFC 9700 §4.14.2) — and the other grants reuse.

``oauth.grants`` reads the code or refresh token with its grant and runs its named checks; then the tokens are
minted (``mint``) before anything is written, and the code or token is spent together with everything issued from
it (``redeem``, ``storage.redemption.spend``): the new refresh token, the DPoP binding, the audit event — all or
nothing, and nothing if another request spent it first (on SQLite the audit event follows the commit: see there).
On PostgreSQL that is two round trips (the read, and one statement for every write) where a transaction of seven
was (BENCHMARKS.md row 44), and one for a code, or a refresh that narrows nothing (``in_one``: the read and the
spend in one statement, which spends only when every check that needs the row holds, row 63). Detected
theft (a replayed code, a reused refresh token) is written in its own transaction before the error goes out
(``theft``), so the revocation survives the error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..core import Frontdesk
from ..errors import InvalidGrant, InvalidScope, InvalidTarget
from ..protocol import rfc7636
from ..protocol.forms import Params
from ..protocol.rfc8707 import check_resource, comparable
from ..protocol.scope import parse_scope
from ..secret import new_token
from ..storage import audit
from ..storage.clients import ClientRecord
from ..storage.db import DB, Raw, after_commit, now, transaction
from ..storage.grants import CodeRow, GrantRow, RefreshRow, revoke_grant
from ..storage.redemption import InOne, Redemption, Spent, new_refresh, spend
from .resources import ResourceRow, mintable, minted_for, resolve
from .tokens import mint_access_token, mint_id_token

__all__ = [
    "InOne",
    "Issuance",
    "Issued",
    "answer",
    "in_one",
    "issued_in_one",
    "mint",
    "narrowed_resource",
    "narrowed_scope",
    "redeem",
    "theft",
    "wants_refresh",
]

Response = dict[str, Any]


def wants_refresh(client: ClientRecord, grant: GrantRow) -> bool:
    """OIDC Core §11: for an OpenID request, a refresh token only with offline_access."""
    return "refresh_token" in client.grant_types and ("openid" not in grant.scope or "offline_access" in grant.scope)


@dataclass(frozen=True, slots=True)
class Issuance:
    """What a token response is minted from: the client, its grant, what the tokens are for and when, and the
    nonce, DPoP key and sign-in session the tokens carry."""

    client: ClientRecord
    grant: GrantRow
    scope: tuple[str, ...]
    resources: Sequence[ResourceRow]
    at: int
    details: Sequence[dict[str, Any]]
    nonce: str | None = None  # OpenID Connect Core §3.1.3.6: the authorization request's, into the ID token
    jkt: str | None = None  # RFC 9449 §6.1: the proof key's thumbprint, when the tokens are bound to it
    sid: str | None = None  # OpenID Connect Front-/Back-Channel Logout: the sign-in session, into the ID token


def answer(fd: Frontdesk, what: Issuance, refresh: str | None) -> Response:
    """The token response (RFC 6749 §5.1): the tokens minted, ``refresh`` (already written or about to be) put in."""
    client, grant, scope, jkt, details = what.client, what.grant, what.scope, what.jkt, what.details
    resources, at = what.resources, what.at
    access = mint_access_token(fd, client, scope, resources, grant, at, authorization_details=details, jkt=jkt)
    body: Response = {
        "access_token": access.token,
        "token_type": "DPoP" if jkt else "Bearer",  # RFC 9449 §5
        "expires_in": access.expires_in,
        "scope": " ".join(scope),
    }
    if details:  # RFC 9396 §6, §7: the grant's details (or those the token request narrowed them to)
        body["authorization_details"] = list(details)
    if refresh is not None:
        body["refresh_token"] = refresh
    if "openid" in scope and grant.user_id:
        body["id_token"] = mint_id_token(fd, client, grant, access.token, what.nonce, at, sid=what.sid)
    return body


def narrowed_scope(params: Params, grant: GrantRow) -> tuple[str, ...]:
    """RFC 6749 §6: a refresh may narrow the scope, never widen it."""
    scope = parse_scope(params.get("scope")) or grant.scope
    if not set(scope) <= set(grant.scope):
        raise InvalidScope("the requested scope exceeds the scope of the grant")
    return scope


def narrowed_resource(fd: Frontdesk, db: DB, params: Params, grant: GrantRow) -> tuple[ResourceRow, ...]:
    """RFC 8707 §2.2: a token request may name fewer of the granted resources as the audience, never others; and
    only resources still registered (§2), so a deleted resource gets no new token, not even by a refresh."""
    resources = resolve(fd, db, check_resource(params.getall("resource")) or grant.resource)
    granted = {comparable(uri) for uri in grant.resource}
    if any(comparable(r.uri) not in granted for r in resources):
        raise InvalidTarget("the requested resource was not part of the grant")
    return resources


def theft(fd: Frontdesk, grant: GrantRow, event: str, client: ClientRecord, ip: str | None) -> InvalidGrant:
    """RFC 9700 §4.14.2 / OAuth 2.1 §4.1.3: revoke everything issued from the grant, and say so in the audit."""
    with transaction(fd.engine) as conn:
        revoke_grant(conn, grant.id, now())
        audit.record(
            conn,
            event,
            "revoked",
            client_id=client.client_id,
            user_id=grant.user_id,
            ip=ip,
            grant_id=grant.id,
        )
    return InvalidGrant("the grant is no longer valid")


@dataclass(frozen=True, slots=True)
class Issued:
    """Tokens minted and not yet written: the response, and what ``storage.redemption.spend`` writes with it."""

    body: Response
    writes: Redemption
    event: str
    detail: dict[str, Any]
    ip: str | None

    def announce(self) -> None:
        """The audit event's log line and metrics, once the spend has committed (as storage/audit.py ``record``
        announces an event written)."""
        grant = self.writes.grant
        audit.announce(self.event, "success", self.writes.client_id, grant.user_id, self.ip, self.detail)


def mint(fd: Frontdesk, what: Issuance, event: tuple[str, str | None, dict[str, Any]]) -> Issued:
    """The tokens of a redemption and the writes that go with them; ``event``: the audit event's name, the
    client's address and the event's details."""
    client, grant = what.client, what.grant
    refresh, refresh_expires_at = (
        new_refresh(grant, what.at, fd.settings.lifetimes.refresh_idle) if wants_refresh(client, grant) else (None, 0)
    )
    body = answer(fd, what, refresh)
    name, ip, detail = event
    # storage/audit.py builds the row (``record`` would also execute its INSERT, here part of the spend's statement).
    row = audit.event_row(name, "success", client.client_id, grant.user_id, ip, detail)
    bind = what.jkt if refresh is not None and what.jkt is not None and client.public else None  # RFC 9449 §5
    return Issued(body, Redemption(grant, client.client_id, row, refresh, refresh_expires_at, bind), name, detail, ip)


def redeem(db: Raw, spent: Spent, secret: str, at: int, issued: Issued) -> Response | None:
    """Spend the code or refresh token ``secret`` with the writes of ``issued``: the response, or None, with nothing
    written, when another request spent it first."""
    if not spend(db, spent, secret, at, issued.writes):
        return None
    after_commit(db, issued.announce)
    return issued.body


Catalog = dict[str, ResourceRow | None]  # ``resources.mintable``


def in_one(
    fd: Frontdesk, db: Raw, spent: Spent, client: ClientRecord, params: Params, at: int, ip: str | None,
    jkt: str | None,
) -> tuple[InOne, Catalog] | None:  # fmt: skip
    """What the one statement of ``storage.redemption`` checks and writes for this code redemption or refresh, with
    the resources it may mint for; None where the read and the spend take a statement each: on SQLite (where a
    statement is no round trip), for a request that narrows its grant's scope, resources or details (checked before
    anything is spent), a code request whose verifier is not one (``rfc7636.verify`` says why), too many resources."""
    if db.dialect.name == "sqlite" or "authorization_details" in params or params.getall("resource"):
        return None
    code = spent == "code"
    if (not code and "scope" in params) or (code and not rfc7636.well_formed(params.get("code_verifier"))):
        return None
    catalog = mintable(fd, db, jkt)
    if catalog is None:
        return None
    wants = "refresh_token" in client.grant_types
    one = InOne(
        client.client_id, jkt, list(catalog), new_token("refresh_token"), at + fd.settings.lifetimes.refresh_idle,
        wants, jkt if wants and jkt is not None and client.public else None,
        "token.issued" if code else "token.refreshed", ip,
        params.get("redirect_uri") if code else None, rfc7636.s256(params["code_verifier"]) if code else "",
    )  # fmt: skip
    return one, catalog


def issued_in_one(
    fd: Frontdesk, db: Raw, client: ClientRecord, row: CodeRow | RefreshRow, planned: tuple[InOne, Catalog], at: int,
    jkt: str | None,
) -> Response:  # fmt: skip
    """The response for a code or refresh token the one statement spent (``in_one``), its audit event's line
    announced once committed: the tokens of its grant, for all it was granted."""
    one, catalog = planned
    grant = row.grant
    # The audit detail as the two-statement path words it (oauth/grants.py); the statement wrote the same.
    if isinstance(row, CodeRow):
        nonce, detail = row.nonce, {"grant_type": "authorization_code", "grant_id": grant.id}
    else:
        nonce, detail = None, {"grant_id": grant.id}
    details = tuple(dict(d) for d in grant.authorization_details)
    resources = minted_for(fd, catalog, grant.resource)
    what = Issuance(client, grant, grant.scope, resources, at, details, nonce, jkt, row.sid)
    body = answer(fd, what, one.refresh if wants_refresh(client, grant) else None)
    after_commit(db, lambda: audit.announce(one.event, "success", client.client_id, grant.user_id, one.ip, detail))
    return body
