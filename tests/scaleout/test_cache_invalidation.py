"""What each host keeps in memory is dropped when the other changes the store (issue 15 item 2; storage/notify.py,
oauth/memory.py): a revocation at A is seen at B's introspection within a second even when B's listener
connection is killed (``pg_terminate_backend``) just before it, or again and again while it reconnects; a client
changed at the command line is seen changed by both hosts within a second, not the client cache's five; a resource
registered at the command line is usable at both at once, and its deletion seen within a second."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text

from frontdesk.storage.db import normalise_url
from frontdesk.storage.notify import APPLICATION_NAME, BOUND

from .conftest import Pair, register
from .flows import App, active, client, code_at, redeem, token, tokens, within

pytestmark = [pytest.mark.subprocess, pytest.mark.postgres]

LISTENERS = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = :name"


@contextmanager
def database(pair: Pair) -> Iterator[Engine]:
    engine = create_engine(normalise_url(pair.database_url), isolation_level="AUTOCOMMIT")
    try:
        yield engine
    finally:
        engine.dispose()


def listeners(engine: Engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(text(LISTENERS), {"name": APPLICATION_NAME}).all())


def kill_listeners(engine: Engine) -> int:
    with engine.connect() as conn:
        pids = [row[0] for row in conn.execute(text(LISTENERS), {"name": APPLICATION_NAME})]
        for pid in pids:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    return len(pids)


async def _issued(http: httpx.AsyncClient, pair: Pair, app: App, person: str) -> dict[str, str]:
    code, verifier = await code_at(http, pair.a, app, person)
    return await tokens(http, pair.a, app, redeem(code, verifier))


async def _revoked_at_a_seen_at_b(http: httpx.AsyncClient, pair: Pair, app: App, revoked: str) -> float:
    response = await http.post(f"{pair.a}/revoke", data={"token": revoked}, auth=app.auth)
    assert response.status_code == 200, response.text
    since = time.monotonic()

    async def inactive_at_b() -> bool:
        return not await active(http, pair.b, app, revoked)

    return await within(BOUND, inactive_at_b, since)


async def _until(seen: Callable[[], bool], bound: float) -> None:
    started = time.monotonic()
    while not seen():
        assert time.monotonic() - started <= bound, f"not seen within {bound} s"
        await asyncio.sleep(0.05)


async def _refused_at_both_within_the_bound(
    http: httpx.AsyncClient, pair: Pair, app: App, grant: dict[str, str], error: str
) -> None:
    """Both hosts answer ``grant`` with ``error`` within ``BOUND`` of now."""
    since = time.monotonic()

    async def refused(base: str) -> None:
        async def seen() -> bool:
            response = await token(http, base, app, grant)
            return response.status_code == 400 and response.json()["error"] == error

        await within(BOUND, seen, since)

    await asyncio.gather(refused(pair.a), refused(pair.b))


async def test_each_host_listens_on_one_connection(pair: Pair):
    with database(pair) as engine:
        await _until(lambda: listeners(engine) == 2, 5.0)


async def test_a_revocation_made_just_after_the_listeners_are_killed_is_seen_at_b_within_a_second(
    pair: Pair, app: App, person: str
):
    """Killed, the listener misses the notification; B stops trusting what it kept within the bound and reads the
    store, or reconnects and reads the changed generation. Either way the token is inactive at B within a second."""
    async with client() as http:
        issued = await _issued(http, pair, app, person)
        for _ in range(3):  # B has read and kept the answer
            assert await active(http, pair.b, app, issued["access_token"])
        with database(pair) as engine:
            await _until(lambda: listeners(engine) == 2, 5.0)
            assert kill_listeners(engine) == 2
            took = await _revoked_at_a_seen_at_b(http, pair, app, issued["access_token"])
            await _until(lambda: listeners(engine) == 2, 5.0)  # both reconnect
    print(f"revocation seen at B {took:.3f} s after it, its listener killed")


async def test_a_revocation_is_seen_at_b_within_a_second_while_its_listener_keeps_being_killed(
    pair: Pair, app: App, person: str
):
    """The listener connection dies again every few milliseconds while it tries to reconnect: B never vouches for
    what it kept and answers from the store."""
    async with client() as http:
        issued = await _issued(http, pair, app, person)
        for _ in range(3):
            assert await active(http, pair.b, app, issued["refresh_token"])
            assert await active(http, pair.b, app, issued["access_token"])
        stop = threading.Event()
        with database(pair) as engine:

            def keep_killing() -> None:
                while not stop.wait(0.02):
                    kill_listeners(engine)

            killer = threading.Thread(target=keep_killing)
            killer.start()
            try:
                await asyncio.sleep(0.1)
                took = await _revoked_at_a_seen_at_b(http, pair, app, issued["access_token"])
            finally:
                stop.set()
                killer.join()
            await _until(lambda: listeners(engine) == 2, 10.0)
        assert await active(http, pair.b, app, issued["refresh_token"])  # the access token alone was revoked
    print(f"revocation seen at B {took:.3f} s after it, its listener killed again and again")


async def test_a_client_changed_at_the_command_line_is_seen_by_both_hosts_within_a_second(pair: Pair):
    """The trigger names the client on the channel: each host drops its cached copy at once, rather than serving it
    for the client cache's five seconds."""
    app = register(pair, "Bound at once", "client_credentials")
    grant = {"grant_type": "client_credentials"}
    async with client() as http:
        for base in (pair.a, pair.b):
            assert (await token(http, base, app, grant)).status_code == 200
        pair.cli("client", "update", app.client_id, "--dpop-bound-access-tokens")
        await _refused_at_both_within_the_bound(http, pair, app, grant, "invalid_dpop_proof")


async def test_a_resource_registered_at_the_command_line_is_usable_at_once_and_its_deletion_seen_within_a_second(
    pair: Pair,
):
    """Each host keeps the resource registry (oauth/memory.py). A resource registered a moment ago is looked for in
    the store when the kept registry lacks it, so it is usable at once; a deletion is counted by migration 0019's
    triggers and notified, so neither host mints another token for it after the bound."""
    app = register(pair, "Resource user", "client_credentials")
    uri = f"https://api-{app.client_id[:8].lower()}.example.com/"
    grant = {"grant_type": "client_credentials", "resource": uri}
    async with client() as http:
        for base in (pair.a, pair.b):  # each keeps a registry without it
            assert (await token(http, base, app, {"grant_type": "client_credentials"})).status_code == 200
        pair.cli("resource", "create", uri, "--name", "Kept and dropped")
        for base in (pair.a, pair.b):
            minted = await token(http, base, app, grant)
            assert minted.status_code == 200, (base, minted.text)
        pair.cli("resource", "delete", uri)
        await _refused_at_both_within_the_bound(http, pair, app, grant, "invalid_target")
