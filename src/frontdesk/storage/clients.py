"""Registered clients: their rows, read back as :class:`ClientRecord` (RFC 7591 metadata names), with a short
per-process cache. Storage only: what a client may be registered with is judged in ``frontdesk.oauth.registration``
before anything reaches :meth:`ClientStore.insert`."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from ..secret import digest
from .db import Raw, now, run, transaction
from .schema import Client, Grant

__all__ = [
    "AssertionAudience",
    "ClientExists",
    "ClientRecord",
    "ClientStore",
    "RegisteredBy",
    "delete_client",
    "forget_registration_token",
    "insert_client",
    "mark_used",
    "replace_client_metadata",
    "replace_dpop_bound",
    "replace_may_exchange_for",
    "save_document_client",
]

# The audience a private_key_jwt client's assertions must name (``frontdesk.oauth.registration`` says which).
AssertionAudience = Literal["issuer", "token-endpoint"]
# Who registered a client: the operator, the client itself (RFC 7591), or its client ID metadata document.
RegisteredBy = Literal["operator", "self", "document"]
_REGISTERED_BY: tuple[RegisteredBy, ...] = ("operator", "self", "document")
CACHE_SECONDS = 5.0


def _new_client_id() -> str:
    # Never a leading "-": such an id reads as an option on command lines (`frontdesk client show -Xy…`).
    while (client_id := secrets.token_urlsafe(16)).startswith("-"):
        pass
    return client_id


class ClientExists(ValueError):
    """A client with this client_id is registered already."""

    def __init__(self, client_id: str) -> None:
        super().__init__(f"client {client_id!r} already exists")
        self.client_id = client_id


@dataclass(frozen=True, slots=True)
class ClientRecord:
    client_id: str
    name: str
    secret_digest: str | None
    auth_method: str
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scope: tuple[str, ...]
    jwks: dict[str, Any] | None
    jwks_uri: str | None
    resources: tuple[str, ...]
    access_token_ttl: int | None
    id_token_alg: str | None
    created_at: int
    post_logout_redirect_uris: tuple[str, ...] = ()
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool = False
    assertion_audience: AssertionAudience = "issuer"
    registered_by: RegisteredBy = "operator"
    application_type: str = "web"  # OpenID Connect Registration 1.0 §2: "web" or "native"
    registration_token_digest: str | None = None  # RFC 7592 §3, self-registered clients only
    last_used_at: int | None = None
    extra_metadata: dict[str, Any] = field(default_factory=dict)  # RFC 7591 §2 display fields
    metadata_expires_at: int | None = None  # a metadata document's: refetch after this
    metadata_stale_until: int | None = None  # ... and, while refetching fails, use the stored copy until this
    # RFC 8693: the resources the operator lets this client exchange a person's token for (token_exchange.py).
    may_exchange_for: tuple[str, ...] = ()
    backchannel_token_delivery_mode: str | None = None  # CIBA Core 1.0 §4: "poll" or "ping"
    backchannel_client_notification_endpoint: str | None = None  # CIBA Core 1.0 §4, §10.2: ping mode's https URL
    dpop_bound_access_tokens: bool = False  # RFC 9449 §5.2: every token request of it must carry a DPoP proof
    # Secret rotation with an overlap (frontdesk.admin.clients): the secret before the last rotation, until then.
    previous_secret_digest: str | None = None
    previous_secret_expires_at: int | None = None

    @property
    def public(self) -> bool:
        return self.auth_method == "none"

    @property
    def vetted(self) -> bool:
        """Registered by the operator; a client that registered itself or was named by its metadata document was
        checked by nobody, so consent is never skipped for it and its pages say so."""
        return self.registered_by == "operator"


def _record(row: Any) -> ClientRecord:
    return ClientRecord(
        client_id=row.client_id,
        name=row.name,
        secret_digest=row.secret_digest,
        auth_method=row.auth_method,
        redirect_uris=tuple(json.loads(row.redirect_uris)),
        grant_types=tuple(json.loads(row.grant_types)),
        scope=tuple(row.scope.split()),
        jwks=json.loads(row.jwks) if row.jwks else None,
        jwks_uri=row.jwks_uri,
        resources=tuple(json.loads(row.resources)),
        access_token_ttl=row.access_token_ttl,
        id_token_alg=row.id_token_alg,
        created_at=row.created_at,
        post_logout_redirect_uris=tuple(json.loads(row.post_logout_redirect_uris)),
        backchannel_logout_uri=row.backchannel_logout_uri,
        backchannel_logout_session_required=bool(row.backchannel_logout_session_required),
        assertion_audience="token-endpoint" if row.assertion_audience == "token-endpoint" else "issuer",
        registered_by=next((r for r in _REGISTERED_BY if r == row.registered_by), "operator"),
        application_type=row.application_type,
        registration_token_digest=row.registration_token_digest,
        last_used_at=row.last_used_at,
        extra_metadata=json.loads(row.extra_metadata or "{}"),
        metadata_expires_at=row.metadata_expires_at,
        metadata_stale_until=row.metadata_stale_until,
        may_exchange_for=tuple(json.loads(row.may_exchange_for or "[]")),
        backchannel_token_delivery_mode=row.backchannel_token_delivery_mode,
        backchannel_client_notification_endpoint=row.backchannel_client_notification_endpoint,
        dpop_bound_access_tokens=bool(row.dpop_bound_access_tokens),
        previous_secret_digest=row.previous_secret_digest,
        previous_secret_expires_at=row.previous_secret_expires_at,
    )


class ClientStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._cache: dict[str, tuple[float, ClientRecord]] = {}
        self._lock = threading.Lock()

    def insert(self, *, client_id: str | None, secret: str | None, **fields: Any) -> ClientRecord:
        """Store a client (a new client_id when none is given) in a transaction of its own (:func:`insert_client`).

        Raises :class:`ClientExists` when the client_id is taken."""
        with transaction(self._engine) as conn:
            stored = insert_client(conn, client_id=client_id, secret=secret, **fields)
        record = self.get(stored, cached=False)
        assert record is not None
        return record

    def forget(self, client_id: str) -> None:
        """Drop this process's cached copy of a client that was just changed or deleted."""
        self._cache.pop(client_id, None)

    def replace_logout(
        self,
        client_id: str,
        *,
        post_logout_redirect_uris: Sequence[str],
        backchannel_logout_uri: str | None,
        backchannel_logout_session_required: bool,
    ) -> ClientRecord | None:
        """Replace a client's sign-out metadata (RP-Initiated and Back-Channel Logout); None for an unknown client."""
        with transaction(self._engine) as conn:
            updated = conn.execute(
                update(Client)
                .where(Client.client_id == client_id)
                .values(
                    post_logout_redirect_uris=json.dumps(list(post_logout_redirect_uris)),
                    backchannel_logout_uri=backchannel_logout_uri,
                    backchannel_logout_session_required=backchannel_logout_session_required,
                )
            ).rowcount
        self._cache.pop(client_id, None)
        return self.get(client_id, cached=False) if updated else None

    def get(self, client_id: str, cached: bool = True) -> ClientRecord | None:
        hit = self._cache.get(client_id)
        if cached and hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        with transaction(self._engine, readonly=True) as conn:
            row = conn.execute(select(Client).where(Client.client_id == client_id)).first()
        if row is None:
            return None  # not cached: a client registered a moment ago by another process is found at once
        record = _record(row)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[client_id] = (time.monotonic(), record)
        return record

    def list(self) -> list[ClientRecord]:
        with transaction(self._engine, readonly=True) as conn:
            rows = conn.execute(select(Client).order_by(Client.created_at, Client.client_id)).all()
        return [_record(r) for r in rows]

    def delete(self, client_id: str) -> bool:
        """Delete a client and end its grants (:func:`delete_client`); False for an unknown client."""
        with transaction(self._engine) as conn:
            deleted = delete_client(conn, client_id, now())
        self._cache.pop(client_id, None)
        return deleted


def _metadata_columns(
    *,
    name: str,
    auth_method: str,
    redirect_uris: Sequence[str],
    grant_types: Sequence[str],
    scope: Sequence[str],
    jwks: dict[str, Any] | None,
    jwks_uri: str | None,
    resources: Sequence[str] = (),
    access_token_ttl: int | None = None,
    id_token_alg: str | None = None,
    post_logout_redirect_uris: Sequence[str] = (),
    backchannel_logout_uri: str | None = None,
    backchannel_logout_session_required: bool = False,
    assertion_audience: AssertionAudience = "issuer",
    application_type: str = "web",
    extra_metadata: dict[str, Any] | None = None,
    backchannel_token_delivery_mode: str | None = None,
    backchannel_client_notification_endpoint: str | None = None,
    dpop_bound_access_tokens: bool = False,
) -> dict[str, Any]:
    """The columns of a client's metadata, as stored."""
    return {
        "name": name,
        "auth_method": auth_method,
        "redirect_uris": json.dumps(list(redirect_uris)),
        "grant_types": json.dumps(list(grant_types)),
        "scope": " ".join(scope),
        "jwks": json.dumps(jwks) if jwks is not None else None,
        "jwks_uri": jwks_uri,
        "resources": json.dumps(list(resources)),
        "access_token_ttl": access_token_ttl,
        "id_token_alg": id_token_alg,
        "post_logout_redirect_uris": json.dumps(list(post_logout_redirect_uris)),
        "backchannel_logout_uri": backchannel_logout_uri,
        "backchannel_logout_session_required": backchannel_logout_session_required,
        "assertion_audience": assertion_audience,
        "application_type": application_type,
        "extra_metadata": json.dumps(extra_metadata or {}),
        "backchannel_token_delivery_mode": backchannel_token_delivery_mode,
        "backchannel_client_notification_endpoint": backchannel_client_notification_endpoint,
        "dpop_bound_access_tokens": dpop_bound_access_tokens,
    }


def insert_client(
    conn: Connection,
    *,
    client_id: str | None,
    secret: str | None,
    registered_by: RegisteredBy = "operator",
    registration_token: str | None = None,
    metadata_expires_at: int | None = None,
    metadata_stale_until: int | None = None,
    may_exchange_for: Sequence[str] = (),
    **metadata: Any,
) -> str:
    """Store a client in the caller's transaction (a new client_id when none is given) and return its client_id;
    only the digests of ``secret`` and ``registration_token`` (RFC 7592 §3) are kept. ``metadata`` are the keyword
    arguments of :func:`_metadata_columns`.

    Raises :class:`ClientExists` when the client_id is taken."""
    row = {
        "client_id": client_id or _new_client_id(),
        "secret_digest": digest(secret) if secret else None,
        "created_at": now(),
        "registered_by": registered_by,
        "registration_token_digest": digest(registration_token) if registration_token else None,
        "metadata_expires_at": metadata_expires_at,
        "metadata_stale_until": metadata_stale_until,
        "may_exchange_for": json.dumps(list(may_exchange_for)),
        **_metadata_columns(**metadata),
    }
    try:
        with conn.begin_nested():  # a taken client_id must not abort the caller's transaction (PostgreSQL)
            conn.execute(insert(Client), row)
    except IntegrityError:
        raise ClientExists(str(row["client_id"])) from None
    return str(row["client_id"])


def replace_client_metadata(conn: Connection, client_id: str, **metadata: Any) -> bool:
    """Replace a client's metadata (RFC 7592 §2.2; the keyword arguments of :func:`_metadata_columns`), leaving its
    client_id, secret, registration token and who registered it as they are; False for an unknown client."""
    updated = conn.execute(
        update(Client).where(Client.client_id == client_id).values(**_metadata_columns(**metadata))
    ).rowcount
    return bool(updated)


def replace_dpop_bound(conn: Connection, client_id: str, bound: bool) -> bool:
    """Set whether a client's token requests must carry a DPoP proof (RFC 9449 §5.2); False for an unknown client."""
    updated = conn.execute(
        update(Client).where(Client.client_id == client_id).values(dpop_bound_access_tokens=bound)
    ).rowcount
    return bool(updated)


def replace_may_exchange_for(conn: Connection, client_id: str, uris: Sequence[str]) -> bool:
    """Replace the resources a client may exchange tokens for (RFC 8693, the operator's policy; kept apart from the
    metadata a client may replace itself, RFC 7592 §2.2); False for an unknown client."""
    updated = conn.execute(
        update(Client).where(Client.client_id == client_id).values(may_exchange_for=json.dumps(list(uris)))
    ).rowcount
    return bool(updated)


def delete_client(conn: Connection, client_id: str, at: int) -> bool:
    """Delete a client and revoke every grant it holds, so no refresh token or introspected access token of it
    outlives it (RFC 7592 §2.3); False for an unknown client."""
    deleted = conn.execute(delete(Client).where(Client.client_id == client_id)).rowcount
    if deleted:
        conn.execute(
            update(Grant).where(Grant.client_id == client_id, Grant.revoked_at.is_(None)).values(revoked_at=at)
        )
    return bool(deleted)


def forget_registration_token(conn: Connection, token: str) -> str | None:
    """Revoke a registration access token (RFC 7592 §2: presented for a client that does not exist): the client_id
    it belonged to, or None when no client holds it."""
    row = conn.execute(
        update(Client)
        .where(Client.registration_token_digest == digest(token))
        .values(registration_token_digest=None)
        .returning(Client.client_id)
    ).first()
    return str(row.client_id) if row is not None else None


def mark_used(conn: Connection | Raw, client_id: str, at: int, every: int) -> bool:
    """Record that the client was issued a token at ``at``, unless that was recorded less than ``every`` seconds
    before: one conditional statement, so that processes writing it at once write it once. False when nothing was
    written. Plain SQL: it runs on the token endpoint's path (``db.run``)."""
    return (
        run(
            conn,
            "UPDATE clients SET last_used_at = ? WHERE client_id = ? AND (last_used_at IS NULL OR last_used_at <= ?)",
            (at, client_id, at - every),
        )
        == 1
    )


def save_document_client(
    conn: Connection, client_id: str, *, expires_at: int, stale_until: int, **metadata: Any
) -> bool:
    """Insert, or replace in place, the client its metadata document describes (``registered_by = "document"``),
    with this copy's freshness; ``metadata`` are the keyword arguments of :func:`_metadata_columns`. One statement
    (``INSERT … ON CONFLICT``), so two processes storing the same document at once both succeed. A client someone
    else registered under that id is left alone: False."""
    values = _metadata_columns(**metadata) | {"metadata_expires_at": expires_at, "metadata_stale_until": stale_until}
    upsert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = (
        upsert(Client)
        .values(client_id=client_id, created_at=now(), registered_by="document", **values)
        .on_conflict_do_update(index_elements=[Client.client_id], set_=values, where=Client.registered_by == "document")
        .returning(Client.client_id)
    )
    return conn.execute(stmt).first() is not None
