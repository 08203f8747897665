"""Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document; MCP 2025-11-25, "Client ID Metadata
Documents"): a ``client_id`` that is an https URL names a JSON document with the client's metadata, which this
server fetches (``metadata_fetcher``), judges and keeps as a client registered by ``"document"``.

- :func:`check_document_url` — §3: which URLs may be a client_id at all (refused ones are never fetched).
- :func:`judge` — §4.1 and §6.2: the document-specific rules (``client_id`` equals the URL, no shared secret, only
  ``none`` or ``private_key_jwt``, redirect URIs required, grants within authorization_code and refresh_token), then
  ``registration.validate``, the one judge of client metadata, for the rest.
- :func:`freshness` — §4.4: how long a copy is used (``Cache-Control`` within bounds), and how long past that a
  stored copy stands in while refetching fails.
- :func:`document_client` — the client a URL names now: the stored copy while fresh, else a refetch (one at a time
  per URL in a process), else the stored copy while it may stand in, else nobody.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from ..config import Registration as RegistrationSettings
from ..core import Frontdesk
from ..storage import audit
from ..storage.clients import ClientRecord, save_document_client
from ..storage.db import now, transaction
from ..storage.resources import restricted_scopes
from .metadata_fetcher import FetchFailed, FetchPolicy, fetch_document
from .registration import DEFAULT_SCOPE, ClientError, ClientMetadata, ClientRequest, validate

__all__ = [
    "DISPLAY_URIS",
    "DocumentError",
    "Judged",
    "check_document_url",
    "document_client",
    "freshness",
    "judge",
]

log = logging.getLogger("frontdesk.client_metadata_document")

CLIENT_ID_COLUMN = 255  # clients.client_id is a String(255)
# §4.1: a document cannot carry a shared secret; these methods would need one (RFC 7591 §2).
DOCUMENT_AUTH_METHODS = ("none", "private_key_jwt")
DOCUMENT_GRANTS = ("authorization_code", "refresh_token")
# RFC 7591 §2 fields kept for display only (clients.extra_metadata); the URIs must be https to be shown as links.
DISPLAY_URIS = ("client_uri", "logo_uri", "tos_uri", "policy_uri")
DISPLAY_TEXTS = ("software_id", "software_version")
MAX_CONTACTS = 10
MAX_TEXT = 255


class DocumentError(ValueError):
    """A client_id URL or document that cannot name a client; ``error`` is the RFC 7591 §3.2.2 code."""

    def __init__(self, message: str, error: str = "invalid_client_metadata") -> None:
        super().__init__(message)
        self.error = error


def check_document_url(client_id: str, max_length: int) -> None:
    """§3: an https URL with a host and a path, no dot segments, fragment or user information, that the client_id
    column holds; :class:`DocumentError` otherwise. A query is allowed (§3: SHOULD NOT, not MUST NOT)."""
    if len(client_id) > min(max_length, CLIENT_ID_COLUMN):
        raise DocumentError(f"a client_id URL is at most {min(max_length, CLIENT_ID_COLUMN)} characters")
    if not client_id.isascii() or not client_id.isprintable() or any(c in client_id for c in ' \\"<>{}|^`'):
        raise DocumentError("a client_id URL is printable ASCII without spaces, backslashes or quotes")
    try:
        parts = urlsplit(client_id)
        port = parts.port
    except ValueError:
        raise DocumentError("the client_id URL has an invalid host or port") from None
    if parts.scheme != "https" or not parts.hostname or port == 0:
        raise DocumentError("a client_id URL must be https with a host")
    if "@" in parts.netloc or "#" in client_id:
        raise DocumentError("a client_id URL must not carry user information or a fragment")
    if parts.path in ("", "/"):
        raise DocumentError("a client_id URL must have a path")
    # RFC 3986 §3.3 dot segments, also percent-encoded: a server may resolve them to another document.
    if any(unquote(segment) in (".", "..") for segment in parts.path.split("/")):
        raise DocumentError("a client_id URL must not contain . or .. path segments")


@dataclass(frozen=True, slots=True)
class Judged:
    """A document that passed :func:`judge`: its metadata as ``registration.validate`` returned it, and what that
    has no field for."""

    metadata: ClientMetadata
    application_type: str
    extra_metadata: dict[str, Any] = field(default_factory=dict)


def _strings(document: dict[str, Any], name: str, error: str = "invalid_client_metadata") -> list[str] | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DocumentError(f"{name} must be an array of strings", error)
    return value


def _text(document: dict[str, Any], name: str, limit: int) -> str | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit or not value.isprintable():
        raise DocumentError(f"{name} must be a printable string of at most {limit} characters")
    return value


def _redirect_uris(document: dict[str, Any], limits: RegistrationSettings) -> list[str]:
    """MCP 2025-11-25 requires ``redirect_uris``; they are then matched exactly at /authorize (RFC 9700 §4.1.3)."""
    uris = _strings(document, "redirect_uris", "invalid_redirect_uri")
    if not uris:
        raise DocumentError("redirect_uris is required and must not be empty", "invalid_redirect_uri")
    if len(uris) > limits.max_redirect_uris:
        raise DocumentError(f"at most {limits.max_redirect_uris} redirect_uris", "invalid_redirect_uri")
    if any(len(uri) > limits.max_uri_length for uri in uris):
        raise DocumentError(f"redirect_uris are at most {limits.max_uri_length} characters", "invalid_redirect_uri")
    return uris


def _auth_method(document: dict[str, Any]) -> str:
    # §4.1: no client_secret, and no method that would need one; "none" when the document names none.
    for secret_field in ("client_secret", "client_secret_expires_at"):
        if secret_field in document:
            raise DocumentError(f"{secret_field} must not appear in a client ID metadata document")
    method = document.get("token_endpoint_auth_method", "none")
    if method not in DOCUMENT_AUTH_METHODS:
        raise DocumentError("token_endpoint_auth_method must be none or private_key_jwt")
    return str(method)


def _grant_types(document: dict[str, Any]) -> list[str]:
    grants = _strings(document, "grant_types")
    if grants is None:
        return ["authorization_code"]  # RFC 7591 §2: the default
    if not grants or any(g not in DOCUMENT_GRANTS for g in grants):
        raise DocumentError("grant_types must be within authorization_code and refresh_token")
    responses = _strings(document, "response_types")
    if responses is not None and any(r != "code" for r in responses):
        raise DocumentError("response_types may only be code")
    return grants


def _scope(document: dict[str, Any], known_scopes: Sequence[str]) -> str:
    """RFC 7591 §2 lets the server replace the scope asked for: scopes nobody defined here are left out rather than
    failing the client (its authorization requests may then ask for fewer)."""
    scope = document.get("scope")
    if scope is None:
        return DEFAULT_SCOPE
    if not isinstance(scope, str):
        raise DocumentError("scope must be a string")
    return " ".join(s for s in scope.split(" ") if s in known_scopes)


def _display(document: dict[str, Any], limits: RegistrationSettings) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    for name in DISPLAY_URIS:
        uri = _text(document, name, limits.max_uri_length)
        if uri is not None:
            if not uri.startswith("https://") or " " in uri:
                raise DocumentError(f"{name} must be an https URL")
            extra[name] = uri
    for name in DISPLAY_TEXTS:
        text = _text(document, name, MAX_TEXT)
        if text is not None:
            extra[name] = text
    contacts = _strings(document, "contacts")
    if contacts is not None:
        if len(contacts) > MAX_CONTACTS or any(len(c) > MAX_TEXT or not c.isprintable() for c in contacts):
            raise DocumentError(f"contacts holds at most {MAX_CONTACTS} printable strings")
        extra["contacts"] = contacts
    return extra


def judge(document: dict[str, Any], url: str, limits: RegistrationSettings, known_scopes: Sequence[str]) -> Judged:
    """The client ``document`` (fetched from ``url``) describes, or :class:`DocumentError` for the first rule it
    breaks. A backchannel_logout_uri is not taken from a document: it would have this server POST to any URL."""
    # §4.1: simple string comparison (RFC 3986 §6.2.1), so a trailing slash or another case is another client.
    if document.get("client_id") != url:
        raise DocumentError("the document's client_id does not equal the URL it was fetched from")
    method = _auth_method(document)
    name = _text(document, "client_name", limits.max_name_length)
    if not name or not name.strip():
        raise DocumentError("client_name is required")  # MCP 2025-11-25: client_id, client_name, redirect_uris
    application_type = document.get("application_type", "web")
    if application_type not in ("web", "native"):
        raise DocumentError("application_type must be web or native")
    request = ClientRequest(
        name=name,
        client_id=url,
        auth_method=method,
        redirect_uris=_redirect_uris(document, limits),
        grant_types=_grant_types(document),
        scope=_scope(document, known_scopes),
        jwks=document.get("jwks"),
        jwks_uri=_text(document, "jwks_uri", limits.max_uri_length),
        id_token_alg=_text(document, "id_token_signed_response_alg", 10),
        post_logout_redirect_uris=_strings(document, "post_logout_redirect_uris"),
    )
    try:
        metadata = validate(request)
    except ClientError as exc:
        raise DocumentError(str(exc), exc.error) from None
    return Judged(metadata, str(application_type), _display(document, limits))


def freshness(max_age: int | None, fetched_at: int, limits: RegistrationSettings) -> tuple[int, int]:
    """§4.4: (expires_at, stale_until) of a copy fetched at ``fetched_at``: ``max-age`` kept within
    [``metadata_min_cache``, ``metadata_max_cache``] (none, no-store or no-cache: the minimum, so that one busy
    client is not a fetch a request), then ``metadata_stale_for`` more while refetching fails."""
    ttl = min(max(max_age or 0, limits.metadata_min_cache), limits.metadata_max_cache)
    return fetched_at + ttl, fetched_at + ttl + limits.metadata_stale_for


class _Flights:
    """One fetch per URL at a time in this process (§6.6): later callers wait for it, then read what it stored."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, url: str) -> Iterator[None]:
        with self._lock:
            lock, waiting = self._held.get(url, (threading.Lock(), 0))
            self._held[url] = (lock, waiting + 1)
        try:
            with lock:
                yield
        finally:
            with self._lock:
                lock, waiting = self._held[url]
                if waiting == 1:
                    del self._held[url]
                else:
                    self._held[url] = (lock, waiting - 1)


_flights = _Flights()


def _fresh(client: ClientRecord | None, at: int) -> bool:
    return client is not None and client.metadata_expires_at is not None and at < client.metadata_expires_at


def _may_stand_in(client: ClientRecord | None, at: int) -> bool:
    return client is not None and client.metadata_stale_until is not None and at < client.metadata_stale_until


def _policy(fd: Frontdesk) -> FetchPolicy:
    limits = fd.settings.registration
    return FetchPolicy(
        max_bytes=limits.metadata_max_bytes,
        timeout=float(limits.metadata_timeout),
        allow_private=limits.allow_private_metadata_hosts,
    )


def _refetch(fd: Frontdesk, url: str, stored: ClientRecord | None) -> None:
    """Fetch, judge and store the document at ``url`` in one transaction with its audit event (an event when the
    client is new or its metadata changed; a copy that only got fresher is bookkeeping)."""
    limits = fd.settings.registration
    try:
        fetched = fetch_document(url, _policy(fd))
    except FetchFailed as exc:
        raise DocumentError(str(exc), "invalid_client") from None
    # Like an open registration (RFC 7591 §3 without an initial access token): no scope the operator restricted.
    known = fd.scopes()
    judged = judge(fetched.document, url, limits, [s for s in known if s not in restricted_scopes(fd.engine, known)])
    m = judged.metadata
    expires_at, stale_until = freshness(fetched.max_age, now(), limits)
    columns: dict[str, Any] = {
        "name": m.name,
        "auth_method": m.auth_method,
        "redirect_uris": m.redirect_uris,
        "grant_types": m.grant_types,
        "scope": m.scope,
        "jwks": m.jwks,
        "jwks_uri": m.jwks_uri,
        "id_token_alg": m.id_token_alg,
        "post_logout_redirect_uris": m.post_logout_redirect_uris,
        "application_type": judged.application_type,
        "extra_metadata": judged.extra_metadata,
    }
    with transaction(fd.engine) as conn:
        if not save_document_client(conn, url, expires_at=expires_at, stale_until=stale_until, **columns):
            raise DocumentError("another client is registered under this client_id", "invalid_client")
        if stored is None or _changed(stored, columns):
            audit.record(
                conn,
                "client.document_registered" if stored is None else "client.document_updated",
                "success",
                client_id=url,
                redirect_hosts=sorted({urlsplit(u).hostname or "" for u in m.redirect_uris}),
                auth_method=m.auth_method,
            )
    fd.clients.forget(url)


def _changed(stored: ClientRecord, columns: dict[str, Any]) -> bool:
    """Whether the document now says something else than the stored copy (every column is a ClientRecord field)."""
    return any(getattr(stored, key) != (tuple(v) if isinstance(v, list) else v) for key, v in columns.items())


def document_client(fd: Frontdesk, url: str, *, fetch: bool = True) -> ClientRecord | None:
    """The client the metadata document at ``url`` describes, or None when there is none now.

    A client the operator (or the client itself, RFC 7591) registered under this id is that client, never fetched.
    Otherwise, with ``[registration] metadata_documents`` on: the stored copy while fresh; else, with ``fetch``,
    the document fetched again (blocking, at most about ``metadata_timeout``; one fetch per URL at a time); when
    that fails, the stored copy until its ``metadata_stale_until``. Without ``fetch`` (on the event loop, after
    ``oauth.clients.prepare_client`` fetched) the stored copy as far as it may be used."""
    stored = fd.clients.get(url)
    if stored is not None and stored.registered_by != "document":
        return stored
    limits = fd.settings.registration
    if not limits.metadata_documents:
        return None
    try:
        check_document_url(url, limits.max_uri_length)
    except DocumentError as exc:
        log.info("client_id %s cannot name a client ID metadata document (never fetched): %s", url, exc)
        return None
    if _fresh(stored, now()):
        return stored
    if not fetch:
        return stored if _may_stand_in(stored, now()) else None
    with _flights.hold(url):
        stored = fd.clients.get(url, cached=False)
        if stored is not None and (stored.registered_by != "document" or _fresh(stored, now())):
            return stored  # fetched by the caller we waited for
        try:
            _refetch(fd, url, stored)
        except DocumentError as exc:
            if _may_stand_in(stored, now()):
                log.warning("client metadata document %s could not be refetched; using the stored copy: %s", url, exc)
                return stored
            log.info("client metadata document %s refused: %s", url, exc)
            return None
    return fd.clients.get(url, cached=False)
