"""The agent story end to end (issue 14 items 2, 6 and 7): a person signs in to a chat platform; the platform's
agent trades the person's token (RFC 8693) for a short-lived token addressed to the vault that keeps ``sub`` = the
person and names the agent in ``act``; with it the agent calls that person's calendar at the provider through the
vault's proxy, and nothing else; the person's revocation of the app ends it at once. Bound to the agent's key
(RFC 9449), the token is worth nothing at the vault without a fresh proof of that key.

node-oidc-provider is the provider (``running_op``: the ``node`` marker); frontdesk is in process, on both databases.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from accounts import account_page
from conftest import ISSUER, Registered, basic, csrf_of, remember
from dpop_proofs import ath_of, claims_of, jkt_of, new_key, proof
from frontdesk.core import Frontdesk
from frontdesk.oauth.registration import register
from frontdesk.oauth.resources import create
from frontdesk.storage import audit
from peers.oidc_provider import Op, running_op
from vault.people import ALICE_AT_OP, BOB_AT_OP, OP_CLIENT, PASSWORD, VAULT, World, bearer, connect, token_for, world

TE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"
PLATFORM_API = "https://chat.example/api"  # what the person's token from the platform is addressed to
EXAMPLE = Path(__file__).parent.parent / "examples" / "agent_delegation.py"


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Op]:
    with running_op(tmp_path_factory.mktemp("op"), clients=[OP_CLIENT], accounts=[ALICE_AT_OP, BOB_AT_OP]) as up:
        yield up


@dataclass
class Story:
    """The world of tests/vault/people.py (its client "Trip Planner" is the platform the person signs in to), the
    platform's agent, and the connections: Alice's calendar and mail, Bob's calendar."""

    w: World
    agent: Registered
    calendar: str
    mail: str
    bobs: str


@pytest.fixture
async def story(http: httpx.AsyncClient, fd: Frontdesk, op: Op, secrets_seen: set[str]) -> Story:
    w = world(fd, op, secrets_seen)
    create(fd, PLATFORM_API, "Chat platform API")
    # The operator's policy (`frontdesk client create --may-exchange-for {issuer}/vault`): the agent serves the
    # platform's API, so it may exchange the tokens addressed to it, and only for the vault.
    client, secret = register(
        fd,
        name="Calendar Agent",
        client_id="calendar-agent",
        grant_types=["client_credentials", TE],
        scope="vault:calendar vault:mail",
        resources=[PLATFORM_API],
        may_exchange_for=[VAULT],
    )
    remember(secrets_seen, secret)
    return Story(
        w,
        Registered(client.client_id, secret, ""),
        await connect(http, w, "calendar", w.alice, ALICE_AT_OP),
        await connect(http, w, "mail", w.alice, ALICE_AT_OP),
        await connect(http, w, "calendar", w.bob, BOB_AT_OP),
    )


async def platform_token(http: httpx.AsyncClient, s: Story, username: str = "alice") -> str:
    """The person signs in to the platform and consents: its token for the platform's API."""
    return await token_for(http, s.w, username, scope="vault:calendar vault:mail", resource=PLATFORM_API)


async def exchange(
    http: httpx.AsyncClient, s: Story, subject: str, scope: str = "vault:calendar", dpop: str | None = None
) -> httpx.Response:
    data = {
        "grant_type": TE,
        "subject_token": subject,
        "subject_token_type": ACCESS_TOKEN,
        "resource": VAULT,
        "scope": scope,
    }
    headers = {"DPoP": dpop} if dpop else {}
    return await http.post("/token", data=data, auth=basic(s.agent), headers=headers)


async def agents_token(http: httpx.AsyncClient, s: Story, secrets_seen: set[str]) -> str:
    answer = await exchange(http, s, await platform_token(http, s))
    assert answer.status_code == 200, answer.text
    token = str(answer.json()["access_token"])
    remember(secrets_seen, token)
    return token


def proxy_events(fd: Frontdesk) -> list[audit.AuditRecord]:
    return [e for e in audit.tail(fd.engine, 200) if e.event == "vault.proxy"]


def refused(response: httpx.Response, status: int, error: str) -> str:
    """The challenge of a refusal with ``status`` and ``error``."""
    assert response.status_code == status, response.text
    assert response.json()["error"] == error, response.text
    return response.headers["www-authenticate"]


# --- the exchanged token -------------------------------------------------------------------------------------------


async def test_the_agent_reaches_the_persons_calendar_with_an_exchanged_token_naming_it(
    http: httpx.AsyncClient, story: Story, secrets_seen: set[str]
) -> None:
    """The exchanged token keeps the person as ``sub``, names the agent in ``act`` (RFC 8693 §4.1), is addressed to
    the vault with only the scope asked for, comes with no refresh token; the proxy answers with the provider's
    answer for that person, and its audit event and ``last_used_by`` name the agent."""
    subject = await platform_token(http, story)
    answer = await exchange(http, story, subject)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["issued_token_type"] == ACCESS_TOKEN
    assert "refresh_token" not in body
    token = body["access_token"]
    remember(secrets_seen, token)
    claims = claims_of(token)
    assert (claims["sub"], claims["client_id"], claims["act"]) == (
        story.w.alice,
        "calendar-agent",
        {"sub": "calendar-agent"},
    )
    assert claims["aud"] in (VAULT, [VAULT])
    assert claims["scope"] == "vault:calendar"
    assert claims["exp"] <= claims_of(subject)["exp"]

    listed = await http.get("/vault/connections", headers=bearer(token))
    assert listed.status_code == 200, listed.text
    assert [c["id"] for c in listed.json()["connections"]] == [story.calendar]
    me = await http.get(f"/vault/proxy/{story.calendar}/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert me.json()["sub"] == ALICE_AT_OP.id

    [event] = proxy_events(story.w.fd)
    assert (event.client_id, event.user_id) == ("calendar-agent", story.w.alice)
    assert (event.detail["connection"], event.detail["act"]) == (story.calendar, ["calendar-agent"])
    one = await http.get(f"/vault/connections/{story.calendar}", headers=bearer(token))
    assert one.json()["last_used_by"] == {"client_id": "calendar-agent", "act": ["calendar-agent"]}
    page = await account_page(http, "alice", PASSWORD, "/account/connections")
    assert "Calendar Agent" in page.text  # the person sees which agent used it


async def test_the_exchanged_token_reaches_no_other_person_and_no_other_integration(
    http: httpx.AsyncClient, story: Story, secrets_seen: set[str]
) -> None:
    """Bob's calendar is a 403 that names nothing; Alice's mail is a 403 naming the scope the token lacks, though
    the platform's token carried it: the agent asked for the calendar only (RFC 9700 §2.3)."""
    token = await agents_token(http, story, secrets_seen)
    for path in (f"/vault/proxy/{story.bobs}/me", f"/vault/connections/{story.bobs}"):
        assert story.bobs not in str(refused(await http.get(path, headers=bearer(token)), 403, "insufficient_scope"))
    challenge = refused(
        await http.get(f"/vault/proxy/{story.mail}/me", headers=bearer(token)), 403, "insufficient_scope"
    )
    assert 'scope="vault:mail"' in challenge
    listed = await http.get("/vault/connections", params={"user": story.w.bob}, headers=bearer(token))
    assert listed.json() == {"connections": []}
    assert proxy_events(story.w.fd) == []


async def test_the_agent_cannot_exchange_beyond_its_policy_or_the_persons_token(
    http: httpx.AsyncClient, story: Story
) -> None:
    """The operator's ``may_exchange_for`` names the vault only; the platform's API is not a target (``invalid_target``)
    and no scope beyond the person's token (``invalid_scope``)."""
    subject = await token_for(http, story.w, "alice", scope="vault:calendar", resource=PLATFORM_API)
    other = await http.post(
        "/token",
        data={"grant_type": TE, "subject_token": subject, "subject_token_type": ACCESS_TOKEN, "resource": PLATFORM_API},
        auth=basic(story.agent),
    )
    assert (other.status_code, other.json()["error"]) == (400, "invalid_target")
    wider = await exchange(http, story, subject, scope="vault:calendar vault:mail")
    assert (wider.status_code, wider.json()["error"]) == (400, "invalid_scope")


async def test_revoking_the_app_on_the_account_page_ends_the_agents_token_at_the_vault_at_once(
    http: httpx.AsyncClient, story: Story, secrets_seen: set[str]
) -> None:
    """The exchanged token belongs to the grant the person gave the platform: revoking the platform on the account
    page makes the vault and introspection refuse the agent's token in the next request, though it has not expired."""
    token = await agents_token(http, story, secrets_seen)
    assert (await http.get(f"/vault/proxy/{story.calendar}/me", headers=bearer(token))).status_code == 200
    apps = await account_page(http, "alice", PASSWORD, "/account/apps")
    revoked = await http.post(
        "/account/apps/revoke", data={"csrf": csrf_of(apps.text), "client_id": story.w.agent.client_id}
    )
    assert revoked.status_code == 303, revoked.text
    for path in (f"/vault/proxy/{story.calendar}/me", "/vault/connections", f"/vault/connections/{story.calendar}"):
        refused(await http.get(path, headers=bearer(token)), 401, "invalid_token")
    introspected = await http.post("/introspect", data={"token": token}, auth=basic(story.agent))
    assert introspected.json() == {"active": False}
    assert len(proxy_events(story.w.fd)) == 1


# --- bound to the agent's key (RFC 9449) ---------------------------------------------------------------------------


async def bound_token(http: httpx.AsyncClient, s: Story, key: Any, secrets_seen: set[str]) -> str:
    answer = await exchange(http, s, await platform_token(http, s), dpop=proof(key, "POST", ISSUER + "/token"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "DPoP"  # RFC 9449 §5
    token = str(answer.json()["access_token"])
    remember(secrets_seen, token)
    assert claims_of(token)["cnf"] == {"jkt": jkt_of(key)}
    return token


def dpop(token: str, key: Any, method: str, url: str, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"DPoP {token}", "DPoP": proof(key, method, url, **{"ath": ath_of(token), **claims})}


async def test_a_bound_token_reaches_the_calendar_only_with_a_fresh_proof_of_the_agents_key(
    http: httpx.AsyncClient, story: Story, secrets_seen: set[str]
) -> None:
    """RFC 9449 §7.1: as Bearer, or as DPoP without a proof, the bound token is a 401 with the DPoP challenge; with a
    proof of its key for this request it reaches the calendar, and the same proof again is refused (§11.1)."""
    key = new_key()
    token = await bound_token(http, story, key, secrets_seen)
    url = f"{ISSUER}/vault/proxy/{story.calendar}/me"
    path = url.removeprefix(ISSUER)

    assert refused(await http.get(path, headers=bearer(token)), 401, "invalid_token").startswith("DPoP algs=")
    no_proof = await http.get(path, headers={"Authorization": f"DPoP {token}"})
    assert refused(no_proof, 401, "invalid_dpop_proof").startswith("DPoP algs=")
    assert proxy_events(story.w.fd) == []

    headers = dpop(token, key, "GET", url)
    me = await http.get(path, headers=headers)
    assert me.status_code == 200, me.text
    assert me.json()["sub"] == ALICE_AT_OP.id
    refused(await http.get(path, headers=headers), 401, "invalid_dpop_proof")  # replayed
    assert len(proxy_events(story.w.fd)) == 1

    listing = f"{ISSUER}/vault/connections"
    listed = await http.get("/vault/connections", headers=dpop(token, key, "GET", listing))
    assert [c["id"] for c in listed.json()["connections"]] == [story.calendar]
    one = await http.get(f"/vault/connections/{story.calendar}", headers=dpop(token, key, "GET", listing))
    refused(one, 401, "invalid_dpop_proof")  # a proof for another URL (htu)


async def test_a_proof_of_another_key_or_for_another_request_is_refused(
    http: httpx.AsyncClient, story: Story, secrets_seen: set[str]
) -> None:
    """A thief holding the bound token but not the agent's key gets nothing; nor does a proof made for another
    method, or without the token's hash (``ath``, §4.3)."""
    key = new_key()
    token = await bound_token(http, story, key, secrets_seen)
    url = f"{ISSUER}/vault/proxy/{story.calendar}/me"
    path = url.removeprefix(ISSUER)
    for headers in (
        dpop(token, new_key(), "GET", url),
        dpop(token, key, "POST", url),
        {"Authorization": f"DPoP {token}", "DPoP": proof(key, "GET", url)},
        dpop(token, key, "GET", url, ath=ath_of("another token")),
    ):
        refused(await http.get(path, headers=headers), 401, "invalid_dpop_proof")
    another_integration = f"{ISSUER}/vault/proxy/{story.mail}/me"
    mail = await http.get(
        another_integration.removeprefix(ISSUER), headers=dpop(token, key, "GET", another_integration)
    )
    assert refused(mail, 403, "insufficient_scope").startswith("DPoP algs=")
    assert proxy_events(story.w.fd) == []


async def test_a_bearer_token_or_an_api_key_sent_as_dpop_is_refused(
    http: httpx.AsyncClient, story: Story, secrets_seen: set[str]
) -> None:
    """§7.2: an unbound token comes as Bearer; an API key is no DPoP-bound token either."""
    token = await agents_token(http, story, secrets_seen)
    key = new_key()
    url = f"{ISSUER}/vault/proxy/{story.calendar}/me"
    path = url.removeprefix(ISSUER)
    refused(await http.get(path, headers=dpop(token, key, "GET", url)), 401, "invalid_token")
    as_dpop = {"Authorization": f"DPoP {story.w.api_key}", "DPoP": proof(key, "GET", url)}
    for where in (path, f"/vault/connections?user={story.w.alice}"):
        assert 'DPoP algs="' in refused(await http.get(where, headers=as_dpop), 401, "invalid_token")
    assert (await http.get(path, headers=bearer(story.w.api_key))).status_code == 200


# --- examples/agent_delegation.py: the chatbot tool --------------------------------------------------------------


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("agent_delegation", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def assert_no_token(result: dict[str, Any], *tokens: str) -> None:
    text = json.dumps(result)
    assert "eyJ" not in text  # no JWT of any kind
    assert not any(token in text for token in tokens)


async def test_the_example_tool_returns_the_persons_data_and_never_a_token(
    http: httpx.AsyncClient, story: Story, example: ModuleType
) -> None:
    """The tool exchanges the person's token and answers with the provider's data only, as a bearer and as a
    DPoP-bound token; both calls are the agent's in the person's audit trail."""
    subject = await platform_token(http, story)
    for key in (None, new_key()):
        agent = example.Agent(ISSUER, story.agent.client_id, story.agent.secret, "calendar", key)
        result = await example.calendar_tool(subject, agent=agent, http=http, path="me")
        assert result["status"] == "ok", result
        assert result["data"]["sub"] == ALICE_AT_OP.id
        assert_no_token(result, subject)
    events = proxy_events(story.w.fd)
    assert [(e.client_id, e.user_id, e.detail["act"]) for e in events] == [
        ("calendar-agent", story.w.alice, ["calendar-agent"])
    ] * 2


async def test_the_example_tool_says_in_words_what_the_person_must_do(
    http: httpx.AsyncClient, story: Story, example: ModuleType
) -> None:
    """No connection of the integration: ``authorization_required`` in words; the app revoked: sign in again."""
    agent = example.Agent(ISSUER, story.agent.client_id, story.agent.secret, "mail")
    bobs = await platform_token(http, story, "bob")
    result = await example.calendar_tool(bobs, agent=agent, http=http, path="me")
    assert result == {
        "status": "authorization_required",
        "integration": "mail",
        "message": "You have not connected your mail yet. Connect it, then ask me again.",
    }
    apps = await account_page(http, "bob", PASSWORD, "/account/apps")
    await http.post("/account/apps/revoke", data={"csrf": csrf_of(apps.text), "client_id": story.w.agent.client_id})
    result = await example.calendar_tool(bobs, agent=agent, http=http, path="me")
    assert result["status"] == "signed_out", result
    assert_no_token(result, bobs)
    assert proxy_events(story.w.fd) == []
