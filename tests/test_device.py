"""The device authorization grant (RFC 8628) over HTTP: the device endpoint, polling and the /device pages."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from conftest import ISSUER, Browser, Registered, basic, csrf_of, query
from frontdesk.config import Lifetimes
from frontdesk.oauth.grants import DEVICE_CODE
from frontdesk.oauth.registration import register
from frontdesk.protocol.rfc8628 import ALPHABET
from frontdesk.storage.db import transaction
from frontdesk.storage.device import device_for

USER_CODE = re.compile(f"[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}")
SCOPE = "openid profile offline_access"


async def start(http: httpx.AsyncClient, client: Registered, scope: str = SCOPE) -> httpx.Response:
    """POST /device_authorization as ``client`` (client_id for a public client, Basic otherwise)."""
    if client.secret is None:
        return await http.post("/device_authorization", data={"client_id": client.client_id, "scope": scope})
    return await http.post("/device_authorization", auth=basic(client), data={"scope": scope})


async def started(http: httpx.AsyncClient, client: Registered) -> dict[str, Any]:
    response = await start(http, client)
    assert response.status_code == 200, response.text
    return response.json()


async def poll(http: httpx.AsyncClient, client: Registered, device_code: str) -> httpx.Response:
    return await http.post(
        "/token", data={"grant_type": DEVICE_CODE, "device_code": device_code, "client_id": client.client_id}
    )


async def device_page(browser: Browser, user_code: str | None = None) -> httpx.Response:
    """GET /device as a browser: signed out it leads through sign-in and back to the code form."""
    params = {"user_code": user_code} if user_code else {}
    response = await browser.follow(await browser.http.get("/device", params=params))
    if response.status_code == 200 and 'name="password"' in response.text:
        response = await browser.follow(await browser.sign_in(response))
    assert response.status_code == 200, response.text
    assert 'action="/device"' in response.text, response.text
    return response


async def answer(browser: Browser, user_code: str, decision: str) -> httpx.Response:
    """Type the user code on /device and allow or deny on the consent page that follows."""
    form = await device_page(browser)
    confirm = await browser.http.post("/device", data={"csrf": csrf_of(form.text), "user_code": user_code})
    assert confirm.status_code == 200, confirm.text
    assert 'action="/device/decide"' in confirm.text
    done = await browser.http.post(
        "/device/decide", data={"csrf": csrf_of(confirm.text), "user_code": user_code, "decision": decision}
    )
    assert done.status_code == 200, done.text
    return done


def assert_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error, response.text


async def test_device_authorization_response(http, public):
    """The response has device_code, a XXXX-XXXX consonant user_code, both URIs, expires_in and interval."""
    body = await started(http, public)
    assert body["device_code"].startswith("fd_dc_")
    assert USER_CODE.fullmatch(body["user_code"]), body["user_code"]
    assert body["verification_uri"] == f"{ISSUER}/device"
    assert body["verification_uri_complete"].startswith(f"{ISSUER}/device?")
    assert query(body["verification_uri_complete"])["user_code"] == body["user_code"]
    assert body["expires_in"] == 600
    assert body["interval"] == 5


async def test_device_authorization_response_is_not_cached(http, public):
    """The device authorization response carries Cache-Control: no-store."""
    response = await start(http, public)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"


async def test_user_codes_use_only_consonants(http, public):
    """Twenty user codes contain only the consonant alphabet (no vowels, no digits)."""
    for _ in range(20):
        code = (await started(http, public))["user_code"].replace("-", "")
        assert set(code) <= set(ALPHABET)
        assert not set(code) & set("AEIOUY0123456789")


async def test_first_poll_is_authorization_pending(http, public):
    """Polling before the person answers gives authorization_pending."""
    body = await started(http, public)
    assert_error(await poll(http, public, body["device_code"]), 400, "authorization_pending")


async def test_polling_too_fast_is_slow_down(http, fd, public):
    """Polling again at once gives slow_down and the stored interval grows by 5 seconds."""
    body = await started(http, public)
    assert_error(await poll(http, public, body["device_code"]), 400, "authorization_pending")
    assert_error(await poll(http, public, body["device_code"]), 400, "slow_down")
    with transaction(fd.engine, readonly=True) as conn:
        row = device_for(conn, body["device_code"])
    assert row is not None
    assert row.interval == body["interval"] + 5


async def test_approved_device_gets_tokens(http, browser, public):
    """After a signed-in person approves the user code on /device, polling returns tokens."""
    body = await started(http, public)
    assert_error(await poll(http, public, body["device_code"]), 400, "authorization_pending")
    await answer(browser, body["user_code"], "allow")
    response = await poll(http, public, body["device_code"])
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert {"access_token", "refresh_token", "id_token", "expires_in"} <= set(tokens)
    assert tokens["token_type"] == "Bearer"
    assert tokens["scope"] == SCOPE
    info = await http.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200, info.text
    assert info.json()["preferred_username"] == "alice"


async def test_device_page_sends_signed_out_person_to_sign_in(http, public):
    """GET /device without a session redirects to the sign-in page of a new interaction."""
    response = await http.get("/device")
    assert response.status_code == 303
    assert re.fullmatch(r"/interaction/[^/]+/login", response.headers["location"])


async def test_denied_device_is_access_denied(http, browser, public):
    """After the person denies the user code, polling gives access_denied."""
    body = await started(http, public)
    done = await answer(browser, body["user_code"], "deny")
    assert "denied" in done.text
    assert_error(await poll(http, public, body["device_code"]), 400, "access_denied")


@pytest.mark.parametrize("lifetimes", [Lifetimes(device_code=1)], ids=["device-code-ttl-1s"])
async def test_expired_device_code_is_expired_token(http, public, lifetimes, clock):
    """Polling after the device code's lifetime gives expired_token."""
    body = await started(http, public)
    assert body["expires_in"] == 1
    clock.advance(2.1)
    assert_error(await poll(http, public, body["device_code"]), 400, "expired_token")


async def test_device_code_used_twice_is_invalid_grant(http, browser, public):
    """A device code that already gave tokens is refused with invalid_grant."""
    body = await started(http, public)
    await answer(browser, body["user_code"], "allow")
    assert (await poll(http, public, body["device_code"])).status_code == 200
    assert_error(await poll(http, public, body["device_code"]), 400, "invalid_grant")


async def test_device_code_of_another_client_is_invalid_grant(http, fd, browser, public):
    """A device code polled by another client is refused with invalid_grant."""
    other, _ = register(
        fd,
        name="Other TV",
        client_id="other-tv",
        auth_method="none",
        redirect_uris=[],
        grant_types=[DEVICE_CODE],
        scope=SCOPE,
    )
    body = await started(http, public)
    await answer(browser, body["user_code"], "allow")
    assert_error(await poll(http, Registered(other.client_id, None, ""), body["device_code"]), 400, "invalid_grant")
    assert (await poll(http, public, body["device_code"])).status_code == 200


async def test_client_without_device_grant_is_unauthorized_client(http, confidential):
    """A client not registered for the device grant is refused at /device_authorization with unauthorized_client."""
    assert_error(await start(http, confidential), 400, "unauthorized_client")


async def test_device_authorization_with_unregistered_scope_is_invalid_scope(http, fd, public):
    """A device authorization asking for a scope the client is not registered for gives invalid_scope."""
    fd.create_scope("calendar.write", "Change your calendar")
    assert_error(await start(http, public, scope="openid calendar.write"), 400, "invalid_scope")


async def test_wrong_user_code_shows_the_form_again(http, browser, public):
    """A user code that matches no request shows the code form again with status 400."""
    await started(http, public)
    form = await device_page(browser)
    response = await http.post("/device", data={"csrf": csrf_of(form.text), "user_code": "BCDF-GHJK"})
    assert response.status_code == 400, response.text
    assert 'action="/device"' in response.text
    assert 'name="user_code"' in response.text
    assert 'value="allow"' not in response.text


async def test_user_code_is_matched_loosely(http, browser, public):
    """A user code typed in lower case without the dash is still recognised."""
    body = await started(http, public)
    form = await device_page(browser)
    typed = body["user_code"].replace("-", "").lower()
    response = await http.post("/device", data={"csrf": csrf_of(form.text), "user_code": typed})
    assert response.status_code == 200, response.text
    assert 'value="allow"' in response.text


async def test_device_form_without_csrf_is_refused(http, browser, public):
    """Posting a user code without the CSRF token is refused with 403."""
    body = await started(http, public)
    await device_page(browser)
    response = await http.post("/device", data={"user_code": body["user_code"]})
    assert response.status_code == 403
