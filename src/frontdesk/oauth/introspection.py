"""What a presented token is worth right now: the shared core of introspection (RFC 7662), revocation
(RFC 7009) and UserInfo (OpenID Connect Core §5.3).

An access token is live when its signature is ours, it has not expired, its jti was not revoked and its grant
(the family it came from) was not revoked. A refresh token is live when unused, unexpired and its grant stands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from joserfc.errors import JoseError

from ..core import Frontdesk
from ..errors import InsufficientScope, InvalidToken
from ..protocol.oidc import userinfo_claims
from ..secret import PREFIXES
from ..storage import audit
from ..storage.clients import ClientRecord
from ..storage.db import now, transaction
from ..storage.grants import refresh_for, revoke_access_token, revoke_grant
from .revocations import token_revoked
from .tokens import split_jti

__all__ = [
    "INACTIVE",
    "LiveAccessToken",
    "LiveRefreshToken",
    "introspect",
    "live_access_token",
    "live_refresh_token",
    "revoke",
    "userinfo",
]

INACTIVE: dict[str, Any] = {"active": False}


@dataclass(frozen=True, slots=True)
class LiveAccessToken:
    claims: dict[str, Any]

    @property
    def audiences(self) -> tuple[str, ...]:
        aud = self.claims.get("aud")
        return (aud,) if isinstance(aud, str) else tuple(aud or ())

    @property
    def scope(self) -> tuple[str, ...]:
        return tuple(str(self.claims.get("scope", "")).split())


@dataclass(frozen=True, slots=True)
class LiveRefreshToken:
    client_id: str
    user_id: str | None
    scope: tuple[str, ...]
    expires_at: int
    grant_id: str


def _verified_claims(fd: Frontdesk, token: str) -> dict[str, Any] | None:
    if token.count(".") != 2:
        return None
    try:
        claims = dict(fd.keys.verify(token).claims)
    except (JoseError, ValueError, KeyError, TypeError, UnicodeError):
        return None
    if (
        claims.get("iss") != fd.issuer
        or not isinstance(claims.get("exp"), int)
        or not isinstance(claims.get("jti"), str)
    ):
        return None
    return claims


def live_access_token(fd: Frontdesk, token: str) -> LiveAccessToken | None:
    claims = _verified_claims(fd, token)
    if claims is None or claims["exp"] <= now():
        return None
    jti: str = claims["jti"]
    if token_revoked(fd, jti, split_jti(jti)):
        return None
    if fd.clients.get(str(claims.get("client_id"))) is None:
        return None  # a deleted client's tokens die with it
    return LiveAccessToken(claims)


def live_refresh_token(fd: Frontdesk, token: str) -> LiveRefreshToken | None:
    if not token.startswith(PREFIXES["refresh_token"]):
        return None
    with transaction(fd.engine, readonly=True) as conn:
        row = refresh_for(conn, token)
    if row is None or row.consumed_at is not None or row.grant.revoked_at is not None or row.expires_at <= now():
        return None
    return LiveRefreshToken(row.client_id, row.grant.user_id, row.grant.scope, row.expires_at, row.grant.id)


def introspect(fd: Frontdesk, client: ClientRecord, token: str) -> dict[str, Any]:
    """RFC 7662 §2.2: the introspection response about ``token``, for the authenticated ``client``."""
    refresh = live_refresh_token(fd, token)
    if refresh is not None:
        if refresh.client_id != client.client_id:
            return INACTIVE
        out: dict[str, Any] = {
            "active": True,
            "token_type": "refresh_token",
            "client_id": refresh.client_id,
            "scope": " ".join(refresh.scope),
            "exp": refresh.expires_at,
            "iss": fd.issuer,
        }
        if refresh.user_id:
            out["sub"] = refresh.user_id
        return out
    access = live_access_token(fd, token)
    if access is None:
        return INACTIVE
    # RFC 7662 §4: tell a client only about tokens issued to it or addressed to a resource it serves.
    if access.claims.get("client_id") != client.client_id and not set(access.audiences) & set(client.resources):
        return INACTIVE
    claims = access.claims
    # RFC 9449 §6.2: a DPoP-bound token says so, with the thumbprint of its key, for the resource server to check.
    out = {"active": True, "token_type": "DPoP" if "cnf" in claims else "Bearer"}
    if "cnf" in claims:
        out["cnf"] = claims["cnf"]
    for name in ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti", "auth_time"):
        if name in claims:
            out[name] = claims[name]
    if "authorization_details" in claims:  # RFC 9396 §9.2: what the person approved, as the token carries it
        out["authorization_details"] = claims["authorization_details"]
    if "act" in claims:  # RFC 8693 §4.1, §2.2.1: who acts for the subject of a delegated token, current actor first
        out["act"] = claims["act"]
    return out


def userinfo(fd: Frontdesk, token: str) -> dict[str, Any]:
    """OpenID Connect Core §5.3.2: the claims about the person behind the access token ``token``."""
    access = live_access_token(fd, token)
    # RFC 8707: a token addressed to another resource is not for UserInfo.
    if access is None or fd.issuer not in access.audiences:
        raise InvalidToken("the access token is invalid, expired or not meant for UserInfo")
    if "openid" not in access.scope:
        raise InsufficientScope("the access token lacks the openid scope")
    with transaction(fd.engine, readonly=True) as conn:
        user = fd.users.by_id(conn, str(access.claims.get("sub")))
    if user is None:
        raise InvalidToken("the person behind this token no longer exists")
    return userinfo_claims(user.id, access.scope, user.username, user.name, user.email, user.email_verified)


def revoke(fd: Frontdesk, client_id: str, token: str, ip: str | None) -> None:
    """RFC 7009 §2.1: a refresh token takes its family with it; an access token is marked revoked.
    A token of another client, or no token of ours, is left alone and still answered with 200 (§2.2)."""
    at = now()
    if token.startswith(PREFIXES["refresh_token"]):
        with transaction(fd.engine) as conn:
            row = refresh_for(conn, token)
            if row is not None and row.client_id == client_id and revoke_grant(conn, row.grant.id, at):
                audit.record(
                    conn,
                    "token.revoked",
                    "success",
                    client_id=client_id,
                    user_id=row.grant.user_id,
                    ip=ip,
                    token_type="refresh_token",
                    grant_id=row.grant.id,
                )
        return
    claims = _verified_claims(fd, token)
    if claims is None or claims.get("client_id") != client_id:
        return
    with transaction(fd.engine) as conn:
        revoke_access_token(conn, claims["jti"], claims["exp"])
        audit.record(
            conn,
            "token.revoked",
            "success",
            client_id=client_id,
            user_id=claims.get("sub"),
            ip=ip,
            token_type="access_token",
            jti=claims["jti"],
        )  # this process's revocation answers go as it commits (db.revoking), other processes' within the bound
