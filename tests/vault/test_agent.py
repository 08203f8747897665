"""Tools that need a connection: the decorated tool returns its result or exactly the structured
``authorization_required`` answer, for blocking and coroutine tools alike; and the example chatbot tool runs end to
end against the fake provider (transports as in test_sdk)."""

from __future__ import annotations

import importlib.util
import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import httpx
import pytest

from conftest import ISSUER
from frontdesk.core import Frontdesk
from frontdesk.vault.service import Vault
from frontdesk.web import create_app
from frontdesk_sdk import AsyncVaultClient, VaultClient, agent
from frontdesk_sdk.agent import (
    Api,
    AsyncApi,
    AsyncToolContext,
    ToolContext,
    is_authorization_required,
    needs_connection,
)

from .conftest import connected, remember_tokens, through_provider
from .fake_provider import CLIENT_ID, CLIENT_SECRET, Fake
from .test_sdk import BlockingASGITransport, Recorded

EXAMPLE = Path(__file__).parents[2] / "examples" / "chatbot_tool.py"
RESULT_KEYS = {"status", "integration", "scopes", "authorization_url", "message"}


@dataclass
class Tools:
    """The same tool written blocking and as a coroutine, careless with exceptions as real tool code often is."""

    ran: list[str]
    events: Callable[..., Any]
    events_async: Callable[..., Awaitable[Any]]


@pytest.fixture
def tools() -> Tools:
    ran: list[str] = []

    @needs_connection("cal", ["calendar.read"])
    def events(calendar: Api, day: str) -> dict[str, Any]:
        """List the events of a day."""
        ran.append(day)
        try:
            return dict(calendar.get("events", params={"day": day}).json())
        except Exception as exc:  # must not swallow "connect first"
            return {"error": str(exc)}

    @needs_connection("cal", ["calendar.read"])
    async def events_async(calendar: AsyncApi, day: str) -> dict[str, Any]:
        """List the events of a day."""
        ran.append(day)
        try:
            return dict((await calendar.get("events", params={"day": day})).json())
        except Exception as exc:
            return {"error": str(exc)}

    return Tools(ran, events, events_async)


@pytest.fixture
def sent() -> list[httpx.Request]:
    return []


@pytest.fixture
def sync_vault(fd: Frontdesk, api_key: str, sent: list[httpx.Request]) -> Iterator[VaultClient]:
    with VaultClient(ISSUER, api_key, transport=BlockingASGITransport(Recorded(create_app(fd), sent))) as client:
        yield client


@pytest.fixture
async def async_vault(fd: Frontdesk, api_key: str, sent: list[httpx.Request]) -> AsyncIterator[AsyncVaultClient]:
    async with AsyncVaultClient(ISSUER, api_key, transport=Recorded(create_app(fd), sent)) as client:
        yield client


Run = Callable[..., Awaitable[Any]]


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest, tools: Tools) -> Run:
    """Run the tool as the platform does: the signed-in user from its session, then the model's arguments."""
    if request.param == "sync":
        vault: VaultClient = request.getfixturevalue("sync_vault")

        async def run_sync(user: str, **arguments: Any) -> Any:
            return tools.events(ToolContext(user, vault), **arguments)

        return run_sync
    async_vault: AsyncVaultClient = request.getfixturevalue("async_vault")

    async def run_async(user: str, **arguments: Any) -> Any:
        return await tools.events_async(AsyncToolContext(user, async_vault), **arguments)

    return run_async


async def test_a_connected_tool_returns_its_result(
    run: Run, tools: Tools, http: httpx.AsyncClient, api_key: str, fake: Fake, secrets_seen: set[str]
) -> None:
    await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    result = await run("u-123", day="today")
    assert (result["path"], result["query"]) == ("/api/events", "day=today")
    assert tools.ran == ["today"]


async def test_not_connected_returns_exactly_the_authorization_required_result(
    run: Run, tools: Tools, http: httpx.AsyncClient, fake: Fake, secrets_seen: set[str]
) -> None:
    """Five keys, plain words, the vault's link; the tool does not start; after connecting, the re-run works."""
    result = await run("u-123", day="today")
    url = result["authorization_url"]
    assert url.startswith(ISSUER + "/vault/connect/fd_vc_")
    assert result == {
        "status": "authorization_required",
        "integration": "cal",
        "scopes": ["calendar.read"],
        "authorization_url": url,
        "message": "I need access to your Fake Calendar to do that. Connect it here.",
    }
    assert json.loads(json.dumps(result)) == result
    assert is_authorization_required(result)
    assert tools.ran == []

    assert (await through_provider(http, url)).status_code == 200
    remember_tokens(fake, secrets_seen)
    again = await run("u-123", day="today")
    assert not is_authorization_required(again)
    assert again["path"] == "/api/events"


async def test_a_connection_that_dies_during_the_call_asks_to_reconnect(
    run: Run, tools: Tools, http: httpx.AsyncClient, api_key: str, fake: Fake, secrets_seen: set[str]
) -> None:
    """The check passes, the provider then refuses every token: the tool's own ``except Exception`` does not turn
    that into an error string; the result asks the person to reconnect."""
    await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    fake.revoke_everything()
    result = await run("u-123", day="today")
    assert tools.ran == ["today"]
    assert set(result) == RESULT_KEYS
    assert result["message"] == (
        "My connection to your Fake Calendar has stopped working. Reconnect it here, then ask me again."
    )


async def test_the_user_comes_from_the_platforms_session(
    run: Run, tools: Tools, http: httpx.AsyncClient, api_key: str, fake: Fake, secrets_seen: set[str]
) -> None:
    """One person's connection is never used for another, and a tool has no argument through which the model could
    name a user."""
    await connected(http, api_key, user="u-123")
    remember_tokens(fake, secrets_seen)
    assert is_authorization_required(await run("u-456", day="today"))
    for tool, context in ((tools.events, ToolContext), (tools.events_async, AsyncToolContext)):
        signature = inspect.signature(tool)
        assert list(signature.parameters) == ["context", "day"]
        assert signature.parameters["context"].annotation is context
        assert signature.parameters["context"].kind is inspect.Parameter.POSITIONAL_ONLY
        assert tool.__name__ in ("events", "events_async")
        assert tool.__doc__ == "List the events of a day."
    with pytest.raises(TypeError):
        await run("u-123", day="today", user="u-123")


def test_all_names_every_public_definition() -> None:
    public = {
        name
        for name, value in vars(agent).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == agent.__name__
    }
    assert set(agent.__all__) == public


# --- the example ---------------------------------------------------------------------------------------------------


@pytest.fixture
def example(vault: Vault) -> ModuleType:
    """examples/chatbot_tool.py, its Google Calendar integration name given to the fake provider: the platform names
    integrations, the operator decides which provider stands behind each."""
    vault.add_integration("google-calendar", "fake", CLIENT_ID, CLIENT_SECRET)
    spec = importlib.util.spec_from_file_location("chatbot_tool", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_example_tool_runs_after_the_person_connects(
    example: ModuleType,
    async_vault: AsyncVaultClient,
    sent: list[httpx.Request],
    http: httpx.AsyncClient,
    fake: Fake,
    secrets_seen: set[str],
) -> None:
    context = AsyncToolContext("u-123", async_vault)
    call = {"name": "list_todays_events", "arguments": {"timezone": "Europe/Paris"}}
    first = await example.run_tool_call(context, call)
    assert set(first) == RESULT_KEYS
    assert first["integration"] == "google-calendar"
    assert example.READ_EVENTS in first["scopes"]
    assert example.for_model(first) == {"status": "authorization_required", "message": first["message"]}

    assert (await through_provider(http, first["authorization_url"])).status_code == 200
    remember_tokens(fake, secrets_seen)
    assert await example.run_tool_call(context, call) == {"status": "ok", "events": []}
    proxied = sent[-1].url
    assert proxied.path.endswith("/calendars/primary/events")
    assert {"timeMin", "timeMax", "singleEvents", "orderBy"} <= set(proxied.params)
    assert proxied.params["timeZone"] == "Europe/Paris"
    assert fake.api_calls[-1]["path"] == "/api/calendars/primary/events"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"name": "delete_everything"}, "There is no tool named 'delete_everything'."),
        ({"name": "list_todays_events", "arguments": {"user": "u-999"}}, "Bad arguments for list_todays_events"),
        ({"name": "list_todays_events", "arguments": {"timezone": "Mars/Olympus"}}, "is not a time zone name"),
    ],
)
async def test_the_example_refuses_what_the_model_may_not_ask(
    example: ModuleType,
    async_vault: AsyncVaultClient,
    sent: list[httpx.Request],
    http: httpx.AsyncClient,
    api_key: str,
    fake: Fake,
    secrets_seen: set[str],
    call: dict[str, Any],
    message: str,
) -> None:
    """An unknown tool or argument (such as a user) is an error result, and nothing reaches the provider."""
    await connected(http, api_key, integration="google-calendar", scopes=[example.READ_EVENTS])
    remember_tokens(fake, secrets_seen)
    result = await example.run_tool_call(AsyncToolContext("u-123", async_vault), call)
    assert result["status"] == "error"
    assert message in result["message"]
    assert [r.url.path for r in sent if "/vault/proxy/" in r.url.path] == []


async def test_the_example_chat_turn_reruns_the_call_once_connected(
    example: ModuleType,
    async_vault: AsyncVaultClient,
    http: httpx.AsyncClient,
    fake: Fake,
    secrets_seen: set[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The button is shown, the person connects meanwhile, and the turn ends with the tool's data."""
    shown: list[dict[str, Any]] = []
    monkeypatch.setattr(example, "show_connect_button", shown.append)

    async def person() -> None:
        while not shown:
            await anyio.sleep(0.01)
        assert (await through_provider(http, shown[0]["authorization_url"])).status_code == 200

    call = {"name": "list_todays_events", "arguments": {}}
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(person)
            answer = await example.chat_turn(AsyncToolContext("u-123", async_vault), call)
    remember_tokens(fake, secrets_seen)
    assert len(shown) == 1
    assert answer == {"status": "ok", "events": []}
