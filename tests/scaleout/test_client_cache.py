"""Each host keeps the clients it read for a few seconds (DESIGN §3: in-process caches are short-lived and safe to be
stale for seconds; ``storage/clients.py``: ``CACHE_SECONDS``). A client the command line creates is known to both
hosts at once, since a client not found is never cached; one it changes or deletes is seen changed by both within
that bound, and the test asks no more of them than the bound."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from frontdesk.storage.clients import CACHE_SECONDS

from .conftest import Pair, register
from .flows import App, client, token, within

pytestmark = [pytest.mark.subprocess, pytest.mark.postgres]

# A cached copy was read before the command started and lives CACHE_SECONDS; allow one look more.
BOUND = CACHE_SECONDS + 0.5
GRANT = {"grant_type": "client_credentials"}


async def _answers(http: httpx.AsyncClient, base: str, app: App) -> tuple[int, str | None]:
    response = await token(http, base, app, GRANT)
    return response.status_code, None if response.status_code == 200 else response.json()["error"]


async def _both_see(http: httpx.AsyncClient, pair: Pair, app: App, expected: tuple[int, str], since: float) -> None:
    async def sees(base: str) -> None:
        async def changed() -> bool:
            return await _answers(http, base, app) == expected

        await within(BOUND, changed, since)

    await asyncio.gather(sees(pair.a), sees(pair.b))


async def test_a_client_created_at_the_command_line_is_known_to_both_hosts_at_once(pair: Pair):
    async with client() as http:
        unknown = App("made-later", "s" * 43)
        for base in (pair.a, pair.b):  # looked up, and not found, before it exists
            assert await _answers(http, base, unknown) == (401, "invalid_client")
        app = register(pair, "Made later", "client_credentials")
        for base in (pair.a, pair.b):
            assert await _answers(http, base, app) == (200, None)


async def test_a_client_changed_at_the_command_line_is_seen_changed_by_both_hosts_within_the_bound(pair: Pair):
    """Once ``client update --dpop-bound-access-tokens`` has run, both hosts refuse the client's bearer token
    requests (RFC 9449 §5.2) within the cache's bound, though each held the client as it was."""
    app = register(pair, "Bound later", "client_credentials")
    async with client() as http:
        for base in (pair.a, pair.b):
            assert await _answers(http, base, app) == (200, None)
        pair.cli("client", "update", app.client_id, "--dpop-bound-access-tokens")
        await _both_see(http, pair, app, (400, "invalid_dpop_proof"), time.monotonic())


async def test_a_client_deleted_at_the_command_line_is_refused_by_both_hosts_within_the_bound(pair: Pair):
    app = register(pair, "Deleted later", "client_credentials")
    async with client() as http:
        for base in (pair.a, pair.b):
            assert await _answers(http, base, app) == (200, None)
        pair.cli("client", "delete", app.client_id)
        await _both_see(http, pair, app, (401, "invalid_client"), time.monotonic())
