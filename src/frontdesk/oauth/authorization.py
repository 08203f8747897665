"""The authorization request (RFC 6749 §4.1.1, OAuth 2.1 §4.1.1, OpenID Connect Core §3.1.2.1) as a value, its
validation once the client and redirect URI are trusted, and the authorization response: the code it issues and the
redirect that carries it or an error (RFC 6749 §4.1.2, RFC 9207). What the request gets next — sign in, consent,
or an answer at once — is ``decision``'s to say.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from sqlalchemy import Connection

from ..core import Frontdesk
from ..errors import (
    InvalidRequest,
    RequestNotSupported,
    RequestUriNotSupported,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from ..protocol import rfc7636
from ..protocol.forms import Params
from ..protocol.rfc8707 import check_resource
from ..protocol.scope import parse_scope
from ..storage import audit
from ..storage.clients import ClientRecord
from ..storage.grants import insert_code, insert_grant
from ..storage.logout import record_session_grant
from .authorization_details import requested_details, type_names
from .grants import check_scope
from .logout import check_id_token_hint
from .resources import resolve

__all__ = [
    "AuthorizationRequest",
    "dropped_offline_access",
    "error_redirect",
    "hinted_subject",
    "issue_code",
    "parse_prompt",
    "success_redirect",
    "validate",
]

PROMPTS = ("none", "login", "consent")
_JKT = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    client_id: str
    redirect_uri: str
    state: str | None
    scope: tuple[str, ...] = ()
    resource: tuple[str, ...] = ()
    nonce: str | None = None
    code_challenge: str = ""
    prompt: tuple[str, ...] = ()
    max_age: int | None = None
    login_hint: str | None = None
    acr_values: tuple[str, ...] = ()  # OIDC Core §3.1.2.1: voluntary; the multi-factor one triggers a step-up
    hinted_subject: str | None = None  # the sub of a verified id_token_hint (OIDC Core §3.1.2.1)
    authorization_details: tuple[dict[str, Any], ...] = ()  # RFC 9396 §2, validated (authorization_details.py)
    dpop_jkt: str | None = None  # RFC 9449 §10: the thumbprint of the key that must redeem the code

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuthorizationRequest:
        return cls(
            client_id=data["client_id"],
            redirect_uri=data["redirect_uri"],
            state=data.get("state"),
            scope=tuple(data.get("scope", ())),
            resource=tuple(data.get("resource", ())),
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge", ""),
            prompt=tuple(data.get("prompt", ())),
            max_age=data.get("max_age"),
            login_hint=data.get("login_hint"),
            acr_values=tuple(data.get("acr_values", ())),
            hinted_subject=data.get("hinted_subject"),
            authorization_details=tuple(data.get("authorization_details", ())),
            dpop_jkt=data.get("dpop_jkt"),
        )

    @property
    def redirect_host(self) -> str:
        return urlsplit(self.redirect_uri).netloc or self.redirect_uri


def parse_prompt(value: str | None) -> tuple[str, ...]:
    prompts = tuple(dict.fromkeys((value or "").split()))
    for p in prompts:
        if p not in PROMPTS:
            raise InvalidRequest(f"prompt value {p!r} is not supported")
    # OIDC Core §3.1.2.1: none with any other value is an error.
    if "none" in prompts and len(prompts) > 1:
        raise InvalidRequest("prompt=none cannot be combined with other values")
    return prompts


def validate(fd: Frontdesk, client: ClientRecord, redirect_uri: str, params: Params) -> AuthorizationRequest:
    """Every check after the redirect URI is trusted; each failure is an error redirect (RFC 6749 §4.1.2.1)."""
    if "request" in params:
        raise RequestNotSupported("request objects are not supported")
    if "request_uri" in params:
        raise RequestUriNotSupported("request_uri is not supported")
    response_type = params.get("response_type")
    if response_type is None:
        raise InvalidRequest("response_type is required")
    if response_type != "code":
        # OAuth 2.1 §10.1 / RFC 9700 §2.1.2: no implicit or hybrid flows; tokens never travel in a URL.
        raise UnsupportedResponseType("only response_type=code is supported")
    if params.get("response_mode", "query") != "query":
        raise InvalidRequest("only response_mode=query is supported")
    if "authorization_code" not in client.grant_types:
        raise UnauthorizedClient("the client is not allowed the authorization code grant")
    challenge = rfc7636.check_challenge(params.get("code_challenge"), params.get("code_challenge_method"))
    # RFC 8707 §2: only registered resources (oauth/resources.py); they may lend the client scopes, so first.
    resources = resolve(fd, fd.engine, check_resource(params.getall("resource")))
    scope = check_scope(fd, client, dropped_offline_access(client, parse_scope(params.get("scope"))), resources)
    # RFC 9396 §3.1: with scope, both are processed; the person consents to both (interactions.ConsentView).
    details = requested_details(fd, params.get("authorization_details"))
    max_age: int | None = None
    if "max_age" in params:
        if not (params["max_age"].isascii() and params["max_age"].isdigit()) or len(params["max_age"]) > 9:
            raise InvalidRequest("max_age must be a non-negative integer")
        max_age = int(params["max_age"])
    hint = params.get("id_token_hint")
    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        state=params.get("state"),
        scope=scope,
        resource=tuple(r.uri for r in resources),
        nonce=params.get("nonce"),
        code_challenge=challenge,
        prompt=parse_prompt(params.get("prompt")),
        max_age=max_age,
        login_hint=params.get("login_hint"),
        acr_values=tuple(params.get("acr_values", "").split()),
        hinted_subject=hinted_subject(fd, client, hint) if hint is not None else None,
        authorization_details=details,
        dpop_jkt=_dpop_jkt(params.get("dpop_jkt")),
    )


def _dpop_jkt(value: str | None) -> str | None:
    """RFC 9449 §10: a JWK SHA-256 thumbprint (RFC 7638), base64url without padding: 43 characters."""
    if value is not None and not _JKT.fullmatch(value):
        raise InvalidRequest("dpop_jkt must be the base64url SHA-256 thumbprint of a JWK (RFC 7638)")
    return value


def dropped_offline_access(client: ClientRecord, scope: tuple[str, ...]) -> tuple[str, ...]:
    """The requested scope less an ``offline_access`` the client is not registered for.

    OpenID Connect Core §11 lets the server ignore ``offline_access`` (it asks for a refresh token, which the server
    may always decline), and MCP clients send it by default whether or not they registered it: failing the whole
    request with ``invalid_scope`` would lock them out for a convenience they can do without. Dropped before the
    consent page and the grant, so the person is never asked for it and the token response has no refresh token
    for an OpenID request (redemption.wants_refresh). Any other unregistered scope is still ``invalid_scope``."""
    if "offline_access" in scope and "offline_access" not in client.scope:
        return tuple(s for s in scope if s != "offline_access")
    return scope


def hinted_subject(fd: Frontdesk, client: ClientRecord, token: str) -> str:
    """The person an ``id_token_hint`` names (OIDC Core §3.1.2.1): an ID token signed by one of this server's keys,
    current or retired, with this issuer, and issued to this client (``aud`` contains it). An expired one is still
    a good hint: it says who, not that anyone may act now, so ``exp`` is not checked."""
    hint = check_id_token_hint(fd, token)
    if client.client_id not in hint.audiences:
        raise InvalidRequest("id_token_hint was not issued to this client")
    return hint.sub


def _redirect(fd: Frontdesk, redirect_uri: str, values: dict[str, str | None]) -> str:
    # RFC 9207 §2: iss in every authorization response, success and error.
    query = urlencode({k: v for k, v in {**values, "iss": fd.issuer}.items() if v is not None})
    separator = "&" if urlsplit(redirect_uri).query else ("" if redirect_uri.endswith("?") else "?")
    return f"{redirect_uri}{separator}{query}"


def success_redirect(fd: Frontdesk, req: AuthorizationRequest, code: str) -> str:
    return _redirect(fd, req.redirect_uri, {"code": code, "state": req.state})


def error_redirect(fd: Frontdesk, redirect_uri: str, state: str | None, error: str, description: str = "") -> str:
    return _redirect(fd, redirect_uri, {"error": error, "error_description": description or None, "state": state})


def issue_code(
    fd: Frontdesk,
    conn: Connection,
    req: AuthorizationRequest,
    user_id: str,
    auth_time: int,
    amr: tuple[str, ...],
    at: int,
    ip: str | None,
    sid: str | None = None,
) -> str:
    """The grant and its code, in the caller's transaction (RFC 6749 §4.1.2; ≤ 60 s by default). ``sid`` names
    the browser session it was issued in, so that signing out of that session tells the client (``logout.py``)."""
    lifetimes = fd.settings.lifetimes
    grant = insert_grant(
        conn,
        client_id=req.client_id,
        user_id=user_id,
        scope=req.scope,
        resource=req.resource,
        auth_time=auth_time,
        amr=amr,
        at=at,
        expires_at=at + lifetimes.refresh_token,
        authorization_details=req.authorization_details,
    )
    code = insert_code(
        conn,
        grant_id=grant.id,
        client_id=req.client_id,
        redirect_uri=req.redirect_uri,
        code_challenge=req.code_challenge,
        nonce=req.nonce,
        expires_at=at + lifetimes.code,
        dpop_jkt=req.dpop_jkt,
    )
    if sid is not None:
        record_session_grant(
            conn,
            sid=sid,
            grant_id=grant.id,
            client_id=req.client_id,
            user_id=user_id,
            at=at,
            expires_at=at + lifetimes.session,
        )
    audit.record(
        conn,
        "code.issued",
        "success",
        client_id=req.client_id,
        user_id=user_id,
        ip=ip,
        grant_id=grant.id,
        scope=" ".join(req.scope),
        **({"authorization_details": type_names(req.authorization_details)} if req.authorization_details else {}),
    )
    return code
