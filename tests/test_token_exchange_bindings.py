"""Token exchange (RFC 8693) with Rich Authorization Requests (RFC 9396 §6.1: details narrow the subject token's)
and DPoP (RFC 9449: the new token bound to the request's proof; a bound subject token only with a proof of its key)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from conftest import basic
from dpop_proofs import jkt_of, new_key, proof
from frontdesk.core import Frontdesk
from frontdesk.oauth.authorization_detail_types import create as create_type
from test_token import verified_claims
from test_token_exchange import AT, CALENDAR, TE, agent_client, assert_error, exchange, person_token, register_targets


@pytest.fixture
def agent(fd, secrets_seen):
    register_targets(fd)
    return agent_client(fd, secrets_seen)


async def resigned(http: httpx.AsyncClient, fd: Frontdesk, token: str, **claims: Any) -> str:
    """``token`` as this server would have issued it with ``claims`` added (same grant, same key ring)."""
    return fd.keys.sign({**await verified_claims(http, token), **claims}, fd.settings.access_token_alg, typ="at+jwt")


@pytest.fixture
def calendar_access(fd: Frontdesk) -> str:
    create_type(fd, "calendar_access", '{"type": "object"}', "Use your calendar: {actions}")
    return "calendar_access"


async def test_authorization_details_narrow_the_subject_tokens(http, fd, browser, agent, calendar_access):
    """RFC 9396 §6.1: an exchange carries the subject token's details, or fewer of them, never others."""
    granted = [{"type": "calendar_access", "actions": ["read", "write"]}]
    subject = await resigned(http, fd, await person_token(http, browser, agent), authorization_details=granted)
    kept = (await exchange(http, agent, subject, resource=CALENDAR)).json()
    assert (await verified_claims(http, kept["access_token"]))["authorization_details"] == granted
    fewer = [{"type": "calendar_access", "actions": ["read"]}]
    response = await exchange(http, agent, subject, resource=CALENDAR, authorization_details=json.dumps(fewer))
    assert response.status_code == 200, response.text
    assert response.json()["authorization_details"] == fewer
    assert (await verified_claims(http, response.json()["access_token"]))["authorization_details"] == fewer
    more = [{"type": "calendar_access", "actions": ["read", "delete"]}]
    response = await exchange(http, agent, subject, resource=CALENDAR, authorization_details=json.dumps(more))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_authorization_details"


async def test_an_exchange_with_a_dpop_proof_binds_the_new_token_to_its_key(http, browser, agent):
    subject = await person_token(http, browser, agent)
    key = new_key()
    response = await http.post(
        "/token",
        auth=basic(agent),
        headers={"DPoP": proof(key)},
        data={"grant_type": TE, "subject_token": subject, "subject_token_type": AT, "resource": CALENDAR},
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    assert (await verified_claims(http, response.json()["access_token"]))["cnf"] == {"jkt": jkt_of(key)}


async def test_a_dpop_bound_subject_token_is_exchanged_only_with_a_proof_of_its_key(http, fd, browser, agent):
    """A stolen bound token must not come out of an exchange as a bearer token, nor bound to the thief's key."""
    key = new_key()
    subject = await resigned(http, fd, await person_token(http, browser, agent), cnf={"jkt": jkt_of(key)})
    data = {"grant_type": TE, "subject_token": subject, "subject_token_type": AT, "resource": CALENDAR}
    assert_error(await http.post("/token", auth=basic(agent), data=data), "invalid_request")
    thief = await http.post("/token", auth=basic(agent), headers={"DPoP": proof(new_key())}, data=data)
    assert_error(thief, "invalid_request")
    holder = await http.post("/token", auth=basic(agent), headers={"DPoP": proof(key)}, data=data)
    assert holder.status_code == 200, holder.text
    assert (await verified_claims(http, holder.json()["access_token"]))["cnf"] == {"jkt": jkt_of(key)}
