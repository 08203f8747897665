"""Signing in through an upstream provider: the authorization code flow with PKCE (S256), ``state`` and ``nonce``
(RFC 6749 §4.1, RFC 7636, OpenID Connect Core 1.0 §3.1), with frontdesk as the provider's client.

begin → the browser visits the provider → come_back: the ``state`` is looked up and its trip taken once (a replayed
callback finds nothing to take), the browser must be the one that left, the code is exchanged, the ID token
validated (a plain OAuth 2.0 provider's userinfo URL says who it is), and the person is resolved:

- an upstream account linked to an account here signs in to that account;
- one the provider vouches for with ``email_verified`` whose address matches exactly one account here is *offered*
  a link, which the person confirms with that account's password — never linked silently;
- anyone else gets a new account (keeping the address only when the provider verified it).

The provider's tokens serve only to learn who signed in: they are never stored and never reach any client.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from sqlalchemy.exc import IntegrityError

from ..core import Frontdesk
from ..crypto.aead import DecryptionFailed
from ..protocol.forms import Params
from ..secret import Secret, digest, same
from ..storage import audit
from ..storage.db import transaction
from ..storage.upstream import (
    LoginRow,
    create_federated_user,
    finish_login,
    insert_login,
    link_identity,
    linked_user,
    login_by_state,
    settle_login,
    take_login,
    users_with_email,
)
from .id_token import InvalidIdToken, unverified_kid, validate_id_token
from .jwks import ProviderKeys
from .providers import TIMEOUT, Provider, callback_url, client_secret

__all__ = ["FED", "Person", "Refused", "Returned", "begin", "come_back", "confirm_link"]

FED = "fed"  # RFC 8176 §2: federated authentication
_USERNAME_CHARS = re.compile(r"[^A-Za-z0-9._+-]")


@dataclass(frozen=True, slots=True)
class Person:
    """Who the provider says signed in."""

    subject: str
    email: str | None
    email_verified: bool
    name: str | None
    username: str | None  # preferred_username, or GitHub's login


@dataclass(frozen=True, slots=True)
class Returned:
    interaction_id: str
    outcome: str  # signed_in | created | confirm


class Refused(Exception):
    """A trip back that is refused: ``reason`` goes to the audit log, ``message`` to the person in plain words."""

    def __init__(self, reason: str, message: str, *, interaction_id: str | None = None, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = message
        self.interaction_id = interaction_id
        self.detail = detail


def _aad(login_id: str) -> bytes:
    return b"upstream_login:" + login_id.encode()


def begin(fd: Frontdesk, provider: Provider, interaction_id: str, at: int) -> tuple[str, str]:
    """A new trip for this interaction: the provider's authorization URL, and the browser binding for a cookie."""
    login_id, state, nonce, browser = (secrets.token_urlsafe(n) for n in (16, 32, 32, 32))
    verifier = secrets.token_urlsafe(48)
    with transaction(fd.engine) as conn:
        insert_login(
            conn,
            {
                "id": login_id,
                "state_digest": digest(state),
                "browser_digest": digest(browser),
                "provider": provider.name,
                "interaction_id": interaction_id,
                "nonce_digest": digest(nonce),
                "verifier": fd.master.seal(verifier.encode(), _aad(login_id)),
                "created_at": at,
                "expires_at": at + fd.settings.lifetimes.interaction,
            },
        )
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": callback_url(fd, provider.name),
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if provider.scope:
        query["scope"] = " ".join(provider.scope)
    if provider.kind == "oidc":
        query["nonce"] = nonce
    separator = "&" if "?" in provider.authorization_endpoint else "?"
    return provider.authorization_endpoint + separator + urlencode(query), browser


def _token_request(
    http: httpx.Client, provider: Provider, secret: Secret | None, code: str, verifier: str, redirect_uri: str
) -> dict[str, Any]:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
    headers = {"Accept": "application/json"}
    if provider.token_auth_method == "client_secret_basic" and secret is not None:
        # RFC 6749 §2.3.1: each part form-encoded before the Basic encoding.
        pair = f"{quote(provider.client_id, safe='')}:{quote(secret.value, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    else:
        data["client_id"] = provider.client_id
        if secret is not None:
            data["client_secret"] = secret.value
    try:
        response = http.post(provider.token_endpoint, data=data, headers=headers, timeout=TIMEOUT)
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise Refused("token_error", "", detail=type(exc).__name__) from None
    if response.status_code != 200 or not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        error = body.get("error") if isinstance(body, dict) else None
        raise Refused("token_error", "", detail=f"status {response.status_code} {error or ''}".strip())
    return body


def _get_json(http: httpx.Client, url: str, **headers: str) -> dict[str, Any]:
    try:
        response = http.get(url, headers={"Accept": "application/json", **headers}, timeout=TIMEOUT)
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise Refused("provider_unreachable", "", detail=f"{url}: {type(exc).__name__}") from None
    if response.status_code != 200 or not isinstance(body, dict):
        raise Refused("provider_unreachable", "", detail=f"{url}: status {response.status_code}")
    return body


def _person(claims: dict[str, Any], subject: str) -> Person:
    def text(name: str) -> str | None:
        value = claims.get(name)
        return value if isinstance(value, str) and value else None

    email = text("email")
    return Person(
        subject=subject,
        email=email if email and "@" in email and len(email) <= 320 else None,
        email_verified=claims.get("email_verified") is True,
        name=text("name"),
        username=text("preferred_username") or text("login"),
    )


def _identify(
    http: httpx.Client, keys: ProviderKeys, provider: Provider, tokens: dict[str, Any], login: LoginRow, at: int
) -> Person:
    bearer = f"Bearer {tokens['access_token']}"
    if provider.kind == "oauth2":
        assert provider.userinfo_endpoint is not None
        info = _get_json(http, provider.userinfo_endpoint, Authorization=bearer)
        subject = info.get("sub", info.get("id"))
        if not isinstance(subject, str | int) or isinstance(subject, bool) or not str(subject):
            raise Refused("invalid_userinfo", "", detail="no sub or id")
        return _person(info, str(subject))
    assert provider.jwks_uri is not None
    assert provider.issuer is not None
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str):
        raise Refused("invalid_id_token", "", detail="no id_token in the token response")
    jwks = keys.key_set(provider.jwks_uri, unverified_kid(id_token), lambda uri: _get_json(http, uri))
    try:
        claims = validate_id_token(
            id_token,
            jwks=jwks,
            issuer=provider.issuer,
            client_id=provider.client_id,
            nonce_digest=login.nonce_digest,
            at=at,
        )
    except InvalidIdToken as exc:
        raise Refused("invalid_id_token", "", detail=str(exc)) from None
    if "email" not in claims and provider.userinfo_endpoint:
        info = _get_json(http, provider.userinfo_endpoint, Authorization=bearer)
        if info.get("sub") != claims["sub"]:  # OIDC Core §5.3.2: otherwise the answer is not about this person
            raise Refused("invalid_userinfo", "", detail="userinfo sub differs from the ID token's")
        claims = {**info, **claims}
    return _person(claims, claims["sub"])


def _username(provider: Provider, person: Person) -> str:
    local = person.email.split("@", 1)[0] if person.email and person.email_verified else None
    hint = _USERNAME_CHARS.sub("", person.username or local or person.subject)[:64] or secrets.token_hex(4)
    return f"{provider.name}-{hint}"


def _resolve(fd: Frontdesk, provider: Provider, login: LoginRow, person: Person, ip: str | None, at: int) -> str:
    """Which account the person signs in to, written on the trip in one transaction; returns the outcome."""
    for attempt in range(2):
        try:
            with transaction(fd.engine) as conn:
                outcome, user_id = "signed_in", linked_user(conn, provider.name, person.subject, at)
                if user_id is None and person.email_verified and person.email:
                    matches = users_with_email(conn, person.email)
                    if len(matches) == 1:  # several accounts share it: none is the obvious one, so none is offered
                        outcome, user_id = "confirm", matches[0][0]
                if user_id is None:
                    outcome = "created"
                    email = person.email if person.email_verified else None  # an unverified address is not kept
                    user_id = create_federated_user(conn, _username(provider, person), email, person.name, at)
                    link_identity(conn, provider.name, person.subject, user_id, at)
                if outcome == "confirm":
                    settle_login(conn, login.id, "confirm", user_id, person.subject, person.email)
                else:
                    settle_login(conn, login.id, "returned", user_id)
                audit.record(conn, "upstream.signin", outcome, user_id=user_id, ip=ip, provider=provider.name)
                return outcome
        except IntegrityError:
            if attempt:  # the same person came back twice at once and the other trip linked first: it wins
                raise
    raise AssertionError("unreachable")


def come_back(
    fd: Frontdesk,
    http: httpx.Client,
    keys: ProviderKeys,
    provider: Provider,
    params: Params,
    browser: str | None,
    ip: str | None,
    at: int,
) -> Returned:
    """The redirection back from the provider (the callback); raises ``Refused`` for anything amiss.

    ``keys`` caches the providers' key sets for the process (``jwks``)."""
    state = params.get("state")
    with transaction(fd.engine) as conn:
        login = login_by_state(conn, digest(state)) if state else None
        if login is None or login.provider != provider.name or login.expires_at <= at:
            raise Refused("unknown_state", "This sign-in link is not valid or has expired.")
        back = login.interaction_id
        replayed = Refused("replayed", "This sign-in link was already used.", interaction_id=back)
        if login.status != "started":
            raise replayed
        if browser is None or not same(digest(browser), login.browser_digest):
            raise Refused("other_browser", "This sign-in was started in another browser.", interaction_id=back)
        if not take_login(conn, login.id):  # a replay racing this request took it first
            raise replayed
    try:
        # RFC 9207 §2.4: a provider that names itself must name itself here (mix-up defence). A plain OAuth 2.0
        # provider was registered without an issuer, so there is nothing to compare with.
        named = "iss" in params or provider.iss_parameter
        if provider.issuer is not None and named and params.get("iss") != provider.issuer:
            raise Refused("issuer_mismatch", "")
        if "error" in params:
            raise Refused("provider_error", "", detail=params["error"][:64])
        code = params.get("code")
        if code is None:
            raise Refused("no_code", "")
        try:
            verifier = fd.master.open(login.verifier, _aad(login.id)).decode()
        except DecryptionFailed:
            raise Refused("sealed_verifier", "") from None
        tokens = _token_request(
            http, provider, client_secret(fd, provider.name), code, verifier, callback_url(fd, provider.name)
        )
        person = _identify(http, keys, provider, tokens, login, at)
    except Refused as exc:
        exc.interaction_id = back
        exc.message = exc.message or f"{provider.display_name} could not sign you in. Try again."
        raise
    return Returned(back, _resolve(fd, provider, login, person, ip, at))


def confirm_link(fd: Frontdesk, login: LoginRow, ip: str | None, at: int) -> bool:
    """The person proved they own the account the verified email pointed at: link it (once)."""
    assert login.user_id is not None
    assert login.subject is not None
    with transaction(fd.engine) as conn:
        if not finish_login(conn, login.id, "confirm"):
            return False
        try:
            with conn.begin_nested():
                link_identity(conn, login.provider, login.subject, login.user_id, at)
        except IntegrityError:
            return False  # linked meanwhile (to this or another account): the person signs in again
        audit.record(conn, "upstream.signin", "linked", user_id=login.user_id, ip=ip, provider=login.provider)
    return True
