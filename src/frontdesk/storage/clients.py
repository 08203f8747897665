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

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..secret import digest
from .db import now, transaction
from .schema import Client

__all__ = ["AssertionAudience", "ClientExists", "ClientRecord", "ClientStore", "RegisteredBy"]

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

    @property
    def public(self) -> bool:
        return self.auth_method == "none"

    @property
    def vetted(self) -> bool:
        """Registered by the operator; a client that registered itself or was named by its metadata document was
        checked by nobody, so consent is never skipped for it and its pages say so."""
        return self.registered_by == "operator"

    def metadata(self) -> dict[str, Any]:
        """RFC 7591 §2 names; never the secret."""
        out: dict[str, Any] = {
            "client_id": self.client_id,
            "client_name": self.name,
            "redirect_uris": list(self.redirect_uris),
            "grant_types": list(self.grant_types),
            "response_types": ["code"] if "authorization_code" in self.grant_types else [],
            "token_endpoint_auth_method": self.auth_method,
            "scope": " ".join(self.scope),
            "client_id_issued_at": self.created_at,
        }
        if self.jwks is not None:
            out["jwks"] = self.jwks
        if self.jwks_uri:
            out["jwks_uri"] = self.jwks_uri
        if self.auth_method == "private_key_jwt":
            out["assertion_audience"] = self.assertion_audience  # frontdesk's own name: no RFC 7591 one exists
        if self.resources:
            out["resources"] = list(self.resources)
        if self.access_token_ttl:
            out["access_token_lifetime"] = self.access_token_ttl
        if self.id_token_alg:
            out["id_token_signed_response_alg"] = self.id_token_alg
        if self.post_logout_redirect_uris:
            out["post_logout_redirect_uris"] = list(self.post_logout_redirect_uris)
        if self.backchannel_logout_uri:
            out["backchannel_logout_uri"] = self.backchannel_logout_uri
            out["backchannel_logout_session_required"] = self.backchannel_logout_session_required
        return out


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
    )


class ClientStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._cache: dict[str, tuple[float, ClientRecord]] = {}
        self._lock = threading.Lock()

    def insert(
        self,
        *,
        client_id: str | None,
        secret: str | None,
        name: str,
        auth_method: str,
        redirect_uris: Sequence[str],
        grant_types: Sequence[str],
        scope: Sequence[str],
        jwks: dict[str, Any] | None,
        jwks_uri: str | None,
        resources: Sequence[str],
        access_token_ttl: int | None,
        id_token_alg: str | None,
        post_logout_redirect_uris: Sequence[str],
        backchannel_logout_uri: str | None,
        backchannel_logout_session_required: bool,
        assertion_audience: AssertionAudience,
        registered_by: RegisteredBy = "operator",
        application_type: str = "web",
        registration_token: str | None = None,
        extra_metadata: dict[str, Any] | None = None,
        metadata_expires_at: int | None = None,
        metadata_stale_until: int | None = None,
    ) -> ClientRecord:
        """Store a client (a new client_id when none is given); only the digests of ``secret`` and
        ``registration_token`` are kept.

        Raises :class:`ClientExists` when the client_id is taken."""
        row = {
            "client_id": client_id or _new_client_id(),
            "name": name,
            "secret_digest": digest(secret) if secret else None,
            "auth_method": auth_method,
            "redirect_uris": json.dumps(list(redirect_uris)),
            "grant_types": json.dumps(list(grant_types)),
            "scope": " ".join(scope),
            "jwks": json.dumps(jwks) if jwks is not None else None,
            "jwks_uri": jwks_uri,
            "resources": json.dumps(list(resources)),
            "access_token_ttl": access_token_ttl,
            "id_token_alg": id_token_alg,
            "created_at": now(),
            "post_logout_redirect_uris": json.dumps(list(post_logout_redirect_uris)),
            "backchannel_logout_uri": backchannel_logout_uri,
            "backchannel_logout_session_required": backchannel_logout_session_required,
            "assertion_audience": assertion_audience,
            "registered_by": registered_by,
            "application_type": application_type,
            "registration_token_digest": digest(registration_token) if registration_token else None,
            "extra_metadata": json.dumps(extra_metadata or {}),
            "metadata_expires_at": metadata_expires_at,
            "metadata_stale_until": metadata_stale_until,
        }
        try:
            with transaction(self._engine) as conn:
                conn.execute(insert(Client), row)
        except IntegrityError:
            raise ClientExists(str(row["client_id"])) from None
        record = self.get(str(row["client_id"]), cached=False)
        assert record is not None
        return record

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
        with transaction(self._engine) as conn:
            deleted = conn.execute(delete(Client).where(Client.client_id == client_id)).rowcount
        self._cache.pop(client_id, None)
        return bool(deleted)
