"""OpenID Connect Client-Initiated Backchannel Authentication (CIBA Core 1.0), the client's side: an authenticated
confidential client asks, out of band, that a person approve what it wants (§7.1); the answer is an ``auth_req_id``
(§7.3) that the client later redeems at the token endpoint (``oauth.ciba_grant``), polling (poll mode) or once it is
told the person answered (ping mode, ``oauth.ciba_ping``). The person answers on the account page
(``oauth.ciba_approval``); the platform hears of each new request through the vault's signed webhook, so that it can
tell the person.

Lifetimes are the device flow's (``[lifetimes] device_code`` and ``device_interval``): both are a request that waits
for a person on another device. Signed authentication requests (§7.1.1) and ``login_hint_token`` are not supported
(§4: ``backchannel_authentication_request_signing_alg_values_supported`` is left out).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..core import Frontdesk
from ..errors import InvalidRequest, InvalidScope, RateLimited, UnauthorizedClient
from ..protocol import ciba as wire
from ..protocol.ciba import CIBA_GRANT, DELIVERY_MODES, BackchannelAccessDenied, DeliveryMode, UnknownUserId
from ..protocol.forms import Params
from ..protocol.rfc8707 import check_resource
from ..protocol.scope import parse_scope
from ..secret import digest, new_token
from ..storage import audit
from ..storage.ciba import insert_request, waiting_count
from ..storage.clients import ClientRecord
from ..storage.db import now, transaction
from ..vault.webhooks import Webhooks
from .authorization import hinted_subject
from .authorization_details import requested_details, type_names
from .grants import check_scope
from .rate_limits import Limit, count_and_check
from .resources import resolve

__all__ = [
    "MAX_WAITING",
    "PERSON_LIMIT",
    "BackchannelAsk",
    "BackchannelAuthentication",
    "checked_request",
    "delivery_mode",
    "seal_notification",
    "start",
]

# CIBA §7.1 and §15 (the person's device is "spammed"): each person gets at most this many new requests per window,
# and at most MAX_WAITING unanswered at once, whatever client asks. Past either, the request is refused with §13's
# 403 access_denied ("the OpenID Provider denied the CIBA flow"): §13 has no throttling code of its own, and a 429
# would tell a client that waiting helps, when the person may simply be ignoring it.
PERSON_LIMIT = (10, 600)
MAX_WAITING = 5


@dataclass(frozen=True, slots=True)
class BackchannelAsk:
    """A backchannel authentication request, checked (§7.1)."""

    client_id: str
    mode: DeliveryMode
    user_id: str
    scope: tuple[str, ...]
    resource: tuple[str, ...]
    authorization_details: tuple[dict[str, Any], ...]
    binding_message: str | None
    expires_in: int
    notification_token: str | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class BackchannelAuthentication:
    """The successful answer (§7.3)."""

    auth_req_id: str = field(repr=False)
    expires_in: int
    interval: int

    def as_json(self) -> dict[str, object]:
        return {"auth_req_id": self.auth_req_id, "expires_in": self.expires_in, "interval": self.interval}


def delivery_mode(client: ClientRecord) -> DeliveryMode:
    """The client's registered delivery mode (§4), or ``unauthorized_client`` (§13) for a client that may not use
    the backchannel endpoint: a public one, one without the grant or without a mode."""
    if client.public or CIBA_GRANT not in client.grant_types:
        raise UnauthorizedClient("the client is not allowed the CIBA grant")
    mode = next((m for m in DELIVERY_MODES if m == client.backchannel_token_delivery_mode), None)
    if mode is None:
        raise UnauthorizedClient("the client has no registered backchannel_token_delivery_mode")
    return mode


def _scope(
    fd: Frontdesk, client: ClientRecord, raw: str | None, resource: list[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """§7.1 ``scope``: REQUIRED and includes ``openid``; each scope one the client may have (RFC 6749 §3.3)."""
    if not raw:
        raise InvalidRequest("scope is required")
    scope = parse_scope(raw)
    if "openid" not in scope:
        raise InvalidScope("the scope of a CIBA request must include openid")
    resources = resolve(fd, fd.engine, check_resource(resource))  # RFC 8707 §2: registered resources only
    return check_scope(fd, client, scope, resources), tuple(r.uri for r in resources)


def _person(fd: Frontdesk, client: ClientRecord, params: Params) -> str:
    """§7.1: the one hint names the person; ``unknown_user_id`` (§13) when it names nobody known here."""
    kind, value = wire.one_hint(params.get("login_hint"), params.get("id_token_hint"), params.get("login_hint_token"))
    if kind == "login_hint_token":
        raise InvalidRequest("login_hint_token is not supported: send login_hint (a username) or id_token_hint")
    with transaction(fd.engine, readonly=True) as conn:
        if kind == "id_token_hint":
            # §7.1: "An ID Token previously issued to the Client by the OpenID Provider"; expired is still a hint.
            subject = hinted_subject(fd, client, value)
            person = fd.users.by_id(conn, subject)
            user_id = person.id if person is not None else None
        else:
            user_id = fd.users.id_of(conn, value)
    if user_id is None:
        raise UnknownUserId("the hint does not name a known person")
    return user_id


def checked_request(fd: Frontdesk, client: ClientRecord, params: Params) -> BackchannelAsk:
    """§7.1 and §7.2: the request of an authenticated client, checked field by field; raises the §13 error."""
    mode = delivery_mode(client)
    if params.get("request") is not None or params.get("request_uri") is not None:
        raise InvalidRequest("signed authentication requests (request objects) are not supported")
    scope, resource = _scope(fd, client, params.get("scope"), params.getall("resource"))
    user_id = _person(fd, client, params)
    message = wire.binding_message(params.get("binding_message"))
    lt = fd.settings.lifetimes
    expires_in = wire.requested_expiry(params.get("requested_expiry"), lt.device_code, lt.device_code)
    details = requested_details(fd, params.get("authorization_details"))  # RFC 9396 §2
    token = wire.notification_token(mode, params.get("client_notification_token"))
    return BackchannelAsk(client.client_id, mode, user_id, scope, resource, details, message, expires_in, token)


def seal_notification(fd: Frontdesk, key: str, auth_req_id: str, token: str) -> bytes:
    """Ping mode (§10.2): what the notification needs later, the raw ``auth_req_id`` and the client's bearer token,
    sealed under the master key with the request's digest as associated data (a sealed value moved to another row
    does not open)."""
    plain = json.dumps({"auth_req_id": auth_req_id, "token": token}).encode()
    return fd.master.seal(plain, key.encode())


def _throttle(fd: Frontdesk, user_id: str, at: int) -> None:
    try:
        count_and_check(fd, [Limit("ciba_person", user_id, *PERSON_LIMIT)])
    except RateLimited:
        raise BackchannelAccessDenied("too many approval requests for this person; try again later") from None
    with transaction(fd.engine, readonly=True) as conn:
        waiting = waiting_count(conn, user_id, at)
    if fd.settings.rate_limits.enabled and waiting >= MAX_WAITING:
        raise BackchannelAccessDenied("this person has too many approval requests waiting")


def _tell_platform(fd: Frontdesk, client: ClientRecord, asked: BackchannelAsk, at: int) -> None:
    """The vault's signed lifecycle webhook (``vault.webhooks``, ``vault_webhook_url``): the platform hears of the
    request so that it can tell the person where to answer. Never the ``auth_req_id`` or a token."""
    with transaction(fd.engine, readonly=True) as conn:
        person = fd.users.by_id(conn, asked.user_id)
    Webhooks(fd.settings.vault_webhook_url, fd.settings.vault_webhook_secret).send(
        "ciba.requested",
        {
            "user_id": asked.user_id,
            "username": person.username if person is not None else None,
            "client_id": client.client_id,
            "client_name": client.name,
            "binding_message": asked.binding_message,
            "scope": " ".join(asked.scope),
            "expires_at": at + asked.expires_in,
            "approve_at": fd.url("/account/approvals"),
        },
    )


def _details_named(details: tuple[dict[str, Any], ...]) -> dict[str, str]:
    """The audit's account of RFC 9396 details: their types only; the values stay with the request."""
    return {"authorization_details": type_names(details)} if details else {}


def start(fd: Frontdesk, client: ClientRecord, asked: BackchannelAsk, ip: str | None) -> BackchannelAuthentication:
    """§7.3: a new ``auth_req_id`` (256 random bits, URL-safe, kept as a digest, bound to the client) for a checked
    request, under the person's limits; audited as ``ciba.requested``."""
    at = now()
    _throttle(fd, asked.user_id, at)
    interval = fd.settings.lifetimes.device_interval
    auth_req_id = new_token("auth_req_id")
    key = digest(auth_req_id)
    sealed = seal_notification(fd, key, auth_req_id, asked.notification_token) if asked.notification_token else None
    with transaction(fd.engine) as conn:
        insert_request(
            conn,
            auth_req_id=auth_req_id,
            client_id=client.client_id,
            user_id=asked.user_id,
            scope=asked.scope,
            resource=asked.resource,
            authorization_details=asked.authorization_details,
            binding_message=asked.binding_message,
            interval=interval,
            at=at,
            ttl=asked.expires_in,
            sealed_notification=sealed,
        )
        audit.record(
            conn,
            "ciba.requested",
            "success",
            client_id=client.client_id,
            user_id=asked.user_id,
            ip=ip,
            scope=" ".join(asked.scope),
            mode=asked.mode,
            expires_in=asked.expires_in,
            **(
                {"authorization_details": type_names(asked.authorization_details)}
                if asked.authorization_details
                else {}
            ),
        )
    _tell_platform(fd, client, asked, at)
    return BackchannelAuthentication(auth_req_id, asked.expires_in, interval)
