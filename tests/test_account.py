"""The account page over HTTP in process: signing in to it, connected apps and revoking them, signed-in browsers,
the password, activity; server-side sessions with idle and absolute ends; prompt=none answers (issue 5, items 1
and 4)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from accounts import account_page, follow, form_action, sign_in_form
from conftest import ISSUER, Browser, Registered, basic, code_for, csrf_of, pkce, query, remember
from frontdesk.config import Lifetimes
from frontdesk.storage.db import now, transaction
from frontdesk.storage.grants import grant_revoked, insert_grant
from frontdesk.storage.people import SEEN_EVERY
from frontdesk.storage.schema import AuditEvent, Grant, RefreshToken, Session
from frontdesk.web.user_agents import summarize

CALENDAR_READ = "See your calendar events — not change or delete them"


async def tokens(http: httpx.AsyncClient, browser: Browser, client: Registered, **extra: str) -> dict[str, Any]:
    code, verifier = await code_for(browser, client, scope="openid profile offline_access calendar.read", **extra)
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    response = await http.post("/token", auth=basic(client), data=data)
    assert response.status_code == 200, response.text
    return response.json()


async def refresh(http: httpx.AsyncClient, client: Registered, token: str) -> httpx.Response:
    return await http.post("/token", auth=basic(client), data={"grant_type": "refresh_token", "refresh_token": token})


async def introspect(http: httpx.AsyncClient, client: Registered, token: str) -> dict[str, Any]:
    response = await http.post("/introspect", auth=basic(client), data={"token": token})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def lifetimes() -> Lifetimes:
    """Sessions of an hour that end after ten idle minutes."""
    return Lifetimes(session=3600, session_idle=600)


@pytest.fixture
async def jar(http: httpx.AsyncClient) -> Any:
    """Another browser: the same server, a cookie jar of its own, its own user agent."""
    async with httpx.AsyncClient(
        transport=http._transport,
        base_url=ISSUER,
        follow_redirects=False,
        headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"},
    ) as client:
        yield client


@pytest.fixture
async def signed_in(http: httpx.AsyncClient, person: tuple[str, str]) -> httpx.Response:
    """The profile page, reached by signing in from it."""
    page = await account_page(http, *person)
    assert page.status_code == 200, page.text
    return page


def session_ids(page: httpx.Response) -> tuple[str, list[str]]:
    """(this browser's session id, the others') from the Sessions page."""
    mine, others = "", []
    for section in page.text.split("<section")[1:]:
        found = re.search(r'name="session" value="([0-9a-f]+)"', section)
        if found and "This browser" in section:
            mine = found[1]
        elif found:
            others.append(found[1])
    return mine, others


# --- signing in to the account page -----------------------------------------------------------------------------


async def test_account_without_session_signs_in_then_returns(http, person):
    """/account without a session goes to the sign-in page, and after it back to /account."""
    first = await http.get("/account")
    assert first.status_code == 303
    assert re.fullmatch(r"/interaction/[^/]+/login", first.headers["location"])
    login = await http.get(first.headers["location"])
    assert 'name="password"' in login.text
    done = await sign_in_form(http, login, *person)
    assert done.status_code == 303
    back = await http.get(done.headers["location"])
    assert back.status_code == 303
    assert back.headers["location"] == "/account"
    page = await http.get("/account")
    assert page.status_code == 200
    assert "Alice Example" in page.text


async def test_deep_account_page_returns_to_itself_after_sign_in(http, person):
    """Signing in from /account/sessions comes back to /account/sessions."""
    page = await account_page(http, *person, "/account/sessions")
    assert page.status_code == 200
    assert "<h1>Sessions</h1>" in page.text


async def test_profile_shows_who_is_signed_in(signed_in):
    """The profile names the username, name and email, and the account's sections."""
    for text in ("alice", "Alice Example", "alice@example.com", "Connected apps", "Sessions", "Security", "Activity"):
        assert text in signed_in.text
    assert 'aria-current="page"' in signed_in.text


async def test_account_pages_are_not_cached_and_cannot_be_framed(signed_in):
    """Account pages are no-store, unframeable, and load no script unless they need the passkey one."""
    assert signed_in.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in signed_in.headers["content-security-policy"]
    assert "script-src" not in signed_in.headers["content-security-policy"]
    assert "<script" not in signed_in.text


# --- connected apps ---------------------------------------------------------------------------------------------


async def test_connected_apps_lists_name_host_scopes_and_times(http, browser, confidential):
    """A client the person allowed appears with its name, redirect host, scopes in plain words and dates."""
    await tokens(http, browser, confidential)
    page = await http.get("/account/apps")
    assert page.status_code == 200
    text = page.text
    assert "Calendar Helper" in text
    assert "app.example" in text
    assert CALENDAR_READ in text
    assert "See your name and username" in text
    assert "calendar.read" not in text.replace('value="calendar.read"', "")
    assert "Allowed <time" in text
    assert "Last used <time" in text


async def test_last_used_follows_refreshes(http, browser, confidential, fd):
    """Last used is the newest refresh of the app's grants, without writes on the token endpoint."""
    body = await tokens(http, browser, confidential)
    with transaction(fd.engine) as conn:
        conn.execute(update(Grant).values(created_at=now() - 7200))
        conn.execute(update(RefreshToken).values(created_at=now() - 7200))
    assert "2 hours ago" in (await http.get("/account/apps")).text
    assert (await refresh(http, confidential, body["refresh_token"])).status_code == 200
    assert "just now" in (await http.get("/account/apps")).text


async def test_an_app_approved_on_a_device_is_listed_and_revocable(http, fd, signed_in, public):
    """A device approval records a grant but no consent: the app is listed all the same, and revoking ends it."""
    with transaction(fd.engine) as conn:
        user_id = fd.users.id_of(conn, "alice")
        grant = insert_grant(
            conn,
            client_id=public.client_id,
            user_id=user_id,
            scope=("openid", "calendar.read"),
            resource=(),
            auth_time=now(),
            amr=("pwd",),
            at=now(),
            expires_at=now() + 3600,
        )
    apps = await http.get("/account/apps")
    assert "Desktop App" in apps.text
    assert CALENDAR_READ in apps.text
    await http.post("/account/apps/revoke", data={"csrf": csrf_of(apps.text), "client_id": public.client_id})
    with transaction(fd.engine, readonly=True) as conn:
        assert grant_revoked(conn, grant.id)


async def test_revoking_an_app_ends_its_tokens_at_once(http, browser, confidential):
    """Revoke removes the consent and every grant: the refresh fails with invalid_grant, introspection says
    inactive for both tokens, and the app has to ask for consent again."""
    first = await tokens(http, browser, confidential)
    second = await tokens(http, browser, confidential)
    apps = await http.get("/account/apps")
    response = await http.post(
        form_action(apps.text), data={"csrf": csrf_of(apps.text), "client_id": confidential.client_id}
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/account/apps?revoked={confidential.client_id}"
    after = await http.get(response.headers["location"])
    assert "Calendar Helper can no longer use your account." in after.text
    assert "Revoke access" not in after.text
    for body in (first, second):
        refreshed = await refresh(http, confidential, body["refresh_token"])
        assert refreshed.status_code == 400
        assert refreshed.json()["error"] == "invalid_grant"
        assert (await introspect(http, confidential, body["access_token"]))["active"] is False
        assert (await introspect(http, confidential, body["refresh_token"]))["active"] is False
    again = await browser.authorize(
        consent=None,
        response_type="code",
        client_id=confidential.client_id,
        redirect_uri=confidential.redirect_uri,
        scope="openid profile",
        code_challenge=pkce()[1],
        code_challenge_method="S256",
    )
    assert 'value="allow"' in again.text


async def test_revoking_one_app_leaves_the_others(http, browser, confidential, second):
    """Revoking one client leaves another client's grant of the same person working."""
    kept = await tokens(http, browser, second)
    await tokens(http, browser, confidential)
    apps = await http.get("/account/apps")
    await http.post("/account/apps/revoke", data={"csrf": csrf_of(apps.text), "client_id": confidential.client_id})
    assert (await refresh(http, second, kept["refresh_token"])).status_code == 200


async def test_revoking_leaves_other_peoples_grants(http, fd, confidential, jar, secrets_seen):
    """A person's revocation touches only their own grants of that app, whatever client id is posted."""
    fd.users.create("bob", "bob's long password", name="Bob")
    remember(secrets_seen, "bob's long password")
    bob = await tokens(jar, Browser(jar, "bob", "bob's long password"), confidential)
    page = await account_page(http, "alice", "correct horse battery", "/account/apps")
    await http.post("/account/apps/revoke", data={"csrf": csrf_of(page.text), "client_id": confidential.client_id})
    assert (await refresh(http, confidential, bob["refresh_token"])).status_code == 200


async def test_revocation_needs_the_csrf_token(http, browser, confidential):
    """A revocation without the page's CSRF token is refused and revokes nothing."""
    body = await tokens(http, browser, confidential)
    response = await http.post("/account/apps/revoke", data={"csrf": "forged", "client_id": confidential.client_id})
    assert response.status_code == 403
    assert (await refresh(http, confidential, body["refresh_token"])).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/account/apps/revoke",
        "/account/sessions/sign-out",
        "/account/sessions/sign-out-everywhere",
        "/account/password",
        "/account/passkeys",
        "/account/passkeys/rename",
        "/account/passkeys/remove",
        "/account/second-factor",
        "/account/second-factor/remove",
        "/account/recovery-codes",
    ],
)
async def test_every_account_form_needs_the_csrf_token(http, signed_in, path):
    """Every POST of the account pages without the session's CSRF token is a 403 page."""
    response = await http.post(path, data={"csrf": "0" * 64})
    assert response.status_code == 403, path
    assert "This form has expired" in response.text


async def test_revocation_is_audited(http, fd, browser, confidential):
    """Revoking an app writes an app.revoked audit event naming the client and the person."""
    await tokens(http, browser, confidential)
    apps = await http.get("/account/apps")
    await http.post("/account/apps/revoke", data={"csrf": csrf_of(apps.text), "client_id": confidential.client_id})
    with transaction(fd.engine, readonly=True) as conn:
        row = conn.execute(select(AuditEvent).where(AuditEvent.event == "app.revoked")).one()
    assert row.client_id == confidential.client_id
    assert row.user_id


# --- sessions ---------------------------------------------------------------------------------------------------


async def test_sessions_lists_each_browser(http, jar, person, signed_in):
    """Each signed-in browser is listed with its user agent in a few words, address and times; this one marked."""
    assert (await account_page(jar, *person)).status_code == 200
    page = await http.get("/account/sessions")
    assert page.text.count('action="/account/sessions/sign-out"') == 2
    assert "Firefox 128 on Linux" in page.text
    assert "python-httpx" in page.text
    assert "This browser" in page.text
    assert "203.0.113.7" in page.text
    assert "your password" in page.text


async def test_signing_out_another_browser_ends_its_session(http, jar, person, signed_in):
    """Sign out on another browser's entry: that browser must sign in again, this one stays."""
    await account_page(jar, *person)
    page = await http.get("/account/sessions")
    _, (other,) = session_ids(page)
    response = await http.post("/account/sessions/sign-out", data={"csrf": csrf_of(page.text), "session": other})
    assert response.status_code == 303
    assert (await jar.get("/account")).status_code == 303
    assert (await http.get("/account")).status_code == 200


async def test_signing_out_this_browser_clears_its_cookie(http, signed_in):
    """Sign out on this browser's own entry ends its session and clears the cookie."""
    page = await http.get("/account/sessions")
    mine, _ = session_ids(page)
    response = await http.post("/account/sessions/sign-out", data={"csrf": csrf_of(page.text), "session": mine})
    assert response.status_code == 200
    assert "You are signed out of this browser." in response.text
    assert "fd_session=" in response.headers["set-cookie"]
    assert (await http.get("/account")).status_code == 303


async def test_sign_out_cannot_touch_another_persons_session(http, fd, jar, signed_in, secrets_seen):
    """Posting another person's session id signs nobody out."""
    fd.users.create("bob", "bob's long password")
    remember(secrets_seen, "bob's long password")
    await account_page(jar, "bob", "bob's long password")
    with transaction(fd.engine, readonly=True) as conn:
        ids = set(conn.execute(select(Session.id)).scalars())
    page = await http.get("/account/sessions")
    theirs = (ids - set(re.findall(r'name="session" value="([0-9a-f]+)"', page.text))).pop()
    await http.post("/account/sessions/sign-out", data={"csrf": csrf_of(page.text), "session": theirs})
    assert (await jar.get("/account")).status_code == 200


async def test_sign_out_everywhere_ends_every_session(http, jar, person, signed_in):
    """Sign out everywhere ends this browser's session and every other one."""
    await account_page(jar, *person)
    page = await http.get("/account/sessions")
    response = await http.post("/account/sessions/sign-out-everywhere", data={"csrf": csrf_of(page.text)})
    assert response.status_code == 200
    assert "You are signed out of every browser" in response.text
    assert (await http.get("/account")).status_code == 303
    assert (await jar.get("/account")).status_code == 303


async def test_idle_session_ends(http, fd, signed_in):
    """A session unused for longer than lifetimes.session_idle needs a new sign-in."""
    with transaction(fd.engine) as conn:
        conn.execute(update(Session).values(last_seen_at=now() - 601))
    assert (await http.get("/account")).status_code == 303


async def test_session_ends_at_its_absolute_expiry_however_busy(http, fd, signed_in):
    """A session in use still ends at its absolute expiry."""
    with transaction(fd.engine) as conn:
        conn.execute(update(Session).values(expires_at=now() - 1, last_seen_at=now()))
    assert (await http.get("/account")).status_code == 303


async def test_use_moves_the_idle_end_at_most_once_a_minute(http, fd, signed_in):
    """A visit records the session's use only when the last record is a minute old (a cheap write)."""
    recent = now() - (SEEN_EVERY - 20)
    with transaction(fd.engine) as conn:
        conn.execute(update(Session).values(last_seen_at=recent))
    await http.get("/account")
    with transaction(fd.engine, readonly=True) as conn:
        assert conn.execute(select(Session.last_seen_at)).scalar() == recent
        conn.execute(update(Session).values(last_seen_at=now() - SEEN_EVERY - 1))
    await http.get("/account")
    with transaction(fd.engine, readonly=True) as conn:
        assert conn.execute(select(Session.last_seen_at)).scalar() >= now() - 2


async def test_a_used_session_outlives_its_idle_time(http, fd, signed_in):
    """Use keeps a session alive past the idle time counted from sign-in."""
    with transaction(fd.engine) as conn:
        conn.execute(update(Session).values(last_seen_at=now() - 500, created_at=now() - 900, auth_time=now() - 900))
    assert (await http.get("/account")).status_code == 200
    with transaction(fd.engine) as conn:
        conn.execute(update(Session).values(last_seen_at=Session.last_seen_at - 200))
    assert (await http.get("/account")).status_code == 200


# --- the password -----------------------------------------------------------------------------------------------


async def change_password(http: httpx.AsyncClient, current: str, new: str, again: str | None = None) -> httpx.Response:
    page = await http.get("/account/security")
    data = {"csrf": csrf_of(page.text), "current_password": current, "new_password": new}
    return await http.post("/account/password", data={**data, "repeat_password": new if again is None else again})


async def test_password_change_needs_the_current_password(http, signed_in, secrets_seen):
    """A wrong current password changes nothing and says so in plain words."""
    remember(secrets_seen, "a brand new passphrase")
    response = await change_password(http, "not my password", "a brand new passphrase")
    assert response.status_code == 400
    assert "Your current password is not right." in response.text


async def test_guessing_the_current_password_is_throttled(http, signed_in, secrets_seen):
    """Wrong current passwords count as failed sign-ins: past the free tries the next one waits (429)."""
    remember(secrets_seen, "a brand new passphrase")
    for _ in range(5):
        assert (await change_password(http, "not my password", "a brand new passphrase")).status_code == 400
    refused = await change_password(http, "not my password", "a brand new passphrase")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0


async def test_password_change_needs_the_same_new_password_twice(http, person, signed_in, secrets_seen):
    """Two different new passwords change nothing."""
    remember(secrets_seen, "a brand new passphrase", "another new passphrase")
    response = await change_password(http, person[1], "a brand new passphrase", "another new passphrase")
    assert response.status_code == 400
    assert "not the same" in response.text


async def test_password_change_signs_out_the_other_browsers(http, jar, fd, person, signed_in, secrets_seen):
    """After a change the new password signs in and the old does not; other browsers are signed out, this one
    stays."""
    remember(secrets_seen, "a brand new passphrase")
    await account_page(jar, *person)
    response = await change_password(http, person[1], "a brand new passphrase")
    assert response.status_code == 303
    assert response.headers["location"] == "/account/security?done=password"
    assert "Your password is changed." in (await http.get(response.headers["location"])).text
    assert (await jar.get("/account")).status_code == 303
    assert fd.users.authenticate("alice", "a brand new passphrase") is not None
    assert fd.users.authenticate("alice", person[1]) is None


# --- activity ---------------------------------------------------------------------------------------------------


async def test_activity_tells_sign_ins_consents_and_revocations(http, browser, confidential):
    """The activity page tells the person's own sign-ins, consents and revocations in plain words."""
    await tokens(http, browser, confidential)
    apps = await account_page(http, "alice", "correct horse battery", "/account/apps")
    await http.post("/account/apps/revoke", data={"csrf": csrf_of(apps.text), "client_id": confidential.client_id})
    page = await http.get("/account/activity")
    assert "Signed in with your password" in page.text
    assert "You allowed Calendar Helper to use your account" in page.text
    assert "You revoked the access of Calendar Helper" in page.text
    assert "203.0.113.7" in page.text


async def test_activity_shows_failed_sign_ins_but_not_other_peoples_events(http, fd, jar, person, secrets_seen):
    """A wrong password for the account is shown to its owner; another person's sign-in is not."""
    fd.users.create("bob", "bob's long password")
    remember(secrets_seen, "bob's long password")
    login = await follow(http, await http.get("/account"))
    await sign_in_form(http, login, "alice", "wrong password!")
    await account_page(jar, "bob", "bob's long password")
    page = await account_page(http, *person, "/account/activity")
    assert "Someone typed a wrong password for your account" in page.text
    assert page.text.count("Signed in with") == 1


# --- prompt=none (OIDC Core §3.1.2.6) ---------------------------------------------------------------------------


def silent(client: Registered, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": "openid profile",
        "state": "s",
        "code_challenge": pkce()[1],
        "code_challenge_method": "S256",
        "prompt": "none",
        **extra,
    }


async def test_prompt_none_after_sign_out_everywhere_is_login_required(http, browser, confidential):
    """prompt=none after signing out everywhere answers login_required, with no page."""
    await code_for(browser, confidential, scope="openid profile")
    page = await http.get("/account/sessions")
    await http.post("/account/sessions/sign-out-everywhere", data={"csrf": csrf_of(page.text)})
    response = await http.get("/authorize", params=silent(confidential))
    assert response.status_code == 303
    assert query(response.headers["location"])["error"] == "login_required"


async def test_prompt_none_after_revocation_is_consent_required(http, browser, confidential):
    """prompt=none for an app the person revoked answers consent_required."""
    await code_for(browser, confidential, scope="openid profile")
    apps = await http.get("/account/apps")
    await http.post("/account/apps/revoke", data={"csrf": csrf_of(apps.text), "client_id": confidential.client_id})
    response = await http.get("/authorize", params=silent(confidential))
    assert query(response.headers["location"])["error"] == "consent_required"


async def test_prompt_none_with_idle_session_is_login_required(http, fd, browser, confidential):
    """prompt=none with a session past its idle time answers login_required."""
    await code_for(browser, confidential, scope="openid profile")
    assert "code" in query((await http.get("/authorize", params=silent(confidential))).headers["location"])
    with transaction(fd.engine) as conn:
        conn.execute(update(Session).values(last_seen_at=now() - 601))
    response = await http.get("/authorize", params=silent(confidential))
    assert query(response.headers["location"])["error"] == "login_required"


async def test_max_age_older_than_the_session_asks_for_a_fresh_sign_in(http, fd, browser, confidential):
    """max_age shorter than the session's age sends the person to sign in again (prompt=none: login_required)."""
    await code_for(browser, confidential, scope="openid profile")
    with transaction(fd.engine) as conn:
        conn.execute(update(Session).values(auth_time=now() - 120))
    response = await http.get("/authorize", params={**silent(confidential), "max_age": "60"})
    assert query(response.headers["location"])["error"] == "login_required"
    params = {k: v for k, v in silent(confidential, max_age="60").items() if k != "prompt"}
    again = await http.get("/authorize", params=params)
    assert re.fullmatch(r"/interaction/[^/]+/login", again.headers["location"])


# --- user agents ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent", "words"),
    [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
            "Edge 126 on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
            "Safari/605.1.15",
            "Safari 17 on macOS",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/17.5 Mobile/15E148 Safari/604.1",
            "Safari 17 on iPhone",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
            "Mobile Safari/537.36",
            "Chrome 126 on Android",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 "
            "Safari/537.36",
            "Chrome (headless) 156 on Linux",
        ),
        ("curl/8.5.0", "curl"),
        ("", "Unknown browser"),
        (None, "Unknown browser"),
    ],
)
def test_user_agent_in_a_few_words(agent, words):
    """The sessions list names a browser and system as a person knows them."""
    assert summarize(agent) == words
