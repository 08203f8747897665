"""A vault connection's person is kept on the connection itself (``vault_connections.person``, revision 0013), not
read from the connect sessions the purge deletes: ten minutes after Alice connects through a link bound to her, for a
platform user id that is not her frontdesk id, her own token still reaches the connection and her account page still
lists it. Revision 0013 fills the column in from the sessions by the rule that read them until now.

node-oidc-provider is the provider (``running_op``: the ``node`` marker); frontdesk is in process.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from accounts import account_page
from conftest import Clock
from frontdesk.core import Frontdesk
from frontdesk.oauth import housekeeping
from frontdesk.storage.db import MIGRATIONS, open_engine
from frontdesk.storage.schema import VaultConnection, VaultConnectSession
from peers.oidc_provider import Op, running_op

from .people import ALICE_AT_OP, BOB_AT_OP, OP_CLIENT, PASSWORD, World, bearer, connect, token_for, world


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Op]:
    with running_op(tmp_path_factory.mktemp("op"), clients=[OP_CLIENT], accounts=[ALICE_AT_OP, BOB_AT_OP]) as up:
        yield up


@pytest.fixture
def w(fd: Frontdesk, op: Op, secrets_seen: set[str]) -> World:
    return world(fd, op, secrets_seen)


def sessions(fd: Frontdesk) -> int:
    with fd.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(VaultConnectSession)).scalar_one())


async def signed_in_as(http: httpx.AsyncClient, username: str) -> None:
    """``http``'s browser signed in as ``username`` only, as a link bound to them asks."""
    http.cookies.clear()
    page = await account_page(http, username, PASSWORD)
    assert page.status_code == 200, page.text


def purged(fd: Frontdesk, clock: Clock) -> None:
    """The housekeeping pass, once the connect sessions have expired: none is left."""
    clock.advance(fd.settings.lifetimes.connect_session + 1)
    housekeeping.purge(fd)
    assert sessions(fd) == 0


async def test_a_persons_connection_outlives_its_purged_connect_session(
    http: httpx.AsyncClient, w: World, clock: Clock
) -> None:
    """Connected for the platform's "plat-alice" through a link bound to Alice: once the link's session is purged,
    her vault token still calls through the connection and lists it, and her account page shows it."""
    await signed_in_as(http, "alice")
    mine = await connect(http, w, "calendar", "plat-alice", ALICE_AT_OP, subject=w.alice)
    purged(w.fd, clock)

    token = await token_for(http, w, "alice")
    called = await http.get(f"/vault/proxy/{mine}/me", headers=bearer(token))
    assert called.status_code == 200, called.text
    listed = await http.get("/vault/connections", headers=bearer(token))
    assert [c["id"] for c in listed.json()["connections"]] == [mine], listed.text
    await signed_in_as(http, "alice")
    page = await account_page(http, "alice", PASSWORD, "/account/connections")
    assert page.status_code == 200, page.text
    assert f'name="connection" value="{mine}"' in page.text


async def test_a_reconnect_through_a_link_bound_to_another_person_makes_it_theirs(
    http: httpx.AsyncClient, w: World, clock: Clock
) -> None:
    """The link that last connected it decides, also after the purge: Bob reconnected "plat-shared" through a link
    bound to him, so it is Bob's, and Alice's token no longer reaches it."""
    await signed_in_as(http, "alice")
    first = await connect(http, w, "calendar", "plat-shared", ALICE_AT_OP, subject=w.alice)
    await signed_in_as(http, "bob")
    again = await connect(http, w, "calendar", "plat-shared", BOB_AT_OP, subject=w.bob)
    assert again == first  # reconnected in place
    purged(w.fd, clock)

    alices = await token_for(http, w, "alice")
    refused = await http.get(f"/vault/proxy/{first}/me", headers=bearer(alices))
    assert refused.status_code == 403, refused.text
    assert (await http.get("/vault/connections", headers=bearer(alices))).json()["connections"] == []
    bobs = await token_for(http, w, "bob")
    assert (await http.get(f"/vault/proxy/{first}/me", headers=bearer(bobs))).status_code == 200


async def test_a_platform_users_connection_through_an_unbound_link_is_nobodys(http: httpx.AsyncClient, w: World):
    """A link bound to nobody, for a platform user id that is no frontdesk person's id: no person is stored."""
    theirs = await connect(http, w, "calendar", "plat-7", ALICE_AT_OP)
    mine = await connect(http, w, "mail", w.alice, ALICE_AT_OP)
    with w.fd.engine.connect() as conn:
        people = dict(conn.execute(sa.select(VaultConnection.id, VaultConnection.person)).all())
    assert people == {theirs: None, mine: w.alice}


# --- revision 0013's backfill --------------------------------------------------------------------------------------

USERS = sa.table(
    "users",
    sa.column("id"), sa.column("username"), sa.column("password_hash"), sa.column("created_at"),
)  # fmt: skip
CONNECTIONS = sa.table(
    "vault_connections",
    sa.column("id"), sa.column("integration"), sa.column("user"), sa.column("status"), sa.column("scopes"),
    sa.column("meta"), sa.column("credentials"), sa.column("key_id"), sa.column("failures"), sa.column("created_at"),
    sa.column("updated_at"), sa.column("person"),
)  # fmt: skip
SESSIONS = sa.table(
    "vault_connect_sessions",
    sa.column("id"), sa.column("digest"), sa.column("user"), sa.column("integration"), sa.column("scopes"),
    sa.column("params"), sa.column("subject"), sa.column("created_at"), sa.column("expires_at"),
    sa.column("consumed_at"), sa.column("connection_id"),
)  # fmt: skip
ALICE, BOB = "usr_alice_0013", "usr_bob_0013"

# connection id → (platform user id, [(subject of a finished session, consumed_at)], the person 0013 must store)
CASES: dict[str, tuple[str, list[tuple[str | None, int]], str | None]] = {
    "bound": ("plat-1", [(ALICE, 100)], ALICE),
    "own-id-no-link-left": (ALICE, [], ALICE),
    "platform-own-id-unbound": ("plat-2", [(None, 100)], None),
    "no-link-left-no-person": ("plat-3", [], None),
    "latest-unbound-own-id": (BOB, [(ALICE, 100), (None, 200)], BOB),
    "latest-bound-wins": ("plat-4", [(BOB, 100), (ALICE, 200)], ALICE),
    "two-owners-same-second": (ALICE, [(ALICE, 300), (BOB, 300)], None),
    "one-owner-same-second": (ALICE, [(ALICE, 300), (None, 300)], ALICE),
}


def alembic(conn: sa.Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


@pytest.fixture
def engine(fd_database: str) -> Iterator[sa.Engine]:
    """The test's own copy of the migrated template database, with no frontdesk on it."""
    engine = open_engine(fd_database)
    yield engine
    engine.dispose()


def test_0013_gives_each_connection_the_person_its_last_links_made_it(engine: sa.Engine) -> None:
    """Upgraded from 0012 with connections and finished connect sessions on record, each connection gets the person
    the sessions said it was: the subject of the latest link, or its user id when that link was bound to nobody (or
    none is left) and the id is a person's; nobody's for two owners in one second or a platform's own user id."""
    with engine.connect() as conn:
        command.downgrade(alembic(conn), "0012")
        conn.commit()
    with engine.begin() as conn:
        conn.execute(
            sa.insert(USERS),
            [{"id": i, "username": i, "password_hash": "x", "created_at": 1} for i in (ALICE, BOB)],
        )
        for connection_id, (user, links, _) in CASES.items():
            conn.execute(
                sa.insert(CONNECTIONS),
                {
                    "id": connection_id, "integration": connection_id, "user": user, "status": "active",
                    "scopes": "[]", "meta": "{}", "credentials": b"sealed", "key_id": "k", "failures": 0,
                    "created_at": 1, "updated_at": 1,
                },
            )  # fmt: skip
            for n, (subject, consumed_at) in enumerate(links):
                conn.execute(
                    sa.insert(SESSIONS),
                    {
                        "id": f"cs_{connection_id}_{n}", "digest": f"d_{connection_id}_{n}", "user": user,
                        "integration": connection_id, "scopes": "[]", "params": "{}", "subject": subject,
                        "created_at": consumed_at - 10, "expires_at": consumed_at + 600, "consumed_at": consumed_at,
                        "connection_id": connection_id,
                    },
                )  # fmt: skip
    with engine.connect() as conn:
        command.upgrade(alembic(conn), "head")
        conn.commit()
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.select(CONNECTIONS.c.id, CONNECTIONS.c.person)).all())
    assert stored == {connection_id: person for connection_id, (_, _, person) in CASES.items()}
    assert "ix_vault_connections_person" in {i["name"] for i in sa.inspect(engine).get_indexes("vault_connections")}
