"""RFC 8693 token exchange: one test per item of the agents checklist's §5 (AG-TE-01 … AG-TE-08,
/work/shared/reference/agents-checklist.md), named after its ID, with the checklist's black-box test as its body."""

from __future__ import annotations

import pytest

from conftest import ISSUER, Registered, basic
from frontdesk.core import Frontdesk
from frontdesk.storage.db import now
from test_token import verified_claims
from test_token_exchange import (
    AT,
    CALENDAR,
    FILES,
    agent_client,
    assert_error,
    exchange,
    exchanged,
    person_token,
    register_targets,
)

TYPE = "urn:ietf:params:oauth:token-type:"


@pytest.fixture
def agent(fd: Frontdesk, secrets_seen: set[str]) -> Registered:
    """A client the operator lets exchange people's tokens for the calendar API (of the two registered)."""
    register_targets(fd)
    return agent_client(fd, secrets_seen)


async def test_AG_TE_01_subject_token_and_type_are_required_and_actor_token_type_goes_with_actor_token(
    http, browser, agent
):
    subject = await person_token(http, browser, agent)
    assert_error(await exchange(http, agent, None, resource=CALENDAR, subject_token=subject), "invalid_request")
    assert_error(await exchange(http, agent, None, resource=CALENDAR, subject_token_type=AT), "invalid_request")
    assert_error(await exchange(http, agent, subject, resource=CALENDAR, actor_token=subject), "invalid_request")
    assert_error(await exchange(http, agent, subject, resource=CALENDAR, actor_token_type=AT), "invalid_request")


@pytest.mark.parametrize("parameter", ["subject_token_type", "actor_token_type", "requested_token_type"])
@pytest.mark.parametrize(
    "value", [TYPE + "nonsense", "access_token", TYPE + "id_token", TYPE + "refresh_token", TYPE + "jwt"]
)
async def test_AG_TE_02_a_token_type_that_is_unknown_or_not_an_access_token_is_invalid_request(
    http, browser, agent, parameter, value
):
    subject = await person_token(http, browser, agent)
    params = {"resource": CALENDAR, parameter: value}
    if parameter == "actor_token_type":
        params["actor_token"] = subject
    assert_error(await exchange(http, agent, subject, **params), "invalid_request")


async def test_AG_TE_03_an_expired_forged_or_foreign_subject_token_is_invalid_request(http, fd, browser, agent, clock):
    subject = await person_token(http, browser, agent)
    claims = await verified_claims(http, subject)
    forged = subject[:-4] + ("AAAA" if not subject.endswith("AAAA") else "BBBB")
    foreign = fd.keys.sign({**claims, "iss": "https://elsewhere.example"}, fd.settings.access_token_alg, typ="at+jwt")
    not_an_access_token = fd.keys.sign(claims, fd.settings.access_token_alg)  # typ JWT: RFC 9068 §4
    for token in (forged, foreign, not_an_access_token, "not-a-token"):
        assert_error(await exchange(http, agent, token, resource=CALENDAR), "invalid_request")
    assert (await exchange(http, agent, subject, resource=CALENDAR)).status_code == 200
    clock.advance(601)
    assert_error(await exchange(http, agent, subject, resource=CALENDAR), "invalid_request")


async def test_AG_TE_04_a_resource_outside_the_policy_is_invalid_target_and_targets_may_repeat(
    http, fd, browser, agent
):
    subject = await person_token(http, browser, agent, scope="openid calendar.read files.read")
    assert_error(await exchange(http, agent, subject, resource=FILES), "invalid_target")
    assert_error(await exchange(http, agent, subject, audience=FILES), "invalid_target")
    assert_error(await exchange(http, agent, subject, resource=[CALENDAR, FILES]), "invalid_target")
    assert_error(await exchange(http, agent, subject, resource=CALENDAR + "#frag"), "invalid_target")
    assert_error(await exchange(http, agent, subject, resource="calendar"), "invalid_target")
    token = await exchanged(http, agent, subject, resource=[CALENDAR, CALENDAR], audience=[CALENDAR, CALENDAR])
    assert (await verified_claims(http, token))["aud"] == CALENDAR


async def test_AG_TE_05_the_response_has_its_fields_and_scope_when_it_changed(http, browser, agent):
    subject = await person_token(http, browser, agent)
    body = (await exchange(http, agent, subject, resource=CALENDAR)).json()
    assert body["issued_token_type"] == AT
    assert body["token_type"] == "Bearer"
    assert isinstance(body["expires_in"], int)
    assert 0 < body["expires_in"] <= 600
    assert body["scope"] == "calendar.read"  # none was asked for: the scope issued differs
    assert (await verified_claims(http, body["access_token"]))["scope"] == "calendar.read"
    same = (await exchange(http, agent, subject, resource=CALENDAR, scope="calendar.read")).json()
    assert "scope" not in same
    assert set(same) == {"access_token", "issued_token_type", "token_type", "expires_in"}


async def test_AG_TE_06_two_hops_nest_the_prior_actor_inside_act_without_exp_or_aud(http, fd, browser, secrets_seen):
    from frontdesk.oauth.resources import create

    create(fd, CALENDAR, "Calendar API", "calendar.read")
    agent = agent_client(fd, secrets_seen)
    calendar = agent_client(fd, secrets_seen, "calendar-api", may_exchange_for=(CALENDAR,), resources=(CALENDAR,))
    subject = await person_token(http, browser, agent)
    second = await exchanged(http, calendar, await exchanged(http, agent, subject), resource=CALENDAR)
    act = (await verified_claims(http, second))["act"]
    assert act == {"sub": "calendar-api", "act": {"sub": "agent"}}


async def test_AG_TE_07_an_actor_outside_may_act_is_denied_and_the_actor_must_authenticate(
    http, fd, browser, agent, secrets_seen
):
    claims = await verified_claims(http, await person_token(http, browser, agent))
    alg = fd.settings.access_token_alg
    for_other = fd.keys.sign({**claims, "may_act": {"sub": "someone-else"}}, alg, typ="at+jwt")
    assert_error(await exchange(http, agent, for_other, resource=CALENDAR), "invalid_request")
    elsewhere = fd.keys.sign({**claims, "may_act": {"sub": "agent", "iss": "https://x.example"}}, alg, typ="at+jwt")
    assert_error(await exchange(http, agent, elsewhere, resource=CALENDAR), "invalid_request")
    for_agent = fd.keys.sign({**claims, "may_act": {"sub": "agent", "iss": ISSUER}}, alg, typ="at+jwt")
    assert (await exchange(http, agent, for_agent, resource=CALENDAR)).status_code == 200
    # An actor_token naming a client outside may_act is denied even when the client presenting it is named.
    helper = agent_client(fd, secrets_seen, "helper", may_exchange_for=())
    actor = (await http.post("/token", auth=basic(helper), data={"grant_type": "client_credentials"})).json()
    response = await exchange(
        http, agent, for_agent, resource=CALENDAR, actor_token=actor["access_token"], actor_token_type=AT
    )
    assert_error(response, "invalid_request")
    # No client authentication, no exchange.
    unauthenticated = await http.post(
        "/token",
        data={"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "client_id": "agent",
              "subject_token": for_agent, "subject_token_type": AT, "resource": CALENDAR},
    )  # fmt: skip
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"] == "invalid_client"


async def test_AG_TE_08_wider_scope_is_invalid_scope_and_the_token_is_narrower_shorter_and_names_the_client(
    http, fd, browser, agent, clock
):
    subject = await person_token(http, browser, agent)
    assert_error(await exchange(http, agent, subject, resource=CALENDAR, scope="calendar.write"), "invalid_scope")
    assert_error(
        await exchange(http, agent, subject, resource=CALENDAR, scope="calendar.read calendar.write"), "invalid_scope"
    )
    clock.advance(300)
    body = (await exchange(http, agent, subject, resource=CALENDAR, scope="calendar.read")).json()
    assert "refresh_token" not in body
    claims = await verified_claims(http, body["access_token"])
    assert claims["exp"] <= (await verified_claims(http, subject))["exp"] <= now() + 300
    assert claims["aud"] == CALENDAR
    assert claims["client_id"] == "agent"
