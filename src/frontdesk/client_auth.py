"""Client authentication at the token, introspection and revocation endpoints (RFC 6749 §2.3, RFC 7523,
OpenID Connect Core §9). Each client uses the one method it registered; presenting two is an error (§2.3).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httpx
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from .core import Frontdesk
from .errors import InvalidClient, InvalidRequest
from .protocol.forms import Params
from .protocol.rfc7523 import ASSERTION_TYPE, unverified_subject, verify_assertion
from .secret import Secret, digest, same
from .storage.clients import ClientRecord
from .storage.db import now, transaction
from .storage.schema import UsedJti

__all__ = ["Presented", "authenticate_client", "presented_credentials"]

_JWKS_TTL = 300.0
_jwks_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_jwks_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Presented:
    method: str
    client_id: str
    # Masked in every repr, so a traceback or a log of this value never shows the credential.
    secret: Secret | None = None
    assertion: Secret | None = None


def _basic(header: str) -> tuple[str, str]:
    try:
        raw = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):  # binascii.Error, and non-ASCII header text, are ValueErrors
        raise InvalidClient("malformed Basic credentials") from None
    if ":" not in raw:
        raise InvalidClient("malformed Basic credentials")
    user, _, password = raw.partition(":")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before Base64.
    return unquote(user.replace("+", " ")), unquote(password.replace("+", " "))


def presented_credentials(authorization: str | None, params: Params) -> Presented:
    """What the request presents, before any lookup; two methods at once → ``invalid_request``."""
    methods: list[Presented] = []
    if authorization:
        if authorization[:6].lower() == "basic ":
            client_id, secret = _basic(authorization)
            methods.append(Presented("client_secret_basic", client_id, secret=Secret(secret)))
        else:
            raise InvalidClient("unsupported authentication scheme")
    if "client_secret" in params:
        methods.append(
            Presented("client_secret_post", params.get("client_id", ""), secret=Secret(params["client_secret"]))
        )
    if "client_assertion" in params or "client_assertion_type" in params:
        if params.get("client_assertion_type") != ASSERTION_TYPE or "client_assertion" not in params:
            raise InvalidClient("client_assertion_type must be " + ASSERTION_TYPE)
        sub = unverified_subject(params["client_assertion"]) or ""
        if "client_id" in params and params["client_id"] != sub:
            raise InvalidClient("client_id does not match the client assertion")
        methods.append(Presented("private_key_jwt", sub, assertion=Secret(params["client_assertion"])))
    if len(methods) > 1:
        raise InvalidRequest("use exactly one client authentication method")
    if methods:
        presented = methods[0]
        if (
            presented.method == "client_secret_basic"
            and params.get("client_id", presented.client_id) != presented.client_id
        ):
            raise InvalidClient("client_id does not match the Authorization header")
        return presented
    if "client_id" not in params:
        raise InvalidClient("client authentication is required")
    return Presented("none", params["client_id"])


def _client_jwks(client: ClientRecord) -> dict[str, Any]:
    if client.jwks is not None:
        return client.jwks
    assert client.jwks_uri
    hit = _jwks_cache.get(client.jwks_uri)
    if hit and time.monotonic() - hit[0] < _JWKS_TTL:
        return hit[1]
    try:
        response = httpx.get(client.jwks_uri, timeout=5.0, follow_redirects=False)
        response.raise_for_status()
        jwks = response.json()
    except (httpx.HTTPError, json.JSONDecodeError, ValueError):
        raise InvalidClient("the client's jwks_uri could not be read") from None
    with _jwks_lock:
        _jwks_cache[client.jwks_uri] = (time.monotonic(), jwks)
    return dict(jwks)


def authenticate_client(fd: Frontdesk, presented: Presented) -> ClientRecord:
    client = fd.clients.get(presented.client_id) if presented.client_id else None
    # One answer for unknown client, wrong method and wrong secret: nothing to enumerate.
    if client is None:
        if presented.secret is not None:
            same(digest(presented.secret.value), "0" * 64)
        raise InvalidClient("client authentication failed", detail="unknown client")
    if presented.method != client.auth_method:
        raise InvalidClient(
            "client authentication failed",
            detail=f"client registered {client.auth_method}, presented {presented.method}",
        )
    if presented.secret is not None:
        if client.secret_digest is None or not same(digest(presented.secret.value), client.secret_digest):
            raise InvalidClient("client authentication failed", detail="wrong secret")
    elif presented.assertion is not None:
        at = now()
        assertion = verify_assertion(
            presented.assertion.value,
            _client_jwks(client),
            client.client_id,
            (fd.issuer, fd.url("/token")),
            at,
            fd.settings.lifetimes.client_assertion_max,
        )
        _spend_jti(fd, client.client_id, assertion.jti, assertion.exp)
    return client


def _spend_jti(fd: Frontdesk, client_id: str, jti: str, exp: int) -> None:
    try:
        with transaction(fd.engine) as conn:
            conn.execute(insert(UsedJti), {"key": digest(client_id + "\x00" + jti), "expires_at": exp})
    except IntegrityError:
        raise InvalidClient("client assertion was already used", detail="jti replay") from None
