"""The account page's "Connected accounts" (issue 14 item 2): a person sees their vault connections (the provider,
what it reaches in plain words, its status, when and by which app or agent it was last used) and disconnects one,
which revokes at the provider and is audited as theirs. node-oidc-provider is the provider (``running_op``)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from accounts import account_page, form_action
from conftest import csrf_of
from frontdesk.core import Frontdesk
from frontdesk.storage import audit
from peers.oidc_provider import Op, running_op
from vault.people import ALICE_AT_OP, BOB_AT_OP, OP_CLIENT, PASSWORD, World, bearer, connect, token_for, world

PAGE = "/account/connections"


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Op]:
    with running_op(tmp_path_factory.mktemp("op"), clients=[OP_CLIENT], accounts=[ALICE_AT_OP, BOB_AT_OP]) as up:
        yield up


@pytest.fixture
def w(fd: Frontdesk, op: Op, secrets_seen: set[str]) -> World:
    return world(fd, op, secrets_seen)


async def alice_signed_in(http: httpx.AsyncClient) -> httpx.Response:
    http.cookies.clear()
    page = await account_page(http, "alice", PASSWORD, PAGE)
    assert page.status_code == 200, page.text
    return page


async def test_the_page_lists_the_persons_connections_and_who_used_them_last(http: httpx.AsyncClient, w: World) -> None:
    """Alice's connection made through a link bound to her (for the platform's own id "plat-alice") is listed with
    its last use by the agent; Bob's and a platform user's unbound one are not."""
    await alice_signed_in(http)
    mine = await connect(http, w, "calendar", "plat-alice", ALICE_AT_OP, subject=w.alice)
    bobs = await connect(http, w, "calendar", w.bob, BOB_AT_OP)
    unbound = await connect(http, w, "mail", "plat-alice", ALICE_AT_OP)
    token = await token_for(http, w, "alice")
    called = await http.get(f"/vault/proxy/{mine}/me", headers=bearer(token))
    assert called.status_code == 200, called.text

    page = await alice_signed_in(http)
    assert "<h1>Connected accounts</h1>" in page.text
    assert page.text.count('action="/account/connections/disconnect"') == 1
    assert f'name="connection" value="{mine}"' in page.text
    assert bobs not in page.text
    assert unbound not in page.text
    assert "OpenID Connect" in page.text
    assert "<li>knowing who you are</li>" in page.text  # the catalog's words for each scope it was granted
    assert "<li>staying connected while you are away</li>" in page.text
    assert "Working" in page.text
    assert "by <strong>Trip Planner</strong>" in page.text


async def test_disconnect_revokes_at_the_provider_and_is_audited_as_the_persons(
    http: httpx.AsyncClient, w: World, op: Op
) -> None:
    mine = await connect(http, w, "calendar", w.alice, ALICE_AT_OP)
    page = await alice_signed_in(http)
    revocations = op.counts().get("revocation", {}).get("succeeded", 0)
    done = await http.post(form_action(page.text), data={"csrf": csrf_of(page.text), "connection": mine})
    assert done.status_code == 303, done.text
    assert done.headers["location"] == PAGE + "?disconnected=revoked"
    after = await http.get(done.headers["location"])
    assert "The provider confirmed" in after.text
    assert mine not in after.text
    assert op.counts()["revocation"]["succeeded"] > revocations
    listed = await http.get("/vault/connections", params={"user": w.alice}, headers=bearer(w.api_key))
    assert listed.json() == {"connections": []}
    [event] = [e for e in audit.tail(w.fd.engine, 100) if e.event == "vault.connection.deleted"]
    assert (event.user_id, event.ip, event.detail["connection"]) == (w.alice, "203.0.113.7", mine)
    activity = await http.get("/account/activity")
    assert "You disconnected your OpenID Connect account" in activity.text


async def test_disconnect_needs_the_pages_csrf_token(http: httpx.AsyncClient, w: World) -> None:
    mine = await connect(http, w, "calendar", w.alice, ALICE_AT_OP)
    await alice_signed_in(http)
    refused = await http.post("/account/connections/disconnect", data={"csrf": "forged", "connection": mine})
    assert refused.status_code in (400, 403), refused.text
    listed = await http.get("/vault/connections", params={"user": w.alice}, headers=bearer(w.api_key))
    assert [c["id"] for c in listed.json()["connections"]] == [mine]


async def test_disconnecting_someone_elses_connection_does_nothing(http: httpx.AsyncClient, w: World) -> None:
    bobs = await connect(http, w, "calendar", w.bob, BOB_AT_OP)
    await connect(http, w, "mail", w.alice, ALICE_AT_OP)  # a form of her own on the page, for its CSRF token
    page = await alice_signed_in(http)
    answer = await http.post("/account/connections/disconnect", data={"csrf": csrf_of(page.text), "connection": bobs})
    assert answer.status_code == 303
    assert answer.headers["location"] == PAGE
    listed = await http.get("/vault/connections", params={"user": w.bob}, headers=bearer(w.api_key))
    assert [c["id"] for c in listed.json()["connections"]] == [bobs]
    assert not [e for e in audit.tail(w.fd.engine, 100) if e.event == "vault.connection.deleted"]


async def test_the_page_needs_a_signed_in_person(http: httpx.AsyncClient, w: World) -> None:
    answer = await http.get(PAGE)
    assert answer.status_code in (302, 303)
    assert "/login" in answer.headers["location"]
