"""An agent's chatbot tool that reads a person's calendar through the frontdesk vault, acting for that person only.

The platform signed the person in and holds their access token. When the language model calls the tool, the
platform's backend passes that token to :func:`calendar_tool`, which

1. exchanges it at frontdesk's token endpoint (RFC 8693) for a token addressed to the vault (``{issuer}/vault``),
   scoped to one integration (``vault:calendar``), short-lived, still the person's (``sub``) and naming this agent
   (``act``); with a DPoP key (RFC 9449) the token is bound to it and worthless without it;
2. finds the person's connection of that integration and calls the provider's API through the vault's proxy;
3. returns only the data, or ``authorization_required`` in words (with the vault's link when the connection needs
   the person again). Never a token: neither the person's, the exchanged one, nor the provider's, which the agent
   never sees.

The agent is a confidential client the operator registered for this::

    frontdesk client create --name "Calendar agent" --grant-type client_credentials \\
      --grant-type urn:ietf:params:oauth:grant-type:token-exchange --scope vault:calendar \\
      --resource https://chat.example/api --may-exchange-for {issuer}/vault

Run it: see README.md beside this file. tests/test_agent_delegation.py runs :func:`calendar_tool` end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from joserfc import jws
from joserfc.jwk import ECKey

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"
MAX_DATA = 64 * 1024  # what goes back into a conversation: a model needs a page, not a mailbox


@dataclass(frozen=True)
class Agent:
    """The agent's client at frontdesk, the integration it reads, and its DPoP key when it binds its tokens."""

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    integration: str = "calendar"
    key: ECKey | None = field(default=None, repr=False)

    @property
    def vault(self) -> str:
        return self.issuer + "/vault"


def _proof(key: ECKey, method: str, url: str, token: str | None = None) -> str:
    """RFC 9449 §4.2: a fresh proof for one request; at the vault it carries the token's hash (``ath``)."""
    claims: dict[str, Any] = {"jti": secrets.token_urlsafe(16), "htm": method, "htu": url, "iat": int(time.time())}
    if token is not None:
        claims["ath"] = base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
    return jws.serialize_compact(header, json.dumps(claims), key, algorithms=["ES256"])


@dataclass(frozen=True)
class _Delegated:
    token: str = field(repr=False)
    scheme: str  # "Bearer" or "DPoP"


class _Refused(Exception):
    """What the tool answers instead of data: a result for the model, in words."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(result.get("message"))
        self.result = result


async def _exchange(http: httpx.AsyncClient, agent: Agent, person_token: str) -> _Delegated:
    url = agent.issuer + "/token"
    headers = {"DPoP": _proof(agent.key, "POST", url)} if agent.key else {}
    answer = await http.post(
        url,
        data={
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": person_token,
            "subject_token_type": ACCESS_TOKEN,
            "resource": agent.vault,
            "scope": "vault:" + agent.integration,
        },
        auth=(agent.client_id, agent.client_secret),
        headers=headers,
    )
    if answer.status_code == 400 and answer.json().get("error") in ("invalid_request", "invalid_grant"):
        # The person's token expired, or they revoked this app: only they can fix that, by signing in again.
        raise _Refused({"status": "signed_out", "message": "Your sign-in has ended. Sign in again to go on."})
    if answer.status_code != 200:
        raise _Refused({"status": "error", "message": f"Access to your {agent.integration} was refused."})
    body = answer.json()
    return _Delegated(body["access_token"], body.get("token_type", "Bearer"))


async def _get(http: httpx.AsyncClient, agent: Agent, delegated: _Delegated, url: str, **params: str) -> httpx.Response:
    headers = {"Authorization": f"{delegated.scheme} {delegated.token}"}
    if agent.key is not None:
        headers["DPoP"] = _proof(agent.key, "GET", url, delegated.token)
    return await http.get(url, params=params or None, headers=headers)


async def _connection(http: httpx.AsyncClient, agent: Agent, delegated: _Delegated) -> str:
    listed = await _get(http, agent, delegated, agent.vault + "/connections", integration=agent.integration)
    if listed.status_code != 200:
        raise _Refused({"status": "error", "message": f"The vault refused to list your {agent.integration}."})
    usable = [c for c in listed.json()["connections"] if c.get("status") == "active"]
    if not usable:
        raise _Refused(
            {
                "status": "authorization_required",
                "integration": agent.integration,
                "message": f"You have not connected your {agent.integration} yet. Connect it, then ask me again.",
            }
        )
    return str(usable[0]["id"])


async def calendar_tool(
    person_token: str, *, agent: Agent, http: httpx.AsyncClient, path: str, params: dict[str, str] | None = None
) -> dict[str, Any]:
    """The tool a model's call runs: the provider's answer at ``path`` for the person whose token this is, or why
    not, in words. ``person_token`` comes from the platform's session, never from the model."""
    try:
        delegated = await _exchange(http, agent, person_token)
        connection = await _connection(http, agent, delegated)
        url = f"{agent.vault}/proxy/{quote(connection, safe='')}/{path.lstrip('/')}"
        answer = await _get(http, agent, delegated, url, **(params or {}))
    except _Refused as refused:
        return refused.result
    if answer.status_code == 424:
        # The connection died (revoked or expired at the provider): the vault's own words and link, for the UI.
        needed = answer.json()
        keys = ("status", "integration", "message", "authorization_url")
        return {k: needed[k] for k in keys if k in needed}
    if answer.status_code != 200:
        # What a provider sends is untrusted text: the model gets the status, not the words.
        return {"status": "error", "message": f"Your {agent.integration} answered {answer.status_code}."}
    if len(answer.content) > MAX_DATA:
        return {"status": "error", "message": f"Your {agent.integration} sent more than this tool passes on."}
    return {"status": "ok", "data": answer.json()}


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--integration", default="calendar", help="the vault integration to read")
    parser.add_argument("--path", default="calendars/primary/events", help="the provider API path to GET")
    parser.add_argument("--dpop", action="store_true", help="bind the agent's token to a fresh DPoP key")
    args = parser.parse_args()
    # Secrets from the environment (or stdin), never the command line, where other local users could read them.
    missing = [n for n in ("AGENT_CLIENT_ID", "AGENT_CLIENT_SECRET") if not os.environ.get(n)]
    if missing:
        print(f"set {' and '.join(missing)}", file=sys.stderr)
        return 2
    person_token = os.environ.get("PERSON_TOKEN") or sys.stdin.readline().strip()
    agent = Agent(
        os.environ.get("FRONTDESK_ISSUER", "http://127.0.0.1:8000"),
        os.environ["AGENT_CLIENT_ID"],
        os.environ["AGENT_CLIENT_SECRET"],
        args.integration,
        ECKey.generate_key("P-256") if args.dpop else None,
    )
    async with httpx.AsyncClient(timeout=30) as http:
        result = await calendar_tool(person_token, agent=agent, http=http, path=args.path)
    print(json.dumps(result, indent=2))
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
