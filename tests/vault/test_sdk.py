"""The vault SDK against the real app and the fake provider, through both clients: one test body drives the blocking
:class:`VaultClient` and the :class:`AsyncVaultClient`, so the shared core is proven through each driver.

httpx has no blocking ASGI transport. Rather than a second frontdesk process (the fixtures here — the fake provider's
integration, the API key, the connect flow — live in this process's database) or starlette's private
``_TestClientTransport``, :class:`BlockingASGITransport` runs httpx's own ASGITransport on an event loop of its own
in a thread (an anyio blocking portal, the mechanism TestClient uses). The app is the real one either way.
"""

from __future__ import annotations

import ast
import inspect
import json
import logging
import subprocess
import sys
import time
import tomllib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio.from_thread
import httpx
import pytest
from sqlalchemy import update

import frontdesk_sdk
import frontdesk_sdk.agent
import frontdesk_sdk.client
import frontdesk_sdk.flow
import frontdesk_sdk.models
import frontdesk_sdk.secret
from conftest import ISSUER
from frontdesk.core import Frontdesk
from frontdesk.storage.schema import VaultConnection
from frontdesk.vault import api_key_store
from frontdesk.vault.service import Vault
from frontdesk.web import create_app
from frontdesk_sdk import (
    AsyncVaultClient,
    AuthorizationRequired,
    Connection,
    VaultAPIError,
    VaultClient,
    VaultUnreachable,
)

from .conftest import bearer, connected, remember_tokens, through_provider
from .fake_provider import Fake


class Recorded(httpx.ASGITransport):
    """The in-process app, noting every request the SDK sends to the vault."""

    def __init__(self, app: Any, sent: list[httpx.Request]) -> None:
        super().__init__(app=app, client=("203.0.113.9", 50001))
        self.sent = sent

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return await super().handle_async_request(request)

    async def aclose(self) -> None:
        await self.app.state.vault_http.aclose()  # the lifespan would; ASGITransport runs none


class BlockingASGITransport(httpx.BaseTransport):
    """httpx's ASGITransport, on an event loop of its own in a thread, for the blocking client."""

    def __init__(self, inner: Recorded) -> None:
        self.inner = inner
        self.portal_cm = anyio.from_thread.start_blocking_portal()
        self.portal = self.portal_cm.__enter__()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.portal.call(self._send, request)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        return httpx.Response(response.status_code, headers=response.headers, content=content)

    def close(self) -> None:
        self.portal.call(self.inner.aclose)
        self.portal_cm.__exit__(None, None, None)


class Either:
    """One test body for both clients: every call is awaited when the client is the async one."""

    def __init__(self, client: VaultClient | AsyncVaultClient, sent: list[httpx.Request]) -> None:
        self.client = client
        self.sent = sent

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.client, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result

        return call

    def paths(self) -> list[str]:
        """The vault endpoints called so far, the connection id left out."""
        return ["/vault/proxy/…" if r.url.path.startswith("/vault/proxy/") else r.url.path for r in self.sent]


Make = Callable[..., Either]


@pytest.fixture(params=["sync", "async"])
async def make_sdk(request: pytest.FixtureRequest, fd: Frontdesk, api_key: str) -> AsyncIterator[Make]:
    """Clients of the kind the test is parametrized with, against the in-process app, closed afterwards."""
    made: list[VaultClient | AsyncVaultClient] = []

    def make(key: str = api_key, **options: Any) -> Either:
        sent: list[httpx.Request] = []
        transport = Recorded(create_app(fd), sent)
        client: VaultClient | AsyncVaultClient
        if request.param == "sync":
            client = VaultClient(ISSUER, key, transport=BlockingASGITransport(transport), **options)
        else:
            client = AsyncVaultClient(ISSUER, key, transport=transport, **options)
        made.append(client)
        return Either(client, sent)

    yield make
    for client in made:
        if isinstance(client, VaultClient):
            client.close()
        else:
            await client.aclose()  # closes the transport, and with it the app's pool towards providers


@pytest.fixture
def client(make_sdk: Make) -> Either:
    return make_sdk()


def answer(response: httpx.Response | AuthorizationRequired) -> dict[str, Any]:
    assert isinstance(response, httpx.Response), response
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- calling the provider ----------------------------------------------------------------------------------------


async def test_a_connected_request_returns_the_providers_answer(
    client: Either, http: httpx.AsyncClient, api_key: str, fake: Fake, secrets_seen: set[str]
) -> None:
    """Method, path, query, JSON body and vendor headers reach the provider; the credential comes back stripped."""
    await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    response = await client.request(
        "u-123", "cal", "POST", "/events?day=today", params={"week": "1"}, json={"title": "lunch"},
        headers={"X-Trace": "t1"},
    )  # fmt: skip
    body = answer(response)
    assert body["method"] == "POST"
    assert body["path"] == "/api/events"
    assert body["query"] == "day=today&week=1"
    assert json.loads(body["body"]) == {"title": "lunch"}
    assert body["echo"] == "Bearer [redacted]"
    assert fake.api_calls[-1]["headers"]["x-trace"] == "t1"
    assert client.paths() == ["/vault/check", "/vault/proxy/…"]


async def test_a_form_body_reaches_the_provider(
    client: Either, http: httpx.AsyncClient, api_key: str, fake: Fake, secrets_seen: set[str]
) -> None:
    await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    body = answer(await client.request("u-123", "cal", "PUT", "events/1", data={"title": "tea"}))
    assert (body["method"], body["body"]) == ("PUT", "title=tea")


async def test_not_connected_returns_a_link_that_connects(
    client: Either, http: httpx.AsyncClient, api_key: str, fake: Fake, secrets_seen: set[str]
) -> None:
    """No connection yet: a typed AuthorizationRequired with a working link, and no call towards the provider."""
    needed = await client.request("u-123", "cal", "GET", "me")
    assert isinstance(needed, AuthorizationRequired)
    assert needed.reason == "not_connected"
    assert needed.integration == "cal"
    assert needed.scopes == ("calendar.read",)
    assert needed.message == "I need access to your Fake Calendar to do that. Connect it here."
    assert needed.authorization_url.startswith(ISSUER + "/vault/connect/fd_vc_")
    assert needed.expires_at > time.time()
    assert client.paths() == ["/vault/check"]
    assert fake.api_calls == []

    done = await through_provider(http, needed.authorization_url)
    assert done.status_code == 200
    remember_tokens(fake, secrets_seen)
    assert answer(await client.request("u-123", "cal", "GET", "me"))["path"] == "/api/me"


async def test_missing_scopes_ask_for_granted_plus_needed(
    client: Either, http: httpx.AsyncClient, api_key: str, fake: Fake, secrets_seen: set[str]
) -> None:
    """A call needing a scope not granted yet asks again (incremental), even though the connection is cached."""
    await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    answer(await client.request("u-123", "cal", "GET", "me", scopes=["calendar.read"]))
    needed = await client.request("u-123", "cal", "POST", "events", scopes=["calendar.write"])
    assert isinstance(needed, AuthorizationRequired)
    assert needed.reason == "missing_scopes"
    assert set(needed.scopes) == {"calendar.read", "calendar.write"}
    assert "changes to your Fake Calendar" in needed.message

    assert (await through_provider(http, needed.authorization_url)).status_code == 200
    remember_tokens(fake, secrets_seen)
    assert answer(await client.request("u-123", "cal", "POST", "events", scopes=["calendar.write"]))["method"] == "POST"
    (connection,) = await client.connections("u-123")
    assert set(connection.scopes) == {"calendar.read", "calendar.write"}


async def test_a_dead_connection_asks_the_person_to_reconnect(
    client: Either, http: httpx.AsyncClient, api_key: str, fake: Fake, secrets_seen: set[str]
) -> None:
    """Revoked at the provider behind the vault's back: the proxy's 424 becomes AuthorizationRequired(needs_reauth),
    the cached connection is forgotten, and reconnecting through the link makes the same call work again."""
    await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    answer(await client.request("u-123", "cal", "GET", "me"))
    fake.revoke_everything()
    needed = await client.request("u-123", "cal", "GET", "me")
    assert isinstance(needed, AuthorizationRequired)
    assert needed.reason == "needs_reauth"
    assert "Reconnect" in needed.message
    assert client.paths() == ["/vault/check", "/vault/proxy/…", "/vault/proxy/…"]

    again = await client.request("u-123", "cal", "GET", "me")  # asked afresh, not sent to a dead connection
    assert isinstance(again, AuthorizationRequired)
    assert again.reason == "needs_reauth"
    assert client.paths()[-1] == "/vault/check"

    assert (await through_provider(http, again.authorization_url)).status_code == 200
    remember_tokens(fake, secrets_seen)
    answer(await client.request("u-123", "cal", "GET", "me"))


async def test_the_resolved_connection_is_reused_briefly(
    make_sdk: Make, http: httpx.AsyncClient, api_key: str, fake: Fake, secrets_seen: set[str]
) -> None:
    """Within cache_seconds a second call goes straight to the proxy; with no cache, every call checks first."""
    await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    cached, uncached = make_sdk(), make_sdk(cache_seconds=0)
    for client in (cached, uncached):
        answer(await client.request("u-123", "cal", "GET", "me"))
        answer(await client.request("u-123", "cal", "GET", "me"))
    assert cached.paths() == ["/vault/check", "/vault/proxy/…", "/vault/proxy/…"]
    assert uncached.paths() == ["/vault/check", "/vault/proxy/…"] * 2


async def test_a_connection_deleted_elsewhere_is_resolved_again(
    client: Either, http: httpx.AsyncClient, api_key: str, fake: Fake, secrets_seen: set[str]
) -> None:
    """The vault's own 404 for a cached id (the provider never saw the call) leads to a fresh check, once."""
    connection = await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    answer(await client.request("u-123", "cal", "POST", "events"))
    calls = len(fake.api_calls)
    assert (await http.delete(f"/vault/connections/{connection['id']}", headers=bearer(api_key))).status_code == 200
    needed = await client.request("u-123", "cal", "POST", "events")
    assert isinstance(needed, AuthorizationRequired)
    assert needed.reason == "not_connected"
    assert client.paths()[2:] == ["/vault/proxy/…", "/vault/check"]
    assert len(fake.api_calls) == calls


async def test_a_failed_call_is_not_retried(
    client: Either, http: httpx.AsyncClient, api_key: str, fake: Fake, vault: Vault, secrets_seen: set[str]
) -> None:
    """A POST the vault could not complete (the provider is down) comes back as it is: one proxied request."""
    await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    with vault.engine.begin() as conn:
        conn.execute(update(VaultConnection).values(expires_at=int(time.time()) - 1))
    fake.down = True
    response = await client.request("u-123", "cal", "POST", "events", json={"title": "lunch"})
    assert isinstance(response, httpx.Response)
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert client.paths() == ["/vault/check", "/vault/proxy/…"]
    assert fake.api_calls == []


# --- the platform's other calls ------------------------------------------------------------------------------------


async def test_connect_session_then_check_and_list(
    client: Either, http: httpx.AsyncClient, fake: Fake, secrets_seen: set[str]
) -> None:
    session = await client.connect_session("u-123", "cal", ["calendar.write"], return_url="https://app.example/done")
    assert session.id.startswith("cs_")
    assert session.connect_url.startswith(ISSUER + "/vault/connect/fd_vc_")
    done = await through_provider(http, session.connect_url)
    remember_tokens(fake, secrets_seen)
    assert done.headers["location"] == "https://app.example/done"

    found = await client.check("u-123", "cal", ["calendar.write"])
    assert isinstance(found, Connection)
    assert found.status == "active"
    assert set(found.scopes) == {"calendar.read", "calendar.write"}
    assert await client.connections("u-123") == [found]
    assert await client.connections("u-123", "cal") == [found]
    assert await client.connections("someone-else") == []


async def test_delete_forgets_the_connection(
    client: Either, http: httpx.AsyncClient, api_key: str, fake: Fake, secrets_seen: set[str]
) -> None:
    connection = await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    answer(await client.request("u-123", "cal", "GET", "me"))
    assert await client.delete(connection["id"]) is True
    assert fake.revoked
    assert await client.delete(connection["id"]) is False
    needed = await client.request("u-123", "cal", "GET", "me")
    assert isinstance(needed, AuthorizationRequired)
    assert client.paths()[-1] == "/vault/check"


async def test_a_bad_call_raises_the_vaults_error(client: Either) -> None:
    with pytest.raises(VaultAPIError) as raised:
        await client.check("u-123", "nope")
    assert (raised.value.status, raised.value.error) == (400, "invalid_request")
    assert raised.value.description == "no integration named 'nope'"


@pytest.mark.parametrize("path", ["../connections", "a/../../connections", "./me", "%2e%2e/token", "a\\b"])
async def test_a_path_leaving_the_api_base_is_refused_before_sending(client: Either, path: str) -> None:
    """httpx would resolve '..' itself, and reach the vault's own API with the platform's key."""
    with pytest.raises(ValueError, match="under the provider's API base"):
        await client.request("u-123", "cal", "DELETE", path)
    assert client.sent == []


# --- the API key stays secret ----------------------------------------------------------------------------------------


async def test_the_api_key_is_in_no_repr_error_or_answer(
    client: Either,
    make_sdk: Make,
    http: httpx.AsyncClient,
    api_key: str,
    fake: Fake,
    vault: Vault,
    secrets_seen: set[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    shown = [repr(client.client), str(client.client)]
    assert "Secret('********')" in shown[0]
    response = await client.request("u-123", "cal", "GET", "me", headers={"Authorization": "Bearer not-mine"})
    assert isinstance(response, httpx.Response)
    assert fake.api_calls[-1]["headers"]["authorization"].startswith("Bearer fake_at_")  # the caller's never travels
    assert client.sent[-1].headers["authorization"] == f"Bearer {api_key}"  # nor replaces the key
    assert "authorization" not in response.request.headers
    shown += [repr(response.request.headers), response.text, repr(response.headers)]
    with pytest.raises(VaultAPIError) as bad_call:
        await client.check("u-123", "nope")
    wrong = "fd_ak_" + "x" * 43
    with pytest.raises(VaultAPIError) as bad_key:
        await make_sdk(wrong).check("u-123", "cal")
    assert (bad_key.value.status, bad_key.value.error) == (401, "invalid_token")
    # Revoked after the connection was resolved: the proxy's own 401 raises; it is not the provider's answer.
    api_key_store.revoke_api_key(vault.engine, api_key_store.api_keys(vault.engine)[0].id)
    with pytest.raises(VaultAPIError) as revoked:
        await client.request("u-123", "cal", "GET", "me")
    assert revoked.value.status == 401
    shown += [str(e.value) + repr(e.value) for e in (bad_call, bad_key, revoked)]
    shown.append(caplog.text)
    assert not [text for text in shown if api_key in text or wrong in text]


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_an_unreachable_vault_raises_without_the_key(kind: str) -> None:
    key = "fd_ak_" + "y" * 43

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"refused: {request.headers['authorization']}", request=request)

    if kind == "sync":
        blocking = VaultClient("http://127.0.0.1:9", key, transport=httpx.MockTransport(refuse))
        with blocking, pytest.raises(VaultUnreachable) as raised:
            blocking.check("u", "cal")
    else:
        async with AsyncVaultClient("http://127.0.0.1:9", key, transport=httpx.MockTransport(refuse)) as client:
            with pytest.raises(VaultUnreachable) as raised:
                await client.check("u", "cal")
    assert str(raised.value) == "unreachable: could not reach the vault at http://127.0.0.1:9 (ConnectError)"
    assert raised.value.__suppress_context__
    assert key not in repr(raised.value)


def test_a_providers_own_424_is_passed_on() -> None:
    """Only the vault's 424 (status authorization_required) means "connect first"; a provider's 424 is an answer."""

    def vault_api(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/vault/check":
            connection = {"id": "conn_1", "integration": "dav", "user": "u", "status": "active", "scopes": []}
            connection |= {"created_at": 1, "updated_at": 1}
            return httpx.Response(200, json={"status": "connected", "connection": connection})
        return httpx.Response(424, json={"error": "failed_dependency"})

    with VaultClient("https://vault.example", "fd_ak_z", transport=httpx.MockTransport(vault_api)) as client:
        response = client.request("u", "dav", "PROPPATCH", "files/a")
    assert isinstance(response, httpx.Response)
    assert response.status_code == 424


SDK = Path(frontdesk_sdk.__file__).parent
# Everything the SDK may import: the standard library it uses and httpx, its one dependency (sdk/pyproject.toml).
SDK_IMPORTS = {
    *("__future__", "collections", "dataclasses", "functools", "inspect", "json", "time", "types", "typing"),
    *("urllib", "httpx"),
}


def sdk_imports() -> set[str]:
    """The top-level name of every module an import statement of ``frontdesk_sdk`` names, its own left out."""
    names: set[str] = set()
    for path in SDK.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names.add(node.module or "")
    return {name.partition(".")[0] for name in names} - {"frontdesk_sdk"}


def test_the_sdk_imports_only_httpx_and_the_standard_library() -> None:
    """Every import in the SDK, lazy or type-checking-only ones too, is of httpx or the standard library: nothing
    of the server, so a platform's backend installs and imports it without frontdesk."""
    found = sdk_imports()
    assert "frontdesk" not in found
    assert found == SDK_IMPORTS


def test_the_sdk_distribution_depends_on_httpx_only() -> None:
    """``pip install frontdesk-sdk`` brings httpx and nothing of the server."""
    project = tomllib.loads((SDK.parent.parent / "pyproject.toml").read_text())["project"]
    assert project["name"] == "frontdesk-sdk"
    assert project["dependencies"] == ["httpx>=0.27"]


def test_the_sdk_and_agent_import_where_frontdesk_cannot_be_imported() -> None:
    """A platform's backend imports them without the server: no frontdesk, no database, no web framework."""
    code = (
        "import json, sys; sys.modules['frontdesk'] = None; "
        "import frontdesk_sdk, frontdesk_sdk.agent, frontdesk_sdk.client; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'starlette', 'frontdesk')))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    # "frontdesk" itself is the None that makes any import of the server fail.
    loaded = [name for name in json.loads(done.stdout) if name != "frontdesk"]
    assert loaded == [
        "frontdesk_sdk",
        "frontdesk_sdk.agent",
        "frontdesk_sdk.client",
        "frontdesk_sdk.flow",
        "frontdesk_sdk.models",
        "frontdesk_sdk.secret",
    ]


@pytest.mark.parametrize(
    "module",
    [frontdesk_sdk.agent, frontdesk_sdk.client, frontdesk_sdk.flow, frontdesk_sdk.models, frontdesk_sdk.secret],
    ids=lambda m: m.__name__,
)
def test_all_names_every_public_definition(module: ModuleType) -> None:
    """Each module's __all__ lists every public class and function it defines, and nothing else."""
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == module.__name__
    }
    assert set(module.__all__) == public


def test_the_package_exports_the_public_api() -> None:
    """``frontdesk_sdk`` offers the clients, the vault's answers and the agent helpers under one name."""
    assert set(frontdesk_sdk.__all__) == {
        *frontdesk_sdk.agent.__all__,
        *frontdesk_sdk.client.__all__,
        *frontdesk_sdk.models.__all__,
        *frontdesk_sdk.secret.__all__,
    }
    assert all(getattr(frontdesk_sdk, name) is not None for name in frontdesk_sdk.__all__)


@pytest.mark.usefixtures("person")
async def test_links_made_through_the_sdk_name_the_account_and_can_be_bound_to_a_person(
    client: Either, http: httpx.AsyncClient, fd: Frontdesk
) -> None:
    """display_name and subject reach the vault from both check and connect_session: the link's page names the
    account, and a subject-bound link sends a signed-out browser to sign in first."""
    session = await client.connect_session("u-123", "cal", display_name="Pat at Example Corp")
    page = await http.get(session.connect_url.removeprefix(ISSUER))
    assert page.status_code == 200, page.text
    assert "Pat at Example Corp" in page.text

    alice = next(u.id for u in fd.users.list() if u.username == "alice")
    needed = await client.check("u-456", "cal", subject=alice)
    assert isinstance(needed, AuthorizationRequired)
    page = await http.get(needed.authorization_url.removeprefix(ISSUER))
    assert page.status_code == 303, page.text  # to sign in as alice first
    assert "/interaction/" in page.headers["location"]
