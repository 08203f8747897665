"""Validating frontdesk's JWT access tokens (RFC 9068 §4) for one resource server.

The steps of §4 in order: the ``typ`` header is ``at+jwt`` (§2.1, so that an ID token or any other JWT from the
same issuer is never taken for an access token); the ``alg`` is on an allow-list of asymmetric algorithms (never
``none``, never HMAC: a resource server holds no secret it could share, RFC 9068 §4 and RFC 8725 §3.1); the
signature verifies with the issuer's key of that ``kid``; ``iss`` is the issuer exactly; ``aud`` names this
resource (RFC 8707, MCP: a token for another server is refused); ``exp``, ``nbf`` and ``iat`` hold within a small
leeway for clock skew.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Collection, Mapping
from types import MappingProxyType, TracebackType
from typing import Any

import httpx
from joserfc import jws
from joserfc.errors import JoseError

from .discovery import TIMEOUT, ServerMetadata, check_endpoint
from .keys import REFETCH_FLOOR, TTL, KeyCache
from .tokens import AuthorizationServerUnavailable, InvalidToken, VerifiedToken, authorization_details_of

__all__ = ["ALGORITHMS", "LEEWAY", "MAX_TOKEN_LENGTH", "JWTValidator"]

ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA", "Ed25519")
LEEWAY = 30  # seconds of clock skew tolerated on exp, nbf and iat
MAX_TOKEN_LENGTH = 8192  # longer is no token of ours: refused before any parsing
# RFC 9068 §4 step 1: "at+jwt" or the full media type "application/at+jwt"; media types compare case-insensitively.
_TYPES = ("at+jwt", "application/at+jwt")


def _b64json(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, UnicodeError):
        raise InvalidToken("the token is not a JWT") from None
    if not isinstance(value, dict):
        raise InvalidToken("the token is not a JWT")
    return value


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"the {name} claim is not a number")
    return float(value)


class JWTValidator:
    """Validates RFC 9068 access tokens issued by ``issuer`` for ``resource``.

    The keys come from ``jwks`` when given, else from ``jwks_uri``, else from the ``jwks_uri`` of the issuer's
    RFC 8414 metadata. ``http`` is the client used for fetching (one is made, and closed by :meth:`aclose`, when
    none is given)."""

    def __init__(
        self,
        issuer: str,
        resource: str,
        *,
        http: httpx.AsyncClient | None = None,
        jwks: Mapping[str, Any] | None = None,
        jwks_uri: str | None = None,
        algorithms: Collection[str] = ALGORITHMS,
        leeway: int = LEEWAY,
        key_ttl: float = TTL,
        refetch_floor: float = REFETCH_FLOOR,
        clock: Callable[[], float] = time.time,
    ) -> None:
        unsafe = [a for a in algorithms if a not in ALGORITHMS]
        if unsafe or not algorithms:
            raise ValueError(f"algorithms must be asymmetric signature algorithms of {ALGORITHMS}, not {unsafe}")
        self.issuer = check_endpoint(issuer)
        self._resource = resource
        self._algorithms = frozenset(algorithms)
        self._leeway = leeway
        self._clock = clock
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)
        self._jwks_uri = check_endpoint(jwks_uri) if jwks_uri else None
        locate = None if jwks is not None else self._locate_jwks
        self.keys = KeyCache(self._http, locate, jwks=jwks, ttl=key_ttl, refetch_floor=refetch_floor)

    @property
    def resource(self) -> str:
        return self._resource

    async def _locate_jwks(self) -> str:
        if self._jwks_uri is None:
            metadata = await ServerMetadata.discover(self._http, self.issuer)
            if metadata.jwks_uri is None:
                raise AuthorizationServerUnavailable("the authorization server publishes no jwks_uri")
            self._jwks_uri = metadata.jwks_uri
        return self._jwks_uri

    async def validate(self, token: str) -> VerifiedToken:
        claims = await self._verified(token)
        self._check_issuer(claims)
        audience = self._check_audience(claims)
        expires_at = self._check_times(claims)
        return self._verified_token(token, claims, audience, expires_at)

    async def _verified(self, token: str) -> dict[str, Any]:
        """The claims of a token whose type, algorithm and signature are right."""
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2 or not token.isascii():
            raise InvalidToken("the token is not a JWT")
        header = _b64json(token.partition(".")[0])
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _TYPES:
            raise InvalidToken("the token is not an access token (RFC 9068 typ at+jwt)")
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise InvalidToken("the token's signature algorithm is not accepted")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("the token's kid is not a string")
        key = await self.keys.key_for(kid, alg)
        if key is None:
            raise InvalidToken("the token was not signed by a key of the issuer")
        try:
            payload = jws.deserialize_compact(token, key, algorithms=[alg]).payload
            claims = json.loads(payload)
        except (JoseError, ValueError, TypeError, UnicodeError):
            raise InvalidToken("the token's signature does not verify") from None
        if not isinstance(claims, dict):
            raise InvalidToken("the token's claims are not a JSON object")
        return claims

    def _check_issuer(self, claims: Mapping[str, Any]) -> None:
        # RFC 9068 §4 step 3: exact match with the issuer this resource server trusts (no normalisation).
        if claims.get("iss") != self.issuer:
            raise InvalidToken("the token was issued by another authorization server")

    def _check_audience(self, claims: Mapping[str, Any]) -> tuple[str, ...]:
        aud = claims.get("aud")
        audience = (aud,) if isinstance(aud, str) else tuple(aud) if isinstance(aud, list) else ()
        # RFC 9068 §4 step 4, RFC 8707 §2: the token names this resource; one for another server is refused.
        if self._resource not in audience or not all(isinstance(a, str) for a in audience):
            raise InvalidToken("the token is meant for another resource")
        return audience

    def _check_times(self, claims: Mapping[str, Any]) -> int:
        now = self._clock()
        exp, nbf, iat = _number(claims, "exp"), _number(claims, "nbf"), _number(claims, "iat")
        if exp is None or iat is None:
            raise InvalidToken("the token lacks exp or iat (RFC 9068 §2.2)")
        if now >= exp + self._leeway:
            raise InvalidToken("the token has expired")
        if nbf is not None and now < nbf - self._leeway:
            raise InvalidToken("the token is not valid yet")
        if iat > now + self._leeway:
            raise InvalidToken("the token was issued in the future")
        return int(exp)

    @staticmethod
    def _verified_token(
        token: str, claims: dict[str, Any], audience: tuple[str, ...], expires_at: int
    ) -> VerifiedToken:
        sub, client_id, scope, act = (
            claims.get("sub"),
            claims.get("client_id"),
            claims.get("scope", ""),
            claims.get("act"),
        )
        if not isinstance(sub, str) or not isinstance(client_id, str):
            raise InvalidToken("the token lacks sub or client_id (RFC 9068 §2.2)")
        if not isinstance(scope, str) or (act is not None and not isinstance(act, dict)):
            raise InvalidToken("the token's scope or act claim is malformed")
        return VerifiedToken(
            subject=sub,
            client_id=client_id,
            scopes=frozenset(scope.split()),
            expires_at=expires_at,
            issuer=str(claims["iss"]),
            audience=audience,
            claims=MappingProxyType(claims),
            act=MappingProxyType(act) if act is not None else None,
            token=token,
            authorization_details=authorization_details_of(claims.get("authorization_details")),
        )

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def __aenter__(self) -> JWTValidator:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
