"""Connecting a person's account: the connect link, its page, the trip to the provider and the callback.

A link is short-lived, single-use and bound to the platform's user; the browser that continues from its page is the
only one that may finish (DESIGN §6). The trip to the provider carries ``state`` and PKCE (RFC 7636), and the
callback checks the provider's ``iss`` where it is known (RFC 9207).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Engine

from ..config import Settings, is_loopback_host
from ..secret import digest, new_token, same
from ..storage import audit
from ..storage.db import now, transaction
from . import oauth, session_store, store
from .catalog import Provider, Variable
from .integrations import Integrations
from .keys import VaultKeys
from .store import ConnectionRecord, VaultError
from .webhooks import Webhooks

__all__ = [
    "MAX_DISPLAY_NAME",
    "ConnectFailed",
    "ConnectPage",
    "ConnectSession",
    "Connector",
    "owner",
    "plain_words",
]

_SCOPE = re.compile(r"[\x21-\x7e]{1,256}")
MAX_DISPLAY_NAME = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class ConnectFailed(Exception):
    """A connect link or callback that cannot go on; ``reason`` picks the page the person sees."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ConnectSession:
    id: str
    url: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class ConnectPage:
    """What the person is told before a connect link sends them to the provider: whose account it joins."""

    provider: str  # "Google Calendar"
    account: str  # the platform's display name for its user, or the user id when it gave none
    named: bool  # whether ``account`` is a display name (else an id the person may not recognise)
    words: str  # what the connection reaches, in plain words
    subject: str | None  # the frontdesk person who must be signed in, when the platform asked for one


def plain_words(provider: Provider, scopes: Sequence[str]) -> str:
    """ "your Google Calendar and your Gmail", from the catalog's words for each scope, or the provider's name."""
    words = list(dict.fromkeys(provider.scope_words[s] for s in scopes if s in provider.scope_words))
    if not words:
        return provider.access_words or f"your {provider.display_name} account"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def owner(user: str, links: Sequence[str | None] | None, user_is_person: bool) -> str | None:
    """The frontdesk person a connection made for the platform's ``user`` is, given the subjects of the connect
    links that last connected it (None: a link bound to nobody; no link on record counts as one such).

    A link bound to a person (``subject``: they signed in here to use it, README "What a forwarded link can do")
    makes it theirs; a link bound to nobody makes it the person whose frontdesk id the platform's user id is
    (``user_is_person``), or nobody's: nothing here can tell whose a platform's own user id is, so no person's
    token reaches it and no account page shows it. Two links finishing in the same second for two owners make it
    nobody's: when in doubt, no one's token reaches it. The callback calls this with the one link that just
    connected it, so the person stored is always the one whose credentials are stored (revision 0013 applied it to
    what the connect sessions said before)."""
    subjects = tuple(links or (None,))
    owners = {subject if subject is not None else user for subject in subjects}
    if len(owners) != 1:
        return None
    (one,) = owners
    return one if one in subjects or user_is_person else None


def _check_owner(user: str, display_name: str | None, subject: str | None) -> None:
    # The platform's user id is stored and shown: no control characters (PostgreSQL refuses NUL in text outright).
    if not user or len(user) > 255 or _CONTROL.search(user):
        raise VaultError("user must be 1-255 characters of text")
    if subject is not None and (not subject or len(subject) > 255 or _CONTROL.search(subject)):
        raise VaultError("subject is not a person at this frontdesk")
    if display_name is not None and not (
        display_name.strip() and len(display_name) <= MAX_DISPLAY_NAME and not _CONTROL.search(display_name)
    ):
        raise VaultError(f"display_name must be 1-{MAX_DISPLAY_NAME} characters of text")


def _check_params(integration_name: str, variables: Sequence[Variable], params: Mapping[str, str]) -> None:
    """The connection's own template variables: every one the provider needs, in its pattern, and no other."""
    for variable in variables:
        if variable.source != "connection":
            continue
        value = params.get(variable.name)
        if value is None:
            raise VaultError(f"integration {integration_name!r} needs params.{variable.name} ({variable.description})")
        if not isinstance(value, str) or not re.fullmatch(variable.pattern, value):
            raise VaultError(f"params.{variable.name} does not look like {variable.description or variable.pattern}")
    allowed = {v.name for v in variables if v.source == "connection"}
    if set(params) - allowed:
        raise VaultError(f"unknown params: {', '.join(sorted(set(params) - allowed))}")


def _check_return_url(return_url: str) -> None:
    try:
        parts = urlsplit(return_url)
    except ValueError:  # an unclosed or bad IP literal ("https://[::1"), RFC 3986 §3.2.2
        raise VaultError("return_url must be an https URL") from None
    if not (parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname or ""))):
        raise VaultError("return_url must be an https URL")


@dataclass(slots=True)
class Connector:
    settings: Settings
    engine: Engine
    keys: VaultKeys
    integrations: Integrations
    http: httpx.Client
    webhooks: Webhooks

    @property
    def callback_url(self) -> str:
        return self.settings.issuer + "/vault/callback"

    def create_session(
        self,
        user: str,
        integration_name: str,
        scopes: Sequence[str] = (),
        params: Mapping[str, str] | None = None,
        return_url: str | None = None,
        display_name: str | None = None,
        subject: str | None = None,
    ) -> ConnectSession:
        """A short-lived, single-use link bound to ``user``: whoever completes it connects *that* user's account.

        The link's page names the account (``display_name``, the platform's words for its user) before the person
        goes on, so someone sent a link that is not theirs can tell. ``subject``, a frontdesk person's id, makes
        the link work only for that person, signed in here."""
        _check_owner(user, display_name, subject)
        integration = self.integrations.integration(integration_name)
        entry = self.integrations.catalog.get(integration.provider)
        if any(not isinstance(s, str) or not _SCOPE.fullmatch(s) for s in scopes):
            raise VaultError("scopes must be a list of scope strings")
        params = dict(params or {})
        _check_params(integration_name, entry.variables, params)
        if return_url is not None:
            _check_return_url(return_url)
        requested = list(dict.fromkeys([*self.integrations.scopes_of(integration), *scopes]))
        token = new_token("connect_link")
        session_id = "cs_" + secrets.token_urlsafe(12)
        at = now()
        expires_at = at + self.settings.lifetimes.connect_session
        with transaction(self.engine) as conn:
            if subject is not None:
                person = session_store.person(conn, subject)
                if person is None:
                    raise VaultError("subject is not a person at this frontdesk")
                display_name = display_name or person.name or person.username
            session_store.create_session(
                conn, session_id=session_id, link=token, user=user, integration_name=integration_name,
                scopes=requested, params=params, return_url=return_url,
                display_name=display_name.strip() if display_name else None, subject=subject, created_at=at,
                expires_at=expires_at,
            )  # fmt: skip
            audit.record(
                conn, "vault.connect_session.created", "success", integration=integration_name, user=user,
                session=session_id, bound_to_person=subject is not None,
            )  # fmt: skip
        return ConnectSession(session_id, f"{self.settings.issuer}/vault/connect/{token}", expires_at)

    def page(self, token: str) -> ConnectPage:
        """What the link's page says before the person goes on; :class:`ConnectFailed` when it cannot be used.
        Reading it changes nothing: the link is used only once the person chooses to continue (:meth:`start`)."""
        with transaction(self.engine, readonly=True) as conn:
            row = _usable(session_store.session_for_link(conn, token), now())
        integration = self.integrations.integration(row.integration)
        entry = self.integrations.catalog.get(integration.provider)
        return ConnectPage(
            entry.display_name, row.display_name or row.user, row.display_name is not None,
            plain_words(entry, json.loads(row.scopes)), row.subject,
        )  # fmt: skip

    def start(self, token: str, browser: str, subject: str | None = None) -> str:
        """The person chose to continue: bind the link to this browser, and send them to the provider with state
        and PKCE. ``subject`` is the frontdesk person signed in in this browser, if any: a link made for a person
        works for that person only."""
        at = now()
        state = new_token("connect_state")
        verifier = secrets.token_urlsafe(48)
        refused: str | None = None
        with transaction(self.engine) as conn:
            row = _usable(session_store.session_for_link(conn, token), at)
            if row.subject is not None and subject != row.subject:
                # Not an error that undoes the transaction: the refusal is audited, the link stays usable.
                refused = "sign_in" if subject is None else "wrong_person"
                audit.record(
                    conn, "vault.connect_session.refused", "failure", integration=row.integration, user=row.user,
                    session=row.id, reason=refused,
                )  # fmt: skip
            else:
                sealed, _ = self.keys.seal(verifier.encode(), b"vault connect session:" + row.id.encode())
                if not session_store.open_session(conn, row.id, at, browser=browser, state=state, sealed=sealed):
                    raise ConnectFailed("used")
        if refused is not None:
            raise ConnectFailed(refused)
        integration, provider, values = self.integrations.resolve(row.integration, json.loads(row.params))
        return oauth.authorization_url(
            provider, integration, values, redirect_uri=self.callback_url, state=state, verifier=verifier,
            scopes=json.loads(row.scopes),
        )  # fmt: skip

    def finish(
        self, state: str | None, code: str | None, error: str | None, browser: str | None, iss: str | None = None
    ) -> tuple[ConnectionRecord, str | None, Provider]:
        """The provider sent the person back. Only the browser that opened the link, only once, only in time, and
        only from the provider the person was sent to (``iss``, RFC 9207)."""
        if not state:
            raise ConnectFailed("unknown")
        self._check_issuer(state, iss)
        at = now()
        with transaction(self.engine) as conn:
            row = session_store.session_for_state(conn, state)
            if row is None:
                raise ConnectFailed("unknown")
            if row.consumed_at is not None:
                raise ConnectFailed("used")
            if row.expires_at <= at:
                raise ConnectFailed("expired")
            if browser is None or row.browser_digest is None or not same(digest(browser), row.browser_digest):
                # The link was opened in another browser: a forwarded link must not attach an account to someone
                # else's user (DESIGN §6).
                raise ConnectFailed("other_browser")
            if not session_store.consume_session(conn, row.id, at):
                raise ConnectFailed("used")
            if error or not code:
                audit.record(
                    conn, "vault.connection.created", "denied", integration=row.integration, user=row.user,
                    reason=(error or "no_code")[:64],
                )  # fmt: skip
        if error or not code:
            raise ConnectFailed("denied", error or "")
        assert row.sealed is not None  # set when the link was opened, and state exists only from then on
        verifier = self.keys.open(row.sealed, b"vault connect session:" + row.id.encode()).decode()
        params = json.loads(row.params)
        integration, provider, values = self.integrations.resolve(row.integration, params)
        try:
            tokens = oauth.exchange_code(
                self.http, provider, integration, values, code=code, redirect_uri=self.callback_url, verifier=verifier
            )
        except oauth.ProviderError as exc:
            with transaction(self.engine) as conn:
                audit.record(
                    conn, "vault.connection.created", "failure", integration=row.integration, user=row.user,
                    reason=exc.code,
                )  # fmt: skip
            raise ConnectFailed("exchange_failed", exc.code) from None
        scopes = tokens.scopes if tokens.scopes is not None else tuple(json.loads(row.scopes))
        with transaction(self.engine) as conn:
            # Whose it is goes in with the credentials, in one transaction: the session that says so is purged
            # once expired, and a reconnect through a link bound to someone else makes it theirs.
            user_is_person = row.subject is None and session_store.person(conn, row.user) is not None
            record, created = store.save_connection(
                conn, self.keys, integration_name=row.integration, user=row.user, credentials=tokens.credentials,
                scopes=scopes, meta={**params, **tokens.kept},
                expires_at=at + tokens.expires_in if tokens.expires_in is not None else None,
                person=owner(row.user, (row.subject,), user_is_person),
            )  # fmt: skip
            session_store.attach_connection(conn, row.id, record.id)
            audit.record(
                conn, "vault.connection.created" if created else "vault.connection.reconnected", "success",
                integration=row.integration, user=row.user, connection=record.id,
            )  # fmt: skip
        self.webhooks.send("connection.created" if created else "connection.reconnected", record.public())
        return record, row.return_url, provider

    def _check_issuer(self, state: str, iss: str | None) -> None:
        """RFC 9207 §2.4 (mix-up defence): where the provider's issuer is known (its discovery document), an ``iss``
        in the response must be exactly it, and one that advertises
        ``authorization_response_iss_parameter_supported`` must send it. Checked before the session is consumed:
        nothing is exchanged or attached, and the response the person's own provider sends still completes it."""
        with transaction(self.engine, readonly=True) as conn:
            row = session_store.owner_of_state(conn, state)
        if row is None:
            return  # finish refuses an unknown state
        provider = self.integrations.provider(self.integrations.integration(row.integration))
        if provider.issuer is None or iss == provider.issuer or (iss is None and not provider.iss_parameter):
            return
        reason = "issuer_missing" if iss is None else "issuer_mismatch"
        with transaction(self.engine) as conn:
            audit.record(
                conn, "vault.connection.created", "failure", integration=row.integration, user=row.user, reason=reason
            )
        raise ConnectFailed("exchange_failed", reason)


def _usable(row: Any, at: int) -> Any:
    """The session a link names, when it may still be opened; :class:`ConnectFailed` says why not."""
    if row is None:
        raise ConnectFailed("unknown")
    if row.opened_at is not None:
        raise ConnectFailed("used")
    if row.expires_at <= at:
        raise ConnectFailed("expired")
    return row
