"""Signing out: OpenID Connect RP-Initiated Logout 1.0 (a client sends the browser to ``/logout``) and Back-Channel
Logout 1.0 (frontdesk tells every client the person used in the session that ended).

``end_sessions`` is the one way a browser session ends on purpose — the logout endpoint, the account page's "sign
out" and "sign out everywhere". It closes the sessions, revokes what only lived for them, and puts a logout token
for each client with a ``backchannel_logout_uri`` in a durable outbox. ``deliver_due`` drains the outbox with retries
and back-off (a background task of the server, and any process may run it: deliveries are claimed atomically).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from joserfc.errors import JoseError

from ..core import Frontdesk
from ..errors import InvalidRequest
from ..protocol.forms import Params
from ..storage import audit
from ..storage.clients import ClientRecord
from ..storage.db import now, transaction
from ..storage.grants import revoke_grant
from ..storage.logout import (
    DeliveryRow,
    claim_delivery,
    close_browser_sessions,
    drop_delivery,
    due_deliveries,
    forget_sessions,
    postpone_delivery,
    queue_delivery,
    session_uses,
)
from .clients import find_client

__all__ = [
    "BACKCHANNEL_EVENT",
    "Ended",
    "IdTokenHint",
    "LogoutRequest",
    "check_id_token_hint",
    "deliver_due",
    "end_sessions",
    "logout_token",
    "parse_logout_request",
]

log = logging.getLogger("frontdesk.logout")

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
DELIVERY_BATCH = 20


@dataclass(frozen=True, slots=True)
class IdTokenHint:
    """The claims of an ID token this server issued, as far as sign-out needs them."""

    sub: str
    sid: str | None
    audiences: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    """RP-Initiated Logout 1.0 §2, validated: the client (named or implied by the hint) and where to go after."""

    client: ClientRecord | None
    hint: IdTokenHint | None
    post_logout_redirect_uri: str | None
    state: str | None

    def tied_to(self, user_id: str, sid: str) -> bool:
        """The hint names this person and this session: signing out needs no question (§2, §6)."""
        hint = self.hint
        return hint is not None and hint.sub == user_id and hint.sid in (None, sid)

    def answer(self) -> str | None:
        """Where the browser goes once the request is done: the registered URI with ``state``, or nowhere."""
        uri = self.post_logout_redirect_uri
        if uri is None:
            return None
        if self.state is None:
            return uri
        separator = "&" if urlsplit(uri).query else ("" if uri.endswith("?") else "?")
        return f"{uri}{separator}{urlencode({'state': self.state})}"


def check_id_token_hint(fd: Frontdesk, token: str) -> IdTokenHint:
    """An ID token signed by one of our published keys, current or retired. An expired one is still a good hint
    (RP-Initiated Logout 1.0 §2: the OP SHOULD accept it), so ``exp`` is not checked."""
    try:
        decoded = fd.keys.verify(token)
    except (ValueError, JoseError):
        raise InvalidRequest("id_token_hint is not an ID token issued here") from None
    # Our access and logout tokens are signed by the same keys; only an ID token (typ JWT) is a hint.
    claims: dict[str, Any] = decoded.claims
    if decoded.header.get("typ", "JWT") != "JWT" or claims.get("iss") != fd.issuer:
        raise InvalidRequest("id_token_hint is not an ID token issued here")
    sub, aud, sid = claims.get("sub"), claims.get("aud"), claims.get("sid")
    audiences = (aud,) if isinstance(aud, str) else tuple(a for a in aud if isinstance(a, str)) if aud else ()
    if not isinstance(sub, str) or not audiences:
        raise InvalidRequest("id_token_hint lacks sub or aud")
    return IdTokenHint(sub, sid if isinstance(sid, str) else None, audiences)


def _client_of(fd: Frontdesk, params: Params, hint: IdTokenHint | None) -> ClientRecord | None:
    client_id = params.get("client_id")
    if client_id is not None:
        client = find_client(fd, client_id)
        if client is None:
            raise InvalidRequest("client_id is not a registered client")
        if hint is not None and client_id not in hint.audiences:
            raise InvalidRequest("id_token_hint was not issued to this client_id")  # §2: they must agree
        return client
    if hint is not None and len(hint.audiences) == 1:
        return fd.clients.get(hint.audiences[0])
    return None


def parse_logout_request(fd: Frontdesk, params: Params) -> LogoutRequest:
    """RP-Initiated Logout 1.0 §2 and §3; any failure is ``invalid_request`` and nobody is redirected (BCP-31)."""
    token = params.get("id_token_hint")
    hint = check_id_token_hint(fd, token) if token is not None else None
    client = _client_of(fd, params, hint)
    uri = params.get("post_logout_redirect_uri")
    if uri is not None:
        # §3: only a URI registered for the client, compared as strings; without a client, none at all.
        if client is None:
            raise InvalidRequest("post_logout_redirect_uri needs client_id or id_token_hint")
        if uri not in client.post_logout_redirect_uris:
            raise InvalidRequest("post_logout_redirect_uri is not registered for this client")
    return LogoutRequest(client, hint, uri, params.get("state"))


@dataclass(frozen=True, slots=True)
class Ended:
    """What ``end_sessions`` did: browser sessions closed, logout tokens queued for clients."""

    sessions: int
    notified: int


def end_sessions(
    fd: Frontdesk, user_id: str, session_ids: Collection[str] | None = None, *, ip: str | None = None
) -> Ended:
    """Sign the person out of those browser sessions (of every one when ``session_ids`` is None).

    Closes the sessions; revokes the grants issued in them that only lived for the session (OpenID requests without
    ``offline_access``: Back-Channel Logout 1.0 §2.7); queues a logout token for every client with a back-channel
    logout URI that the person used in them, and audits it all as one ``logout`` event. ``session_ids`` are the
    sessions' public ids (``Session.id``), which ID tokens carry as ``sid``."""
    at = now()
    with transaction(fd.engine) as conn:
        closed = close_browser_sessions(conn, user_id, session_ids)
        uses = session_uses(conn, user_id, session_ids)
        told: set[tuple[str, str]] = set()
        for use in uses:
            if "openid" in use.scope and "offline_access" not in use.scope:
                revoke_grant(conn, use.grant_id, at)
            client = fd.clients.get(use.client_id)
            if client is None or not client.backchannel_logout_uri or (use.sid, use.client_id) in told:
                continue
            told.add((use.sid, use.client_id))
            queue_delivery(conn, client_id=use.client_id, user_id=user_id, sid=use.sid, at=at)
        forget_sessions(conn, user_id, session_ids)
        audit.record(
            conn,
            "logout",
            "success",
            user_id=user_id,
            ip=ip,
            sessions=closed,
            clients=sorted({client_id for _, client_id in told}),
        )
    return Ended(closed, len(told))


def logout_token(fd: Frontdesk, client: ClientRecord, delivery: DeliveryRow, at: int) -> str:
    """Back-Channel Logout 1.0 §2.4: signed like the client's ID tokens, typed ``logout+jwt``, never a nonce."""
    claims: dict[str, Any] = {
        "iss": fd.issuer,
        "aud": client.client_id,
        "iat": at,
        "exp": at + fd.settings.backchannel_logout.token_lifetime,
        "jti": delivery.jti,
        "sub": delivery.user_id,
        "events": {BACKCHANNEL_EVENT: {}},
    }
    if delivery.sid is not None:
        claims["sid"] = delivery.sid
    return fd.keys.sign(claims, client.id_token_alg or fd.settings.id_token_alg, typ="logout+jwt")


def _send(fd: Frontdesk, http: httpx.Client, client: ClientRecord, delivery: DeliveryRow, at: int) -> tuple[str, str]:
    """One attempt: (outcome, detail) with outcome delivered, refused (the client said no, §2.8) or failed."""
    assert client.backchannel_logout_uri is not None
    token = logout_token(fd, client, delivery, at)
    try:
        response = http.post(
            client.backchannel_logout_uri,
            data={"logout_token": token},
            timeout=fd.settings.backchannel_logout.timeout,
            follow_redirects=False,
        )
    except httpx.HTTPError as exc:
        return "failed", type(exc).__name__
    if response.is_success:
        return "delivered", str(response.status_code)
    # §2.8: 400 means the client could not log out with this token; retrying the same claims will not help.
    if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
        return "refused", str(response.status_code)
    return "failed", str(response.status_code)


def _settle(fd: Frontdesk, delivery: DeliveryRow, outcome: str, detail: str, at: int) -> str:
    settings = fd.settings.backchannel_logout
    attempts = delivery.attempts + 1
    if outcome == "failed" and attempts >= settings.max_attempts:
        outcome = "abandoned"
    with transaction(fd.engine) as conn:
        if outcome == "failed":
            delay = min(settings.max_retry, settings.first_retry << (attempts - 1))
            postpone_delivery(conn, delivery.jti, at + delay, detail)
        else:
            drop_delivery(conn, delivery.jti)
        audit.record(
            conn,
            "logout.backchannel",
            outcome,
            client_id=delivery.client_id,
            user_id=delivery.user_id,
            jti=delivery.jti,
            attempt=attempts,
            detail=detail,
        )
    return outcome


def deliver_due(
    fd: Frontdesk, http: httpx.Client, at: int | None = None, batch: int = DELIVERY_BATCH
) -> dict[str, int]:
    """Attempt every delivery that is due at ``at`` (now, when not given; up to ``batch``); returns how many ended
    in each outcome."""
    at = now() if at is None else at
    settings = fd.settings.backchannel_logout
    with transaction(fd.engine, readonly=True) as conn:
        due = due_deliveries(conn, at, batch)
    counts: dict[str, int] = {}
    for delivery in due:
        with transaction(fd.engine) as conn:
            # Leased for a few timeouts: if this process dies mid-send, another one retries after the lease.
            if not claim_delivery(conn, delivery, at, lease=3 * settings.timeout):
                continue
        client = fd.clients.get(delivery.client_id, cached=False)
        if client is None or not client.backchannel_logout_uri:
            outcome = _settle(fd, delivery, "dropped", "the client no longer takes back-channel logout", at)
        else:
            outcome = _settle(fd, delivery, *_send(fd, http, client, delivery, at), at)
        counts[outcome] = counts.get(outcome, 0) + 1
    if counts:
        log.info("back-channel logout deliveries", extra={"outcomes": counts})
    return counts
