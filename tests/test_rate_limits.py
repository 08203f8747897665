"""Abuse limits: guessing stops within a handful of tries, legitimate traffic is never slowed, and the counters
hold across processes because they live in the database."""

from __future__ import annotations

import re

import httpx
import pytest

from conftest import ISSUER, Browser, basic, csrf_of
from frontdesk.asgi import open_frontdesk
from frontdesk.config import RateLimits
from frontdesk.storage import audit
from frontdesk.web import create_app


def client_from(fd, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(fd), client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=ISSUER, follow_redirects=False)


async def login_page(browser: Browser, client, challenge: str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"):
    response = await browser.follow(
        await browser.http.get(
            "/authorize",
            params={
                "response_type": "code",
                "client_id": client.client_id,
                "redirect_uri": client.redirect_uri,
                "scope": "openid",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
        )
    )
    assert 'name="password"' in response.text
    return response


async def try_password(browser: Browser, page: httpx.Response, password: str) -> httpx.Response:
    action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
    return await browser.http.post(action, data={"csrf": csrf_of(page.text), "username": "alice", "password": password})


async def test_password_guessing_stops_after_five_tries(http, browser, confidential, fd):
    """After five wrong passwords for one account from one address, even the right one is answered 429."""
    page = await login_page(browser, confidential)
    for _ in range(5):
        assert (await try_password(browser, page, "wrong password!")).status_code == 401
    throttled = await try_password(browser, page, browser.password)
    assert throttled.status_code == 429
    assert 0 < int(throttled.headers["Retry-After"]) <= 900
    assert "Too many attempts" in throttled.text
    assert [e.outcome for e in audit.tail(fd.engine) if e.event == "signin"][-1] == "throttled"


async def test_the_account_still_signs_in_from_another_address(http, browser, confidential, fd, person):
    """Guesses from one address do not lock the person out at their own."""
    page = await login_page(browser, confidential)
    for _ in range(5):
        await try_password(browser, page, "wrong password!")
    async with client_from(fd, "198.51.100.20") as other:
        own = Browser(other, *person)
        response = await try_password(own, await login_page(own, confidential), person[1])
    assert response.status_code == 303


async def test_client_secret_guessing_is_throttled_per_client_and_address(http, confidential, fd):
    """Ten wrong secrets for one client from one address earn 429 with Retry-After; the right secret from the
    client's own address still works."""
    for _ in range(10):
        wrong = await http.post(
            "/token", auth=(confidential.client_id, "not-the-secret-at-all"), data={"grant_type": "client_credentials"}
        )
        assert wrong.status_code == 401
    throttled = await http.post("/token", auth=basic(confidential), data={"grant_type": "client_credentials"})
    assert throttled.status_code == 429
    assert throttled.json()["error"] == "temporarily_unavailable"
    assert int(throttled.headers["Retry-After"]) > 0
    async with client_from(fd, "198.51.100.30") as own:
        ok = await own.post("/token", auth=basic(confidential), data={"grant_type": "client_credentials"})
    assert ok.status_code == 200


async def test_a_busy_legitimate_client_is_never_slowed(http, confidential):
    """Hundreds of correctly authenticated token requests from one address all succeed."""
    for _ in range(300):
        response = await http.post("/token", auth=basic(confidential), data={"grant_type": "client_credentials"})
        assert response.status_code == 200


async def test_user_code_guessing_is_throttled(http, browser, public):
    """Ten wrong user codes from one address earn 429 on the device page."""
    page = await browser.follow(await http.get("/device"))
    page = await browser.follow(await browser.sign_in(page))
    csrf = csrf_of(page.text)
    for _ in range(10):
        assert (await http.post("/device", data={"csrf": csrf, "user_code": "BBBB-BBBB"})).status_code == 400
    throttled = await http.post("/device", data={"csrf": csrf, "user_code": "BBBB-BBBB"})
    assert throttled.status_code == 429
    assert "Retry-After" in throttled.headers


@pytest.mark.parametrize("rate_limits", [RateLimits(authorize_per_ip=(3, 60))])
async def test_authorization_requests_per_address_are_limited(http, confidential):
    """Past its configured limit an address gets a 429 page from /authorize."""
    params = {"client_id": confidential.client_id, "response_type": "code"}
    statuses = [(await http.get("/authorize", params=params)).status_code for _ in range(4)]
    assert 429 not in statuses[:3]
    assert statuses[3] == 429


@pytest.mark.parametrize("rate_limits", [RateLimits(enabled=False)])
async def test_limits_can_be_switched_off(http, confidential):
    """With rate_limits.enabled = false no attempt is counted or refused."""
    for _ in range(12):
        wrong = await http.post(
            "/token", auth=(confidential.client_id, "not-the-secret-at-all"), data={"grant_type": "client_credentials"}
        )
        assert wrong.status_code == 401


async def test_counters_are_shared_between_processes(http, confidential, fd):
    """Failures counted by one frontdesk process throttle the same client and address at another."""
    for _ in range(10):
        await http.post(
            "/token", auth=(confidential.client_id, "not-the-secret-at-all"), data={"grant_type": "client_credentials"}
        )
    other = open_frontdesk(fd.settings, run_migrations=False, ensure_keys=False)
    try:
        async with client_from(other, "203.0.113.7") as same_address:
            response = await same_address.post(
                "/token", auth=basic(confidential), data={"grant_type": "client_credentials"}
            )
    finally:
        other.engine.dispose()
    assert response.status_code == 429
