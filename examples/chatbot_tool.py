"""A chatbot tool that reads the signed-in person's Google Calendar through the frontdesk vault, end to end.

1. The model asks for a tool by name with arguments: ``{"name": "list_todays_events", "arguments": {...}}``.
   The tool's schema has no user parameter: the model cannot choose whose calendar is read.
2. The platform's backend runs the call as the person signed in to *its* session (:func:`run_tool_call`).
3. The tool returns data, or ``{"status": "authorization_required", "integration", "scopes", "authorization_url",
   "message"}``. The chat UI renders that as a "Connect" button with the vault's link; the model is told only that
   access is needed (:func:`for_model`), so a link never comes from model text.
4. Once the person has connected, the backend runs the same tool call again (:func:`chat_turn`).

Run it against a local frontdesk, with or without Google: see README.md beside this file.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import inspect
import json
import os
import sys
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from frontdesk_sdk import (
    AsyncApi,
    AsyncToolContext,
    AsyncVaultClient,
    AuthorizationRequiredResult,
    VaultAPIError,
    is_authorization_required,
    needs_connection,
)

# The integrations' names in the vault (`frontdesk vault integration add NAME --provider …`): the platform's names,
# whatever provider the operator put behind them.
CALENDAR = "google-calendar"
ACCOUNT = "account"
READ_EVENTS = "https://www.googleapis.com/auth/calendar.events.readonly"

Result = dict[str, Any] | AuthorizationRequiredResult
Tool = Callable[..., Coroutine[Any, Any, Result]]


# --- the tools ---------------------------------------------------------------------------------------------------


@needs_connection(CALENDAR, [READ_EVENTS])
async def list_todays_events(calendar: AsyncApi, timezone: str = "UTC") -> dict[str, Any]:
    """List today's events on the person's primary Google Calendar."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return {"status": "error", "message": f"{timezone!r} is not a time zone name such as Europe/Paris."}
    start = dt.datetime.now(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    window = {"timeMin": start.isoformat(), "timeMax": (start + dt.timedelta(days=1)).isoformat()}
    response = await calendar.get(
        "calendars/primary/events",
        params={**window, "singleEvents": "true", "orderBy": "startTime", "timeZone": timezone},
    )
    if response.is_error:
        # What a connected app sends is untrusted text: the model gets the status, not the provider's words.
        return {"status": "error", "message": f"Google Calendar answered {response.status_code}."}
    events = response.json().get("items", [])
    return {
        "status": "ok",
        "events": [
            {
                "summary": event.get("summary", "(no title)"),
                "start": event.get("start", {}).get("dateTime") or event.get("start", {}).get("date"),
                "end": event.get("end", {}).get("dateTime") or event.get("end", {}).get("date"),
            }
            for event in events
        ],
    }


@needs_connection(ACCOUNT, ["openid", "profile", "email"])
async def who_am_i(account: AsyncApi) -> dict[str, Any]:
    """Who the person is at their connected account (OpenID Connect UserInfo, at the provider's API base)."""
    response = await account.get("userinfo")
    if response.is_error:
        return {"status": "error", "message": f"The account answered {response.status_code}."}
    claims = response.json()
    return {"status": "ok", **{k: claims[k] for k in ("name", "preferred_username", "email") if k in claims}}


TOOLS: dict[str, Tool] = {"list_todays_events": list_todays_events, "who_am_i": who_am_i}

# What the model is told it may call: names and arguments, and no user.
TOOL_SCHEMAS = [
    {
        "name": "list_todays_events",
        "description": "List today's events on the user's Google Calendar.",
        "parameters": {
            "type": "object",
            "properties": {"timezone": {"type": "string", "description": "IANA time zone, e.g. Europe/Paris"}},
        },
    },
    {
        "name": "who_am_i",
        "description": "Show the user's name and email at their connected account.",
        "parameters": {"type": "object", "properties": {}},
    },
]


# --- the platform's backend --------------------------------------------------------------------------------------


async def run_tool_call(context: AsyncToolContext, call: Mapping[str, Any]) -> Result:
    """Run a tool call the model made, as the person signed in to the platform's session (``context.user``)."""
    tool = TOOLS.get(call.get("name", ""))
    if tool is None:
        return {"status": "error", "message": f"There is no tool named {call.get('name')!r}."}
    arguments = call.get("arguments") or {}
    try:
        inspect.signature(tool).bind(context, **arguments)  # the model's arguments, checked before anything runs
    except TypeError as exc:
        return {"status": "error", "message": f"Bad arguments for {call['name']}: {exc}."}
    return await tool(context, **arguments)


def for_model(result: Result) -> dict[str, Any]:
    """What goes back into the conversation: the plain-words message, never the link (the UI shows that)."""
    if is_authorization_required(result):
        return {"status": "authorization_required", "message": result["message"]}
    return dict(result)


def show_connect_button(result: AuthorizationRequiredResult) -> None:
    """A terminal's stand-in for the chat UI's button; a web UI would open the link in a popup."""
    print(f"\nassistant: {result['message']}\n  [ Connect ]  {result['authorization_url']}\n", flush=True)


async def wait_until_connected(vault: AsyncVaultClient, user: str, integration: str, since: float) -> None:
    """Poll until the person finished connecting. A real backend would rather act on the vault's
    ``connection.created`` / ``connection.reconnected`` webhook, or simply on the person's next message."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        for connection in await vault.connections(user, integration):
            if connection.status == "active" and connection.updated_at >= since:
                return
        await asyncio.sleep(2)
    raise TimeoutError("nobody connected within ten minutes")


async def chat_turn(context: AsyncToolContext, call: Mapping[str, Any]) -> dict[str, Any]:
    """One tool call of a chat turn: run it; if the person must connect first, show the button, wait, run it again."""
    for _ in range(3):
        result = await run_tool_call(context, call)
        if not is_authorization_required(result):
            return for_model(result)
        shown = int(time.time())
        show_connect_button(result)
        await wait_until_connected(context.vault, context.user, result["integration"], shown)
    return for_model(result)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--user", default="demo-user", help="the signed-in person's id on your platform")
    parser.add_argument("--tool", default="list_todays_events", choices=sorted(TOOLS))
    parser.add_argument(
        "--arguments", default="{}", help='the model\'s arguments as JSON, e.g. \'{"timezone": "UTC"}\''
    )
    args = parser.parse_args()
    api_key = os.environ.get("FRONTDESK_API_KEY")
    if not api_key:
        print("set FRONTDESK_API_KEY (frontdesk apikey create --name chatbot)", file=sys.stderr)
        return 2
    base_url = os.environ.get("FRONTDESK_URL", "http://127.0.0.1:8000")
    call = {"name": args.tool, "arguments": json.loads(args.arguments)}
    print(f"model: calls {json.dumps(call)}")
    async with AsyncVaultClient(base_url, api_key) as vault:
        try:
            answer = await chat_turn(AsyncToolContext(args.user, vault), call)
        except VaultAPIError as exc:  # a refused key, an integration not added yet, a vault that is down
            print(f"the vault said: {exc}", file=sys.stderr)
            return 1
    print(f"tool result for the model: {json.dumps(answer, indent=2)}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
