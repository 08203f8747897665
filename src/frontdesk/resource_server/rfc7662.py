"""Asking the authorization server about a token (RFC 7662), for resource servers that must see a revocation at
once: a JWT access token cannot be recalled, but frontdesk's introspection checks the grant it came from.

The resource server authenticates as a confidential client registered with ``--resource`` for this resource (RFC
7662 §2.1: the endpoint tells it only about tokens addressed to what it serves). A positive answer is kept for a
few seconds (never past the token's ``exp``); a negative one never, so a revocation shows within ``cache_seconds``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from types import MappingProxyType, TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from .discovery import TIMEOUT, ServerMetadata, check_endpoint
from .tokens import AuthorizationServerUnavailable, InvalidToken, VerifiedToken, authorization_details_of

__all__ = ["CACHE_SECONDS", "MAX_CACHED", "IntrospectionValidator"]

CACHE_SECONDS = 5.0
MAX_CACHED = 10_000
MAX_TOKEN_LENGTH = 8192


def _basic(client_id: str, secret: str) -> str:
    # RFC 6749 §2.3.1: both are form-urlencoded before they are joined and base64-encoded.
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


class IntrospectionValidator:
    """Validates bearer tokens for ``resource`` by asking ``issuer``'s introspection endpoint (discovered from its
    RFC 8414 metadata unless given) as the client ``client_id``."""

    def __init__(
        self,
        issuer: str,
        resource: str,
        client_id: str,
        client_secret: str,
        *,
        http: httpx.AsyncClient | None = None,
        introspection_endpoint: str | None = None,
        cache_seconds: float = CACHE_SECONDS,
        max_cached: int = MAX_CACHED,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = check_endpoint(issuer)
        self._resource = resource
        self._authorization = _basic(client_id, client_secret)
        self._endpoint = check_endpoint(introspection_endpoint) if introspection_endpoint else None
        self._cache_seconds = cache_seconds
        self._max_cached = max_cached
        self._clock = clock
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)
        self._cached: OrderedDict[bytes, tuple[float, VerifiedToken]] = OrderedDict()

    def __repr__(self) -> str:  # the client secret stays out of tracebacks and logs
        return f"IntrospectionValidator(issuer={self.issuer!r}, resource={self._resource!r})"

    @property
    def resource(self) -> str:
        return self._resource

    async def validate(self, token: str) -> VerifiedToken:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("the token is not one of the issuer's")
        key = hashlib.sha256(token.encode()).digest()  # the cache never holds a token as its key
        now = self._clock()
        hit = self._cached.get(key)
        if hit is not None and now < hit[0]:
            return hit[1]
        self._cached.pop(key, None)
        verified = self._judge(token, await self._ask(token), now)
        if self._cache_seconds > 0:
            self._cached[key] = (min(now + self._cache_seconds, verified.expires_at), verified)
            while len(self._cached) > self._max_cached:
                self._cached.popitem(last=False)
        return verified

    async def _endpoint_url(self) -> str:
        if self._endpoint is None:
            metadata = await ServerMetadata.discover(self._http, self.issuer)
            if metadata.introspection_endpoint is None:
                raise AuthorizationServerUnavailable("the authorization server has no introspection_endpoint")
            self._endpoint = metadata.introspection_endpoint
        return self._endpoint

    async def _ask(self, token: str) -> dict[str, Any]:
        url = await self._endpoint_url()
        try:
            response = await self._http.post(
                url,
                data={"token": token, "token_type_hint": "access_token"},
                headers={"Authorization": self._authorization, "Accept": "application/json"},
                follow_redirects=False,
            )
        except httpx.HTTPError as exc:
            raise AuthorizationServerUnavailable(f"introspection failed: {type(exc).__name__}") from None
        if response.status_code != 200:
            # 401 here means this resource server's own credentials were refused: a setup error, not the token's.
            raise AuthorizationServerUnavailable(f"introspection answered {response.status_code}")
        try:
            answer = json.loads(response.content)
        except ValueError:
            raise AuthorizationServerUnavailable("introspection did not answer JSON") from None
        if not isinstance(answer, dict):
            raise AuthorizationServerUnavailable("introspection did not answer a JSON object")
        return answer

    def _judge(self, token: str, answer: Mapping[str, Any], now: float) -> VerifiedToken:
        """RFC 7662 §2.2: ``active`` is the whole verdict; the rest must still say the token is for this resource."""
        if answer.get("active") is not True:
            raise InvalidToken("the token is not active")
        token_type = answer.get("token_type")
        if token_type is not None and str(token_type).lower() != "bearer":
            raise InvalidToken("the token is not an access token")
        if answer.get("iss", self.issuer) != self.issuer:
            raise InvalidToken("the token was issued by another authorization server")
        aud = answer.get("aud")
        audience = (aud,) if isinstance(aud, str) else tuple(aud) if isinstance(aud, list) else ()
        if self._resource not in audience:
            raise InvalidToken("the token is meant for another resource")
        exp, sub, client_id, scope = (
            answer.get("exp"),
            answer.get("sub"),
            answer.get("client_id"),
            answer.get("scope", ""),
        )
        if isinstance(exp, bool) or not isinstance(exp, int | float) or exp <= now:
            raise InvalidToken("the token has expired")
        if not isinstance(sub, str) or not isinstance(client_id, str) or not isinstance(scope, str):
            raise InvalidToken("the introspection answer lacks sub, client_id or scope")
        act = answer.get("act")
        return VerifiedToken(
            subject=sub,
            client_id=client_id,
            scopes=frozenset(scope.split()),
            expires_at=int(exp),
            issuer=self.issuer,
            audience=audience,
            claims=MappingProxyType(dict(answer)),
            act=MappingProxyType(act) if isinstance(act, dict) else None,
            token=token,
            authorization_details=authorization_details_of(answer.get("authorization_details")),
        )

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def __aenter__(self) -> IntrospectionValidator:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
