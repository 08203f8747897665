"""The authorization decision (OpenID Connect Core §3.1.2.1–§3.1.2.6): what a valid authorization request gets next.

Pure: it takes the request, the facts of the browser's sign-in (``signin.SignInFacts``) and the scope the person
already consented to, and returns what to do — answer with a code, open an interaction for a sign-in, a second
factor (a step-up), enrolling one, or consent, or send the client an error. The services in ``interactions`` gather
the facts and carry the decision out; the pages only render what came of it.

Errors found after the redirect URI is trusted are sent back only once the person is signed in (OAuth 2.1
§7.12.2), except under ``prompt=none``, which can never show a page (OIDC Core §3.1.2.1).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from ..config import SecondFactorPolicy
from ..errors import ConsentRequired, InteractionRequired, LoginRequired
from .authorization import AuthorizationRequest
from .signin import Next, SignInFacts, asked_of_request, next_step

__all__ = [
    "SILENT",
    "AskConsent",
    "Decision",
    "IssueCode",
    "Kept",
    "Recheck",
    "RedirectError",
    "SignInFirst",
    "StartOver",
    "decide",
    "decide_invalid",
    "needs_consent",
    "recheck",
]


@dataclass(frozen=True, slots=True)
class IssueCode:
    """Answer the client at once with a code on the session's sign-in (RFC 6749 §4.1.2)."""


@dataclass(frozen=True, slots=True)
class SignInFirst:
    """Open an interaction for what the sign-in still owes: ``step`` is SIGN_IN, SECOND_FACTOR (a step-up when the
    session exists) or ENROL."""

    step: Next


@dataclass(frozen=True, slots=True)
class AskConsent:
    """Open an interaction that asks the signed-in person to consent, bound to their session."""


@dataclass(frozen=True, slots=True)
class RedirectError:
    """Send the client an error response (RFC 6749 §4.1.2.1) with this wire ``error`` and description."""

    error: str
    description: str


Decision = IssueCode | SignInFirst | AskConsent | RedirectError

# prompt=none cannot show a page: what the sign-in still owes becomes the error OIDC Core §3.1.2.6 names for it.
SILENT: dict[Next, RedirectError] = {
    Next.SIGN_IN: RedirectError(LoginRequired.error, "sign-in is required"),
    # A code to type is sign-in; enrolling a second factor is a page of its own.
    Next.SECOND_FACTOR: RedirectError(LoginRequired.error, "a second factor is required"),
    Next.ENROL: RedirectError(InteractionRequired.error, "enrolling a second factor is required"),
    Next.OTHER_PERSON: RedirectError(LoginRequired.error, "the person id_token_hint names is not signed in"),
}
_CONSENT_REQUIRED = RedirectError(ConsentRequired.error, "consent is required")


def needs_consent(req: AuthorizationRequest, consented: Collection[str], *, vetted: bool) -> bool:
    """``prompt=consent`` asks again (OIDC Core §3.1.2.1); so does every request of a client the operator did not
    register (``ClientRecord.vetted``); otherwise only scope not yet consented to needs asking.

    A client that registered itself (RFC 7591) or is named by its metadata document was checked by nobody: anyone
    can register one under a trusted app's name and send people links to it, so a consent once given never
    answers a later request silently (RFC 7591 §5: treat such clients as untrusted; MCP security best practices,
    "Confused Deputy": the person consents to each of them).

    A request with ``authorization_details`` asks every time too: a recorded consent holds scope only, and a detail
    is one particular thing (this payment, this document) the person approves as such (RFC 9396 §3.1, §2)."""
    if "consent" in req.prompt or not vetted or req.authorization_details:
        return True
    return not set(req.scope) <= set(consented)


def decide(
    policy: SecondFactorPolicy,
    req: AuthorizationRequest,
    facts: SignInFacts | None,
    consented: Collection[str],
    at: int,
    *,
    vetted: bool,
) -> Decision:
    """A valid request answered for the browser's sign-in (``facts``, or None when nobody is signed in), as the one
    sign-in policy (``signin.next_step``) says. ``consented``: the scope the signed-in person already granted the
    client (ignored without a sign-in); ``vetted``: whether the operator registered the client (``needs_consent``:
    for any other client every request asks, and under ``prompt=none`` gets ``consent_required``)."""
    step = next_step(policy, asked_of_request(req.as_json()), facts, at)
    if "none" in req.prompt:
        if step is not Next.PROCEED:
            return SILENT[step]
        if needs_consent(req, consented, vetted=vetted):
            return _CONSENT_REQUIRED
    if step is Next.PROCEED:
        return AskConsent() if needs_consent(req, consented, vetted=vetted) else IssueCode()
    if step is Next.OTHER_PERSON:  # only a sign-in made for this request; none is at /authorize
        return SignInFirst(Next.SIGN_IN)
    return SignInFirst(step)


def decide_invalid(error: str, description: str, silent: bool, signed_in: bool) -> RedirectError | SignInFirst:
    """An invalid request whose redirect URI is trusted: the error goes back at once under ``prompt=none`` or to a
    person already signed in (BCP-32); anyone else signs in first (OAuth 2.1 §7.12.2: no open redirector for
    strangers)."""
    if silent or signed_in:
        return RedirectError(error, description)
    return SignInFirst(Next.SIGN_IN)


@dataclass(frozen=True, slots=True)
class Kept:
    """The interaction's sign-in is still this browser's and still enough for the request: go on with it."""


@dataclass(frozen=True, slots=True)
class StartOver:
    """The interaction's sign-in no longer holds (its session is gone or is another's, or it no longer suffices):
    answer the request afresh for whoever holds the browser now. Never mix that session's facts with this one's."""


Recheck = Kept | StartOver | RedirectError


def recheck(policy: SecondFactorPolicy, req: AuthorizationRequest, facts: SignInFacts | None, at: int) -> Recheck:
    """Before consent or a code: the sign-in made for this request (``facts`` with ``for_this_request``, None when
    its session is no longer the browser's) checked again. The person who signed in for this request but is not
    the one its id_token_hint names gets ``login_required`` (OIDC Core §3.1.2.1), not another sign-in loop."""
    step = next_step(policy, asked_of_request(req.as_json()), facts, at)
    if facts is not None and step is Next.PROCEED:
        return Kept()
    if step is Next.OTHER_PERSON:
        return SILENT[step]
    return StartOver()
