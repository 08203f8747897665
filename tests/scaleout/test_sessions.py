"""A browser session is the deployment's, not a host's: signed in at A, it is honoured at B; ended at B, A no longer
honours it (DESIGN §3: sessions live in the database)."""

from __future__ import annotations

import time

import pytest

from conftest import pkce, remember

from .conftest import Pair
from .flows import REDIRECT_URI, App, authorize_params, client, code_at, query, redeem, sign_in, tokens, within

pytestmark = [pytest.mark.subprocess, pytest.mark.postgres]

SESSION_COOKIE = "fd_session"  # under a plain-http loopback issuer the name carries no __Host- prefix
BOUND = 1.0  # seconds: an ended session is a revocation, seen everywhere within a second (issue 15 item 2)


async def test_a_session_begun_at_one_host_is_honoured_and_ended_at_the_other(pair: Pair, person: str, app: App):
    """Signed in through A's forms, the session cookie alone gets a code from B under prompt=none and B's account
    page; signing out at B with the ID token's hint ends it, so A then answers prompt=none with login_required (within
    a second) and sends the account page to sign in."""
    async with client() as at_a:
        signed_in = await sign_in(at_a, pair.a, app, person)
        assert signed_in.headers.get("location", "").startswith(REDIRECT_URI), signed_in.text[:500]
        session = at_a.cookies.get(SESSION_COOKIE)
    assert session, "A set no session cookie"
    remember(set(), session)

    async with client(cookies={SESSION_COOKIE: session}) as at_b:
        code, verifier = await code_at(at_b, pair.b, app, person, prompt="none")
        issued = await tokens(at_b, pair.b, app, redeem(code, verifier))
        account = await at_b.get(f"{pair.b}/account")
        assert account.status_code == 200, account.text[:500]
        assert person in account.text

        signed_out = await at_b.get(
            f"{pair.b}/logout", params={"id_token_hint": issued["id_token"], "client_id": app.client_id}
        )
        assert signed_out.status_code == 200, signed_out.text[:500]
        since = time.monotonic()
        assert "You have signed out." in signed_out.text

    async with client(cookies={SESSION_COOKIE: session}) as at_a:

        async def login_required_at_a() -> bool:
            _, challenge = pkce()
            answer = await at_a.get(f"{pair.a}/authorize", params=authorize_params(app, challenge, prompt="none"))
            assert answer.status_code == 303, answer.text[:500]
            assert answer.headers["location"].startswith(REDIRECT_URI)
            return query(answer.headers["location"]).get("error") == "login_required"

        await within(BOUND, login_required_at_a, since)
        account = await at_a.get(f"{pair.a}/account")
        assert account.status_code == 303, account.text[:500]
        assert account.headers["location"].startswith("/interaction/"), account.headers["location"]
