"""Minting tokens: JWT access tokens (RFC 9068) and ID tokens (OpenID Connect Core §2, §3.1.3.6)."""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core import Frontdesk
from ..errors import InvalidDpopProof
from ..protocol.oidc import at_hash
from ..storage.clients import ClientRecord
from ..storage.grants import GrantRow
from .authorization_details import for_audience
from .resources import ResourceRow, token_ttl

__all__ = ["ACR_MFA", "ACR_PASSWORD", "ACR_VALUES", "AccessToken", "mint_access_token", "mint_id_token", "split_jti"]

ACR_PASSWORD = "urn:frontdesk:acr:password"
ACR_MFA = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"  # OpenID PAPE 1.0 §5
ACR_VALUES = (ACR_PASSWORD, ACR_MFA)


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_in: int
    scope: tuple[str, ...]


# A jti's random part: 12 bytes from the operating system's generator, as secrets.token_urlsafe(12) draws them, but
# drawn 256 at a time. A jti is no secret (it travels in the token) and must only be unique (RFC 9068 §2.2, RFC 7519
# §4.1.7); one getrandom call per token was a system call on every token request. 12 bytes are a multiple of 3,
# so one encoded draw cuts into 256 parts with no padding in between.
_JTI_BYTES = 12
_JTI_CHARS = _JTI_BYTES * 4 // 3  # base64 without padding: 12 bytes are 16 characters
_JTI_DRAW = 256
_jti_parts: Iterator[str] = iter(())
_jti_refill = threading.Lock()


def _random_part() -> str:
    global _jti_parts
    while True:
        # A list iterator's next() is atomic under the GIL: two threads never get the same part.
        part = next(_jti_parts, None)
        if part is not None:
            return part
        with _jti_refill:
            text = base64.urlsafe_b64encode(os.urandom(_JTI_BYTES * _JTI_DRAW)).decode("ascii")
            _jti_parts = iter([text[i : i + _JTI_CHARS] for i in range(0, len(text), _JTI_CHARS)])


def _forget_parts() -> None:
    global _jti_parts
    _jti_parts = iter(())  # a forked child must not hand out the parts its parent will


os.register_at_fork(after_in_child=_forget_parts)


def _jti(grant: GrantRow | None) -> str:
    # The grant id rides in the jti so that introspection and UserInfo can see a revoked grant without storing
    # a row per access token; the random part keeps every jti unique.
    suffix = _random_part()
    return f"{grant.id}.{suffix}" if grant else suffix


def split_jti(jti: str) -> str | None:
    """The grant id carried in a jti, or None for a client_credentials token."""
    grant_id, dot, _ = jti.partition(".")
    return grant_id if dot else None


def mint_access_token(
    fd: Frontdesk,
    client: ClientRecord,
    scope: tuple[str, ...],
    resources: Sequence[ResourceRow],
    grant: GrantRow | None,
    at: int,
    *,
    act: dict[str, Any] | None = None,
    not_after: int | None = None,
    authorization_details: Sequence[Mapping[str, Any]] = (),
    jkt: str | None = None,
) -> AccessToken:
    """A JWT access token for ``resources`` (registered ones, ``resources.resolve``), living as long as the
    shortest lifetime the client and those resources set (``resources.token_ttl``), and never past ``not_after``.
    ``act`` (RFC 8693 §4.1): the actor chain of a delegated token."""
    if jkt is None and any(r.require_dpop for r in resources):
        # RFC 9449 §7: the resource accepts only DPoP-bound tokens, so a bearer one is never minted for it.
        raise InvalidDpopProof("the requested resource accepts only DPoP-bound tokens: send a DPoP proof")
    ttl = token_ttl(fd, client, resources)
    if not_after is not None:
        ttl = max(0, min(ttl, not_after - at))  # RFC 8693 §5: an exchanged token outlives not its subject token
    # RFC 8707 §2 / RFC 9068 §3: the audience is the resource asked for; without one, this issuer (UserInfo).
    uris = [r.uri for r in resources]
    aud: str | list[str] = uris if len(uris) > 1 else uris[0] if uris else fd.issuer
    claims: dict[str, Any] = {
        "iss": fd.issuer,
        "sub": grant.user_id if grant and grant.user_id else client.client_id,
        "aud": aud,
        "client_id": client.client_id,
        "iat": at,
        "exp": at + ttl,
        "jti": _jti(grant),
    }
    if scope:
        claims["scope"] = " ".join(scope)
    if grant and grant.auth_time is not None:
        claims["auth_time"] = grant.auth_time
    if act is not None:
        claims["act"] = act
    if jkt is not None:
        claims["cnf"] = {"jkt": jkt}  # RFC 9449 §6.1: bound to the key of the token request's DPoP proof
    # RFC 9396 §9.1: a top-level claim, holding the granted details that concern this token's audience.
    if authorization_details:
        details = for_audience(authorization_details, uris or [fd.issuer])
        if details:
            claims["authorization_details"] = list(details)
    token = fd.keys.sign(claims, fd.settings.access_token_alg, typ="at+jwt")
    return AccessToken(token, ttl, scope)


def mint_id_token(
    fd: Frontdesk,
    client: ClientRecord,
    grant: GrantRow,
    access_token: str,
    nonce: str | None,
    at: int,
    sid: str | None = None,
) -> str:
    alg = client.id_token_alg or fd.settings.id_token_alg
    claims: dict[str, Any] = {
        "iss": fd.issuer,
        "sub": grant.user_id,
        "aud": client.client_id,
        "azp": client.client_id,
        "iat": at,
        "exp": at + fd.settings.lifetimes.id_token,
        "auth_time": grant.auth_time,
        "at_hash": at_hash(access_token, alg),
        "acr": ACR_MFA if "mfa" in grant.amr else ACR_PASSWORD,
        "amr": list(grant.amr) or ["pwd"],
    }
    if nonce is not None:
        claims["nonce"] = nonce
    if sid is not None:
        claims["sid"] = sid  # Back-Channel Logout 1.0 §2.1: the session a logout token will name
    return fd.keys.sign(claims, alg)
