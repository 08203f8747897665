"""Sign-in throttling (frontdesk.oauth.signin_throttle): failures cost a growing, capped wait, per account at an
address and per address, while nobody can lock a person out from elsewhere. The clock is the test's own: every
call takes ``at``."""

from __future__ import annotations

import re
from dataclasses import replace

import httpx
import pytest

from conftest import ISSUER, Browser, csrf_of
from frontdesk.config import SigninThrottle
from frontdesk.oauth.signin_throttle import Refusal, delay_after, record_failure, record_success, refusal, wait_for
from frontdesk.storage import audit
from frontdesk.storage.db import now
from frontdesk.storage.throttle import Failures
from frontdesk.web import create_app
from frontdesk.web.throttle import in_words
from test_authorize import params_for

POLICY = SigninThrottle()
T0 = 1_000_000
ATTACKER = "192.0.2.66"
HOME = "198.51.100.7"


def fail(fd, account: str, ip: str, at: int, times: int = 1) -> None:
    for _ in range(times):
        record_failure(fd, account, ip, at)


# --- the policy as a pure function ------------------------------------------------------------------------------


def test_tries_are_free_until_the_allowance_is_spent():
    """No wait while an address has made fewer than free_per_account_and_ip failures for an account."""
    assert delay_after(POLICY.free_per_account_and_ip - 1, POLICY.free_per_account_and_ip, POLICY) == 0
    assert delay_after(POLICY.free_per_account_and_ip, POLICY.free_per_account_and_ip, POLICY) == POLICY.base_delay


def test_each_further_failure_doubles_the_wait_up_to_the_cap():
    """The wait doubles with every failure past the free ones and never exceeds max_delay."""
    free = POLICY.free_per_account_and_ip
    waits = [delay_after(free + n, free, POLICY) for n in range(12)]
    assert waits[:4] == [POLICY.base_delay * 2**n for n in range(4)]
    assert max(waits) == POLICY.max_delay
    assert waits == sorted(waits)
    assert delay_after(10**6, free, POLICY) == POLICY.max_delay


def test_the_wait_counts_from_the_last_failure():
    """Retry-After is what remains of the wait since the last failure."""
    pair = Failures(POLICY.free_per_account_and_ip, T0)
    assert wait_for(POLICY, pair, pair, Failures(0, 0), T0 + 5) == Refusal(POLICY.base_delay - 5, "account_at_address")
    assert wait_for(POLICY, pair, pair, Failures(0, 0), T0 + POLICY.base_delay) is None


def test_account_failures_alone_never_refuse():
    """However many failures an account has from elsewhere, an address without failures is answered at once."""
    assert wait_for(POLICY, Failures(0, 0), Failures(10_000, T0), Failures(0, 0), T0) is None


def test_an_account_under_attack_leaves_each_address_fewer_free_tries():
    """Past account_under_attack failures, one failure from an address is enough to make it wait."""
    pair = Failures(POLICY.free_under_attack, T0)
    calm = Failures(POLICY.account_under_attack - 1, T0)
    attacked = Failures(POLICY.account_under_attack, T0)
    assert wait_for(POLICY, pair, calm, Failures(0, 0), T0 + 1) is None
    assert wait_for(POLICY, pair, attacked, Failures(0, 0), T0 + 1) == Refusal(
        POLICY.base_delay - 1, "account_at_address"
    )


def test_an_address_spraying_many_accounts_waits():
    """free_per_ip failures across accounts make the address itself wait, whichever account it tries next."""
    address = Failures(POLICY.free_per_ip, T0)
    assert wait_for(POLICY, Failures(0, 0), Failures(0, 0), address, T0) == Refusal(POLICY.base_delay, "address")


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(1, "1 second"), (15, "15 seconds"), (119, "119 seconds"), (900, "15 minutes"), (125, "3 minutes")],
)
def test_waits_in_plain_words(seconds, words):
    assert in_words(seconds) == words


# --- the policy on the shared store, with the test's clock --------------------------------------------------------


def test_guessing_at_one_address_is_slowed_progressively(fd, person):
    """Five failures are free; then each try waits base_delay, doubled per failure, counted from the last one."""
    fail(fd, "alice", ATTACKER, T0, times=POLICY.free_per_account_and_ip)
    assert refusal(fd, "alice", ATTACKER, T0) == Refusal(POLICY.base_delay, "account_at_address")
    assert refusal(fd, "alice", ATTACKER, T0 + POLICY.base_delay) is None
    fail(fd, "alice", ATTACKER, T0 + POLICY.base_delay)
    assert refusal(fd, "alice", ATTACKER, T0 + POLICY.base_delay + 1) == Refusal(
        2 * POLICY.base_delay - 1, "account_at_address"
    )


def test_usernames_are_one_account_whatever_their_case(fd, person):
    """ALICE and alice share one memory of failures."""
    fail(fd, "ALICE", ATTACKER, T0, times=POLICY.free_per_account_and_ip)
    assert refusal(fd, "alice", ATTACKER, T0) is not None


def test_the_person_at_home_is_not_locked_out_by_an_attack_from_elsewhere(fd, person):
    """Many addresses guessing wrong put the account under attack; the person's own address still gets its try."""
    for n in range(3 * POLICY.account_under_attack):
        fail(fd, "alice", f"192.0.2.{n}", T0)
    assert refusal(fd, "alice", HOME, T0 + 1) is None
    assert refusal(fd, "alice", "192.0.2.1", T0 + 1) is not None  # an attacking address waits after one failure


def test_failures_are_forgotten_after_a_quiet_spell(fd, person):
    """forget_after seconds without a failure and the address starts with a clean slate."""
    fail(fd, "alice", ATTACKER, T0, times=POLICY.free_per_account_and_ip + 10)  # at the cap
    assert refusal(fd, "alice", ATTACKER, T0 + POLICY.forget_after - 1) is not None
    assert refusal(fd, "alice", ATTACKER, T0 + POLICY.forget_after) is None
    fail(fd, "alice", ATTACKER, T0 + POLICY.forget_after)
    assert refusal(fd, "alice", ATTACKER, T0 + POLICY.forget_after) is None  # one failure again, not fifteen


def test_a_correct_password_forgives_that_address(fd, person):
    """record_success clears the account's failures at that address."""
    fail(fd, "alice", HOME, T0, times=POLICY.free_per_account_and_ip)
    record_success(fd, "alice", HOME)
    assert refusal(fd, "alice", HOME, T0) is None


def test_spraying_accounts_from_one_address_is_slowed(fd):
    """One address failing for many accounts waits, even for an account it has not tried; others do not."""
    for n in range(POLICY.free_per_ip):
        fail(fd, f"user{n}", ATTACKER, T0)
    assert refusal(fd, "someone-new", ATTACKER, T0) == Refusal(POLICY.base_delay, "address")
    assert refusal(fd, "someone-new", HOME, T0) is None


def test_refusals_are_audited(fd, person):
    """Every refusal is an audit event with the account, the address, the reason and the wait."""
    fail(fd, "alice", ATTACKER, T0, times=POLICY.free_per_account_and_ip)
    refusal(fd, "alice", ATTACKER, T0 + 1)
    event = [e for e in audit.tail(fd.engine) if e.event == "signin"][-1]
    assert (event.outcome, event.ip) == ("throttled", ATTACKER)
    assert event.detail == {"username": "alice", "reason": "account_at_address", "retry_after": POLICY.base_delay - 1}
    assert event.user_id is not None


def test_throttle_can_be_switched_off(fd, person):
    """With signin_throttle.enabled = false nothing is remembered or refused."""
    fd.settings = replace(fd.settings, signin_throttle=SigninThrottle(enabled=False))
    fail(fd, "alice", ATTACKER, T0, times=50)
    assert refusal(fd, "alice", ATTACKER, T0) is None


# --- over HTTP: the sign-in form -----------------------------------------------------------------------------------


def client_from(fd, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(fd), client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=ISSUER, follow_redirects=False)


async def login_page(http: httpx.AsyncClient, client) -> httpx.Response:
    browser = Browser(http, "alice", "")
    page = await browser.follow(await http.get("/authorize", params=params_for(client)))
    assert 'name="password"' in page.text
    return page


async def try_password(http: httpx.AsyncClient, page: httpx.Response, password: str) -> httpx.Response:
    action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
    return await http.post(action, data={"csrf": csrf_of(page.text), "username": "alice", "password": password})


async def test_the_form_answers_429_in_plain_words(http, confidential, person, fd):
    """Past the free tries the form answers 429, Retry-After, and "Too many attempts. Try again in N seconds."
    — without checking the password, so even the right one waits and the wait does not grow."""
    page = await login_page(http, confidential)
    for _ in range(POLICY.free_per_account_and_ip):
        assert (await try_password(http, page, "wrong password!")).status_code == 401
    for password in ("wrong password!", person[1]):
        response = await try_password(http, page, password)
        assert response.status_code == 429
        retry_after = int(response.headers["Retry-After"])
        assert 0 < retry_after <= POLICY.base_delay
        assert f"Too many attempts. Try again in {in_words(retry_after)}." in response.text
    assert refusal(fd, "alice", "203.0.113.7", now()) is not None
    assert [e.outcome for e in audit.tail(fd.engine) if e.event == "signin"][-2:] == ["throttled", "throttled"]


async def test_a_correct_password_from_a_fresh_address_signs_in_during_an_attack(confidential, person, fd):
    """Failures from a dozen addresses put alice's account under attack; alice, from her own address, signs in."""
    for n in range(POLICY.account_under_attack + 2):
        async with client_from(fd, f"192.0.2.{n}") as attacker:
            response = await try_password(attacker, await login_page(attacker, confidential), "wrong password!")
            assert response.status_code == 401
    async with client_from(fd, HOME) as home:
        response = await try_password(home, await login_page(home, confidential), person[1])
    assert response.status_code == 303
    assert response.headers["location"].startswith("/interaction/")
