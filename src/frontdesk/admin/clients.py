"""Clients, as the operator manages them: register, read, list, replace or change any of their metadata, rotate
their secret with an overlap, delete. Every field is judged by ``oauth.registration.validate``, the one judge of
client metadata (RFC 7591 §2) that the command line and ``/register`` use too; every change is audited as
``admin.client.*`` naming who made it.

A rotated secret keeps the previous one working for an overlap window (24 hours unless the call says otherwise; 0:
the old one stops at once), so the client's instances can move to the new one without an outage. Other processes
may answer from their client cache for up to ``storage.clients.CACHE_SECONDS`` after a change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from ..core import Frontdesk
from ..oauth.clients import names_document
from ..oauth.exchange_policy import registered_targets
from ..oauth.registration import (
    SECRET_METHODS,
    ClientError,
    ClientMetadata,
    ClientRequest,
    UnknownScope,
    stored_metadata,
    validate,
)
from ..secret import digest, new_token
from ..storage import audit
from ..storage.clients import (
    ClientExists,
    ClientRecord,
    insert_client,
    replace_client_metadata,
    replace_may_exchange_for,
)
from ..storage.clients import (
    delete_client as delete_stored,
)
from ..storage.clients_admin import client_page, replace_secret
from ..storage.db import now, transaction
from .client_fields import current_request, typed_changes
from .errors import Conflict, Invalid, NotFound, UnknownScopes
from .paging import MAX_LIMIT, Page, check_limit, decode_cursor, page_of
from .principals import Principal, record, require

__all__ = [
    "DEFAULT_OVERLAP",
    "MAX_OVERLAP",
    "ClientView",
    "ClientWithSecret",
    "RotatedSecret",
    "all_clients",
    "client",
    "create_client",
    "delete_client",
    "list_clients",
    "rotate_secret",
    "update_client",
]

DEFAULT_OVERLAP = 24 * 3600
MAX_OVERLAP = 30 * 24 * 3600


@dataclass(frozen=True, slots=True)
class ClientView:
    """A client as the operator sees it: its metadata (frontdesk's field names, as the admin API takes them), who
    registered it, and whether it has a secret — never the secret nor its digest."""

    client_id: str
    record: ClientRecord = field(repr=False)
    # Until when the secret before the last rotation still works (None: it does not).
    previous_secret_expires_at: int | None

    @property
    def has_secret(self) -> bool:
        return self.record.secret_digest is not None

    def as_dict(self) -> dict[str, Any]:
        c = self.record
        request = current_request(c)
        request.pop("application_type")
        return {
            "client_id": c.client_id,
            **request,
            "application_type": c.application_type,
            "registered_by": c.registered_by,
            "created_at": c.created_at,
            "last_used_at": c.last_used_at,
            "has_secret": self.has_secret,
            "previous_secret_expires_at": self.previous_secret_expires_at,
        }


@dataclass(frozen=True, slots=True)
class ClientWithSecret:
    """A client just registered or changed and, when it got a new secret, that secret: shown this once."""

    client: ClientView
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class RotatedSecret:
    client: ClientView
    secret: str = field(repr=False)
    # The previous secret works until then (None: it stopped at once).
    previous_valid_until: int | None


def _view(record: ClientRecord) -> ClientView:
    until = record.previous_secret_expires_at
    live = record.previous_secret_digest is not None and until is not None and until > now()
    return ClientView(record.client_id, record, until if live else None)


def _current(fd: Frontdesk, client_id: str) -> ClientRecord:
    found = fd.clients.get(client_id, cached=False) if "\x00" not in client_id else None
    if found is None:
        raise NotFound(f"no client {client_id[:255]!r}")
    return found


def _validated(fd: Frontdesk, request: dict[str, Any], kept_scopes: tuple[str, ...] = ()) -> ClientMetadata:
    """Registration's judgement of ``request``, its errors as the admin API's (RFC 7591 §3.2.2 codes kept). Scopes
    the client held already (``kept_scopes``) stay acceptable, even if their definition went away since."""
    if not isinstance(request.get("name"), str):
        raise Invalid("name is required", error="invalid_client_metadata")
    try:
        if request.get("may_exchange_for"):
            request["may_exchange_for"] = registered_targets(fd, request["may_exchange_for"])
        # Scopes nobody defined are refused now rather than at every token request, where each one would fail.
        known = set(fd.scopes(fresh=True)) | set(kept_scopes)
        return validate(cast(ClientRequest, request), known_scopes=known)
    except UnknownScope as exc:
        raise UnknownScopes(str(exc), exc.scopes) from None
    except ClientError as exc:
        raise Invalid(str(exc), error=exc.error) from None


def client(fd: Frontdesk, by: Principal, client_id: str) -> ClientView:
    require(by, "clients.read")
    return _view(_current(fd, client_id))


def all_clients(fd: Frontdesk, by: Principal) -> list[ClientView]:
    """Every client, by client_id (the command line's list)."""
    found: list[ClientView] = []
    cursor = None
    while True:
        page = list_clients(fd, by, cursor=cursor, limit=MAX_LIMIT)
        found.extend(page.items)
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def list_clients(
    fd: Frontdesk, by: Principal, *, search: str | None = None, cursor: str | None = None, limit: int = 50
) -> Page[ClientView]:
    """Clients by client_id; with ``search``, those whose client_id or name contains it (any case)."""
    require(by, "clients.read")
    check_limit(limit)
    with transaction(fd.engine, readonly=True) as conn:
        rows = client_page(conn, search or None, decode_cursor(cursor), limit + 1)
    return page_of([_view(r) for r in rows], limit, lambda c: c.client_id)


def create_client(
    fd: Frontdesk,
    by: Principal,
    fields: Mapping[str, Any],
    *,
    client_id: str | None = None,
    secret: str | None = None,
) -> ClientWithSecret:
    """Register a client; what ``fields`` leave out (or give as null) gets registration's default. A secret
    method without ``secret`` gets a generated one, returned this once."""
    require(by, "clients.write")
    if client_id is not None and not (0 < len(client_id) <= 255 and client_id.isprintable()):
        raise Invalid("client_id must be 1 to 255 printable characters", error="invalid_client_metadata")
    if client_id is not None and names_document(client_id):
        # CIMD §3: such a client_id names a client ID metadata document, which the server fetches, not a row.
        raise Invalid("a client_id that is an https URL names a metadata document", error="invalid_client_metadata")
    request = typed_changes({k: v for k, v in fields.items() if v is not None})
    metadata = _validated(fd, {**request, "client_id": client_id, "secret": secret})
    if secret is None and metadata.auth_method in SECRET_METHODS:
        secret = new_token("client_secret")
    with transaction(fd.engine) as conn:
        try:
            stored = insert_client(
                conn,
                client_id=metadata.client_id,
                secret=secret,
                may_exchange_for=metadata.may_exchange_for,
                **stored_metadata(metadata),
            )
        except ClientExists as exc:
            raise Conflict(str(exc), error="invalid_client_id") from None
        record(conn, by, "client.created", client_id=stored, auth_method=metadata.auth_method)
    return ClientWithSecret(_view(_current(fd, stored)), secret)


def update_client(
    fd: Frontdesk, by: Principal, client_id: str, changes: Mapping[str, Any], *, replace: bool = False
) -> ClientWithSecret:
    """Change the fields ``changes`` names (``replace``: replace the whole metadata, what is left out getting the
    default), judged as at registration. A client moved to a secret method without a secret gets one (returned this
    once); one moved to another method loses its secret."""
    require(by, "clients.write")
    current = _current(fd, client_id)
    if current.registered_by == "document":
        # CIMD §4.4: the client's metadata is its document, fetched again whenever the stored copy goes stale; a
        # change made here would stand only until then. Deleting the client ends its grants, as for any client.
        raise Conflict("this client's metadata is its client ID metadata document: change the document instead")
    typed = typed_changes(changes)
    if replace:
        request = {k: v for k, v in typed.items() if v is not None}
        request["application_type"] = current_request(current)["application_type"]
    else:
        request = current_request(current) | typed
    metadata = _validated(fd, {k: v for k, v in request.items() if v is not None}, current.scope)
    secret = None
    secret_columns: dict[str, Any] | None = None
    if metadata.auth_method in SECRET_METHODS and current.secret_digest is None:
        secret = new_token("client_secret")
        secret_columns = {"secret_digest": digest(secret), "previous_digest": None, "previous_expires_at": None}
    elif metadata.auth_method not in SECRET_METHODS and current.secret_digest is not None:
        secret_columns = {"secret_digest": None, "previous_digest": None, "previous_expires_at": None}
    with transaction(fd.engine) as conn:
        if not replace_client_metadata(conn, client_id, **stored_metadata(metadata)):
            raise NotFound(f"no client {client_id[:255]!r}")
        replace_may_exchange_for(conn, client_id, metadata.may_exchange_for)
        if secret_columns is not None:
            replace_secret(conn, client_id, **secret_columns)
        record(conn, by, "client.updated", client_id=client_id, fields=sorted(typed), replaced=replace)
        policy = _policy_changes(metadata, typed)
        if policy:  # the operator's policies, as oauth.exchange_policy and oauth.dpop have always audited them
            audit.record(conn, "client.updated", "success", client_id=client_id, **policy)
    fd.clients.forget(client_id)
    return ClientWithSecret(_view(_current(fd, client_id)), secret)


def _policy_changes(metadata: ClientMetadata, changed: Mapping[str, Any]) -> dict[str, Any]:
    policy: dict[str, Any] = {}
    if "may_exchange_for" in changed:
        policy["may_exchange_for"] = list(metadata.may_exchange_for)
    if "dpop_bound_access_tokens" in changed:
        policy["dpop_bound_access_tokens"] = metadata.dpop_bound_access_tokens
    return policy


def rotate_secret(fd: Frontdesk, by: Principal, client_id: str, *, overlap: int = DEFAULT_OVERLAP) -> RotatedSecret:
    """A new secret for the client, returned this once; the previous one keeps working for ``overlap`` seconds
    (0: it stops now)."""
    require(by, "clients.write")
    if not 0 <= overlap <= MAX_OVERLAP:
        raise Invalid(f"overlap must be between 0 and {MAX_OVERLAP} seconds (30 days)")
    current = _current(fd, client_id)
    if current.auth_method not in SECRET_METHODS:
        raise Conflict(f"this client authenticates with {current.auth_method}: it has no secret to rotate")
    secret = new_token("client_secret")
    at = now()
    keep = overlap > 0 and current.secret_digest is not None
    until = at + overlap if keep else None
    with transaction(fd.engine) as conn:
        replace_secret(
            conn,
            client_id,
            secret_digest=digest(secret),
            previous_digest=current.secret_digest if keep else None,
            previous_expires_at=until,
        )
        record(conn, by, "client.secret_rotated", client_id=client_id, overlap=overlap)
    fd.clients.forget(client_id)
    return RotatedSecret(_view(_current(fd, client_id)), secret, until)


def delete_client(fd: Frontdesk, by: Principal, client_id: str) -> None:
    """Delete the client and end every grant it holds (RFC 7592 §2.3)."""
    require(by, "clients.write")
    with transaction(fd.engine) as conn:
        if "\x00" in client_id or not delete_stored(conn, client_id, now()):
            raise NotFound(f"no client {client_id[:255]!r}")
        record(conn, by, "client.deleted", client_id=client_id)
    fd.clients.forget(client_id)
