"""The vault's alert rules from the events the vault itself writes, on SQLite and PostgreSQL: calls through the real
proxy raise the surge alert, and a provider whose token endpoint is down raises the failing-refresh alert after
``refresh_failures`` refreshes in a row."""

from __future__ import annotations

import httpx

from vault.conftest import (  # noqa: F401  (the vault tests' fixtures, for a connected fake provider)
    api_key,
    bearer,
    connected,
    fake,
    fake_class,
    fake_options,
    provider_file_options,
    remember_tokens,
    vault,
)
from vault.fake_provider import Fake

from .alerting import configure, evaluate_all, raised


async def _connection(http: httpx.AsyncClient, key: str, provider: Fake, seen: set[str]) -> str:
    found = await connected(http, key)
    remember_tokens(provider, seen)
    return str(found["id"])


async def test_proxied_calls_raise_the_surge_alert(fd, http, api_key, fake, secrets_seen):  # noqa: F811
    """Three calls through the proxy in the hour of a connection with no history (minimum 3) raise the alert."""
    configure(fd, proxy_rate_factor=10, proxy_min_calls=3)
    connection_id = await _connection(http, api_key, fake, secrets_seen)
    for n in range(3):
        assert (await http.get(f"/vault/proxy/{connection_id}/me", headers=bearer(api_key))).status_code == 200
        evaluate_all(fd)
        assert len(raised(fd)) == (1 if n == 2 else 0)
    (alert,) = raised(fd, "vault.proxy.surge")
    assert (alert.key, alert.detail["calls"]) == (connection_id, 3)


async def test_refreshes_failing_in_a_row_raise_the_alert(fd, http, api_key, fake, clock, secrets_seen):  # noqa: F811
    """The provider's token endpoint is down: each call after the access token expired tries a refresh, which
    fails; the third failure in a row raises the alert."""
    configure(fd, refresh_failures=3)
    connection_id = await _connection(http, api_key, fake, secrets_seen)
    fake.down = True
    for n in range(3):
        clock.advance(7200)  # past the access token's life and past the backoff of the last failure
        fake.expire_access_tokens()
        response = await http.get(f"/vault/proxy/{connection_id}/me", headers=bearer(api_key))
        assert response.status_code >= 400
        evaluate_all(fd)
        assert len(raised(fd)) == (1 if n == 2 else 0), n
    (alert,) = raised(fd, "vault.refresh.failing")
    assert (alert.key, alert.detail["count"]) == (connection_id, 3)
