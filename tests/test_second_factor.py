"""The second factor over HTTP in process (issue 5, item 3): TOTP (RFC 6238) enrolment with a QR code and
recovery codes, the code step at sign-in, the operator's policy, step-up by ``acr_values``, and what the ID token
says about it (``amr``, RFC 8176; ``acr``)."""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import replace
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from accounts import account_page, follow, post_code, recovery_codes_on, secret_on, totp_code
from conftest import Browser, Registered, basic, csrf_of, pkce, query, remember
from frontdesk.config import ConfigError, RateLimits, SecondFactorPolicy, load_settings
from frontdesk.oauth.tokens import ACR_MFA, ACR_PASSWORD
from frontdesk.protocol import rfc6238
from frontdesk.storage.db import now, transaction
from frontdesk.storage.schema import RecoveryCode, Session, TotpSecret

SCOPE = "openid profile offline_access"


def params(client: Registered, **extra: str) -> dict[str, str]:
    return authorize_params(client, pkce()[1], **extra)


def authorize_params(client: Registered, challenge: str, **extra: str) -> dict[str, str]:
    """An authorization request for ``client`` with the S256 ``challenge`` (its verifier kept by the caller)."""
    return {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": SCOPE,
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "nonce": "n",
        **extra,
    }


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


async def id_token_after(http: httpx.AsyncClient, client: Registered, page: httpx.Response, verifier: str) -> Any:
    """Allow on the consent page if shown, redeem the code, and return the ID token's claims."""
    if 'value="allow"' in page.text:
        page = await http.post(
            re.findall(r'<form method="post" action="([^"]+)"', page.text)[0],
            data={"csrf": csrf_of(page.text), "decision": "allow"},
        )
    code = query(page.headers["location"])["code"]
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    response = await http.post("/token", auth=basic(client), data=data)
    assert response.status_code == 200, response.text
    return claims_of(response.json()["id_token"])


async def start(browser: Browser, client: Registered, **extra: str) -> tuple[httpx.Response, str]:
    """/authorize with a fresh PKCE pair, through the password; the page that follows and the verifier."""
    verifier, challenge = pkce()
    request = {**params(client, **extra), "code_challenge": challenge}
    return await browser.authorize(consent=None, **request), verifier


async def enrol(http: httpx.AsyncClient, person: tuple[str, str], seen: set[str]) -> tuple[str, list[str]]:
    """Turn the second step on from the account page; the TOTP secret and the recovery codes."""
    page = await account_page(http, *person, "/account/second-factor")
    assert page.status_code == 200, page.text
    secret = secret_on(page)
    done = await post_code(http, page, totp_code(secret))
    assert done.status_code == 200, done.text
    codes = recovery_codes_on(done)
    remember(seen, secret, *codes)
    return secret, codes


def next_code(secret: str) -> str:
    """The code of the next time step: the one just used to confirm may not be used again (RFC 6238 §5.2)."""
    return totp_code(secret, time.time() + rfc6238.PERIOD)


async def signed_out(http: httpx.AsyncClient) -> None:
    http.cookies.clear()


# --- enrolment --------------------------------------------------------------------------------------------------


async def test_enrolment_shows_a_qr_code_and_the_key(http, person, secrets_seen):
    """The enrolment page draws the otpauth QR code as inline SVG and shows the key for typing in."""
    page = await account_page(http, *person, "/account/second-factor")
    secret = secret_on(page)
    remember(secrets_seen, secret)
    assert len(secret) == 32
    assert re.search(r'<svg viewBox="0 0 \d+ \d+" class="qr"><title>QR code', page.text)
    assert "<img" not in page.text
    assert "http" not in page.text.split("<svg", 1)[1].split("</svg>", 1)[0].replace("www.w3.org", "")


async def test_reloading_the_enrolment_page_keeps_the_key(http, person, secrets_seen):
    """A reload shows the same key, so a QR code already scanned still matches."""
    first = secret_on(await account_page(http, *person, "/account/second-factor"))
    remember(secrets_seen, first)
    assert secret_on(await http.get("/account/second-factor")) == first


async def test_confirming_turns_it_on_and_shows_ten_recovery_codes_once(http, person, fd, secrets_seen):
    """A first code turns the second step on and shows ten recovery codes, kept only as digests."""
    secret, codes = await enrol(http, person, secrets_seen)
    assert len(codes) == 10
    assert len(set(codes)) == 10
    security = await http.get("/account/security")
    assert "10 recovery codes left." in security.text
    assert "Turn off second step" in security.text
    assert not recovery_codes_on(security)
    with transaction(fd.engine, readonly=True) as conn:
        digests = set(conn.execute(select(RecoveryCode.digest)).scalars())
        sealed = conn.execute(select(TotpSecret.secret)).scalar_one()
    assert len(digests) == 10
    assert secret.encode() not in sealed


async def test_a_wrong_first_code_leaves_it_off(http, person, secrets_seen):
    """A wrong code at enrolment keeps the second step off and says so."""
    page = await account_page(http, *person, "/account/second-factor")
    remember(secrets_seen, secret_on(page))
    response = await post_code(http, page, "000000")
    assert response.status_code == 400
    assert "That code is not right" in response.text
    assert "Set up an authenticator app" in (await http.get("/account/security")).text


async def test_enrolment_needs_a_recent_sign_in(http, person, fd):
    """Turning the second step on an hour after signing in asks to sign in again first."""
    await account_page(http, *person)
    with transaction(fd.engine) as conn:
        conn.execute(update(Session).values(auth_time=now() - 3600))
    response = await http.get("/account/second-factor")
    assert response.status_code == 303
    login = await http.get(response.headers["location"])
    assert "For your security, sign in again to continue." in login.text
    assert 'value="alice"' in login.text


# --- signing in with it -----------------------------------------------------------------------------------------


async def test_enrolled_person_is_asked_for_a_code_after_the_password(http, browser, confidential, secrets_seen):
    """Once enrolled, the password leads to the code page, not into the account; the right code signs in with
    amr pwd, otp and mfa, and the multi-factor acr."""
    secret, _ = await enrol(http, browser_person(browser), secrets_seen)
    await signed_out(http)
    page, verifier = await start(browser, confidential)
    assert "Enter your code" in page.text
    assert re.search(r"/interaction/[^/]+/second-factor", str(page.url))
    assert (await http.get("/account")).status_code == 303  # not signed in yet
    done = await follow(http, await post_code(http, page, next_code(secret)))
    claims = await id_token_after(http, confidential, done, verifier)
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["acr"] == ACR_MFA


def browser_person(browser: Browser) -> tuple[str, str]:
    return browser.username, browser.password


async def test_a_wrong_code_keeps_the_person_signed_out(http, browser, confidential, secrets_seen):
    """A wrong code answers 401 on the same page, with no session."""
    await enrol(http, browser_person(browser), secrets_seen)
    await signed_out(http)
    page, _ = await start(browser, confidential)
    response = await post_code(http, page, "123456")
    assert response.status_code == 401
    assert "That code is not right" in response.text
    assert (await http.get("/account")).status_code == 303


async def test_a_code_works_once(http, browser, confidential, secrets_seen):
    """The same code cannot sign in twice (RFC 6238 §5.2)."""
    secret, _ = await enrol(http, browser_person(browser), secrets_seen)
    code = next_code(secret)
    for expected in (303, 401):
        await signed_out(http)
        page, _ = await start(browser, confidential)
        assert (await post_code(http, page, code)).status_code == expected


@pytest.fixture
def rate_limits() -> RateLimits:
    return RateLimits(second_factor_per_account=(3, 900))


async def test_guessing_codes_is_stopped(http, browser, confidential, secrets_seen):
    """After the allowed wrong codes, even the right one waits: 429 with Retry-After."""
    secret, _ = await enrol(http, browser_person(browser), secrets_seen)
    await signed_out(http)
    page, _ = await start(browser, confidential)
    for _ in range(3):
        page = await post_code(http, page, "000000")
        assert page.status_code == 401
    blocked = await post_code(http, page, next_code(secret))
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0


async def test_a_recovery_code_signs_in_once(http, fd, browser, confidential, secrets_seen):
    """A recovery code replaces the app's code once; the same recovery code is refused after."""
    _, codes = await enrol(http, browser_person(browser), secrets_seen)
    for expected in (303, 401):
        await signed_out(http)
        page, _ = await start(browser, confidential)
        assert "Use a recovery code" in page.text
        response = await http.post(
            re.findall(r'<form method="post" action="([^"]+)"', page.text)[1],
            data={"csrf": csrf_of(page.text), "code": codes[0].upper().replace("-", " ")},
        )
        assert response.status_code == expected
    with transaction(fd.engine, readonly=True) as conn:
        used = conn.execute(select(RecoveryCode.used_at).where(RecoveryCode.used_at.is_not(None))).scalars().all()
    assert len(used) == 1


async def test_new_recovery_codes_replace_the_old(http, person, secrets_seen):
    """Getting new recovery codes shows ten new ones; the old ones stop working."""
    _, old = await enrol(http, person, secrets_seen)
    security = await http.get("/account/security")
    response = await http.post("/account/recovery-codes", data={"csrf": csrf_of(security.text)})
    new = recovery_codes_on(response)
    remember(secrets_seen, *new)
    assert len(new) == 10
    assert not set(new) & set(old)
    assert "the codes you had before no longer work" in response.text


async def test_turning_it_off_removes_the_step(http, browser, confidential, secrets_seen):
    """Turned off, the password alone signs in again (amr pwd, the password acr)."""
    await enrol(http, browser_person(browser), secrets_seen)
    security = await http.get("/account/security")
    off = await http.post("/account/second-factor/remove", data={"csrf": csrf_of(security.text)})
    assert off.status_code == 303
    assert "The second step is off." in (await http.get(off.headers["location"])).text
    await signed_out(http)
    page, verifier = await start(browser, confidential)
    claims = await id_token_after(http, confidential, page, verifier)
    assert claims["amr"] == ["pwd"]
    assert claims["acr"] == ACR_PASSWORD


# --- the operator's policy and the client's acr -----------------------------------------------------------------


@pytest.fixture
def policy() -> SecondFactorPolicy:
    return SecondFactorPolicy()


@pytest.fixture
def fd(fd, policy):
    """The suite's frontdesk with this module's second-factor policy."""
    fd.settings = replace(fd.settings, second_factor=policy)
    return fd


async def enrol_during_sign_in(
    http: httpx.AsyncClient, page: httpx.Response, seen: set[str]
) -> tuple[httpx.Response, str]:
    """On the enrolment step of a sign-in: confirm a code, save the recovery codes, continue."""
    assert "Set up a second step" in page.text, page.text
    secret = secret_on(page)
    codes_page = await post_code(http, page, totp_code(secret))
    assert codes_page.status_code == 200, codes_page.text
    codes = recovery_codes_on(codes_page)
    remember(seen, secret, *codes)
    assert len(codes) == 10
    link = re.search(r'<a class="button" href="([^"]+)">', codes_page.text)
    assert link
    return await follow(http, await http.get(link[1])), secret


@pytest.mark.parametrize("policy", [SecondFactorPolicy(required="all")])
async def test_policy_all_asks_a_person_without_one_to_enrol(http, browser, confidential, secrets_seen):
    """With required = "all", a person without a second factor enrols right after the password, then continues."""
    page, verifier = await start(browser, confidential)
    page, _ = await enrol_during_sign_in(http, page, secrets_seen)
    claims = await id_token_after(http, confidential, page, verifier)
    assert claims["amr"] == ["pwd", "otp", "mfa"]


@pytest.mark.parametrize("policy", [SecondFactorPolicy(required_for_clients=("conf-client",))])
async def test_policy_for_named_clients_only(http, browser, confidential, second, secrets_seen):
    """required_for_clients asks for a second factor for those clients only."""
    page, verifier = await start(browser, second)
    assert (await id_token_after(http, second, page, verifier))["amr"] == ["pwd"]
    page, verifier = await start(browser, confidential)
    assert "Set up a second step" in page.text
    page, _ = await enrol_during_sign_in(http, page, secrets_seen)
    assert (await id_token_after(http, confidential, page, verifier))["acr"] == ACR_MFA


@pytest.mark.parametrize("policy", [SecondFactorPolicy(required_for_clients=("conf-client",))])
async def test_prompt_none_needing_enrolment_is_interaction_required(http, browser, confidential, second):
    """prompt=none when the person would first have to enrol a second factor answers interaction_required."""
    page, verifier = await start(browser, second)
    await id_token_after(http, second, page, verifier)
    response = await http.get("/authorize", params=params(confidential, prompt="none"))
    assert response.status_code == 303
    assert query(response.headers["location"])["error"] == "interaction_required"


async def test_acr_values_steps_up_a_password_session(http, fd, browser, confidential, secrets_seen):
    """A client asking for the multi-factor acr makes a password-only session add its second factor."""
    secret, _ = await enrol(http, browser_person(browser), secrets_seen)
    await signed_out(http)
    page, _ = await start(browser, confidential)
    await follow(http, await post_code(http, page, next_code(secret)))
    with transaction(fd.engine) as conn:  # the session of a password alone, as before the person enrolled
        conn.execute(update(Session).values(amr='["pwd"]'))
    silent = await http.get("/authorize", params=params(confidential, prompt="none", acr_values=ACR_MFA))
    assert query(silent.headers["location"])["error"] == "login_required"
    _, challenge = pkce()
    first = await http.get(
        "/authorize", params={**params(confidential, acr_values=ACR_MFA), "code_challenge": challenge}
    )
    assert re.fullmatch(r"/interaction/[^/]+/second-factor", first.headers["location"])
    page = await http.get(first.headers["location"])
    assert "Enter your code" in page.text


async def test_acr_values_without_enrolment_asks_to_enrol(http, browser, confidential, secrets_seen):
    """A client asking for the multi-factor acr of a person without a second factor gets them enrolled first."""
    page, verifier = await start(browser, confidential, acr_values=f"{ACR_MFA} {ACR_PASSWORD}")
    page, _ = await enrol_during_sign_in(http, page, secrets_seen)
    claims = await id_token_after(http, confidential, page, verifier)
    assert claims["acr"] == ACR_MFA


async def test_password_acr_needs_nothing_more(http, browser, confidential):
    """Asking only for the password acr signs in with the password alone."""
    page, verifier = await start(browser, confidential, acr_values=ACR_PASSWORD)
    claims = await id_token_after(http, confidential, page, verifier)
    assert claims["acr"] == ACR_PASSWORD


async def test_discovery_advertises_both_acr_values(http):
    """acr_values_supported lists the password and the multi-factor acr."""
    metadata = (await http.get("/.well-known/openid-configuration")).json()
    assert set(metadata["acr_values_supported"]) == {ACR_PASSWORD, ACR_MFA}


async def test_deleting_a_person_deletes_their_second_factor(http, fd, person, secrets_seen):
    """frontdesk user delete takes the person's TOTP secret and recovery codes with them."""
    await enrol(http, person, secrets_seen)
    assert fd.users.delete("alice")
    with transaction(fd.engine, readonly=True) as conn:
        assert conn.execute(select(TotpSecret.user_id)).first() is None
        assert conn.execute(select(RecoveryCode.digest)).first() is None


# --- configuration and RFC 6238 ---------------------------------------------------------------------------------


def test_second_factor_settings_from_toml(tmp_path):
    """[second_factor] sets the policy; an unknown value stops the start."""
    path = tmp_path / "frontdesk.toml"
    path.write_text('[second_factor]\nrequired = "all"\nrequired_for_clients = ["a", "b"]\n')
    settings = load_settings(str(path), environ={})
    assert settings.second_factor == SecondFactorPolicy(required="all", required_for_clients=("a", "b"))
    path.write_text('[second_factor]\nrequired = "sometimes"\n')
    with pytest.raises(ConfigError, match=r"second_factor\.required"):
        load_settings(str(path), environ={})
    path.write_text("[second_factor]\nrequired_for_clients = 3\n")
    with pytest.raises(ConfigError):
        load_settings(str(path), environ={})


def test_rfc6238_reference_values():
    """The RFC 6238 Appendix B vector for SHA-1, at 59 s, read as six digits: 287082."""
    secret = base64.b32encode(b"12345678901234567890").decode()
    assert rfc6238.matching_step(secret, "287082", 59) == 1
    assert rfc6238.matching_step(secret, "287082", 59, after=1) is None
    assert rfc6238.matching_step(secret, "287082", 59 + 2 * rfc6238.PERIOD) is None
    assert rfc6238.matching_step(secret, "28708", 59) is None
    assert rfc6238.matching_step(secret, "２８７０８２", 59) is None
