"""Dynamic client registration (RFC 7591 §3) and client configuration management (RFC 7592), under the policy of
``[registration] mode`` (DESIGN §8).

- ``open``: anyone may register a client that can do nothing without a person's consent: the grants of
  :data:`ANONYMOUS_GRANTS` and scopes the operator did not mark restricted. More (``client_credentials``, a
  restricted scope) needs an initial access token (RFC 7591 §3), sent as ``Authorization: Bearer``.
- ``token``: every registration needs one. ``closed``: there is no endpoint (web/app.py does not route it).

The metadata is judged by ``oauth.registration.validate`` (the one judge, the command line's too); this module reads
the RFC 7591 §2 JSON into its request, applies the policy, and writes the client, the spent use of the initial access
token and the audit event in one transaction. Secrets (client secret, registration access token) are made here,
shown once in the answer and stored as digests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from ..core import Frontdesk
from ..errors import InvalidToken, OAuthError
from ..secret import digest, new_token, same
from ..storage import audit
from ..storage.clients import (
    ClientRecord,
    forget_registration_token,
    insert_client,
    replace_client_metadata,
)
from ..storage.clients import delete_client as delete_client_row
from ..storage.db import now, transaction
from ..storage.initial_access_tokens import (
    InitialAccessTokenRow,
    initial_access_token_for,
    spend_initial_access_token,
)
from ..storage.resources import restricted_scopes
from .client_metadata import ClientError, Limits
from .grants import DEVICE_CODE
from .rate_limits import Limit, count_and_check
from .registration import SECRET_METHODS, ClientMetadata, render_metadata, stored_metadata, validate
from .registration_request import requested

__all__ = [
    "ANONYMOUS_GRANTS",
    "InvalidClientMetadata",
    "InvalidRedirectUri",
    "delete_client",
    "managed_client",
    "read_client",
    "register_client",
    "update_client",
]

# RFC 7591 §3 / RFC 9700 §4.15.1 (open registration): grants that give a client nothing until a person consents.
ANONYMOUS_GRANTS = ("authorization_code", "refresh_token", DEVICE_CODE)
# RFC 7592 §2.2: what the server issued, which a client update must not send back.
SERVER_FIELDS = (
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
)


class InvalidClientMetadata(OAuthError):
    """RFC 7591 §3.2.2."""

    error = "invalid_client_metadata"


class InvalidRedirectUri(OAuthError):
    """RFC 7591 §3.2.2."""

    error = "invalid_redirect_uri"


class UnapprovedSoftwareStatement(OAuthError):
    """RFC 7591 §3.2.2: this server approves no software statement (§2.3), so it accepts none."""

    error = "unapproved_software_statement"


def _refused(exc: ClientError) -> OAuthError:
    return InvalidRedirectUri(str(exc)) if exc.error == "invalid_redirect_uri" else InvalidClientMetadata(str(exc))


def _limits(fd: Frontdesk) -> Limits:
    r = fd.settings.registration
    return Limits(r.max_redirect_uris, r.max_uri_length, r.max_name_length)


def _judged(fd: Frontdesk, body: Mapping[str, Any]) -> ClientMetadata:
    """RFC 7591 §2 metadata from the JSON body, judged like any client's, with the limits of ``[registration]``."""
    if body.get("software_statement") is not None:
        raise UnapprovedSoftwareStatement("software statements are not accepted here (RFC 7591 §2.3)")
    if body.get("client_name") is None:
        name = _default_name(body)
        if name is None:
            raise InvalidClientMetadata("client_name is required for a client without a redirect URI to show")
        body = {**body, "client_name": name}
    try:
        return validate(requested(body), known_scopes=fd.scopes(fresh=True), limits=_limits(fd))
    except ClientError as exc:
        raise _refused(exc) from None


def _needs_token(fd: Frontdesk, metadata: ClientMetadata, held: ClientRecord | None) -> list[str]:
    """What in ``metadata`` only an initial access token opens (RFC 7591 §3, RFC 9700 §4.15.1), beyond what the
    client ``held`` already (an update keeps what its registration was allowed)."""
    restricted = restricted_scopes(fd.engine, metadata.scope)
    grants = [g for g in metadata.grant_types if g not in ANONYMOUS_GRANTS and not (held and g in held.grant_types)]
    scopes = [s for s in metadata.scope if s in restricted and not (held and s in held.scope)]
    return [*(f"grant_types {g}" for g in grants), *(f"scope {s}" for s in scopes)]


def _initial_access_token(fd: Frontdesk, token: str | None) -> InitialAccessTokenRow | None:
    """RFC 7591 §3: the initial access token the request presents, if any; RFC 6750 §3.1 ``invalid_token`` when it
    is unknown, revoked, expired or used up, or when ``[registration] mode = "token"`` and there is none."""
    if token is None:
        if fd.settings.registration.mode == "token":
            raise InvalidToken("registration needs an initial access token (Authorization: Bearer)")
        return None
    with transaction(fd.engine, readonly=True) as conn:
        row = initial_access_token_for(conn, token, now())
    if row is None:
        raise InvalidToken("the initial access token is invalid, expired, revoked or used up")
    return row


def _client_uri(fd: Frontdesk, client_id: str) -> str:
    """RFC 7592 §3 ``registration_client_uri``: the client's configuration endpoint, used by the client verbatim."""
    return fd.url("/register/" + quote(client_id, safe=""))


def _default_name(body: Mapping[str, Any]) -> str | None:
    """RFC 7591 §2 makes ``client_name`` optional; a client without one is shown by the host it redirects to."""
    uris = body.get("redirect_uris")
    if isinstance(uris, list) and uris and isinstance(uris[0], str):
        try:
            return urlsplit(uris[0]).hostname or None
        except ValueError:
            return None
    return None


def register_client(fd: Frontdesk, body: Mapping[str, Any], token: str | None, ip: str | None) -> dict[str, Any]:
    """RFC 7591 §3.1: register a client from its JSON metadata; the §3.2.1 answer (with the RFC 7592 §3 fields).

    Each request counts against ``rate_limits.registration_per_ip``, whatever its outcome: every registration is a
    row someone must purge, and refused ones cost as much to judge."""
    count_and_check(fd, [Limit("registration_ip", str(ip), *fd.settings.rate_limits.registration_per_ip)])
    iat = _initial_access_token(fd, token)
    metadata = _judged(fd, body)
    if iat is None and (needs := _needs_token(fd, metadata, None)):
        # A registration open to anyone: the field that asks for more is named, so the developer learns that an
        # initial access token (from the operator) opens it. No token was sent, so there is nothing to call invalid.
        raise InvalidClientMetadata(f"{', '.join(needs)}: needs an initial access token (RFC 7591 §3)")
    secret = new_token("client_secret") if metadata.auth_method in SECRET_METHODS else None
    registration_token = new_token("registration_access_token")
    at = now()
    with transaction(fd.engine) as conn:
        spent = spend_initial_access_token(conn, token, at) if token is not None else None
        if token is not None and spent is None:  # used up or revoked since it was read: the last use went elsewhere
            raise InvalidToken("the initial access token is invalid, expired, revoked or used up")
        client_id = insert_client(
            conn,
            client_id=None,
            secret=secret,
            registered_by="self",
            registration_token=registration_token,
            **stored_metadata(metadata),
        )
        audit.record(
            conn,
            "client.registered",
            "success",
            client_id=client_id,
            ip=ip,
            registered_by="self",
            initial_access_token=spent is not None,
            initial_access_token_id=spent.id if spent is not None else None,
        )
    client = fd.clients.get(client_id, cached=False)
    assert client is not None
    answer = render_metadata(client)
    if secret is not None:
        # RFC 7591 §3.2.1: the secret this once; 0: it does not expire.
        answer.update(client_secret=secret, client_secret_expires_at=0)
    answer.update(registration_access_token=registration_token, registration_client_uri=_client_uri(fd, client_id))
    return answer


def managed_client(fd: Frontdesk, client_id: str, token: str | None) -> ClientRecord:
    """RFC 7592 §2: the self-registered client the registration access token belongs to. A missing or wrong token,
    a token of another client, a client registered otherwise and an unknown client all answer alike (401), so the
    endpoint never tells whether a client exists; a token presented for an unknown client is revoked (§2)."""
    if token is None:
        raise InvalidToken("a registration access token is required (Authorization: Bearer)")
    client = fd.clients.get(client_id, cached=False)
    if client is None:
        with transaction(fd.engine) as conn:
            owner = forget_registration_token(conn, token)
            if owner is not None:
                audit.record(conn, "client.registration_token_revoked", "success", client_id=owner)
        if owner is not None:
            fd.clients.forget(owner)
    held = client.registration_token_digest if client is not None else None
    # Compared as digests, in constant time: the stored form is all there is.
    if client is None or client.registered_by != "self" or held is None or not same(digest(token), held):
        raise InvalidToken("the registration access token is not valid for this client")
    return client


def _configuration(fd: Frontdesk, client: ClientRecord, token: str) -> dict[str, Any]:
    """RFC 7592 §3: the client's metadata with its configuration endpoint and the token that reads it (the one
    presented: nothing new is issued, and the secret is never shown again)."""
    answer = render_metadata(client)
    answer.update(registration_access_token=token, registration_client_uri=_client_uri(fd, client.client_id))
    return answer


def read_client(fd: Frontdesk, client_id: str, token: str | None) -> dict[str, Any]:
    """RFC 7592 §2.1."""
    client = managed_client(fd, client_id, token)
    assert token is not None
    return _configuration(fd, client, token)


def _check_update(client: ClientRecord, body: Mapping[str, Any]) -> None:
    """RFC 7592 §2.2: the update names the same client, leaves out what the server issued, and a client secret in it
    is the current one (the secret is never replaced by the client's choice)."""
    if body.get("client_id") != client.client_id:
        raise InvalidClientMetadata("client_id must be present and equal to the client's (RFC 7592 §2.2)")
    for name in SERVER_FIELDS:
        if name in body:
            raise InvalidClientMetadata(f"{name} must not be sent in an update (RFC 7592 §2.2)")
    if "client_secret" in body:
        sent = body["client_secret"]
        held = client.secret_digest
        if not isinstance(sent, str) or held is None or not same(digest(sent), held):
            raise InvalidClientMetadata("client_secret does not match the client's current secret (RFC 7592 §2.2)")


def update_client(
    fd: Frontdesk, client_id: str, token: str | None, body: Mapping[str, Any], ip: str | None
) -> dict[str, Any]:
    """RFC 7592 §2.2: replace the client's metadata (what the body leaves out goes back to its default), judged by
    the same rules and policy as a registration. What the registration was allowed stays allowed; anything more
    that needs an initial access token is refused, as this request can carry none."""
    client = managed_client(fd, client_id, token)
    assert token is not None
    _check_update(client, body)
    metadata = _judged(fd, {k: v for k, v in body.items() if k not in ("client_id", "client_secret")})
    if metadata.auth_method != client.auth_method and not {metadata.auth_method, client.auth_method} <= set(
        SECRET_METHODS
    ):
        # A secret cannot appear (it would have to be shown) nor a key-based client lose its keys by an update.
        raise InvalidClientMetadata(
            f"token_endpoint_auth_method cannot change from {client.auth_method} to {metadata.auth_method}"
        )
    if needs := _needs_token(fd, metadata, client):
        raise InvalidClientMetadata(f"{', '.join(needs)}: needs an initial access token (RFC 7591 §3)")
    with transaction(fd.engine) as conn:
        replace_client_metadata(conn, client_id, **stored_metadata(metadata))
        audit.record(conn, "client.updated", "success", client_id=client_id, ip=ip, registered_by="self")
    fd.clients.forget(client_id)
    updated = fd.clients.get(client_id, cached=False)
    assert updated is not None
    return _configuration(fd, updated, token)


def delete_client(fd: Frontdesk, client_id: str, token: str | None, ip: str | None) -> None:
    """RFC 7592 §2.3: deregister the client; its grants end with it, so its refresh tokens stop working and
    introspection reports its access tokens inactive."""
    managed_client(fd, client_id, token)
    with transaction(fd.engine) as conn:
        if delete_client_row(conn, client_id, now()):
            audit.record(conn, "client.deleted", "success", client_id=client_id, ip=ip, registered_by="self")
    fd.clients.forget(client_id)
