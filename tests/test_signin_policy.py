"""One sign-in policy for every way in (issue 11, item 4): ``signin.next_step`` as a pure function, and the device
flow and the upstream sign-in held to it — a client named in ``[second_factor] required_for_clients`` gets no
tokens on a password-only (or provider-only) sign-in, whichever way the person came."""

from __future__ import annotations

import re
from dataclasses import replace

import httpx
import pytest

from accounts import follow, post_code, recovery_codes_on, secret_on, sign_in_form, totp_code
from conftest import Browser, csrf_of, remember
from frontdesk.config import SecondFactorPolicy
from frontdesk.oauth.signin import Asked, Next, SignInFacts, next_step
from frontdesk.oauth.tokens import ACR_MFA
from test_device import assert_error, poll, started
from test_second_factor import claims_of

NOBODY = SecondFactorPolicy()
T = 1_000_000


def facts(
    amr: tuple[str, ...] = ("pwd",),
    *,
    user_id: str = "u1",
    auth_time: int = T - 100,
    enrolled: bool = False,
    here: bool = False,
) -> SignInFacts:
    return SignInFacts(user_id, auth_time, amr, enrolled, for_this_request=here)


# --- the pure function ------------------------------------------------------------------------------------------


def test_no_sign_in_means_sign_in():
    assert next_step(NOBODY, Asked(client_id="c"), None, T) is Next.SIGN_IN


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        (Asked(client_id="c"), Next.PROCEED),
        (Asked(client_id="c", fresh=True), Next.SIGN_IN),
        (Asked(client_id="c", max_age=100), Next.SIGN_IN),  # an age equal to max_age is too old (whole seconds)
        (Asked(client_id="c", max_age=101), Next.PROCEED),
        (Asked(client_id="c", max_age=0), Next.SIGN_IN),
        (Asked(client_id="c", subject="u2"), Next.SIGN_IN),
        (Asked(client_id="c", subject="u1"), Next.PROCEED),
    ],
)
def test_an_earlier_sign_in_meets_prompt_max_age_and_the_hint(asked, expected):
    """prompt=login, max_age and id_token_hint decide whether a session from before the request will do."""
    assert next_step(NOBODY, asked, facts(), T) is expected


@pytest.mark.parametrize("asked", [Asked(client_id="c", fresh=True), Asked(client_id="c", max_age=0)])
def test_a_sign_in_made_for_the_request_meets_prompt_and_max_age(asked):
    """A sign-in made for this very request is not asked for again (no endless sign-in under prompt=login)."""
    assert next_step(NOBODY, asked, facts(auth_time=T, here=True), T) is Next.PROCEED


def test_a_sign_in_for_the_request_as_someone_else_than_hinted_is_other_person():
    assert next_step(NOBODY, Asked(client_id="c", subject="u2"), facts(here=True), T) is Next.OTHER_PERSON


@pytest.mark.parametrize(
    ("policy", "asked"),
    [
        (SecondFactorPolicy(required="all"), Asked(client_id="c")),
        (SecondFactorPolicy(required_for_clients=("c",)), Asked(client_id="c")),
        (NOBODY, Asked(client_id="c", acr_values=(ACR_MFA,))),
    ],
    ids=["all", "client", "acr"],
)
@pytest.mark.parametrize("here", [False, True], ids=["session", "sign-in"])
def test_a_required_second_factor_is_owed_by_one_factor(policy, asked, here):
    """The operator's policy (all, or the client) and the multi-factor acr owe a second factor: to enrol for a
    person without one, to type for a person with one; a multi-factor sign-in owes nothing."""
    assert next_step(policy, asked, facts(here=here), T) is Next.ENROL
    assert next_step(policy, asked, facts(enrolled=True, here=here), T) is Next.SECOND_FACTOR
    assert next_step(policy, asked, facts(("pwd", "otp", "mfa"), enrolled=True, here=here), T) is Next.PROCEED
    assert next_step(policy, asked, facts(("fed",), here=here), T) is Next.ENROL


def test_the_client_policy_names_only_its_clients():
    policy = SecondFactorPolicy(required_for_clients=("c",))
    assert next_step(policy, Asked(client_id="d"), facts(), T) is Next.PROCEED
    assert next_step(policy, Asked(client_id=None), facts(), T) is Next.PROCEED


def test_a_person_who_enrolled_always_owes_it():
    """Everyone who enrolled a second factor uses it: at sign-in, and for a session from before they enrolled."""
    assert next_step(NOBODY, Asked(client_id=None), facts(enrolled=True, here=True), T) is Next.SECOND_FACTOR
    assert next_step(NOBODY, Asked(client_id="c"), facts(enrolled=True), T) is Next.SECOND_FACTOR


def test_the_second_factor_comes_before_the_hinted_person_for_a_new_sign_in():
    """A sign-in made for the request as someone else still owes its second factor first: no one-factor session
    is ever opened for a person who owes two."""
    asked = Asked(client_id="c", subject="u2")
    assert next_step(NOBODY, asked, facts(enrolled=True, here=True), T) is Next.SECOND_FACTOR


# --- the device flow ----------------------------------------------------------------------------------------------


@pytest.fixture
def policy() -> SecondFactorPolicy:
    return SecondFactorPolicy(required_for_clients=("public-client",))


@pytest.fixture
def fd(fd, policy):
    """The suite's frontdesk, where the public (device) client requires a second factor."""
    fd.settings = replace(fd.settings, second_factor=policy)
    return fd


async def signed_in_with_password(browser: Browser) -> None:
    """A password-only session, from the account page (whose sign-in names no client)."""
    page = await follow(browser.http, await browser.http.get("/account"))
    response = await follow(browser.http, await sign_in_form(browser.http, page, browser.username, browser.password))
    assert response.status_code == 200, response.text
    assert str(response.url).endswith("/account"), response.url


async def enrol_and_continue(http: httpx.AsyncClient, page: httpx.Response, seen: set[str]) -> httpx.Response:
    """On the enrolment step of a sign-in: confirm a code, then follow the recovery codes page's link."""
    assert "Set up a second step" in page.text, page.text
    secret = secret_on(page)
    codes = await post_code(http, page, totp_code(secret))
    assert codes.status_code == 200, codes.text
    remember(seen, secret, *recovery_codes_on(codes))
    link = re.search(r'<a class="button" href="([^"]+)">', codes.text)
    assert link, codes.text
    return await follow(http, await http.get(link[1]))


async def test_device_approval_needs_the_step_up_first(http, browser, public, secrets_seen):
    """A password-only session typing the user code of a client that requires a second factor is sent to add
    one (here: enrol), and the device gets nothing until then; afterwards the approval gives tokens."""
    body = await started(http, public)
    await signed_in_with_password(browser)
    form = await browser.follow(await http.get("/device"))
    assert 'action="/device"' in form.text, form.text
    confirm = await http.post("/device", data={"csrf": csrf_of(form.text), "user_code": body["user_code"]})
    assert confirm.status_code == 303, confirm.text
    assert re.fullmatch(r"/interaction/[^/]+/second-factor", confirm.headers["location"])
    assert_error(await poll(http, public, body["device_code"]), 400, "authorization_pending")
    back = await enrol_and_continue(http, await http.get(confirm.headers["location"]), secrets_seen)
    assert 'action="/device"' in back.text, back.text
    assert body["user_code"] in back.text  # the code typed before is kept
    consent = await http.post("/device", data={"csrf": csrf_of(back.text), "user_code": body["user_code"]})
    assert 'action="/device/decide"' in consent.text, consent.text
    done = await http.post(
        "/device/decide", data={"csrf": csrf_of(consent.text), "user_code": body["user_code"], "decision": "allow"}
    )
    assert done.status_code == 200, done.text
    tokens = await poll(http, public, body["device_code"])
    assert tokens.status_code == 200, tokens.text
    claims = claims_of(tokens.json()["id_token"])
    assert "mfa" in claims["amr"]  # the ID token says how the approver signed in, not a password alone
    assert claims["acr"] == ACR_MFA


async def test_posting_the_approval_directly_does_not_skip_the_step_up(http, browser, public):
    """An Allow posted straight to /device/decide from a password-only session approves nothing."""
    body = await started(http, public)
    await signed_in_with_password(browser)
    form = await browser.follow(await http.get("/device"))
    response = await http.post(
        "/device/decide", data={"csrf": csrf_of(form.text), "user_code": body["user_code"], "decision": "allow"}
    )
    assert response.status_code == 303, response.text
    assert re.fullmatch(r"/interaction/[^/]+/second-factor", response.headers["location"])
    assert_error(await poll(http, public, body["device_code"]), 400, "authorization_pending")


async def test_signing_in_from_the_device_link_asks_for_the_second_factor_at_once(http, browser, public):
    """Signing in from verification_uri_complete already knows the client: the second factor is asked for
    right after the password, before the code form."""
    body = await started(http, public)
    login = await follow(http, await http.get("/device", params={"user_code": body["user_code"]}))
    step = await follow(http, await browser.sign_in(login))
    assert "Set up a second step" in step.text, step.text


@pytest.mark.parametrize("policy", [SecondFactorPolicy()])
async def test_a_client_without_the_requirement_is_approved_on_a_password(http, browser, public, policy):
    """Control: without the requirement, a password-only session approves at once."""
    body = await started(http, public)
    await signed_in_with_password(browser)
    form = await browser.follow(await http.get("/device"))
    confirm = await http.post("/device", data={"csrf": csrf_of(form.text), "user_code": body["user_code"]})
    assert 'action="/device/decide"' in confirm.text, confirm.text
