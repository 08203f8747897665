"""The vault for agents (issue 14 item 2): a person's access token for ``{issuer}/vault`` lists and calls only that
person's connections, of the integrations its ``vault:<integration>`` scopes name; anything else is a 403 that
names nothing of anyone else's, a token not for the vault a 401; the platform's API keys work as before.

node-oidc-provider is the provider (``running_op``: the ``node`` marker); frontdesk is in process.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import RS1, basic, pkce, query
from frontdesk.core import Frontdesk
from frontdesk.oauth.account import revoke_app
from frontdesk.oauth.resources import ResourceError, create
from frontdesk.storage import audit
from frontdesk.vault.callers import MAX_ACTORS, Caller, actors_of
from frontdesk.vault.connect import owner
from frontdesk.vault.person_tokens import person_token
from peers.oidc_provider import Op, running_op

from .people import ALICE_AT_OP, BOB_AT_OP, OP_CLIENT, VAULT, World, bearer, connect, signed_in, token_for, world


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Op]:
    with running_op(tmp_path_factory.mktemp("op"), clients=[OP_CLIENT], accounts=[ALICE_AT_OP, BOB_AT_OP]) as up:
        yield up


@pytest.fixture
def w(fd: Frontdesk, op: Op, secrets_seen: set[str]) -> World:
    return world(fd, op, secrets_seen)


@pytest.fixture
async def alices(http: httpx.AsyncClient, w: World) -> dict[str, str]:
    """Alice's calendar and mail, made for her frontdesk id; Bob's calendar, made for his."""
    return {
        "calendar": await connect(http, w, "calendar", w.alice, ALICE_AT_OP),
        "mail": await connect(http, w, "mail", w.alice, ALICE_AT_OP),
        "bob": await connect(http, w, "calendar", w.bob, BOB_AT_OP),
    }


def proxy_events(fd: Frontdesk) -> list[audit.AuditRecord]:
    return [e for e in audit.tail(fd.engine, 200) if e.event == "vault.proxy"]


def assert_refused(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == error, body
    return body


async def test_a_persons_token_lists_and_calls_only_their_connection(
    http: httpx.AsyncClient, w: World, alices: dict[str, str]
) -> None:
    """The listing holds Alice's calendar only (not her mail: the token names vault:calendar; not Bob's); the proxy
    reaches her account at the provider; the event and ``last_used_by`` name the agent and the person."""
    token = await token_for(http, w, "alice")
    listed = await http.get("/vault/connections", headers=bearer(token))
    assert listed.status_code == 200, listed.text
    assert [c["id"] for c in listed.json()["connections"]] == [alices["calendar"]]

    me = await http.get(f"/vault/proxy/{alices['calendar']}/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert me.json()["sub"] == ALICE_AT_OP.id
    [event] = proxy_events(w.fd)
    assert (event.client_id, event.user_id, event.detail["connection"]) == ("trip-planner", w.alice, alices["calendar"])
    one = await http.get(f"/vault/connections/{alices['calendar']}", headers=bearer(token))
    assert one.json()["last_used_by"] == {"client_id": "trip-planner", "act": []}


async def test_another_persons_connection_is_403_and_names_nothing(
    http: httpx.AsyncClient, w: World, alices: dict[str, str]
) -> None:
    """Bob's connection and a connection that does not exist get the same answer: nothing tells them apart."""
    token = await token_for(http, w, "alice")
    for path in (f"/vault/proxy/{alices['bob']}/me", f"/vault/connections/{alices['bob']}"):
        body = assert_refused(await http.get(path, headers=bearer(token)), 403, "insufficient_scope")
        assert alices["bob"] not in str(body)
        unknown = await http.get(path.replace(alices["bob"], "conn_nosuchconnection0"), headers=bearer(token))
        assert unknown.status_code == 403
        assert unknown.json() == body
    listed = await http.get("/vault/connections", params={"user": w.bob}, headers=bearer(token))
    assert listed.json() == {"connections": []}
    assert proxy_events(w.fd) == []


async def test_another_integration_is_403_naming_the_scope_it_lacks(
    http: httpx.AsyncClient, w: World, alices: dict[str, str]
) -> None:
    token = await token_for(http, w, "alice")
    refused = await http.get(f"/vault/proxy/{alices['mail']}/me", headers=bearer(token))
    assert_refused(refused, 403, "insufficient_scope")
    assert 'scope="vault:mail"' in refused.headers["www-authenticate"]
    listing = await http.get("/vault/connections", params={"integration": "mail"}, headers=bearer(token))
    assert_refused(listing, 403, "insufficient_scope")
    both = await token_for(http, w, "alice", scope="vault:calendar vault:mail")
    reached = await http.get(f"/vault/proxy/{alices['mail']}/me", headers=bearer(both))
    assert reached.status_code == 200, reached.text


async def test_a_token_for_another_audience_is_401(http: httpx.AsyncClient, w: World, alices: dict[str, str]) -> None:
    """A token for UserInfo or another resource, an ID token, and a client's own token are not the vault's."""
    create(w.fd, RS1, "Resource server one")
    for_userinfo = await token_for(http, w, "alice", scope="openid", resource=None)
    for_rs1 = await token_for(http, w, "alice", scope="openid", resource=RS1)
    own = await http.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "vault:calendar", "resource": VAULT},
        auth=basic(w.agent),
    )
    assert own.status_code == 200, own.text
    for token in (for_userinfo, for_rs1, own.json()["access_token"], "not.a.token", "fd_ak_unknown"):
        for path in ("/vault/connections", f"/vault/proxy/{alices['calendar']}/me"):
            refused = await http.get(path, headers=bearer(token))
            assert_refused(refused, 401, "invalid_token")
            assert 'error="invalid_token"' in refused.headers["www-authenticate"]


async def test_a_revoked_grant_ends_the_tokens_reach_at_once(
    http: httpx.AsyncClient, w: World, alices: dict[str, str]
) -> None:
    token = await token_for(http, w, "alice")
    assert (await http.get("/vault/connections", headers=bearer(token))).status_code == 200
    revoke_app(w.fd, w.alice, w.agent.client_id, None)
    assert_refused(await http.get(f"/vault/proxy/{alices['calendar']}/me", headers=bearer(token)), 401, "invalid_token")


async def test_api_keys_work_as_before_and_person_tokens_stay_out_of_platform_calls(
    http: httpx.AsyncClient, w: World, alices: dict[str, str]
) -> None:
    listed = await http.get("/vault/connections", params={"user": w.bob}, headers=bearer(w.api_key))
    assert [c["id"] for c in listed.json()["connections"]] == [alices["bob"]]
    me = await http.get(f"/vault/proxy/{alices['bob']}/me", headers=bearer(w.api_key))
    assert me.status_code == 200, me.text
    assert me.json()["sub"] == BOB_AT_OP.id
    token = await token_for(http, w, "alice")
    made = await http.post(
        "/vault/connect-sessions", json={"user": w.alice, "integration": "calendar"}, headers=bearer(token)
    )
    assert_refused(made, 403, "insufficient_scope")
    deleted = await http.delete(f"/vault/connections/{alices['calendar']}", headers=bearer(token))
    assert_refused(deleted, 403, "insufficient_scope")
    exported = await http.get(f"/vault/connections/{alices['calendar']}/credentials", headers=bearer(token))
    assert_refused(exported, 403, "insufficient_scope")


# --- the vault as a built-in resource ------------------------------------------------------------------------------


async def test_the_vault_is_a_built_in_resource_with_a_scope_per_integration(w: World) -> None:
    scopes = w.fd.scopes(fresh=True)
    assert {"vault:calendar", "vault:mail"} <= set(scopes)
    assert scopes["vault:calendar"] == "Use your account through your connected account (calendar)"
    with pytest.raises(ResourceError, match="built in"):
        create(w.fd, VAULT, "Not the vault")
    with pytest.raises(ResourceError, match="token vault"):
        create(w.fd, RS1, "Resource server one", scope="vault:calendar")


async def test_an_unknown_vault_scope_is_invalid_scope(http: httpx.AsyncClient, w: World) -> None:
    """``vault:<name>`` for no integration is a scope like any unknown one (RFC 6749 §4.1.2.1)."""
    browser = await signed_in(http, "alice")
    _, challenge = pkce()
    answer = await browser.authorize(
        response_type="code", client_id=w.agent.client_id, redirect_uri=w.agent.redirect_uri, scope="vault:nosuch",
        resource=VAULT, code_challenge=challenge, code_challenge_method="S256", state="s",
    )  # fmt: skip
    assert answer.status_code == 303, answer.text
    assert query(answer.headers["location"])["error"] == "invalid_scope"


# --- pure rules ----------------------------------------------------------------------------------------------------


def test_a_connection_is_the_persons_its_last_link_was_bound_to() -> None:
    assert owner("p1", None, user_is_person=True) == "p1"  # made for their id, no link on record
    assert owner("platform-7", ("p1",), user_is_person=False) == "p1"
    assert owner("p1", ("p2",), user_is_person=True) == "p2"  # reconnected through a link bound to someone else
    assert owner("platform-7", (None,), user_is_person=False) is None  # a platform's own user id: nobody's
    assert owner("p1", ("p1", "p2"), user_is_person=True) is None  # two owners in one second: nobody's
    assert owner("p1", ("p1", None), user_is_person=True) == "p1"


def test_the_actor_chain_reads_outermost_first_and_stops_at_the_cap() -> None:
    assert actors_of({"sub": "agent", "act": {"sub": "app", "act": {"sub": "first"}}}) == ("agent", "app", "first")
    assert actors_of({"sub": "agent", "act": "garbage"}) == ("agent",)
    assert actors_of(None) == ()
    deep: dict[str, Any] = {"sub": "a0"}
    for i in range(1, 20):
        deep = {"sub": f"a{i}", "act": deep}
    assert len(actors_of(deep)) == MAX_ACTORS


def test_who_called_fits_the_column_and_reads_back() -> None:
    caller = Caller(client_id="https://agent.example/" + "c" * 240, actors=tuple(f"actor-{i}" for i in range(8)))
    stored = caller.stored()
    assert len(stored) <= 255
    back = Caller.parse(stored)
    assert back is not None
    assert back.client_id is not None
    assert back.client_id.startswith("https://agent.example/")
    assert Caller.parse(Caller(client_id="a", actors=("b", "c")).stored()) == Caller(client_id="a", actors=("b", "c"))
    assert Caller.parse("{not json") is None


def test_a_token_without_a_persons_grant_acts_for_nobody() -> None:
    base = {"sub": "person-1", "client_id": "agent", "jti": "grant1.random", "scope": "openid vault:calendar"}
    found = person_token(base)
    assert found is not None
    assert found.integrations == frozenset({"calendar"})
    assert person_token({**base, "jti": "random"}) is None  # client credentials: no grant
    assert person_token({**base, "sub": "agent"}) is None
    assert person_token({**base, "sub": 7}) is None
