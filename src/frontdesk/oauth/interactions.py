"""The authorization endpoint's use cases and the interactions it opens for sign-in and consent.

Each function is one transaction that gathers the facts, asks ``decision`` what the request gets next, and carries
it out — issues the code (with its audit event), opens an interaction, or answers with an error — returning a value
the page code renders (``outcomes``, ``signin.Detour``). Login and consent sit outside the protocol core, joined
by the interaction id (``storage.interactions``: the binding cookie makes an interaction usable only in the browser
that started it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from ..core import Frontdesk
from ..errors import AccessDenied, OAuthError
from ..protocol.forms import Params
from ..storage import audit
from ..storage.clients import ClientRecord
from ..storage.db import now, transaction
from ..storage.interactions import InteractionRow, finish_interaction, interaction_for
from ..storage.people import SessionRow, consented_scope, record_consent, session_for
from .app_identity import AppIdentity, identity_of, is_loopback
from .authorization import (
    AuthorizationRequest,
    error_redirect,
    issue_code,
    parse_prompt,
    success_redirect,
    validate,
)
from .authorization_details import describe_details, type_names
from .decision import (
    AskConsent,
    IssueCode,
    Kept,
    RedirectError,
    decide,
    decide_invalid,
    needs_consent,
    recheck,
)
from .outcomes import Expired, Redirect
from .signin import Detour, Next, bound_session, facts_of, open_for

__all__ = [
    "ConsentView",
    "InteractionRow",
    "answer_consent",
    "authorize",
    "consent_view",
    "load_interaction",
    "login_hint",
    "resume",
]

Outcome = Redirect | Detour | Expired


def _session(fd: Frontdesk, conn: Connection, token: str | None, at: int) -> SessionRow | None:
    return session_for(conn, token, at, fd.settings.lifetimes.session_idle) if token else None


def _error(fd: Frontdesk, req: AuthorizationRequest, error: RedirectError) -> Redirect:
    return Redirect(error_redirect(fd, req.redirect_uri, req.state, error.error, error.description))


def _issue(
    fd: Frontdesk, conn: Connection, req: AuthorizationRequest, session: SessionRow, at: int, ip: str | None
) -> Redirect:
    # Who, when, how and in which session all come from one session row: a code never mixes two sign-ins' facts.
    code = issue_code(fd, conn, req, session.user_id, session.auth_time, session.amr, at, ip, sid=session.id)
    return Redirect(success_redirect(fd, req, code))


def _vetted(fd: Frontdesk, client_id: str) -> bool:
    """Whether the operator registered the client; a client gone since the request began is not (ask again)."""
    client = fd.clients.get(client_id)
    return client is not None and client.vetted


def _answer(
    fd: Frontdesk, conn: Connection, req: AuthorizationRequest, session: SessionRow | None, at: int, ip: str | None
) -> Redirect | Detour:
    """A valid request answered for the browser's session (or none), as ``decision.decide`` says: a code at once,
    an error under ``prompt=none``, or an interaction for sign-in, a second factor or consent. Both /authorize and
    a request started over come here."""
    facts = facts_of(conn, session, for_this_request=False) if session is not None else None
    consented = consented_scope(conn, session.user_id, req.client_id) if session is not None else ()
    decision = decide(fd.settings.second_factor, req, facts, consented, at, vetted=_vetted(fd, req.client_id))
    if isinstance(decision, IssueCode):
        assert session is not None
        return _issue(fd, conn, req, session, at, ip)
    if isinstance(decision, RedirectError):
        return _error(fd, req, decision)
    step = Next.PROCEED if isinstance(decision, AskConsent) else decision.step
    return open_for(fd, conn, {"kind": "authorize", "request": req.as_json()}, step, session, at)


def authorize(
    fd: Frontdesk, client: ClientRecord, redirect_uri: str, params: Params, token: str | None, ip: str | None
) -> Redirect | Detour:
    """An authorization request whose client and redirect URI are trusted (RFC 9700 §4.11.2: until then errors
    are a page, never a redirect), answered for the browser holding session cookie ``token``."""
    state = params.get("state")
    at = now()
    try:
        req: AuthorizationRequest | None = validate(fd, client, redirect_uri, params)
        error: OAuthError | None = None
    except OAuthError as exc:
        req, error = None, exc
    try:
        silent = "none" in parse_prompt(params.get("prompt"))
    except OAuthError:
        silent = False
    with transaction(fd.engine) as conn:
        session = _session(fd, conn, token, at)
        if error is not None:
            decided = decide_invalid(error.error, error.description, silent, session is not None)
            if isinstance(decided, RedirectError):
                return Redirect(error_redirect(fd, redirect_uri, state, decided.error, decided.description))
            data = {
                "kind": "error",
                "redirect_uri": redirect_uri,
                "state": state,
                "error": error.error,
                "error_description": error.description,
                "client_id": client.client_id,
            }
            return open_for(fd, conn, data, decided.step, None, at)
        assert req is not None
        return _answer(fd, conn, req, session, at, ip)


def _bound(
    fd: Frontdesk,
    conn: Connection,
    ix: InteractionRow,
    req: AuthorizationRequest,
    token: str | None,
    at: int,
    ip: str | None,
) -> SessionRow | Redirect | Detour:
    """The session the interaction's sign-in lives in, still this browser's and still enough for the request; or,
    when it is not, the request started over for whoever is signed in now (``decision.recheck``), or
    ``login_required`` when the person who signed in for this request is not the one its id_token_hint names."""
    session = bound_session(fd, conn, ix, token, at)
    facts = facts_of(conn, session, for_this_request=True) if session is not None else None
    checked = recheck(fd.settings.second_factor, req, facts, at)
    if isinstance(checked, Kept):
        assert session is not None
        return session
    finish_interaction(conn, ix.id, at)
    if isinstance(checked, RedirectError):
        return _error(fd, req, checked)
    return _answer(fd, conn, req, _session(fd, conn, token, at), at, ip)


def _finish_other(fd: Frontdesk, conn: Connection, ix: InteractionRow, at: int) -> Redirect | None:
    """Where an interaction that is not an authorization request goes once its person is signed in."""
    kind = ix.params["kind"]
    if kind == "account":
        finish_interaction(conn, ix.id, at)
        back = str(ix.params.get("return_to") or "")
        # An account page, an admin console page (web/admin_console.py), or a vault connect link waiting for its
        # person (web/vault_connect.py RESUME_PATH).
        admin = back == "/admin" or back.startswith(("/admin/", "/admin?"))
        return Redirect(back if back.startswith("/account") or admin or back == "/vault/connect" else "/account")
    if kind == "device":
        finish_interaction(conn, ix.id, at)
        code = ix.params.get("user_code")
        return Redirect("/device" + (f"?user_code={code}" if code else ""))
    if kind == "error":
        finish_interaction(conn, ix.id, at)
        p = ix.params
        return Redirect(error_redirect(fd, p["redirect_uri"], p["state"], p["error"], p["error_description"]))
    return None


def resume(fd: Frontdesk, ix_id: str, binding: str | None, token: str | None, ip: str | None) -> Outcome:
    """Where an interaction goes next: sign-in, consent, or the answer to the client."""
    at = now()
    with transaction(fd.engine) as conn:
        ix = interaction_for(conn, ix_id, binding, at)
        if ix is None:
            return Expired()
        if ix.user_id is None:
            return Redirect(f"/interaction/{ix_id}/{'second-factor' if ix.pending_user_id else 'login'}")
        other = _finish_other(fd, conn, ix, at)
        if other is not None:
            return other
        req = AuthorizationRequest.from_json(ix.params["request"])
        bound = _bound(fd, conn, ix, req, token, at, ip)
        if not isinstance(bound, SessionRow):
            return bound
        consented = consented_scope(conn, bound.user_id, req.client_id)
        if needs_consent(req, consented, vetted=_vetted(fd, req.client_id)):
            return Redirect(f"/interaction/{ix_id}/consent")
        if not finish_interaction(conn, ix_id, at):
            return Expired()
        return _issue(fd, conn, req, bound, at, ip)


def load_interaction(fd: Frontdesk, ix_id: str, binding: str | None) -> InteractionRow | None:
    """The interaction, if it is still open and ``binding`` (this browser's cookie) is the one it was opened with."""
    with transaction(fd.engine, readonly=True) as conn:
        return interaction_for(conn, ix_id, binding, now())


def login_hint(fd: Frontdesk, params: dict[str, Any]) -> str | None:
    """The username to fill in: the person a verified id_token_hint names (OIDC Core §3.1.2.1: sign in again as
    them), else the client's login_hint."""
    request = params.get("request") or {}
    subject = request.get("hinted_subject")
    if subject:
        with transaction(fd.engine, readonly=True) as conn:
            person = fd.users.by_id(conn, subject)
        if person is not None:
            return person.username
    hint = request.get("login_hint") or params.get("login_hint")
    return str(hint) if hint else None


@dataclass(frozen=True, slots=True)
class ConsentView:
    """What the consent page shows: the request, the app as far as it can be known (``app_identity``: a client
    nobody checked is never named as if it were), and the person whose sign-in the code will carry."""

    request: AuthorizationRequest
    username: str
    app: AppIdentity
    # RFC 9396 §3.1 (AG-RAR-03): the authorization details in the plain words of their types, beside the scopes.
    details: tuple[str, ...] = ()

    @property
    def redirect_to_device(self) -> bool:
        """The redirect host is this device's (loopback): any program on it may be the one listening."""
        return is_loopback(self.request.redirect_host)


def consent_view(fd: Frontdesk, ix_id: str, binding: str, token: str | None, ip: str | None) -> ConsentView | Outcome:
    """The consent page's facts; or, when the interaction's sign-in no longer holds, where the request goes
    instead (``_bound``)."""
    at = now()
    with transaction(fd.engine) as conn:
        ix = interaction_for(conn, ix_id, binding, at)
        if ix is None or ix.params.get("kind") != "authorize":
            return Expired()
        req = AuthorizationRequest.from_json(ix.params["request"])
        # The page names the person whose sign-in the code will carry: never one whose session has gone.
        bound = _bound(fd, conn, ix, req, token, at, ip)
        if not isinstance(bound, SessionRow):
            return bound
        user = fd.users.by_id(conn, bound.user_id)
    app = identity_of(fd.clients.get(req.client_id), req.client_id)
    details = tuple(describe_details(fd, req.authorization_details))
    return ConsentView(req, user.username if user else "", app, details)


def answer_consent(fd: Frontdesk, ix_id: str, binding: str, allow: bool, token: str | None, ip: str | None) -> Outcome:
    """The person's Allow or Deny, audited as ``consent``: Allow records the consent and answers with a code,
    Deny with ``access_denied`` (RFC 6749 §4.1.2.1)."""
    at = now()
    with transaction(fd.engine) as conn:
        ix = interaction_for(conn, ix_id, binding, at)
        if ix is None or ix.user_id is None or ix.params.get("kind") != "authorize":
            return Expired()
        req = AuthorizationRequest.from_json(ix.params["request"])
        user_id = ix.user_id
        session: SessionRow | None = None
        if allow:
            # Allow issues a code on the interaction's sign-in, so that sign-in must still be this browser's. Deny
            # issues nothing and carries no sign-in facts: it stands whoever holds the browser now.
            bound = _bound(fd, conn, ix, req, token, at, ip)
            if not isinstance(bound, SessionRow):
                return bound
            session, user_id = bound, bound.user_id
        if not finish_interaction(conn, ix_id, at):
            return Expired()
        audit.record(
            conn,
            "consent",
            "granted" if allow else "denied",
            client_id=req.client_id,
            user_id=user_id,
            ip=ip,
            scope=" ".join(req.scope),
            **({"authorization_details": type_names(req.authorization_details)} if req.authorization_details else {}),
        )
        if session is None:
            return Redirect(
                error_redirect(fd, req.redirect_uri, req.state, AccessDenied.error, "the person denied the request")
            )
        record_consent(conn, user_id, req.client_id, req.scope, at)
        return _issue(fd, conn, req, session, at, ip)
