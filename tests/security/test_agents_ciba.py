"""OpenID Connect CIBA Core 1.0: one test per item of the agents checklist's §6 (AG-CIBA-01 … AG-CIBA-10,
/work/shared/reference/agents-checklist.md), named after its ID, with the checklist's black-box test as its body."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from conftest import ISSUER, Registered, basic, remember
from frontdesk.config import RateLimits
from frontdesk.oauth.registration import register
from frontdesk.storage.schema import BackchannelRequest
from test_ciba import CIBA, answer, approvals, bc_authorize, poll, register_agent, started
from test_token import tokens_for


@pytest.fixture
def agent(fd, secrets_seen) -> Registered:
    return register_agent(fd, secrets_seen)


def assert_error(response, error: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error, response.text


def stored(fd) -> int:
    with fd.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(BackchannelRequest)).scalar_one())


async def test_AG_CIBA_01_discovery_advertises_the_backchannel_endpoint_modes_and_grant(http):
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        meta = (await http.get(path)).json()
        assert meta["backchannel_authentication_endpoint"] == f"{ISSUER}/bc-authorize"
        assert meta["backchannel_token_delivery_modes_supported"] == ["poll", "ping"]
        assert meta["backchannel_user_code_parameter_supported"] is False
        assert CIBA in meta["grant_types_supported"]
        # Signed requests are not supported (§4: the metadata is then left out).
        assert "backchannel_authentication_request_signing_alg_values_supported" not in meta


async def test_AG_CIBA_02_zero_or_two_hints_are_invalid_request_and_only_authenticated_posts_count(
    http, fd, agent, person
):
    assert_error(await bc_authorize(http, agent, login_hint=""), "invalid_request")
    assert_error(await bc_authorize(http, agent, id_token_hint="x.y.z"), "invalid_request")
    assert_error(await bc_authorize(http, agent, login_hint_token="opaque"), "invalid_request")
    assert_error(await bc_authorize(http, agent, scope="profile"), "invalid_scope")  # §7.1: openid is required
    assert (await http.get("/bc-authorize")).status_code == 405
    unauthenticated = await http.post("/bc-authorize", data={"scope": "openid", "login_hint": "alice"})
    assert_error(unauthenticated, "invalid_client", 401)
    assert stored(fd) == 0


@pytest.mark.parametrize("claim", ["aud", "iss", "exp", "iat", "nbf", "jti"])
async def test_AG_CIBA_03_a_signed_request_is_refused_whatever_its_claims(http, fd, agent, person, claim):
    """This server does not support signed authentication requests (§7.1.1 is optional; discovery says so by
    omission), so a request object, with or without each required claim, is 400 and nothing is started."""
    claims = {"aud": ISSUER, "iss": agent.client_id, "exp": 2**31, "iat": 1, "nbf": 1, "jti": "j1", "scope": "openid"}
    claims.pop(claim)
    request_object = fd.keys.sign({**claims, "login_hint": "alice"}, "ES256")
    response = await http.post("/bc-authorize", auth=basic(agent), data={"request": request_object})
    assert_error(response, "invalid_request")
    assert stored(fd) == 0


async def test_AG_CIBA_04_hints_name_a_known_person_issued_here_and_each_person_is_throttled(
    http, fd, agent, person, browser, confidential, secrets_seen
):
    assert_error(await bc_authorize(http, agent, login_hint="nobody@example.com"), "unknown_user_id")
    # An ID token this server issued to the client names alice; one issued to another client is no hint for it.
    tokens = await tokens_for(http, browser, confidential)
    remember(secrets_seen, tokens["id_token"])
    assert_error(await bc_authorize(http, agent, login_hint="", id_token_hint=tokens["id_token"]), "invalid_request")
    forged = fd.keys.sign({"iss": "https://elsewhere.example", "sub": "x", "aud": agent.client_id}, "RS256")
    assert_error(await bc_authorize(http, agent, login_hint="", id_token_hint=forged), "invalid_request")
    with fd.engine.connect() as conn:
        alice = fd.users.id_of(conn, "alice")
    own = fd.keys.sign(
        {"iss": ISSUER, "sub": alice, "aud": agent.client_id, "exp": 1}, "RS256"
    )  # expired: still a hint
    assert (await bc_authorize(http, agent, login_hint="", id_token_hint=own)).status_code == 200
    gone = fd.keys.sign({"iss": ISSUER, "sub": "deleted-person", "aud": agent.client_id}, "RS256")
    assert_error(await bc_authorize(http, agent, login_hint="", id_token_hint=gone), "unknown_user_id")
    for _ in range(4):
        await started(http, agent, secrets_seen)
    assert_error(await bc_authorize(http, agent), "access_denied", 403)  # push spam: §13's 403


async def test_AG_CIBA_05_a_binding_message_is_short_plain_text(http, fd, agent, person, secrets_seen):
    for bad in ("x" * 500, "line one\nline two", "bell\x07", "\u202eevil", " "):
        assert_error(await bc_authorize(http, agent, binding_message=bad), "invalid_binding_message")
    assert stored(fd) == 0
    await started(http, agent, secrets_seen, binding_message="Pay 12,50 € — order #7Q2X")
    page = await approvals(http, person)
    assert "Pay 12,50 € — order #7Q2X" in page.text  # shown to the person, beside the app's name


async def test_AG_CIBA_06_requested_expiry_is_a_positive_integer_and_is_clamped(http, fd, agent, person, secrets_seen):
    response = await bc_authorize(http, agent, requested_expiry="30")
    remember(secrets_seen, response.json()["auth_req_id"])
    assert 0 < response.json()["expires_in"] <= 30
    huge = await bc_authorize(http, agent, requested_expiry="99999999")
    remember(secrets_seen, huge.json()["auth_req_id"])
    assert huge.json()["expires_in"] == fd.settings.lifetimes.device_code
    for bad in ("x", "0", "-5", "1.5", "1e3", "９"):
        assert_error(await bc_authorize(http, agent, requested_expiry=bad), "invalid_request")


@pytest.mark.parametrize("rate_limits", [RateLimits(enabled=False)])
async def test_AG_CIBA_07_auth_req_ids_are_unique_url_safe_high_entropy_and_kept_as_digests(
    http, fd, agent, person, secrets_seen
):
    seen = set()
    for _ in range(1000):
        body = (await bc_authorize(http, agent)).json()
        assert set(body) == {"auth_req_id", "expires_in", "interval"}
        auth_req_id = body["auth_req_id"]
        assert re.fullmatch(r"[A-Za-z0-9_-]+", auth_req_id)
        assert len(auth_req_id.removeprefix("fd_ar_")) >= 22  # ≥ 128 bits of base64url (256 drawn)
        seen.add(auth_req_id)
    assert len(seen) == 1000
    remember(secrets_seen, *list(seen)[:20])  # the database scan after the test: digests only


async def test_AG_CIBA_08_the_token_endpoint_answers_each_state(http, fd, agent, person, clock, secrets_seen):
    auth_req_id = await started(http, agent, secrets_seen)
    assert_error(await poll(http, agent, auth_req_id), "authorization_pending")
    assert_error(await poll(http, agent, auth_req_id), "slow_down")
    assert_error(await poll(http, agent, "fd_ar_" + "A" * 43), "invalid_grant")
    other, secret = register(
        fd, name="Other", grant_types=[CIBA], scope="openid", backchannel_token_delivery_mode="poll"
    )
    remember(secrets_seen, secret)
    assert_error(await poll(http, Registered(other.client_id, secret, ""), auth_req_id), "invalid_grant")
    await answer(http, person)
    assert (await poll(http, agent, auth_req_id)).status_code == 200
    assert_error(await poll(http, agent, auth_req_id), "invalid_grant")
    denied = await started(http, agent, secrets_seen)
    await answer(http, person, "deny")
    assert_error(await poll(http, agent, denied), "access_denied")
    expiring = await started(http, agent, secrets_seen, requested_expiry="5")
    clock.advance(6)
    assert_error(await poll(http, agent, expiring), "expired_token")


async def test_AG_CIBA_09_ping_mode_requires_a_notification_token_of_at_most_1024_characters(
    http, fd, person, secrets_seen
):
    client, secret = register(
        fd,
        name="Pinged",
        grant_types=[CIBA],
        scope="openid",
        backchannel_token_delivery_mode="ping",
        backchannel_client_notification_endpoint="https://agent.example/notify",
    )
    remember(secrets_seen, secret)
    pinged = Registered(client.client_id, secret, "")
    assert_error(await bc_authorize(http, pinged), "invalid_request")
    assert_error(await bc_authorize(http, pinged, client_notification_token="t" * 1025), "invalid_request")
    assert_error(await bc_authorize(http, pinged, client_notification_token="has space"), "invalid_request")
    token = "t" * 1024
    remember(secrets_seen, token)
    assert (await bc_authorize(http, pinged, client_notification_token=token)).status_code == 200


async def test_AG_CIBA_10_errors_carry_the_right_codes_and_statuses(http, fd, agent, confidential, person):
    assert_error(await bc_authorize(http, confidential), "unauthorized_client")  # registered without the grant
    wrong = Registered(agent.client_id, "wrong-secret-0123456789", "")
    assert_error(await bc_authorize(http, wrong), "invalid_client", 401)
    assert_error(await bc_authorize(http, agent, scope="openid unknown.scope"), "invalid_scope")
    assert_error(await bc_authorize(http, agent, login_hint="nobody"), "unknown_user_id")
    assert_error(await bc_authorize(http, agent, binding_message="x" * 101), "invalid_binding_message")
    assert_error(await bc_authorize(http, agent, authorization_details="[{}]"), "invalid_authorization_details")
    assert stored(fd) == 0
