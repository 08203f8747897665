"""RFC 8693 token exchange at /token (issue 14 item 1): an agent trades a person's access token for one that keeps
``sub`` = the person, names the agent in ``act``, reaches only what the operator's ``may_exchange_for`` allows, with
no more scope or life than the subject token, and dies with the person's grant."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import ISSUER, Browser, Registered, basic, csrf_of, remember
from frontdesk.core import Frontdesk
from frontdesk.errors import InvalidRequest, InvalidScope
from frontdesk.oauth.registration import register
from frontdesk.oauth.resources import ResourceRow, create
from frontdesk.oauth.token_exchange import Subject, live_grant, narrowed_scope
from frontdesk.protocol.rfc8693 import MAX_ACT_DEPTH, act_chain
from frontdesk.storage import audit
from frontdesk.storage.clients import ClientRecord
from frontdesk.storage.db import now, transaction
from frontdesk.storage.grants import insert_grant, revoke_grant
from test_token import tokens_for, verified_claims

TE = "urn:ietf:params:oauth:grant-type:token-exchange"
AT = "urn:ietf:params:oauth:token-type:access_token"
CALENDAR = "https://calendar.example/api"
FILES = "https://files.example/api"


def register_targets(fd: Frontdesk) -> tuple[str, str]:
    """Two resources an agent may be allowed to reach for a person."""
    create(fd, CALENDAR, "Calendar API", "calendar.read calendar.write")
    create(fd, FILES, "Files API", "files.read")
    return CALENDAR, FILES


@pytest.fixture
def targets(fd: Frontdesk) -> tuple[str, str]:
    return register_targets(fd)


def agent_client(
    fd: Frontdesk,
    secrets_seen: set[str],
    client_id: str = "agent",
    *,
    may_exchange_for: tuple[str, ...] = (CALENDAR,),
    grant_types: tuple[str, ...] = ("authorization_code", "client_credentials", TE),
    scope: str = "openid calendar.read calendar.write files.read",
    resources: tuple[str, ...] = (),
) -> Registered:
    """A confidential client the operator registered, allowed to exchange tokens for ``may_exchange_for``."""
    client, secret = register(
        fd,
        name=f"Agent {client_id}",
        client_id=client_id,
        redirect_uris=[f"https://{client_id}.example/cb"],
        grant_types=list(grant_types),
        scope=scope,
        resources=list(resources),
        may_exchange_for=list(may_exchange_for),
    )
    remember(secrets_seen, secret)
    return Registered(client.client_id, secret, f"https://{client_id}.example/cb")


@pytest.fixture
def agent(fd: Frontdesk, secrets_seen: set[str], targets: tuple[str, str]) -> Registered:
    return agent_client(fd, secrets_seen)


async def person_token(
    http: httpx.AsyncClient, browser: Browser, client: Registered, scope: str = "openid calendar.read", **extra: str
) -> str:
    """An access token of the signed-in person, issued to ``client`` through the code flow."""
    return str((await tokens_for(http, browser, client, scope=scope, **extra))["access_token"])


async def exchange(
    http: httpx.AsyncClient, client: Registered, subject: str | None, **params: str | list[str]
) -> httpx.Response:
    """A token exchange request authenticated as ``client``; ``subject_token_type`` defaults to an access token."""
    data: dict[str, Any] = {"grant_type": TE}
    if subject is not None:
        data |= {"subject_token": subject, "subject_token_type": AT}
    data |= params
    return await http.post("/token", auth=basic(client), data={k: v for k, v in data.items() if v is not None})


async def exchanged(http: httpx.AsyncClient, client: Registered, subject: str, **params: str | list[str]) -> str:
    response = await exchange(http, client, subject, **params)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def introspect(http: httpx.AsyncClient, client: Registered, token: str) -> dict[str, Any]:
    response = await http.post("/introspect", auth=basic(client), data={"token": token})
    assert response.status_code == 200, response.text
    return dict(response.json())


def assert_error(response: httpx.Response, error: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error, response.text


def user_id(fd: Frontdesk, username: str = "alice") -> str:
    with transaction(fd.engine, readonly=True) as conn:
        found = fd.users.id_of(conn, username)
    assert found is not None
    return str(found)


# --- the issued token -------------------------------------------------------------------------------------------


async def test_exchange_keeps_the_person_as_sub_and_names_the_agent_in_act(http, fd, browser, agent):
    subject = await person_token(http, browser, agent)
    response = await exchange(http, agent, subject, resource=CALENDAR)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    claims = await verified_claims(http, response.json()["access_token"])
    assert claims["sub"] == user_id(fd)
    assert claims["client_id"] == agent.client_id
    assert claims["aud"] == CALENDAR
    assert claims["act"] == {"sub": agent.client_id}
    assert claims["scope"] == "calendar.read"


async def test_exchange_answers_no_refresh_token_and_no_id_token(http, browser, agent):
    subject = await person_token(http, browser, agent, scope="openid offline_access calendar.read")
    body = (await exchange(http, agent, subject, resource=CALENDAR)).json()
    assert "refresh_token" not in body
    assert "id_token" not in body


async def test_exchanged_token_belongs_to_the_subject_tokens_grant(http, browser, agent):
    subject = await person_token(http, browser, agent)
    token = await exchanged(http, agent, subject, resource=CALENDAR)
    grant_of = lambda claims: claims["jti"].partition(".")[0]  # noqa: E731
    assert grant_of(await verified_claims(http, token)) == grant_of(await verified_claims(http, subject))


async def test_exchanged_token_never_outlives_its_subject_token(http, browser, agent, clock):
    subject = await person_token(http, browser, agent)
    clock.advance(500)  # the subject token (600 s) has about 100 s left
    response = await exchange(http, agent, subject, resource=CALENDAR)
    assert response.status_code == 200, response.text
    subject_exp = (await verified_claims(http, subject))["exp"]
    claims = await verified_claims(http, response.json()["access_token"])
    assert claims["exp"] <= subject_exp
    assert response.json()["expires_in"] <= 100


async def test_audience_names_the_target_as_resource_does(http, browser, agent):
    subject = await person_token(http, browser, agent)
    token = await exchanged(http, agent, subject, audience=CALENDAR)
    assert (await verified_claims(http, token))["aud"] == CALENDAR


async def test_the_one_resource_of_the_policy_is_the_default_target(http, browser, agent):
    subject = await person_token(http, browser, agent)
    token = await exchanged(http, agent, subject)
    assert (await verified_claims(http, token))["aud"] == CALENDAR


async def test_no_target_with_several_allowed_is_invalid_target(http, fd, browser, secrets_seen, targets):
    agent = agent_client(fd, secrets_seen, may_exchange_for=(CALENDAR, FILES))
    subject = await person_token(http, browser, agent)
    assert_error(await exchange(http, agent, subject), "invalid_target")


async def test_an_unregistered_target_is_invalid_target(http, browser, agent):
    subject = await person_token(http, browser, agent)
    assert_error(await exchange(http, agent, subject, resource="https://nobody.example/api"), "invalid_target")


async def test_scope_not_belonging_to_the_target_is_invalid_scope(http, fd, browser, secrets_seen, targets):
    agent = agent_client(fd, secrets_seen, may_exchange_for=(CALENDAR, FILES))
    subject = await person_token(http, browser, agent, scope="openid calendar.read files.read")
    assert_error(await exchange(http, agent, subject, resource=FILES, scope="calendar.read"), "invalid_scope")
    token = await exchanged(http, agent, subject, resource=FILES)
    assert (await verified_claims(http, token))["scope"] == "files.read"


async def test_scope_the_client_is_not_registered_for_is_invalid_scope(http, fd, browser, secrets_seen, targets):
    """The agent's registration bounds what it may hold, even when the person's token carries more."""
    app = agent_client(fd, secrets_seen, "app", may_exchange_for=(), scope="openid calendar.read calendar.write")
    agent = agent_client(fd, secrets_seen, scope="calendar.read", resources=("https://app.example/api",))
    create(fd, "https://app.example/api", "App API")
    subject = await person_token(http, browser, app, scope="openid calendar.read calendar.write")
    # The subject token was issued to another client: the agent serves none of its audience, so it is refused...
    assert_error(await exchange(http, agent, subject, resource=CALENDAR), "invalid_request")
    subject = await person_token(
        http, browser, app, scope="openid calendar.read calendar.write", resource="https://app.example/api"
    )
    # ...addressed to the agent's API, it is the agent's to exchange, within the agent's registration.
    assert_error(await exchange(http, agent, subject, resource=CALENDAR, scope="calendar.write"), "invalid_scope")
    token = await exchanged(http, agent, subject, resource=CALENDAR)
    assert (await verified_claims(http, token))["scope"] == "calendar.read"


async def test_nothing_of_the_subjects_scope_for_the_target_is_invalid_scope(http, browser, agent):
    subject = await person_token(http, browser, agent, scope="openid")
    assert_error(await exchange(http, agent, subject, resource=CALENDAR), "invalid_scope")


async def test_a_client_without_the_grant_type_is_unauthorized_client(http, fd, browser, secrets_seen, targets):
    app = agent_client(fd, secrets_seen, "app", grant_types=("authorization_code",))
    subject = await person_token(http, browser, app)
    assert_error(await exchange(http, app, subject, resource=CALENDAR), "unauthorized_client")


async def test_a_client_without_a_policy_may_exchange_for_nothing(http, fd, browser, secrets_seen, targets):
    agent = agent_client(fd, secrets_seen, may_exchange_for=())
    subject = await person_token(http, browser, agent)
    assert_error(await exchange(http, agent, subject, resource=CALENDAR), "invalid_target")


async def test_discovery_lists_the_token_exchange_grant(http):
    assert TE in (await http.get("/.well-known/openid-configuration")).json()["grant_types_supported"]


# --- who acts -----------------------------------------------------------------------------------------------------


async def test_a_resource_server_exchanges_a_token_addressed_to_it_and_act_nests(http, fd, browser, secrets_seen):
    """Two hops: the agent exchanges the person's token for the calendar API, which exchanges it again for the
    files API: ``act`` names the calendar API, with the agent nested inside (RFC 8693 §4.1)."""
    create(fd, CALENDAR, "Calendar API", "calendar.read files.read")
    create(fd, FILES, "Files API", "files.read")
    agent = agent_client(fd, secrets_seen)
    calendar = agent_client(fd, secrets_seen, "calendar-api", may_exchange_for=(FILES,), resources=(CALENDAR,))
    subject = await person_token(http, browser, agent, scope="openid calendar.read files.read")
    first = await exchanged(http, agent, subject, resource=CALENDAR)
    second = await exchanged(http, calendar, first, resource=FILES)
    claims = await verified_claims(http, second)
    assert claims["act"] == {"sub": "calendar-api", "act": {"sub": "agent"}}
    assert claims["sub"] == user_id(fd)
    assert claims["client_id"] == "calendar-api"
    assert claims["scope"] == "files.read"


async def test_a_token_issued_to_another_client_is_not_this_clients_to_exchange(http, fd, browser, agent, secrets_seen):
    other = agent_client(fd, secrets_seen, "other")
    subject = await person_token(http, browser, other)
    assert_error(await exchange(http, agent, subject, resource=CALENDAR), "invalid_request")


async def test_a_clients_own_token_stands_for_no_person(http, agent):
    own = await http.post("/token", auth=basic(agent), data={"grant_type": "client_credentials"})
    assert own.status_code == 200, own.text
    assert_error(await exchange(http, agent, own.json()["access_token"], resource=CALENDAR), "invalid_request")


async def test_actor_token_names_the_actor(http, fd, browser, agent, secrets_seen):
    helper = agent_client(fd, secrets_seen, "helper", may_exchange_for=())
    actor = await http.post("/token", auth=basic(helper), data={"grant_type": "client_credentials"})
    subject = await person_token(http, browser, agent)
    token = await exchanged(
        http, agent, subject, resource=CALENDAR, actor_token=actor.json()["access_token"], actor_token_type=AT
    )
    claims = await verified_claims(http, token)
    assert claims["act"] == {"sub": "helper"}
    assert claims["client_id"] == agent.client_id


async def test_an_actor_token_of_a_person_is_refused(http, browser, agent):
    subject = await person_token(http, browser, agent)
    response = await exchange(http, agent, subject, resource=CALENDAR, actor_token=subject, actor_token_type=AT)
    assert_error(response, "invalid_request")


async def test_a_delegation_chain_is_capped(http, fd, browser, secrets_seen, targets):
    """Each exchange adds an actor; the one that would name more than ``MAX_ACT_DEPTH`` is refused."""
    agent = agent_client(fd, secrets_seen, resources=(CALENDAR,))
    token = await person_token(http, browser, agent)
    for depth in range(1, MAX_ACT_DEPTH + 1):
        token = await exchanged(http, agent, token, resource=CALENDAR)
        assert len(act_chain((await verified_claims(http, token))["act"])) == depth
    assert_error(await exchange(http, agent, token, resource=CALENDAR), "invalid_request")


# --- introspection, revocation, audit -----------------------------------------------------------------------------


async def test_introspection_returns_act(http, browser, agent):
    subject = await person_token(http, browser, agent)
    answer = await introspect(http, agent, await exchanged(http, agent, subject, resource=CALENDAR))
    assert answer["active"] is True
    assert answer["act"] == {"sub": agent.client_id}
    assert answer["aud"] == CALENDAR


async def test_revoking_the_original_grant_ends_every_token_derived_from_it(http, fd, browser, secrets_seen, targets):
    """The person revokes the app on their account page: the exchanged tokens, two hops deep, answer inactive at
    once, and the subject token exchanges no more."""
    app = agent_client(fd, secrets_seen, "app", resources=(CALENDAR,))
    subject = await person_token(http, browser, app)
    first = await exchanged(http, app, subject, resource=CALENDAR)
    second = await exchanged(http, app, first, resource=CALENDAR)
    assert (await introspect(http, app, second))["active"] is True
    apps = await http.get("/account/apps")
    revoked = await http.post("/account/apps/revoke", data={"csrf": csrf_of(apps.text), "client_id": "app"})
    assert revoked.status_code == 303
    for token in (first, second):
        assert (await introspect(http, app, token)) == {"active": False}
    assert_error(await exchange(http, app, subject, resource=CALENDAR), "invalid_request")


async def test_an_exchange_is_audited_with_the_person_the_actors_the_client_and_the_resource(
    http, fd, browser, agent, secrets_seen
):
    helper = agent_client(fd, secrets_seen, "helper", may_exchange_for=())
    actor = (await http.post("/token", auth=basic(helper), data={"grant_type": "client_credentials"})).json()
    subject = await person_token(http, browser, agent)
    await exchanged(http, agent, subject, resource=CALENDAR, actor_token=actor["access_token"], actor_token_type=AT)
    events = [e for e in audit.tail(fd.engine, 50) if e.event == "token.exchanged"]
    assert len(events) == 1
    event = events[0]
    assert (event.outcome, event.client_id, event.user_id) == ("success", agent.client_id, user_id(fd))
    assert event.detail["actors"] == ["helper"]
    assert event.detail["resource"] == [CALENDAR]
    assert event.detail["scope"] == "calendar.read"
    assert subject not in str(event.detail)


# --- properties -----------------------------------------------------------------------------------------------------

SCOPES = st.sets(st.sampled_from(["a", "b", "c", "d", "e"]))


def _client(scope: set[str]) -> ClientRecord:
    return ClientRecord("agent", "Agent", None, "client_secret_basic", (), (TE,), tuple(sorted(scope)),
                        None, None, (), None, None, 0)  # fmt: skip


@given(subject=SCOPES, resource=SCOPES, registered=SCOPES, asked=SCOPES)
def test_exchanged_scope_never_exceeds_subject_resource_or_registration(subject, resource, registered, asked):
    """For an operator's client (no scope lent by a resource), the scope issued is within all three, and asking
    for one outside any of them is invalid_scope."""
    held = Subject({"scope": " ".join(sorted(subject)), "jti": "g.x"}, "g")
    target = ResourceRow(CALENDAR, "Calendar", tuple(sorted(resource)), None, 0)
    bound = subject & resource & registered
    try:
        scope = narrowed_scope(None, _client(registered), held, [target], " ".join(sorted(asked)) or None)  # type: ignore[arg-type]
    except InvalidScope:
        assert not asked <= bound or not (asked or bound)
        return
    assert set(scope) <= bound
    assert set(scope) == (asked or bound)


async def test_exchange_refuses_a_subject_token_whose_grant_has_no_person(http, fd, agent, targets):
    """A grant without a person (none is issued today, but the store allows it) is nobody to act for."""
    with transaction(fd.engine) as conn:
        grant = insert_grant(
            conn, client_id="agent", user_id=None, scope=("calendar.read",), resource=(), auth_time=None, amr=(),
            at=now(), expires_at=now() + 3600,
        )  # fmt: skip
    token = fd.keys.sign(
        {"iss": ISSUER, "sub": "agent", "aud": ISSUER, "client_id": "agent", "iat": now(), "exp": now() + 60,
         "jti": f"{grant.id}.x", "scope": "calendar.read"},
        fd.settings.access_token_alg, typ="at+jwt",
    )  # fmt: skip
    assert_error(await exchange(http, agent, token, resource=CALENDAR), "invalid_request")


def test_a_grant_revoked_after_the_subject_token_was_checked_issues_nothing(fd, agent):
    """The grant is read again in the exchange's own transaction: revoked in between, the exchange is refused."""
    with transaction(fd.engine) as conn:
        grant = insert_grant(
            conn, client_id="agent", user_id=None, scope=("calendar.read",), resource=(), auth_time=None, amr=(),
            at=now(), expires_at=now() + 3600,
        )  # fmt: skip
        revoke_grant(conn, grant.id, now())
    subject = Subject({"sub": "someone", "jti": f"{grant.id}.x"}, grant.id)
    with transaction(fd.engine, readonly=True) as conn, pytest.raises(InvalidRequest, match="no longer valid"):
        live_grant(conn, subject)
