"""Signing out: OpenID Connect RP-Initiated Logout 1.0 at /logout and Back-Channel Logout 1.0 logout tokens, over
HTTP in process; the outbox is drained with a clock and an HTTP transport of the test's own."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import select

from conftest import ISSUER, Browser, Registered, basic, code_for, csrf_of, query
from frontdesk.asgi import open_frontdesk
from frontdesk.oauth.logout import BACKCHANNEL_EVENT, Ended, deliver_due, end_sessions
from frontdesk.oauth.registration import ClientError, render_metadata, update_logout
from frontdesk.storage import audit
from frontdesk.storage.db import now, transaction
from frontdesk.storage.logout import claim_delivery, due_deliveries
from frontdesk.storage.schema import Base, LogoutDelivery, Session
from frontdesk.web import create_app
from test_authorize import params_for

BYE = "https://app.example/bye"
BACKCHANNEL = "https://app.example/backchannel-logout"


@pytest.fixture
def rp(fd, confidential: Registered) -> Registered:
    """The confidential client, registered for RP-Initiated and Back-Channel Logout."""
    update_logout(
        fd,
        confidential.client_id,
        post_logout_redirect_uris=[BYE],
        backchannel_logout_uri=BACKCHANNEL,
        backchannel_logout_session_required=True,
    )
    return confidential


async def tokens(http: httpx.AsyncClient, browser: Browser, client: Registered, scope: str = "openid profile") -> Any:
    code, verifier = await code_for(browser, client, scope=scope)
    response = await http.post(
        "/token", auth=basic(client), data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    )
    assert response.status_code == 200, response.text
    return response.json()


def claims_of(fd, token: str) -> dict[str, Any]:
    return fd.keys.verify(token).claims


def session_ids(fd) -> list[str]:
    with fd.engine.connect() as conn:
        return [r[0] for r in conn.execute(select(Session.id))]


async def signed_in(http: httpx.AsyncClient, client: Registered) -> bool:
    """Whether this browser still has a session: a fresh authorization request skips the sign-in page."""
    response = await http.get("/authorize", params=params_for(client))
    assert response.status_code == 303, response.text
    return not response.headers["location"].endswith("/login")


class Receiver:
    """A client's back-channel logout endpoint, as an httpx transport: records each POST, answers as told."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.received: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.received.append(request)
        return httpx.Response(self.statuses.pop(0) if self.statuses else 200)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))

    def logout_tokens(self) -> list[str]:
        return [parse_qs(r.content.decode())["logout_token"][0] for r in self.received]


def deliver(fd, receiver: Receiver, at: int | None = None) -> dict[str, int]:
    with receiver.client() as client:
        return deliver_due(fd, client, now() if at is None else at)


def outbox(fd) -> list[Any]:
    with fd.engine.connect() as conn:
        return list(conn.execute(select(LogoutDelivery)))


# --- discovery and the sid claim ----------------------------------------------------------------------------------


async def test_discovery_advertises_logout(http):
    """RP-Initiated Logout §2.1 and Back-Channel Logout §2.1: the end-session endpoint and back-channel support."""
    doc = (await http.get("/.well-known/openid-configuration")).json()
    assert doc["end_session_endpoint"] == ISSUER + "/logout"
    assert doc["backchannel_logout_supported"] is True
    assert doc["backchannel_logout_session_supported"] is True
    assert "sid" in doc["claims_supported"]


async def test_id_token_carries_the_session_id(http, browser, rp, fd):
    """Back-Channel Logout §2.1: the ID token's sid is the id of the browser session it was issued in."""
    id_token = (await tokens(http, browser, rp))["id_token"]
    assert claims_of(fd, id_token)["sid"] == session_ids(fd)[0]


async def test_refreshed_id_token_keeps_the_sid(http, browser, rp, fd):
    """An ID token minted at refresh names the same session as the first one."""
    first = await tokens(http, browser, rp, scope="openid profile offline_access")
    response = await http.post(
        "/token", auth=basic(rp), data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert claims_of(fd, response.json()["id_token"])["sid"] == claims_of(fd, first["id_token"])["sid"]


# --- RP-Initiated Logout ------------------------------------------------------------------------------------------


async def test_hint_for_this_session_signs_out_at_once(http, browser, rp):
    """A valid id_token_hint for the current session signs out without a question and returns to the registered
    post_logout_redirect_uri with state echoed."""
    id_token = (await tokens(http, browser, rp))["id_token"]
    response = await http.get(
        "/logout", params={"id_token_hint": id_token, "post_logout_redirect_uri": BYE, "state": "a b/c"}
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith(BYE + "?")
    assert query(response.headers["location"]) == {"state": "a b/c"}
    assert not await signed_in(http, rp)


async def test_logout_by_post_form(http, browser, rp):
    """The end-session endpoint takes the same parameters as a form POST (§2)."""
    id_token = (await tokens(http, browser, rp))["id_token"]
    response = await http.post("/logout", data={"id_token_hint": id_token, "post_logout_redirect_uri": BYE})
    assert response.status_code == 303
    assert response.headers["location"] == BYE
    assert not await signed_in(http, rp)


async def test_expired_hint_is_accepted(http, browser, rp, fd):
    """§2: an expired ID token signed by this server is still a good hint."""
    id_token = (await tokens(http, browser, rp))["id_token"]
    claims = claims_of(fd, id_token)
    stale = fd.keys.sign({**claims, "iat": claims["iat"] - 7200, "exp": claims["iat"] - 3600}, "RS256")
    response = await http.get("/logout", params={"id_token_hint": stale, "post_logout_redirect_uri": BYE})
    assert response.status_code == 303
    assert not await signed_in(http, rp)


async def test_hint_signed_by_a_retired_key_is_accepted(http, browser, rp, fd):
    """A hint signed before a key rotation (by a now retired, still published key) is still ours."""
    id_token = (await tokens(http, browser, rp))["id_token"]
    fd.keys.rotate()
    response = await http.get("/logout", params={"id_token_hint": id_token, "post_logout_redirect_uri": BYE})
    assert response.status_code == 303
    assert not await signed_in(http, rp)


def foreign_token(claims: dict[str, Any]) -> str:
    key = RSAKey.generate_key(2048, parameters={"kid": "foreign"}, private=True)
    return jwt.encode({"alg": "RS256", "kid": "foreign"}, claims, key)


def unsigned(claims: dict[str, Any]) -> str:
    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none'})}.{b64(claims)}."


@pytest.mark.parametrize("forge", [foreign_token, unsigned], ids=["foreign-key", "alg-none"])
async def test_hint_not_issued_here_is_refused_without_redirect(http, browser, rp, fd, forge):
    """OIDCC -bad-id-token-hint / -modified-id-token-hint: a page, no redirect, and the person stays signed in."""
    claims = claims_of(fd, (await tokens(http, browser, rp))["id_token"])
    response = await http.get("/logout", params={"id_token_hint": forge(claims), "post_logout_redirect_uri": BYE})
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "not valid" in response.text
    assert await signed_in(http, rp)


async def test_access_token_is_no_hint(http, browser, rp):
    """Our access tokens are signed by the same ring, yet only an ID token is a hint."""
    access_token = (await tokens(http, browser, rp))["access_token"]
    response = await http.get("/logout", params={"id_token_hint": access_token})
    assert response.status_code == 400
    assert await signed_in(http, rp)


@pytest.mark.parametrize(
    "uri", ["https://evil.example/bye", BYE + "?x=1", BYE + "/", "https://app.example/cb"], ids=str
)
async def test_unregistered_post_logout_redirect_uri_is_refused(http, browser, rp, uri):
    """BCP-31 / OIDCC -bad-post-logout-redirect-uri, -query-added: only an exactly registered URI; else a page."""
    id_token = (await tokens(http, browser, rp))["id_token"]
    response = await http.get("/logout", params={"id_token_hint": id_token, "post_logout_redirect_uri": uri})
    assert response.status_code == 400
    assert "location" not in response.headers
    assert await signed_in(http, rp)


async def test_redirect_needs_a_client(http):
    """§3: without client_id or id_token_hint no post_logout_redirect_uri is honoured."""
    response = await http.get("/logout", params={"post_logout_redirect_uri": BYE, "state": "s"})
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_client_id_must_match_the_hint(http, browser, rp, second):
    """§2: a client_id that the hint was not issued to is refused."""
    id_token = (await tokens(http, browser, rp))["id_token"]
    response = await http.get(
        "/logout", params={"id_token_hint": id_token, "client_id": second.client_id, "post_logout_redirect_uri": BYE}
    )
    assert response.status_code == 400
    assert await signed_in(http, rp)


async def test_client_id_alone_allows_its_redirect_when_signed_out(http, rp):
    """Nobody signed in: nothing to ask, so a registered URI named with client_id gets the browser back at once."""
    response = await http.get(
        "/logout", params={"client_id": rp.client_id, "post_logout_redirect_uri": BYE, "state": "s1"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == BYE + "?state=s1"


async def test_bare_logout_when_signed_out_says_so(http):
    """GET /logout with nothing and no session: a page that says the person is signed out."""
    response = await http.get("/logout")
    assert response.status_code == 200
    assert "You have signed out." in response.text


async def test_request_not_tied_to_the_session_asks_first(http, browser, rp):
    """No hint: a confirmation page, and the session survives (a link from another site signs nobody out)."""
    await tokens(http, browser, rp)
    response = await http.get(
        "/logout", params={"client_id": rp.client_id, "post_logout_redirect_uri": BYE, "state": "s2"}
    )
    assert response.status_code == 200
    assert "Sign out?" in response.text
    assert "Calendar Helper" in response.text
    assert await signed_in(http, rp)
    confirmed = await http.post(
        "/logout/confirm",
        data={
            "csrf": csrf_of(response.text),
            "client_id": rp.client_id,
            "post_logout_redirect_uri": BYE,
            "state": "s2",
            "decision": "logout",
        },
    )
    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == BYE + "?state=s2"
    assert not await signed_in(http, rp)


async def test_hint_of_another_session_asks_first(http, browser, rp, fd, person):
    """A hint from an earlier session of the same person is not this session: ask."""
    old = (await tokens(http, browser, rp))["id_token"]
    await http.get("/logout", params={"id_token_hint": old})  # that session ends
    await tokens(http, browser, rp)  # a new one begins
    response = await http.get("/logout", params={"id_token_hint": old})
    assert response.status_code == 200
    assert "Sign out?" in response.text
    assert await signed_in(http, rp)


async def test_staying_signed_in(http, browser, rp):
    """Choosing to stay signed in keeps the session and still returns to the client."""
    await tokens(http, browser, rp)
    page = await http.get("/logout", params={"client_id": rp.client_id, "post_logout_redirect_uri": BYE})
    response = await http.post(
        "/logout/confirm",
        data={
            "csrf": csrf_of(page.text),
            "client_id": rp.client_id,
            "post_logout_redirect_uri": BYE,
            "decision": "stay",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == BYE
    assert await signed_in(http, rp)


async def test_confirmation_needs_the_sessions_csrf_token(http, browser, rp):
    """A forged confirmation (no or another CSRF token) is refused: no CSRF sign-out."""
    await tokens(http, browser, rp)
    for csrf in ("", "0" * 64):
        response = await http.post("/logout/confirm", data={"csrf": csrf, "decision": "logout"})
        assert response.status_code == 403
    assert await signed_in(http, rp)


async def test_logout_is_audited(http, browser, rp, fd):
    """Signing out is an audit event naming the person and the clients told."""
    id_token = (await tokens(http, browser, rp))["id_token"]
    await http.get("/logout", params={"id_token_hint": id_token})
    event = [e for e in audit.tail(fd.engine) if e.event == "logout"][-1]
    assert event.outcome == "success"
    assert event.user_id == claims_of(fd, id_token)["sub"]
    assert event.detail["clients"] == [rp.client_id]


async def test_session_only_grants_end_with_the_session(http, browser, rp):
    """Back-Channel Logout §2.7: an OpenID grant without offline_access dies with the session; one with it lives."""
    online = await tokens(http, browser, rp, scope="openid profile")
    offline = await tokens(http, browser, rp, scope="openid profile offline_access")
    await http.get("/logout", params={"id_token_hint": online["id_token"]})
    bearer = {"Authorization": f"Bearer {online['access_token']}"}
    assert (await http.get("/userinfo", headers=bearer)).status_code == 401
    refreshed = await http.post(
        "/token", auth=basic(rp), data={"grant_type": "refresh_token", "refresh_token": offline["refresh_token"]}
    )
    assert refreshed.status_code == 200


# --- Back-Channel Logout ------------------------------------------------------------------------------------------


async def test_logout_token_is_delivered_with_the_spec_claims(http, browser, rp, fd):
    """Back-Channel Logout §2.4: a logout+jwt signed with our keys, claims iss, aud, iat, exp, jti, sub, sid and the
    event, and no nonce; POSTed as logout_token."""
    id_token = (await tokens(http, browser, rp))["id_token"]
    await http.get("/logout", params={"id_token_hint": id_token})
    receiver = Receiver()
    assert deliver(fd, receiver) == {"delivered": 1}
    [request] = receiver.received
    assert str(request.url) == BACKCHANNEL
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    [token] = receiver.logout_tokens()
    keys = KeySet.import_key_set(json.loads((await http.get("/jwks")).content))
    decoded = jwt.decode(token, keys, algorithms=["RS256"])
    assert decoded.header["typ"] == "logout+jwt"
    claims = decoded.claims
    id_claims = claims_of(fd, id_token)
    assert claims["iss"] == ISSUER
    assert claims["aud"] == rp.client_id
    assert claims["sub"] == id_claims["sub"]
    assert claims["sid"] == id_claims["sid"]
    assert claims["events"] == {BACKCHANNEL_EVENT: {}}
    assert claims["iat"] <= claims["exp"] <= claims["iat"] + 300
    assert claims["jti"]
    assert "nonce" not in claims
    assert outbox(fd) == []
    assert [e.outcome for e in audit.tail(fd.engine) if e.event == "logout.backchannel"] == ["delivered"]


async def test_only_clients_used_in_the_session_are_told(http, browser, rp, second, fd):
    """A client the person never used in this session, or without a back-channel URI, gets nothing."""
    update_logout(
        fd,
        second.client_id,
        post_logout_redirect_uris=[],
        backchannel_logout_uri="https://other.example/bcl",
        backchannel_logout_session_required=False,
    )
    id_token = (await tokens(http, browser, rp))["id_token"]
    await http.get("/logout", params={"id_token_hint": id_token})
    receiver = Receiver()
    deliver(fd, receiver)
    assert [str(r.url) for r in receiver.received] == [BACKCHANNEL]


async def test_failed_delivery_is_retried_with_backoff(http, browser, rp, fd):
    """A 503 (or no answer) leaves the token in the outbox until first_retry seconds later, then it goes again."""
    id_token = (await tokens(http, browser, rp))["id_token"]
    await http.get("/logout", params={"id_token_hint": id_token})
    at = now()
    receiver = Receiver(503)
    assert deliver(fd, receiver, at) == {"failed": 1}
    first_retry = fd.settings.backchannel_logout.first_retry
    assert deliver(fd, receiver, at + first_retry - 1) == {}
    assert deliver(fd, receiver, at + first_retry) == {"delivered": 1}
    first, second_try = receiver.logout_tokens()
    assert claims_of(fd, first)["jti"] == claims_of(fd, second_try)["jti"]  # the same event, sent again
    assert [e.outcome for e in audit.tail(fd.engine) if e.event == "logout.backchannel"] == ["failed", "delivered"]


async def test_outbox_survives_a_restart(http, browser, rp, fd):
    """A queued logout token is in the database: a process started afterwards delivers it."""
    id_token = (await tokens(http, browser, rp))["id_token"]
    await http.get("/logout", params={"id_token_hint": id_token})
    restarted = open_frontdesk(fd.settings, run_migrations=False, ensure_keys=False)
    try:
        receiver = Receiver()
        assert deliver(restarted, receiver) == {"delivered": 1}
    finally:
        restarted.close()


async def test_delivery_is_given_up_after_max_attempts(http, browser, rp, fd):
    """Attempts are bounded: after max_attempts failures the token is dropped and the abandonment audited."""
    id_token = (await tokens(http, browser, rp))["id_token"]
    await http.get("/logout", params={"id_token_hint": id_token})
    settings = fd.settings.backchannel_logout
    receiver = Receiver(*[500] * settings.max_attempts)
    at = now()
    for _ in range(settings.max_attempts):
        deliver(fd, receiver, at)
        at += settings.max_retry
    assert len(receiver.received) == settings.max_attempts
    assert outbox(fd) == []
    outcomes = [e.outcome for e in audit.tail(fd.engine, 100) if e.event == "logout.backchannel"]
    assert outcomes == ["failed"] * (settings.max_attempts - 1) + ["abandoned"]


async def test_a_client_that_answers_400_is_not_asked_again(http, browser, rp, fd):
    """§2.8: 400 means the client could not use the token; the same claims would fail again, so no retry."""
    id_token = (await tokens(http, browser, rp))["id_token"]
    await http.get("/logout", params={"id_token_hint": id_token})
    assert deliver(fd, Receiver(400)) == {"refused": 1}
    assert outbox(fd) == []


async def test_unreachable_client_is_retried(http, browser, rp, fd):
    """A connection error is a failed attempt like a 5xx: the token stays for a later round."""
    id_token = (await tokens(http, browser, rp))["id_token"]
    await http.get("/logout", params={"id_token_hint": id_token})

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with httpx.Client(transport=httpx.MockTransport(refuse)) as client:
        assert deliver_due(fd, client, now()) == {"failed": 1}
    assert len(outbox(fd)) == 1


async def test_a_delivery_is_claimed_by_one_process_only(http, browser, rp, fd):
    """Two processes that see the same due delivery: exactly one claims the attempt."""
    id_token = (await tokens(http, browser, rp))["id_token"]
    await http.get("/logout", params={"id_token_hint": id_token})
    with transaction(fd.engine, readonly=True) as conn:
        [row] = due_deliveries(conn, now(), 10)
    results: list[bool] = []

    def claim() -> None:
        with transaction(fd.engine) as conn:
            results.append(claim_delivery(conn, row, now(), 15))

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]


async def test_sign_out_everywhere_tells_each_session(http, browser, rp, fd, person):
    """end_sessions(fd, user, None) ends every session of the person, one logout token per session and client."""
    await tokens(http, browser, rp)
    transport = httpx.ASGITransport(app=create_app(fd), client=("198.51.100.9", 1))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as other:
        await tokens(other, Browser(other, *person), rp)
        sids = set(session_ids(fd))
        assert len(sids) == 2
        user_id = claims_of(fd, (await tokens(other, Browser(other, *person), rp))["id_token"])["sub"]
        assert end_sessions(fd, user_id, None) == Ended(sessions=2, notified=2)
        assert not await signed_in(other, rp)
    assert not await signed_in(http, rp)
    receiver = Receiver()
    deliver(fd, receiver)
    assert {claims_of(fd, t)["sid"] for t in receiver.logout_tokens()} == sids


async def test_end_sessions_by_id_leaves_the_others(http, browser, rp, fd, person):
    """end_sessions with one session id (the account page's "sign out" of one browser) ends only that one."""
    id_token = (await tokens(http, browser, rp))["id_token"]
    claims = claims_of(fd, id_token)
    transport = httpx.ASGITransport(app=create_app(fd), client=("198.51.100.9", 1))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as other:
        await tokens(other, Browser(other, *person), rp)
        end_sessions(fd, claims["sub"], [claims["sid"]])
        assert await signed_in(other, rp)
    assert not await signed_in(http, rp)


# --- client metadata ----------------------------------------------------------------------------------------------


def test_client_metadata_names_logout_fields(fd, rp):
    """The RFC 7591 view of the client shows its sign-out metadata."""
    meta = render_metadata(fd.clients.get(rp.client_id))
    assert meta["post_logout_redirect_uris"] == [BYE]
    assert meta["backchannel_logout_uri"] == BACKCHANNEL
    assert meta["backchannel_logout_session_required"] is True


@pytest.mark.parametrize(
    ("post_logout", "backchannel"),
    [
        (["http://app.example/bye"], None),
        (["https://app.example/bye#frag"], None),
        ([], "http://app.example/bcl"),
        ([], "https://app.example/bcl#x"),
        ([], "ftp://app.example/bcl"),
    ],
)
def test_bad_logout_metadata_is_refused(fd, confidential, post_logout, backchannel):
    """Post-logout URIs follow the redirect URI rules; the back-channel URI is https without a fragment."""
    with pytest.raises(ClientError):
        update_logout(
            fd,
            confidential.client_id,
            post_logout_redirect_uris=post_logout,
            backchannel_logout_uri=backchannel,
            backchannel_logout_session_required=False,
        )


# --- the schema ---------------------------------------------------------------------------------------------------

MINE = {"session_grants", "logout_deliveries", "signin_failures", "upstream_providers", "upstream_logins"}
MINE |= {"upstream_identities"}
CLIENT_COLUMNS = {"post_logout_redirect_uris", "backchannel_logout_uri", "backchannel_logout_session_required"}


def touches_mine(diff: Any) -> bool:
    text = repr(diff)
    return any(name in text for name in MINE | CLIENT_COLUMNS)


def test_migration_0005_builds_what_the_models_declare(fd):
    """Alembic finds no difference between the migrated database and the models for the 0005 tables and columns."""
    with fd.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diffs if touches_mine(d)] == []
