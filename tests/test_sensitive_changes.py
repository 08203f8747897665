"""Removing a passkey needs a recent sign-in, as adding one and changing the second factor do (issue 11, item 13):
a stolen session cookie alone must not take away the owner's way in."""

from __future__ import annotations

import re

from sqlalchemy import select, update

from accounts import Authenticator, account_page, add_passkey, follow, sign_in_form
from conftest import csrf_of
from frontdesk.storage.db import now, transaction
from frontdesk.storage.schema import Passkey, Session


async def an_hour_later_with_a_passkey(http, fd, person) -> tuple[str, str]:
    """Alice with one passkey, her sign-in an hour old; the Security page's CSRF token and the passkey's id."""
    await account_page(http, *person)
    await add_passkey(http, Authenticator(), name="Laptop")
    security = await http.get("/account/security")
    passkey_id = re.findall(r'name="passkey" value="([0-9a-f]+)"', security.text)[0]
    with transaction(fd.engine) as conn:
        conn.execute(update(Session).values(auth_time=now() - 3600))
    return csrf_of(security.text), passkey_id


def passkeys(fd) -> list[str]:
    with transaction(fd.engine, readonly=True) as conn:
        return list(conn.execute(select(Passkey.id)).scalars())


async def test_removing_a_passkey_an_hour_after_sign_in_asks_to_sign_in_again(http, fd, person):
    """An hour after signing in, removing a passkey leads to "sign in again" and removes nothing."""
    csrf, passkey_id = await an_hour_later_with_a_passkey(http, fd, person)
    response = await http.post("/account/passkeys/remove", data={"csrf": csrf, "passkey": passkey_id})
    assert response.status_code == 303, response.text
    assert re.fullmatch(r"/interaction/[^/]+/login", response.headers["location"])
    login = await http.get(response.headers["location"])
    assert "For your security, sign in again to continue." in login.text
    assert 'value="alice"' in login.text
    assert passkeys(fd) == [passkey_id]


async def test_after_signing_in_again_the_passkey_can_be_removed(http, fd, person):
    """Signed in again, the same removal goes through and comes back to the Security page."""
    csrf, passkey_id = await an_hour_later_with_a_passkey(http, fd, person)
    response = await http.post("/account/passkeys/remove", data={"csrf": csrf, "passkey": passkey_id})
    security = await follow(http, await sign_in_form(http, await http.get(response.headers["location"]), *person))
    assert str(security.url).endswith("/account/security"), security.url
    removed = await http.post("/account/passkeys/remove", data={"csrf": csrf_of(security.text), "passkey": passkey_id})
    assert removed.headers["location"] == "/account/security?done=passkey-removed"
    assert passkeys(fd) == []


async def test_renaming_a_passkey_needs_no_fresh_sign_in(http, fd, person):
    """Renaming changes no way in: it is done at once, however old the sign-in."""
    csrf, passkey_id = await an_hour_later_with_a_passkey(http, fd, person)
    response = await http.post("/account/passkeys/rename", data={"csrf": csrf, "passkey": passkey_id, "name": "Work"})
    assert response.headers["location"] == "/account/security?done=passkey-renamed"
