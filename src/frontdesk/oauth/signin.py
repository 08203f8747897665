"""Signing in: the one sign-in policy, finishing a sign-in, and binding it to the interaction it was made for.

``next_step`` is the policy, a pure function: every path that ends in tokens for a person (the authorization code,
the device flow, signing in with an upstream provider, and any added later) asks it what the sign-in still owes —
a sign-in (none yet; ``prompt=login``; older than ``max_age``; another person than ``id_token_hint`` names), a
second factor (the operator's policy for everyone or for the client; the multi-factor ``acr``; the person enrolled
one), enrolling one first (owed, but the person has none) — or nothing more.

After the first factor (a password, a passkey, an upstream provider) the second is asked for when owed; then a new
session is opened and the interaction names it, so that consent and the code carry that sign-in's facts and no
other session's (``bound_session``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection

from ..config import SecondFactorPolicy
from ..core import Frontdesk
from ..protocol.rfc8176 import is_multi_factor
from ..storage import audit
from ..storage.db import now, transaction
from ..storage.interactions import InteractionRow, attach_user, hold_for_second_factor, open_interaction
from ..storage.people import SessionRow, close_session, open_session, session_for
from ..storage.people_admin import person_disabled
from .outcomes import Redirect, SignedIn
from .second_factor import has_second_factor, mfa_required
from .signin_throttle import Refusal, record_failure, record_success, refusal
from .signup import Unconfirmed, unconfirmed

__all__ = [
    "Asked",
    "Detour",
    "Next",
    "SessionRow",
    "SignInFacts",
    "Visit",
    "after_first_factor",
    "asked_by",
    "bound_session",
    "browser_session",
    "facts_of",
    "first_factor_passed",
    "next_step",
    "open_for",
    "password_signin",
    "signed_in",
    "username_of",
]


class Next(StrEnum):
    """What a sign-in still owes before tokens may be issued on it."""

    PROCEED = "proceed"  # nothing: on to consent
    SIGN_IN = "sign_in"  # a (new) sign-in
    SECOND_FACTOR = "second_factor"  # the person's second factor (a step-up when already signed in)
    ENROL = "enrol"  # a second factor is owed but the person has none: enrol one first
    OTHER_PERSON = "other_person"  # signed in for this very request, but not as the person id_token_hint names


@dataclass(frozen=True, slots=True)
class Asked:
    """What a request asks of the sign-in (OpenID Connect Core §3.1.2.1), and the client the policy names."""

    client_id: str | None = None
    acr_values: tuple[str, ...] = ()
    max_age: int | None = None
    fresh: bool = False  # prompt=login
    subject: str | None = None  # the sub of a verified id_token_hint


@dataclass(frozen=True, slots=True)
class SignInFacts:
    """A sign-in as far as the policy needs it. ``for_this_request``: made (or accepted) for the request being
    answered, so ``prompt=login`` and ``max_age`` were already met by it and are not asked again."""

    user_id: str
    auth_time: int
    amr: tuple[str, ...]
    enrolled: bool  # the person has a confirmed second factor
    for_this_request: bool


def next_step(policy: SecondFactorPolicy, asked: Asked, facts: SignInFacts | None, at: int) -> Next:
    """The sign-in policy for every way in. Pure: the same answers for the same values, whoever asks."""
    if facts is None:
        return Next.SIGN_IN
    if not facts.for_this_request:
        # OIDC Core §3.1.2.1: prompt=login asks for a new sign-in; so does a session older than max_age (whole
        # seconds: an age equal to max_age may really exceed it, and max_age=0 must act as prompt=login); and a
        # session of someone else than the id_token_hint names is not the sign-in the client asked about.
        stale = asked.max_age is not None and at - facts.auth_time >= asked.max_age
        other = asked.subject is not None and asked.subject != facts.user_id
        if asked.fresh or stale or other:
            return Next.SIGN_IN
    # Checked before the hinted person, so that no sign-in ever ends short of a second factor that was owed.
    owed = facts.enrolled or mfa_required(policy, asked.client_id, asked.acr_values)
    if owed and not is_multi_factor(facts.amr):
        return Next.SECOND_FACTOR if facts.enrolled else Next.ENROL
    if asked.subject is not None and asked.subject != facts.user_id:
        # OIDC Core §3.1.2.1 id_token_hint: not the person logged in "by the request": an error, not a loop.
        return Next.OTHER_PERSON
    return Next.PROCEED


def asked_of_request(request: dict[str, Any]) -> Asked:
    """``Asked`` of an authorization request (``AuthorizationRequest.as_json``)."""
    max_age = request.get("max_age")
    return Asked(
        client_id=request["client_id"],
        acr_values=tuple(request.get("acr_values", ())),
        max_age=max_age if isinstance(max_age, int) else None,
        fresh="login" in request.get("prompt", ()),
        subject=request.get("hinted_subject"),
    )


def asked_by(params: dict[str, Any]) -> Asked:
    """What an interaction's request asks: an authorization request names its client, acr and the rest; a device
    approval names its client (``client_id``, once the user code is known); the account pages name nothing and
    fall under the operator's policy for everyone."""
    if params.get("kind") == "authorize":
        return asked_of_request(params["request"])
    client_id = params.get("client_id")
    return Asked(client_id=client_id if isinstance(client_id, str) else None)


def facts_of(conn: Connection, session: SessionRow, for_this_request: bool) -> SignInFacts:
    return SignInFacts(
        session.user_id, session.auth_time, session.amr, has_second_factor(conn, session.user_id), for_this_request
    )


@dataclass(frozen=True, slots=True)
class Detour:
    """An interaction opened for what the sign-in still owes: the browser goes to ``path`` with ``binding``."""

    interaction_id: str
    binding: str
    path: str


def open_for(
    fd: Frontdesk, conn: Connection, params: dict[str, Any], step: Next, session: SessionRow | None, at: int
) -> Detour:
    """An interaction for ``step`` (from ``next_step``): sign-in; the second factor ``session``'s sign-in lacks
    (a step-up, held for the session's person and methods); or, with PROCEED, consent on ``session``, bound to it."""
    ix_id, binding = open_interaction(conn, params, at, fd.settings.lifetimes.interaction)
    if session is not None and step in (Next.SECOND_FACTOR, Next.ENROL):
        hold_for_second_factor(conn, ix_id, session.user_id, session.amr)
        return Detour(ix_id, binding, f"/interaction/{ix_id}/second-factor")
    if session is not None and step is Next.PROCEED:
        attach_user(conn, ix_id, session.user_id, session.auth_time, session.id)
        return Detour(ix_id, binding, f"/interaction/{ix_id}/consent")
    return Detour(ix_id, binding, f"/interaction/{ix_id}/login")


def bound_session(fd: Frontdesk, conn: Connection, ix: InteractionRow, token: str | None, at: int) -> SessionRow | None:
    """The browser's session, if it is the one the interaction's sign-in lives in; None when it is gone or another
    (another tab signed someone else in): the interaction's facts and the browser's no longer agree."""
    if not token or ix.session_id is None:
        return None
    session = session_for(conn, token, at, fd.settings.lifetimes.session_idle)
    if session is None or session.id != ix.session_id or session.user_id != ix.user_id:
        return None
    return session


@dataclass(frozen=True, slots=True)
class Visit:
    """The browser signing in: its old session cookie (replaced: session fixation), address and user agent."""

    old_token: str | None
    ip: str | None
    user_agent: str | None


def first_factor_passed(
    fd: Frontdesk,
    conn: Connection,
    ix_id: str,
    params: dict[str, Any],
    user_id: str,
    amr: tuple[str, ...],
    at: int,
) -> bool:
    """Hold the interaction for the second step when the policy says one is owed (True); otherwise the caller
    signs the person in."""
    facts = SignInFacts(user_id, at, amr, has_second_factor(conn, user_id), for_this_request=True)
    if next_step(fd.settings.second_factor, asked_by(params), facts, at) not in (Next.SECOND_FACTOR, Next.ENROL):
        return False
    hold_for_second_factor(conn, ix_id, user_id, amr)
    return True


def signed_in(
    fd: Frontdesk, conn: Connection, ix_id: str, user_id: str, amr: tuple[str, ...], visit: Visit, at: int
) -> str:
    """A new session (a new id at every sign-in), the interaction bound to it, and the audit event; the new token."""
    if visit.old_token:
        close_session(conn, visit.old_token)
    token = open_session(
        conn, user_id, amr, at, fd.settings.lifetimes.session, user_agent=visit.user_agent, ip=visit.ip
    )
    session = session_for(conn, token, at, fd.settings.lifetimes.session_idle)
    assert session is not None  # opened just now, in this transaction
    attach_user(conn, ix_id, user_id, at, session.id)
    audit.record(conn, "signin", "success", user_id=user_id, ip=visit.ip, amr=" ".join(amr))
    return token


def after_first_factor(
    fd: Frontdesk, ix_id: str, params: dict[str, Any], user_id: str, amr: tuple[str, ...], visit: Visit
) -> Redirect | SignedIn:
    """On to the second-factor step when one is owed; otherwise signed in, with a new session."""
    at = now()
    with transaction(fd.engine) as conn:
        if person_disabled(conn, user_id):  # admin.people: a disabled person signs in no way (passkey, upstream)
            audit.record(conn, "signin", "failure", user_id=user_id, ip=visit.ip, reason="disabled")
            return Redirect(f"/interaction/{ix_id}/login")
        if first_factor_passed(fd, conn, ix_id, params, user_id, amr, at):
            return Redirect(f"/interaction/{ix_id}/second-factor")
        token = signed_in(fd, conn, ix_id, user_id, amr, visit, at)
    return SignedIn(f"/interaction/{ix_id}", token)


def password_signin(fd: Frontdesk, username: str, password: str, ip: str | None) -> str | Refusal | Unconfirmed | None:
    """A username and password tried: the person's id; a ``Refusal`` when the throttle says wait (audited there,
    and the password is not checked); ``Unconfirmed`` when the account signed up and has not confirmed its address
    (``oauth.signup``); or None when they are wrong, remembered by the throttle and audited."""
    refused = refusal(fd, username, ip, now())
    if refused is not None:
        return refused
    user = fd.users.authenticate(username, password)
    if user is None or _disabled(fd, user.id):
        record_failure(fd, username, ip, now())
        with transaction(fd.engine) as conn:
            # A known account's owner sees the failed attempt among their own activity.
            user_id = fd.users.id_of(conn, username)
            why = {"reason": "disabled"} if user is not None else {}
            audit.record(conn, "signin", "failure", user_id=user_id, ip=ip, username=username[:64], **why)
        return None
    record_success(fd, username, ip)
    waiting = unconfirmed(fd, user, ip)  # oauth.signup: signed up, and the address is not confirmed yet
    return waiting if waiting is not None else user.id


def _disabled(fd: Frontdesk, user_id: str) -> bool:
    """Whether an operator disabled the person (admin.people): they are refused as a wrong password is."""
    with transaction(fd.engine, readonly=True) as conn:
        return person_disabled(conn, user_id)


def browser_session(fd: Frontdesk, token: str | None) -> SessionRow | None:
    """The browser's session for its cookie ``token``, if it is still live (not expired, not idle too long)."""
    if not token:
        return None
    with transaction(fd.engine, readonly=True) as conn:
        return session_for(conn, token, now(), fd.settings.lifetimes.session_idle)


def username_of(fd: Frontdesk, user_id: str) -> str | None:
    """The username of the person ``user_id``, for a page that names them; None when the account is gone."""
    with transaction(fd.engine, readonly=True) as conn:
        user = fd.users.by_id(conn, user_id)
    return user.username if user is not None else None
