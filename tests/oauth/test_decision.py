"""The authorization decision as a pure function (``frontdesk.oauth.decision``): one test per rule of OpenID Connect
Core §3.1.2.1 (prompt, max_age, id_token_hint, acr_values) and §3.1.2.6 (the errors prompt=none answers with),
with the one sign-in policy (``signin.next_step``) underneath. No database, no HTTP: values in, a decision out."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from frontdesk.config import SecondFactorPolicy
from frontdesk.oauth.authorization import AuthorizationRequest
from frontdesk.oauth.decision import (
    SILENT,
    AskConsent,
    IssueCode,
    Kept,
    RedirectError,
    SignInFirst,
    StartOver,
    decide,
    decide_invalid,
    needs_consent,
    recheck,
)
from frontdesk.oauth.signin import Next, SignInFacts
from frontdesk.oauth.tokens import ACR_MFA

NOBODY = SecondFactorPolicy()
T = 1_000_000
SCOPE = ("openid", "profile")


BASE = AuthorizationRequest(client_id="c", redirect_uri="https://app.example/cb", state="s", scope=SCOPE)


def request(**changes: Any) -> AuthorizationRequest:
    return replace(BASE, **changes)


def earlier(
    amr: tuple[str, ...] = ("pwd",), *, user_id: str = "u1", auth_time: int = T - 100, enrolled: bool = False
) -> SignInFacts:
    """A session from before the request (not made for it)."""
    return SignInFacts(user_id, auth_time, amr, enrolled, for_this_request=False)


def made_for_it(amr: tuple[str, ...] = ("pwd",), *, user_id: str = "u1", enrolled: bool = False) -> SignInFacts:
    """The sign-in an interaction made for this very request."""
    return SignInFacts(user_id, T - 5, amr, enrolled, for_this_request=True)


# --- decide: a valid request at /authorize ------------------------------------------------------------------------


def test_a_signed_in_person_who_consented_gets_a_code_at_once():
    assert decide(NOBODY, request(), earlier(), SCOPE, T, vetted=True) == IssueCode()


def test_nobody_signed_in_signs_in_first():
    assert decide(NOBODY, request(), None, (), T, vetted=True) == SignInFirst(Next.SIGN_IN)


def test_scope_not_yet_consented_to_asks_for_consent():
    assert decide(NOBODY, request(), earlier(), ("openid",), T, vetted=True) == AskConsent()


def test_prompt_consent_asks_again_even_when_consented():
    """OIDC Core §3.1.2.1: prompt=consent asks for consent before returning anything."""
    assert decide(NOBODY, request(prompt=("consent",)), earlier(), SCOPE, T, vetted=True) == AskConsent()


def test_prompt_login_signs_in_again():
    """OIDC Core §3.1.2.1: prompt=login asks for a new sign-in even with a live session."""
    assert decide(NOBODY, request(prompt=("login",)), earlier(), SCOPE, T, vetted=True) == SignInFirst(Next.SIGN_IN)


@pytest.mark.parametrize(("max_age", "expected"), [(100, SignInFirst(Next.SIGN_IN)), (101, IssueCode())])
def test_max_age_signs_in_again_once_the_session_is_that_old(max_age, expected):
    """OIDC Core §3.1.2.1 max_age: whole seconds, so an age equal to max_age is already too old."""
    assert decide(NOBODY, request(max_age=max_age), earlier(), SCOPE, T, vetted=True) == expected


def test_max_age_zero_acts_as_prompt_login():
    assert decide(NOBODY, request(max_age=0), earlier(auth_time=T), SCOPE, T, vetted=True) == SignInFirst(Next.SIGN_IN)


def test_an_id_token_hint_for_someone_else_signs_in_again():
    """OIDC Core §3.1.2.1 id_token_hint: the session of another person is not the sign-in the client asked about."""
    assert decide(NOBODY, request(hinted_subject="u2"), earlier(), SCOPE, T, vetted=True) == SignInFirst(Next.SIGN_IN)


def test_an_id_token_hint_for_the_signed_in_person_answers_at_once():
    assert decide(NOBODY, request(hinted_subject="u1"), earlier(), SCOPE, T, vetted=True) == IssueCode()


def test_the_multi_factor_acr_steps_up_a_password_session():
    """OIDC Core §3.1.2.1 acr_values: the multi-factor acr asks for a second factor the session lacks."""
    decided = decide(NOBODY, request(acr_values=(ACR_MFA,)), earlier(enrolled=True), SCOPE, T, vetted=True)
    assert decided == SignInFirst(Next.SECOND_FACTOR)


def test_a_second_factor_owed_by_someone_without_one_means_enrolling():
    decided = decide(SecondFactorPolicy(required="all"), request(), earlier(), SCOPE, T, vetted=True)
    assert decided == SignInFirst(Next.ENROL)


def test_a_multi_factor_session_meets_the_policy():
    decided = decide(
        SecondFactorPolicy(required="all"), request(), earlier(("pwd", "otp", "mfa")), SCOPE, T, vetted=True
    )
    assert decided == IssueCode()


# --- decide under prompt=none: OIDC Core §3.1.2.6 errors, never a page ----------------------------------------------


def test_prompt_none_without_a_session_is_login_required():
    assert decide(NOBODY, request(prompt=("none",)), None, (), T, vetted=True) == RedirectError(
        "login_required", "sign-in is required"
    )


def test_prompt_none_with_a_stale_session_is_login_required():
    decided = decide(NOBODY, request(prompt=("none",), max_age=10), earlier(), SCOPE, T, vetted=True)
    assert decided == RedirectError("login_required", "sign-in is required")


def test_prompt_none_for_another_person_than_the_hint_is_login_required():
    decided = decide(NOBODY, request(prompt=("none",), hinted_subject="u2"), earlier(), SCOPE, T, vetted=True)
    assert decided == RedirectError("login_required", "sign-in is required")


def test_prompt_none_owing_a_second_factor_is_login_required():
    """A code to type is sign-in."""
    decided = decide(
        NOBODY, request(prompt=("none",), acr_values=(ACR_MFA,)), earlier(enrolled=True), SCOPE, T, vetted=True
    )
    assert decided == RedirectError("login_required", "a second factor is required")


def test_prompt_none_owing_enrolment_is_interaction_required():
    """Enrolling a second factor is a page of its own: interaction_required."""
    decided = decide(SecondFactorPolicy(required="all"), request(prompt=("none",)), earlier(), SCOPE, T, vetted=True)
    assert decided == RedirectError("interaction_required", "enrolling a second factor is required")


def test_prompt_none_without_consent_is_consent_required():
    decided = decide(NOBODY, request(prompt=("none",)), earlier(), ("openid",), T, vetted=True)
    assert decided == RedirectError("consent_required", "consent is required")


def test_prompt_none_with_session_and_consent_gets_a_code():
    assert decide(NOBODY, request(prompt=("none",)), earlier(), SCOPE, T, vetted=True) == IssueCode()


def test_every_step_the_policy_can_owe_has_a_silent_error():
    """prompt=none can never show a page, so every step but PROCEED maps to an OIDC Core §3.1.2.6 error."""
    assert set(SILENT) == set(Next) - {Next.PROCEED}
    assert {e.error for e in SILENT.values()} <= {"login_required", "interaction_required"}


# --- decide_invalid: errors once the redirect URI is trusted --------------------------------------------------------


def test_an_invalid_request_under_prompt_none_is_redirected_at_once():
    assert decide_invalid("invalid_scope", "bad", silent=True, signed_in=False) == RedirectError("invalid_scope", "bad")


def test_an_invalid_request_from_a_signed_in_person_is_redirected_at_once():
    """BCP-32: the person is known, so the error goes straight back."""
    assert decide_invalid("invalid_scope", "bad", silent=False, signed_in=True) == RedirectError("invalid_scope", "bad")


def test_an_invalid_request_from_a_stranger_signs_in_first():
    """OAuth 2.1 §7.12.2: an error is sent back only once the person is signed in (no open redirector)."""
    assert decide_invalid("invalid_scope", "bad", silent=False, signed_in=False) == SignInFirst(Next.SIGN_IN)


# --- recheck: the interaction's own sign-in, before consent or a code ---------------------------------------------


def test_the_sign_in_made_for_the_request_is_kept():
    """prompt=login and max_age were met by the sign-in made for this request: they are not asked again."""
    assert recheck(NOBODY, request(prompt=("login",), max_age=0), made_for_it(), T) == Kept()


def test_a_sign_in_whose_session_is_gone_starts_over():
    assert recheck(NOBODY, request(), None, T) == StartOver()


def test_a_sign_in_that_no_longer_meets_the_policy_starts_over():
    assert recheck(SecondFactorPolicy(required="all"), request(), made_for_it(), T) == StartOver()


def test_signed_in_as_another_person_than_the_hint_is_login_required():
    """OIDC Core §3.1.2.1 id_token_hint: the person who signed in for this request is not the one named: an error,
    not another sign-in loop."""
    decided = recheck(NOBODY, request(hinted_subject="u2"), made_for_it(), T)
    assert decided == RedirectError("login_required", "the person id_token_hint names is not signed in")


# --- needs_consent ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "consented", "expected"),
    [((), SCOPE, False), ((), ("openid",), True), ((), (*SCOPE, "email"), False), (("consent",), SCOPE, True)],
)
def test_consent_is_needed_for_new_scope_or_prompt_consent(prompt, consented, expected):
    assert needs_consent(request(prompt=prompt), consented, vetted=True) is expected


# --- clients nobody vetted (RFC 7591 §5): consent every time --------------------------------------------------------


def test_a_client_nobody_vetted_needs_consent_though_the_scope_was_consented():
    """A remembered consent does not carry over to a client that registered itself or came from a document."""
    assert needs_consent(request(), SCOPE, vetted=False) is True


def test_a_client_nobody_vetted_is_asked_again_rather_than_given_a_code():
    assert decide(NOBODY, request(), earlier(), SCOPE, T, vetted=False) == AskConsent()


def test_prompt_none_for_a_client_nobody_vetted_is_consent_required():
    """It can never be answered silently, however often the person consented before."""
    decided = decide(NOBODY, request(prompt=("none",)), earlier(), SCOPE, T, vetted=False)
    assert decided == RedirectError("consent_required", "consent is required")


def test_a_client_nobody_vetted_still_signs_the_person_in_first():
    """Consent comes after sign-in, as for any client: nobody signed in means sign in first."""
    assert decide(NOBODY, request(), None, (), T, vetted=False) == SignInFirst(Next.SIGN_IN)
