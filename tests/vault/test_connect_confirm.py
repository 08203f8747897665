"""A connect link names its account before it is used (issue 11, item 5): a link made for platform user A and
forwarded unopened shows A's name and asks to continue; a link made for a frontdesk person works only for that
person, signed in."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from conftest import ISSUER, Browser, csrf_of
from frontdesk.core import Frontdesk
from frontdesk.storage import audit
from frontdesk.storage.schema import VaultConnection, VaultConnectSession
from frontdesk.vault.service import Vault

from .conftest import bearer, connect_link, open_link, through_provider

pytestmark = pytest.mark.usefixtures("vault")


def action_of(html: str) -> str:
    found = re.search(r'<form method="post" action="([^"]+)"', html)
    assert found, html
    return found.group(1)


def opened_at(vault: Vault) -> list[int | None]:
    with vault.engine.begin() as conn:
        return list(conn.execute(select(VaultConnectSession.opened_at)).scalars())


def subject_of(fd: Frontdesk, username: str) -> str:
    return next(u.id for u in fd.users.list() if u.username == username)


async def test_the_link_names_the_account_and_uses_nothing_up(
    http: httpx.AsyncClient, api_key: str, vault: Vault
) -> None:
    """Opening the link shows whose account it joins and a Continue form; the link stays unused until then."""
    link = await connect_link(http, api_key, display_name="Alice Example (alice@example.com)")
    page = await http.get(link["connect_url"].removeprefix(ISSUER))
    assert page.status_code == 200, page.text
    assert "Alice Example (alice@example.com)" in page.text
    assert "Fake Calendar" in page.text
    assert "If someone else sent you this link" in page.text
    assert action_of(page.text) == link["connect_url"].removeprefix(ISSUER)
    assert opened_at(vault) == [None]


async def test_without_a_display_name_the_page_shows_the_user_id(http: httpx.AsyncClient, api_key: str) -> None:
    link = await connect_link(http, api_key, user="u-77")
    page = await http.get(link["connect_url"].removeprefix(ISSUER))
    assert "Account ID u-77" in page.text


async def test_continue_needs_the_pages_csrf_token(http: httpx.AsyncClient, api_key: str, vault: Vault) -> None:
    """A POST made elsewhere (another site, an old page) is refused and the link stays usable."""
    link = await connect_link(http, api_key)
    path = link["connect_url"].removeprefix(ISSUER)
    await http.get(path)
    refused = await http.post(path, data={"csrf": "forged"})
    assert refused.status_code == 403
    assert opened_at(vault) == [None]
    assert (await open_link(http, link["connect_url"])).status_code == 303


async def test_continue_from_a_browser_that_never_saw_the_page_is_refused(
    http: httpx.AsyncClient, api_key: str, vault: Vault
) -> None:
    link = await connect_link(http, api_key)
    path = link["connect_url"].removeprefix(ISSUER)
    csrf = csrf_of((await http.get(path)).text)
    http.cookies.clear()
    refused = await http.post(path, data={"csrf": csrf})
    assert refused.status_code == 403
    assert opened_at(vault) == [None]


async def test_the_check_answer_links_to_a_page_with_the_name(http: httpx.AsyncClient, api_key: str) -> None:
    body = {"user": "u-1", "integration": "cal", "scopes": [], "display_name": "Bo at Example"}
    answer = await http.post("/vault/check", json=body, headers=bearer(api_key))
    assert answer.status_code == 200, answer.text
    page = await http.get(answer.json()["authorization_url"].removeprefix(ISSUER))
    assert "Bo at Example" in page.text


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"display_name": "Alice\u0007"}, "display_name"),
        ({"display_name": "x" * 201}, "display_name"),
        ({"display_name": 7}, "display_name"),
        ({"subject": "no-such-person"}, "subject"),
    ],
)
async def test_a_bad_owner_is_refused(http: httpx.AsyncClient, api_key: str, extra: dict[str, Any], field: str) -> None:
    body = {"user": "u-1", "integration": "cal", **extra}
    response = await http.post("/vault/connect-sessions", json=body, headers=bearer(api_key))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert field in response.json()["error_description"]


# --- links for a frontdesk person ----------------------------------------------------------------------------------


async def test_a_persons_link_signs_them_in_and_comes_back(
    http: httpx.AsyncClient, api_key: str, fd: Frontdesk, browser: Browser
) -> None:
    """Not signed in: sign in, back to the page (named after the person), continue, connected."""
    link = await connect_link(http, api_key, subject=subject_of(fd, "alice"))
    path = link["connect_url"].removeprefix(ISSUER)
    to_sign_in = await http.get(path)
    assert to_sign_in.status_code == 303
    assert re.fullmatch(r"/interaction/[^/]+/login", to_sign_in.headers["location"])
    # The link waits in a __Host- cookie like every cookie under https: no sibling host can plant one.
    [held] = [c for c in to_sign_in.headers.get_list("set-cookie") if "fd_vault_link=" in c]
    assert held.startswith("__Host-fd_vault_link="), held
    assert "Path=/;" in held, held
    assert "Secure" in held, held
    assert "Domain" not in held, held
    login = await browser.follow(to_sign_in)
    page = await browser.follow(await browser.sign_in(login))
    assert page.status_code == 200, page.text
    assert str(page.url) == ISSUER + "/vault/connect"
    assert "Alice Example" in page.text
    done = await through_provider(http, link["connect_url"])
    assert done.status_code == 200, done.text
    with fd.engine.begin() as conn:
        assert conn.execute(select(VaultConnection.user)).scalars().all() == ["u-123"]


async def test_a_persons_link_refuses_someone_else_signed_in(
    http: httpx.AsyncClient, api_key: str, fd: Frontdesk, browser: Browser, vault: Vault
) -> None:
    """Bob, signed in, gets a clear page; and a Continue he forges with his own page's token is refused too."""
    fd.users.create("bob", "another horse battery", name="Bob")
    link = await connect_link(http, api_key, subject=subject_of(fd, "bob"))
    path = link["connect_url"].removeprefix(ISSUER)
    await browser.follow(await browser.sign_in(await browser.follow(await http.get(path))))
    # Signed in as alice now (the browser fixture's person), on bob's link.
    refused = await http.get(path)
    assert refused.status_code == 403
    assert "made for another person" in refused.text

    own = await connect_link(http, api_key)  # a link for no one in particular gives this browser a CSRF token
    csrf = csrf_of((await http.get(own["connect_url"].removeprefix(ISSUER))).text)
    forged = await http.post(path, data={"csrf": csrf})
    assert forged.status_code == 403
    assert "made for another person" in forged.text
    assert opened_at(vault)[0] is None
    refusals = [e for e in audit.tail(fd.engine, 20) if e.event == "vault.connect_session.refused"]
    assert [e.detail["reason"] for e in refusals] == ["wrong_person"]


@pytest.mark.usefixtures("person")
async def test_a_persons_link_cannot_be_continued_signed_out(
    http: httpx.AsyncClient, api_key: str, fd: Frontdesk, vault: Vault
) -> None:
    """A Continue with no one signed in goes back through the link (and so through signing in), never on."""
    own = await connect_link(http, api_key)
    csrf = csrf_of((await http.get(own["connect_url"].removeprefix(ISSUER))).text)
    link = await connect_link(http, api_key, subject=subject_of(fd, "alice"))
    path = link["connect_url"].removeprefix(ISSUER)
    again = await http.post(path, data={"csrf": csrf})
    assert again.status_code == 303
    assert again.headers["location"] == path
    assert opened_at(vault) == [None, None]
