"""Client authentication at the token, introspection and revocation endpoints (RFC 6749 §2.3, RFC 7523,
OpenID Connect Core §9). Each client uses the one method it registered; presenting two is an error (§2.3).

A ``private_key_jwt`` client may publish its keys at a ``jwks_uri`` (RFC 7591 §2) rather than register them. They are
read by :func:`fetch_client_keys`, asynchronously, before the blocking part of authentication: a slow or dead client
host must hold up its own token request, never the event loop and every other request with it. A key set is kept
for five minutes; a failure for thirty seconds, so that a client whose host is down cannot make every one of its
requests (or an attacker's, naming it) a fresh outbound fetch. The body is bounded and redirects are not followed.

A ``jwks_uri`` nobody vetted (a client that registered itself, RFC 7591, or whose metadata document names it) is
chosen by whoever wants this server to fetch it: it is fetched with the guards of a metadata document
(``metadata_fetcher``: public addresses only, the connection to the checked address, JSON only; CIMD §6.5, RFC 7591
§5), under ``[registration]``'s relaxation for private hosts. The operator's clients are fetched as before: the
operator chose those URLs, internal hosts included.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote

import httpx

from ..config import Registration as RegistrationSettings
from ..core import Frontdesk
from ..errors import InvalidClient, InvalidRequest
from ..protocol.forms import Params
from ..protocol.rfc7523 import ASSERTION_TYPE, unverified_subject, verify_assertion
from ..secret import Secret, digest, same
from ..storage import audit
from ..storage.clients import ClientRecord
from ..storage.db import now
from ..storage.replay import spend_jti
from ..wire import loads
from .clients import find_client
from .metadata_fetcher import FetchFailed, FetchPolicy, fetch_document
from .rate_limits import Limit, check, count_failure

__all__ = [
    "AUTH_METHODS",
    "AuthenticatedClient",
    "ClientKeys",
    "Presented",
    "authenticate",
    "authenticate_client",
    "client_keys",
    "fetch_client_keys",
    "needs_published_keys",
    "presented_credentials",
]

# RFC 7591 §2 token_endpoint_auth_method: the one way each client authenticates here, declared once for registration,
# discovery and the command line (RFC 6749 §2.3.1, RFC 7523 §2.2, OpenID Connect Core §9); "none" is a public client.
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")

# What authentication answers: the registered client. The endpoints name it by this name, as this module's result;
# where it is stored is storage's business (DESIGN §2: web calls services, never storage).
AuthenticatedClient = ClientRecord


class ClientKeys:
    """Key sets read from clients' ``jwks_uri``, kept for ``ttl`` seconds; a failure to read one for ``failure_ttl``.

    One per process (``client_keys``). ``transport`` is httpx's: None for the network."""

    def __init__(
        self,
        *,
        ttl: float = 300.0,
        failure_ttl: float = 30.0,
        refetch_after: float = 30.0,
        max_bytes: int = 64 * 1024,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.ttl = ttl
        self.failure_ttl = failure_ttl
        self.refetch_after = refetch_after
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.transport = transport
        # (uri, guarded) → (when read, the key set or None for a failure). Only touched on the event loop: no lock.
        # Kept apart by guard, so that a set read unguarded for the operator's client never answers for another.
        self._cache: dict[tuple[str, bool], tuple[float, dict[str, Any] | None]] = {}

    def clear(self) -> None:
        self._cache.clear()

    async def read(self, uri: str, kid: str | None = None, guard: FetchPolicy | None = None) -> dict[str, Any] | None:
        """The key set at ``uri``, or None when it cannot be read now (and will not be tried again for a while).
        With ``guard``, fetched as a metadata document is (:func:`~.metadata_fetcher.fetch_document`).

        A cached set that lacks ``kid`` (the key an assertion names) is read again once it is ``refetch_after``
        seconds old: a client that rotates its keys (adding the new one to its set, then signing with it) is not
        locked out until the cache expires, and naming unknown kids cannot make us fetch more than that often. If
        that read fails, the set we had stays."""
        key = (uri, guard is not None)
        hit = self._cache.get(key)
        if hit is not None:
            age = time.monotonic() - hit[0]
            cached = hit[1]
            if cached is None:
                if age < self.failure_ttl:
                    return None
            elif age < self.ttl and (kid is None or kid in _kids(cached) or age < self.refetch_after):
                return cached
        jwks = await self._fetch(uri) if guard is None else await self._fetch_guarded(uri, guard)
        if jwks is None and hit is not None and hit[1] is not None and time.monotonic() - hit[0] < self.ttl:
            jwks = hit[1]
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (time.monotonic(), jwks)
        return jwks

    async def _fetch_guarded(self, uri: str, guard: FetchPolicy) -> dict[str, Any] | None:
        # CIMD §6.5: resolve, refuse special-use addresses, connect to the checked one. The fetcher blocks (at most
        # its timeout), so it runs in a worker thread, never on the event loop.
        try:
            fetched = await asyncio.to_thread(fetch_document, uri, guard)
        except FetchFailed:
            return None
        jwks = fetched.document
        return jwks if isinstance(jwks.get("keys"), list) else None

    async def _fetch(self, uri: str) -> dict[str, Any] | None:
        # No redirects: the keys are those at the URL the client registered (RFC 7591 §2), nowhere else. No proxy or
        # netrc from the environment either: this fetch goes where the client said, with nothing of ours attached.
        try:
            async with (
                httpx.AsyncClient(
                    timeout=self.timeout, follow_redirects=False, trust_env=False, transport=self.transport
                ) as http,
                http.stream("GET", uri, headers={"Accept": "application/jwk-set+json, application/json"}) as response,
            ):
                if response.status_code != 200:
                    return None
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.max_bytes:
                    return None
                body = bytearray()
                async for chunk in response.aiter_bytes():  # decoded: the bound holds for a compressed body too
                    body += chunk
                    if len(body) > self.max_bytes:
                        return None
        except (httpx.HTTPError, httpx.InvalidURL, ValueError):
            return None
        try:
            jwks = loads(bytes(body))
        except ValueError:
            return None
        return jwks if isinstance(jwks, dict) and isinstance(jwks.get("keys"), list) else None


client_keys = ClientKeys()


def needs_published_keys(presented: Presented) -> bool:
    """Whether ``presented`` is an assertion, whose client's keys may have to be read first (fetch_client_keys)."""
    return presented.method == "private_key_jwt" and bool(presented.client_id)


def _guard(keys: ClientKeys, client: ClientRecord, registration: RegistrationSettings | None) -> FetchPolicy | None:
    """How ``client``'s ``jwks_uri`` may be fetched: None (as the operator registered it) for an operator's client;
    for any other, the metadata fetcher's guards, with ``[registration]``'s relaxation (defaults when not given)."""
    if client.registered_by == "operator":
        return None
    limits = registration if registration is not None else RegistrationSettings()
    return FetchPolicy(
        max_bytes=keys.max_bytes,
        timeout=min(keys.timeout, float(limits.metadata_timeout)),
        allow_private=limits.allow_private_metadata_hosts,
    )


async def fetch_client_keys(
    presented: Presented,
    client: ClientRecord | None,
    keys: ClientKeys = client_keys,
    registration: RegistrationSettings | None = None,
) -> Presented:
    """``presented`` with the key set that ``client`` publishes at its ``jwks_uri``, read before authentication
    proper (which runs without awaiting); unchanged for every other client. Keys that cannot be read stay None,
    and authentication then fails as ``invalid_client``. ``registration``: the settings that guard the fetch for a
    client nobody vetted (:func:`_guard`)."""
    if (
        client is None
        or client.client_id != presented.client_id
        or client.auth_method != "private_key_jwt"
        or client.jwks is not None
        or not client.jwks_uri
    ):
        return presented
    kid = _assertion_kid(presented.assertion.value) if presented.assertion is not None else None
    guard = _guard(keys, client, registration)
    return replace(presented, published_keys=await keys.read(client.jwks_uri, kid, guard))


def _kids(jwks: dict[str, Any]) -> set[str]:
    return {k["kid"] for k in jwks["keys"] if isinstance(k, dict) and isinstance(k.get("kid"), str)}


def _assertion_kid(assertion: str) -> str | None:
    """The ``kid`` in a JWS's protected header (RFC 7515 §4.1.4), unverified: it only chooses whether to read the
    client's key set again. Anything malformed is None; verification then refuses it."""
    try:
        header = loads(base64.urlsafe_b64decode(assertion.split(".", 1)[0] + "=="))
    except ValueError:  # binascii.Error, bad JSON, non-ASCII text
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


@dataclass(frozen=True, slots=True)
class Presented:
    method: str
    client_id: str
    # Masked in every repr, so a traceback or a log of this value never shows the credential.
    secret: Secret | None = None
    assertion: Secret | None = None
    # For private_key_jwt: the key set the client publishes at its jwks_uri, read by fetch_client_keys beforehand.
    published_keys: dict[str, Any] | None = field(default=None, repr=False)


def _basic(header: str) -> tuple[str, str]:
    try:  # base64.b64decode(..., validate=True), without its two layers of calls
        raw = binascii.a2b_base64(header[6:].strip().encode("ascii"), strict_mode=True).decode("utf-8")
    except ValueError:  # binascii.Error, non-ASCII header text and bad UTF-8 are ValueErrors
        raise InvalidClient("malformed Basic credentials") from None
    # A NUL can name no client and PostgreSQL cannot even look one up: refused as the form parser refuses it.
    if ":" not in raw or "\x00" in raw:
        raise InvalidClient("malformed Basic credentials")
    user, _, password = raw.partition(":")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before Base64.
    try:
        client_id, secret = _form_decoded(user), _form_decoded(password)
    except UnicodeDecodeError:
        raise InvalidClient("malformed Basic credentials") from None
    if "\x00" in client_id or "\x00" in secret:
        raise InvalidClient("malformed Basic credentials")
    return client_id, secret


def _form_decoded(text: str) -> str:
    # unquote(text.replace("+", " "), errors="strict"), skipping what the text does not need.
    if "+" in text:
        text = text.replace("+", " ")
    return unquote(text, errors="strict") if "%" in text else text


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


def _client_jwks(client: ClientRecord, published: dict[str, Any] | None) -> dict[str, Any]:
    if client.jwks is not None:
        return client.jwks
    if published is None:
        raise InvalidClient("the client's jwks_uri could not be read")
    return published


def _audiences(fd: Frontdesk, client: ClientRecord) -> tuple[str, ...]:
    """The ``aud`` values an assertion of ``client`` may carry (protocol/rfc7523.py)."""
    if client.assertion_audience == "token-endpoint":
        return (fd.issuer, fd.url("/token"))
    return (fd.issuer,)


def authenticate_client(fd: Frontdesk, presented: Presented) -> ClientRecord:
    """The client ``presented`` names, once its credential checks out. Blocking (it reads the store); a client's
    published keys must have been read into ``presented`` first (fetch_client_keys)."""
    # A metadata document was fetched by prepare_client, off the event loop this may run on.
    client = find_client(fd, presented.client_id, fetch=False) if presented.client_id else None
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
        current = client.secret_digest is not None and same(digest(presented.secret.value), client.secret_digest)
        if not current and not _previous_secret(client, presented.secret):
            raise InvalidClient("client authentication failed", detail="wrong secret")
    elif presented.assertion is not None:
        at = now()
        assertion = verify_assertion(
            presented.assertion.value,
            _client_jwks(client, presented.published_keys),
            client.client_id,
            _audiences(fd, client),
            at,
            fd.settings.lifetimes.client_assertion_max,
        )
        if not spend_jti(fd.engine, client.client_id, assertion.jti, assertion.exp):  # RFC 7523 §3 item 7
            raise InvalidClient("client assertion was already used", detail="jti replay")
    return client


def _previous_secret(client: ClientRecord, secret: Secret) -> bool:
    """Whether ``secret`` is the one before the client's last rotation, while its overlap lasts (admin.clients).
    Asked only once the current secret failed, so the common path does no more work."""
    until = client.previous_secret_expires_at
    if client.previous_secret_digest is None or until is None or until <= now():
        return False
    return same(digest(secret.value), client.previous_secret_digest)


def authenticate(fd: Frontdesk, presented: Presented, limits: list[Limit]) -> AuthenticatedClient:
    """The client authentication step, under its abuse limits; blocking (it reads the store)."""
    check(fd, limits)
    try:
        return authenticate_client(fd, presented)
    except InvalidClient as exc:
        # RFC 9700 §2.5 / OAuth 2.1 §2.4.1: guessing a client's secret stops after a handful of tries.
        count_failure(fd, limits)
        _audit_failure(fd, presented, limits, exc)
        raise


def _audit_failure(fd: Frontdesk, presented: Presented, limits: list[Limit], exc: InvalidClient) -> None:
    """``client.authentication`` failed, for the operator and the alert rules (admin/alert_rules.py). Nothing else
    is written for a refused request, so the event joins the next audit batch (storage/audit.py). The address is
    the one the limits count (rate_limits.client_auth_limits); the reason, the private detail's first words."""
    ip = next((limit.subject for limit in limits if limit.name == "client_auth_ip"), "None")
    audit.record_soon(
        fd.engine,
        "client.authentication",
        "failure",
        client_id=presented.client_id[:255] or None,
        ip=None if ip == "None" else ip[:64],
        method=presented.method,
        reason=(exc.detail or exc.description).split(":")[0][:100],
    )
