"""Clients the operator did not register — ones that registered themselves (RFC 7591) or are named by a client ID
metadata document — are marked as such everywhere (consent, account page, command line), are never let in on a
remembered consent, and record the day they were last issued a token (issue 13, item 1)."""

from __future__ import annotations

import argparse
import json
import secrets
from dataclasses import replace
from typing import Any

import httpx
import pytest

from conftest import Browser, Registered, csrf_of, pkce, query
from frontdesk.cli import clients as client_commands
from frontdesk.core import Frontdesk
from frontdesk.oauth import grants
from frontdesk.oauth.app_identity import identity_of, is_loopback
from frontdesk.oauth.grants import DEVICE_CODE, USED_EVERY
from frontdesk.storage.clients import RegisteredBy, mark_used
from frontdesk.storage.db import now, transaction

SCOPE = "openid profile offline_access"
NOT_CHECKED = "was not checked by the operator of this service"


def unvetted(
    fd: Frontdesk,
    registered_by: RegisteredBy = "self",
    *,
    name: str = "Calendar Helper",
    redirect_uri: str = "https://tools.example/cb",
    application_type: str = "web",
) -> Registered:
    """A public client as /register or a metadata document would leave it (a fresh client_id per test: the
    last-use memo is per process)."""
    token = secrets.token_hex(6)
    client_id = f"https://tools.example.com/{token}/client.json" if registered_by == "document" else f"dcr-{token}"
    far = now() + 365 * 86400  # a document's stored copy stays fresh: nothing is fetched
    fd.clients.insert(
        client_id=client_id,
        secret=None,
        name=name,
        auth_method="none",
        redirect_uris=[redirect_uri],
        grant_types=["authorization_code", "refresh_token", DEVICE_CODE],
        scope=SCOPE.split(),
        jwks=None,
        jwks_uri=None,
        application_type=application_type,
        registered_by=registered_by,
        metadata_expires_at=far if registered_by == "document" else None,
        metadata_stale_until=far if registered_by == "document" else None,
    )
    return Registered(client_id, None, redirect_uri)


def authorize_params(client: Registered, challenge: str = "x" * 43, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": SCOPE,
        "state": "xyz",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


async def tokens(http: httpx.AsyncClient, browser: Browser, client: Registered) -> dict[str, Any]:
    """Sign in, allow, and redeem the code: the client's first tokens."""
    verifier, challenge = pkce()
    done = await browser.authorize(**authorize_params(client, challenge))
    code = query(done.headers["location"])["code"]
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier, "client_id": client.client_id}
    response = await http.post("/token", data=data)
    assert response.status_code == 200, response.text
    return response.json()


async def refresh(http: httpx.AsyncClient, client: Registered, token: str) -> dict[str, Any]:
    data = {"grant_type": "refresh_token", "refresh_token": token, "client_id": client.client_id}
    response = await http.post("/token", data=data)
    assert response.status_code == 200, response.text
    return response.json()


def last_used(fd: Frontdesk, client_id: str) -> int | None:
    client = fd.clients.get(client_id, cached=False)
    assert client is not None
    return client.last_used_at


# --- how an app is named (pure) -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("client_id", "host"),
    [
        ("https://tools.example.com/client.json", "tools.example.com"),
        ("https://tools.example.com:443/c", "tools.example.com"),
        ("https://tools.example.com:8443/c", "tools.example.com:8443"),
        ("https://someone@tools.example.com/c", "tools.example.com"),
        ("https://[::1]:8443/c", "[::1]:8443"),
    ],
)
def test_a_document_client_is_named_by_its_host_never_its_userinfo(fd, client_id, host):
    client = replace(fd.clients.get(unvetted(fd, "document").client_id), client_id=client_id)
    identity = identity_of(client, client_id)
    assert identity.document_host == host
    assert identity.label == f"the app at {host}"


def test_a_self_registered_client_is_labelled_by_what_it_calls_itself(fd):
    app = unvetted(fd, name="Calendar Helper")
    assert identity_of(fd.clients.get(app.client_id), app.client_id).label == "“Calendar Helper” (registered itself)"
    assert identity_of(None, "gone").label == "gone"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1:53682", True), ("[::1]:8080", True), ("localhost:3000", True), ("tools.example", False),
     ("[bad", False)],
)  # fmt: skip
def test_a_loopback_redirect_host_is_recognised(host, loopback):
    assert is_loopback(host) is loopback


# --- the consent page -----------------------------------------------------------------------------------------------


async def test_consent_says_a_self_registered_app_registered_itself_and_where_it_sends_back(fd, browser):
    """Its chosen name is only what it calls itself, escaped; the page names the redirect host."""
    app = unvetted(fd, name="Calendar <b>Helper</b>")
    page = await browser.authorize(consent=None, **authorize_params(app))
    assert page.status_code == 200, page.text
    assert f"This app registered itself and {NOT_CHECKED}" in page.text
    assert "An app that calls itself “Calendar &lt;b&gt;Helper&lt;/b&gt;” is asking to:" in page.text
    assert "<b>Helper" not in page.text
    assert "<strong>Calendar" not in page.text
    assert "you will be sent to <strong>tools.example</strong>" in page.text


async def test_consent_names_a_metadata_document_app_by_its_host(fd, browser):
    app = unvetted(fd, "document", name="Calendar Helper")
    page = await browser.authorize(consent=None, **authorize_params(app))
    assert page.status_code == 200, page.text
    assert "<strong>App at tools.example.com</strong> is asking to:" in page.text
    assert f"It calls itself “Calendar Helper”. <strong>This app {NOT_CHECKED}.</strong>" in page.text
    assert "<strong>Calendar Helper</strong>" not in page.text


async def test_consent_warns_that_a_loopback_redirect_is_a_program_on_this_device(fd, browser):
    """MCP security best practices: show the redirect host, and say when it is this very device."""
    app = unvetted(fd, redirect_uri="http://127.0.0.1:53682/callback", application_type="native")
    page = await browser.authorize(consent=None, **authorize_params(app))
    assert "<strong>127.0.0.1:53682</strong>, a program on this device." in page.text


async def test_only_clients_nobody_vetted_carry_the_warning(fd, browser, confidential):
    operator = await browser.authorize(consent=None, **authorize_params(confidential))
    assert "<strong>Calendar Helper</strong> is asking to:" in operator.text
    assert NOT_CHECKED not in operator.text
    own = await browser.authorize(consent=None, **authorize_params(unvetted(fd)))
    assert NOT_CHECKED in own.text


async def test_device_consent_says_the_app_registered_itself(fd, http, browser):
    app = unvetted(fd)
    started = await http.post("/device_authorization", data={"client_id": app.client_id, "scope": SCOPE})
    assert started.status_code == 200, started.text
    form = await browser.follow(await http.get("/device"))
    form = await browser.follow(await browser.sign_in(form))
    confirm = await http.post("/device", data={"csrf": csrf_of(form.text), "user_code": started.json()["user_code"]})
    assert f"This app registered itself and {NOT_CHECKED}" in confirm.text


# --- consent is never skipped for them ------------------------------------------------------------------------------


async def test_a_self_registered_app_is_asked_every_time(fd, browser):
    """A consent given once does not let it in again without the person."""
    app = unvetted(fd)
    first = await browser.authorize(**authorize_params(app))
    assert "code" in query(first.headers["location"])
    again = await browser.authorize(consent=None, **authorize_params(app))
    assert again.status_code == 200
    assert 'value="allow"' in again.text


@pytest.mark.parametrize("registered_by", ["self", "document"])
async def test_prompt_none_for_a_client_nobody_vetted_is_consent_required(fd, browser, registered_by):
    """OIDC Core §3.1.2.6: it would need consent, which prompt=none cannot ask."""
    app = unvetted(fd, registered_by)
    await browser.authorize(**authorize_params(app))
    silent = await browser.authorize(**authorize_params(app, prompt="none"))
    assert silent.status_code in (302, 303)
    assert silent.headers["location"].startswith(app.redirect_uri)
    assert query(silent.headers["location"])["error"] == "consent_required"


# --- the account page -----------------------------------------------------------------------------------------------


async def test_connected_apps_mark_self_registered_and_document_apps(fd, http, browser):
    await browser.authorize(**authorize_params(unvetted(fd, name="Helper <i>one</i>")))
    await browser.authorize(**authorize_params(unvetted(fd, "document", name="Helper two")))
    page = await http.get("/account/apps")
    assert page.status_code == 200, page.text
    assert "An app that calls itself “Helper &lt;i&gt;one&lt;/i&gt;”</h2>" in page.text
    assert "This app registered itself" in page.text
    assert "App at tools.example.com</h2>" in page.text
    assert "Calls itself “Helper two”" in page.text


async def test_revoking_a_self_registered_app_names_it_as_registered_itself(fd, http, browser):
    app = unvetted(fd)
    await browser.authorize(**authorize_params(app))
    page = await http.get("/account/apps")
    done = await browser.follow(
        await http.post("/account/apps/revoke", data={"csrf": csrf_of(page.text), "client_id": app.client_id})
    )
    assert "“Calendar Helper” (registered itself) can no longer use your account." in done.text


# --- the command line -----------------------------------------------------------------------------------------------


def run_command(fd: Frontdesk, monkeypatch, capsys, fn, **args: Any) -> str:
    """A ``frontdesk client …`` command, in process, on the test's frontdesk."""
    monkeypatch.setattr(client_commands, "open_for", lambda _: fd)
    fn(argparse.Namespace(**args))
    return str(capsys.readouterr().out)


def test_client_list_adds_who_registered_it_for_clients_nobody_vetted(fd, monkeypatch, capsys, confidential):
    own, document = unvetted(fd), unvetted(fd, "document")
    lines = run_command(fd, monkeypatch, capsys, client_commands.cmd_client_list, json=False).splitlines()
    assert "conf-client\tclient_secret_basic\tCalendar Helper" in lines  # as before
    assert f"{own.client_id}\tnone\tCalendar Helper\tregistered itself" in lines
    assert f"{document.client_id}\tnone\tCalendar Helper\tmetadata document" in lines
    listed = json.loads(run_command(fd, monkeypatch, capsys, client_commands.cmd_client_list, json=True))
    by_id = {c["client_id"]: c for c in listed}
    assert "registered_by" not in by_id["conf-client"]
    assert by_id[own.client_id]["registered_by"] == "self"


async def test_client_show_says_who_registered_it_and_when_it_was_last_used(
    fd, http, browser, monkeypatch, capsys, confidential
):
    app = unvetted(fd)
    shown = run_command(fd, monkeypatch, capsys, client_commands.cmd_client_show, client_id=app.client_id, json=False)
    assert "registered by: the client itself (dynamic registration)" in shown
    assert "last used:    never" in shown
    await tokens(http, browser, app)
    shown = run_command(fd, monkeypatch, capsys, client_commands.cmd_client_show, client_id=app.client_id, json=True)
    assert json.loads(shown)["last_used_at"] == last_used(fd, app.client_id) is not None
    operator = run_command(
        fd, monkeypatch, capsys, client_commands.cmd_client_show, client_id="conf-client", json=False
    )
    assert "registered by" not in operator


# --- last_used_at ---------------------------------------------------------------------------------------------------


async def test_redeeming_a_code_records_the_day_a_self_registered_app_was_used(fd, http, browser):
    app = unvetted(fd)
    assert last_used(fd, app.client_id) is None
    before = now()
    await tokens(http, browser, app)
    used = last_used(fd, app.client_id)
    assert used is not None
    assert used >= before


async def test_a_refresh_a_day_later_records_the_new_day(fd, http, browser, clock):
    app = unvetted(fd)
    issued = await tokens(http, browser, app)
    first = last_used(fd, app.client_id)
    clock.advance(3600)
    issued = await refresh(http, app, issued["refresh_token"])
    assert last_used(fd, app.client_id) == first  # within the day: not written again
    clock.advance(USED_EVERY)
    await refresh(http, app, issued["refresh_token"])
    # The clock is advanced, not frozen: the write may fall a second after the advance.
    assert first + USED_EVERY <= last_used(fd, app.client_id) <= now()


async def test_an_approved_device_records_the_use(fd, http, browser):
    app = unvetted(fd)
    started = (await http.post("/device_authorization", data={"client_id": app.client_id, "scope": SCOPE})).json()
    form = await browser.follow(await browser.sign_in(await browser.follow(await http.get("/device"))))
    code = started["user_code"]
    confirm = await http.post("/device", data={"csrf": csrf_of(form.text), "user_code": code})
    await http.post("/device/decide", data={"csrf": csrf_of(confirm.text), "user_code": code, "decision": "allow"})
    data = {"grant_type": DEVICE_CODE, "device_code": started["device_code"], "client_id": app.client_id}
    assert (await http.post("/token", data=data)).status_code == 200
    assert last_used(fd, app.client_id) is not None


async def test_the_operators_clients_cost_the_token_endpoint_no_statement(fd, http, browser, confidential, monkeypatch):
    """Nothing is written on the hot path for a vetted client: it is never purged."""
    written: list[str] = []
    monkeypatch.setattr(grants, "mark_used", lambda conn, client_id, *_: written.append(client_id) or True)
    verifier, challenge = pkce()
    done = await browser.authorize(**authorize_params(confidential, challenge))
    data = {
        "grant_type": "authorization_code",
        "code": query(done.headers["location"])["code"],
        "code_verifier": verifier,
    }
    issued = await http.post("/token", auth=(confidential.client_id, confidential.secret or ""), data=data)
    assert issued.status_code == 200
    again = {"grant_type": "refresh_token", "refresh_token": issued.json()["refresh_token"]}
    assert (await http.post("/token", auth=(confidential.client_id, confidential.secret or ""), data=again)).is_success
    assert written == []
    assert last_used(fd, confidential.client_id) is None


async def test_a_process_writes_the_day_once_however_often_the_app_gets_tokens(fd, http, browser, monkeypatch):
    """The per-process memo spares the statement within the day."""
    written: list[str] = []
    real = grants.mark_used
    monkeypatch.setattr(grants, "mark_used", lambda *a: written.append(a[1]) or real(*a))
    app = unvetted(fd)
    issued = await tokens(http, browser, app)
    for _ in range(3):
        issued = await refresh(http, app, issued["refresh_token"])
    assert written == [app.client_id]


def test_the_use_is_written_once_a_day_whichever_process_writes_it(fd):
    """The conditional UPDATE: a second writer within the day (another process) changes nothing."""
    app = unvetted(fd)
    at = now()
    with transaction(fd.engine) as conn:
        assert mark_used(conn, app.client_id, at, USED_EVERY) is True
        assert mark_used(conn, app.client_id, at + 60, USED_EVERY) is False
        assert mark_used(conn, app.client_id, at + USED_EVERY, USED_EVERY) is True
    assert last_used(fd, app.client_id) == at + USED_EVERY
