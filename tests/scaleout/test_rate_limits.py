"""Abuse limits are the deployment's: attempts counted at either host add up to the one configured limit (README,
``[rate_limits]`` and ``[signin_throttle]``: counted in the database, shared by every process)."""

from __future__ import annotations

import asyncio
import time

import pytest

from conftest import csrf_of, pkce
from frontdesk.storage.notify import BOUND

from .conftest import CLIENT_AUTH_LIMIT, CLIENT_AUTH_WINDOW, Pair, register
from .flows import PASSWORD, App, authorize_params, client, token, within

pytestmark = [pytest.mark.subprocess, pytest.mark.postgres]

FREE_PASSWORD_TRIES = 5  # [signin_throttle] free_per_account_and_ip, the default


async def _whole_window(window: int, needed: float = 30.0) -> None:
    """Wait, if need be, for a fixed window (ratelimit.py) with ``needed`` seconds left, so that no attempt of the
    test falls into the next one and starts the count again."""
    left = window - time.time() % window
    if left < needed:
        await asyncio.sleep(left + 0.1)


async def test_failed_client_authentications_at_both_hosts_reach_the_configured_limit_together(pair: Pair):
    """The configured number of wrong secrets, sent in turn to A and B, are each answered 401; then, with the right
    secret, both answer 429: the host that counted the last failure at once, the other as soon as it hears of it
    (each keeps the counts it read, oauth/memory.py: within ``notify.BOUND``, on PostgreSQL by a notification)."""
    app = register(pair, "Guessed at", "client_credentials")
    wrong = App(app.client_id, "not-the-secret-" + "x" * 20)
    grant = {"grant_type": "client_credentials"}
    await _whole_window(CLIENT_AUTH_WINDOW)
    async with client() as http:
        for base in (pair.a, pair.b):  # both have read the counts and keep them
            assert (await token(http, base, app, grant)).status_code == 200
        for attempt in range(CLIENT_AUTH_LIMIT):
            base = (pair.a, pair.b)[attempt % 2]
            response = await token(http, base, wrong, grant)
            assert response.status_code == 401, (attempt, base, response.text)
            assert response.json()["error"] == "invalid_client"
        since = time.monotonic()
        last = (pair.a, pair.b)[(CLIENT_AUTH_LIMIT - 1) % 2]
        refused = await token(http, last, app, grant)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"] == "temporarily_unavailable"
        assert 0 < int(refused.headers["Retry-After"]) <= CLIENT_AUTH_WINDOW
        other = pair.b if last == pair.a else pair.a

        async def refused_at_other() -> bool:
            return (await token(http, other, app, grant)).status_code == 429

        took = await within(BOUND, refused_at_other, since)
    print(f"the limit reached at one host refused at the other {took:.3f} s later")


async def test_wrong_passwords_at_both_hosts_are_throttled_together(pair: Pair, app: App):
    """A person's own free tries from one address are five across the deployment: wrong passwords sent in turn to
    A and B, and then even the right one is answered 429 at both."""
    username = "mallory-target"
    pair.cli("user", "create", "--username", username, "--password-stdin", stdin=PASSWORD + "\n")
    async with client() as http:
        pages = {}
        for base in (pair.a, pair.b):  # a sign-in page at each host, for the same person
            _, challenge = pkce()
            response = await http.get(f"{base}/authorize", params=authorize_params(app, challenge))
            while response.status_code == 303 and response.headers["location"].startswith("/"):
                response = await http.get(base + response.headers["location"])
            assert 'name="password"' in response.text, response.text[:500]
            pages[base] = response

        async def attempt(base: str, password: str) -> int:
            page = pages[base]
            action = page.text.split('<form method="post" action="', 1)[1].split('"', 1)[0]
            form = {"csrf": csrf_of(page.text), "username": username, "password": password}
            return (await http.post(base + action, data=form)).status_code

        for n in range(FREE_PASSWORD_TRIES):
            base = (pair.a, pair.b)[n % 2]
            assert await attempt(base, "wrong password!") == 401, (n, base)
        assert await attempt(pair.a, PASSWORD) == 429
        assert await attempt(pair.b, PASSWORD) == 429
