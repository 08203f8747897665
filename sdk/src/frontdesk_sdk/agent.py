"""Tool calls that need a person's connected account (DESIGN §6; field notes §5).

A tool declares what it needs with :func:`needs_connection` and receives the provider's API as the signed-in person
(:class:`Api`, or :class:`AsyncApi` for a coroutine); it never sees a token. Decorated, it takes the platform's
:class:`ToolContext` first and returns either what the tool returns, or an :class:`AuthorizationRequiredResult`
for the chat UI to render as a "Connect" button::

    @needs_connection("google-calendar", ["https://www.googleapis.com/auth/calendar.events.readonly"])
    async def list_todays_events(calendar: AsyncApi, timezone: str = "UTC") -> dict[str, Any]:
        response = await calendar.get("calendars/primary/events", params={...})
        return {"events": response.json()["items"]}

    result = await list_todays_events(AsyncToolContext(session.user_id, vault), **model_arguments)

Two rules keep the language model out of it. Whose account is used comes from the platform's session (the
context), never from arguments the model fills. The connect link comes from the vault, never from model text.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate, Literal, ParamSpec, TypedDict, TypeGuard, TypeVar, overload

import httpx

from .client import AsyncVaultClient, VaultClient
from .models import AuthorizationRequired

__all__ = [
    "Api",
    "AsyncApi",
    "AsyncToolContext",
    "AuthorizationRequiredResult",
    "ToolContext",
    "authorization_required_result",
    "is_authorization_required",
    "needs_connection",
]

P = ParamSpec("P")
T = TypeVar("T")


class AuthorizationRequiredResult(TypedDict):
    """What a tool call returns when the person must connect first; the UI shows ``message`` and a button for
    ``authorization_url``."""

    status: Literal["authorization_required"]
    integration: str
    scopes: list[str]
    authorization_url: str
    message: str


def authorization_required_result(needed: AuthorizationRequired) -> AuthorizationRequiredResult:
    return {
        "status": "authorization_required",
        "integration": needed.integration,
        "scopes": list(needed.scopes),
        "authorization_url": needed.authorization_url,
        "message": needed.message,
    }


def is_authorization_required(result: object) -> TypeGuard[AuthorizationRequiredResult]:
    """Whether a tool call's result asks the person to connect: the platform renders it, then re-runs the call."""
    return isinstance(result, dict) and result.get("status") == "authorization_required"


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What the platform's backend hands a tool call: the signed-in person's id, from its own session, and its
    vault client."""

    user: str
    vault: VaultClient


@dataclass(frozen=True, slots=True)
class AsyncToolContext:
    user: str
    vault: AsyncVaultClient


class _Interrupted(BaseException):
    """Carries an :class:`AuthorizationRequired` from deep in a tool to its decorator. A BaseException, like
    asyncio's CancelledError, so that a tool's ``except Exception`` cannot turn it into an error string."""

    def __init__(self, needed: AuthorizationRequired) -> None:
        super().__init__(needed.integration)
        self.needed = needed


class Api:
    """The provider's API as the signed-in person, for one tool call. Paths are relative to the provider's API base;
    the answer is the provider's, with the credential stripped. Holds no token and no way to act as anyone else."""

    __slots__ = ("_context", "_integration", "_scopes")

    def __init__(self, context: ToolContext, integration: str, scopes: Sequence[str]) -> None:
        self._context = context
        self._integration = integration
        self._scopes = tuple(scopes)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        content: bytes | str | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        vault, user = self._context.vault, self._context.user
        result = vault.request(
            user, self._integration, method, path, params=params, json=json, content=content, data=data,
            headers=headers, scopes=self._scopes,
        )  # fmt: skip
        if isinstance(result, AuthorizationRequired):
            raise _Interrupted(result)
        return result

    def get(self, path: str, *, params: Any = None, headers: Mapping[str, str] | None = None) -> httpx.Response:
        return self.request("GET", path, params=params, headers=headers)

    def post(
        self,
        path: str,
        *,
        json: Any = None,
        content: bytes | str | None = None,
        data: Mapping[str, str] | None = None,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return self.request("POST", path, params=params, json=json, content=content, data=data, headers=headers)


class AsyncApi:
    """:class:`Api` for a coroutine tool."""

    __slots__ = ("_context", "_integration", "_scopes")

    def __init__(self, context: AsyncToolContext, integration: str, scopes: Sequence[str]) -> None:
        self._context = context
        self._integration = integration
        self._scopes = tuple(scopes)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        content: bytes | str | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        vault, user = self._context.vault, self._context.user
        result = await vault.request(
            user, self._integration, method, path, params=params, json=json, content=content, data=data,
            headers=headers, scopes=self._scopes,
        )  # fmt: skip
        if isinstance(result, AuthorizationRequired):
            raise _Interrupted(result)
        return result

    async def get(self, path: str, *, params: Any = None, headers: Mapping[str, str] | None = None) -> httpx.Response:
        return await self.request("GET", path, params=params, headers=headers)

    async def post(
        self,
        path: str,
        *,
        json: Any = None,
        content: bytes | str | None = None,
        data: Mapping[str, str] | None = None,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return await self.request("POST", path, params=params, json=json, content=content, data=data, headers=headers)


class _NeedsConnection:
    def __init__(self, integration: str, scopes: Sequence[str]) -> None:
        self.integration = integration
        self.scopes = tuple(scopes)

    @overload
    def __call__(
        self, tool: Callable[Concatenate[AsyncApi, P], Awaitable[T]]
    ) -> Callable[Concatenate[AsyncToolContext, P], Coroutine[Any, Any, T | AuthorizationRequiredResult]]: ...

    @overload
    def __call__(
        self, tool: Callable[Concatenate[Api, P], T]
    ) -> Callable[Concatenate[ToolContext, P], T | AuthorizationRequiredResult]: ...

    def __call__(self, tool: Callable[..., Any]) -> Callable[..., Any]:
        integration, scopes = self.integration, self.scopes

        if inspect.iscoroutinefunction(tool):

            async def run_async(context: AsyncToolContext, /, *args: Any, **kwargs: Any) -> Any:
                # Asked first, so a tool that cannot succeed does not start; its calls then reuse the resolved id.
                found = await context.vault.check(context.user, integration, scopes)
                if isinstance(found, AuthorizationRequired):
                    return authorization_required_result(found)
                try:
                    return await tool(AsyncApi(context, integration, scopes), *args, **kwargs)
                except _Interrupted as interrupted:  # the connection died during the call
                    return authorization_required_result(interrupted.needed)

            return _presented(run_async, tool, AsyncToolContext)

        def run(context: ToolContext, /, *args: Any, **kwargs: Any) -> Any:
            found = context.vault.check(context.user, integration, scopes)
            if isinstance(found, AuthorizationRequired):
                return authorization_required_result(found)
            try:
                return tool(Api(context, integration, scopes), *args, **kwargs)
            except _Interrupted as interrupted:
                return authorization_required_result(interrupted.needed)

        return _presented(run, tool, ToolContext)


def needs_connection(integration: str, scopes: Sequence[str] = ()) -> _NeedsConnection:
    """Decorate a tool whose first parameter is the provider's API (:class:`Api`, or :class:`AsyncApi` for a
    coroutine). The decorated tool takes the platform's :class:`ToolContext` (:class:`AsyncToolContext`) in its place,
    then the model's arguments, and returns the tool's result or an :class:`AuthorizationRequiredResult` asking for
    ``scopes`` plus whatever the person granted before (incremental authorization)."""
    return _NeedsConnection(integration, scopes)


def _presented(wrapper: Callable[..., Any], tool: Callable[..., Any], context: type) -> Callable[..., Any]:
    """The wrapper under the tool's name and docstring, its signature showing the context where the API was, so that
    a tool schema built from it lists exactly the arguments the model may fill."""
    functools.update_wrapper(wrapper, tool)
    # A framework that unwraps would find the tool's own signature, and offer the API to the model as an argument.
    del wrapper.__wrapped__  # type: ignore[attr-defined]
    parameters = list(inspect.signature(tool).parameters.values())[1:]
    first = inspect.Parameter("context", inspect.Parameter.POSITIONAL_ONLY, annotation=context)
    wrapper.__signature__ = inspect.signature(tool).replace(parameters=[first, *parameters])  # type: ignore[attr-defined]
    return wrapper
