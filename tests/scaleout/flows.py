"""What the scale-out tests do over HTTP, at a host they name: sign in through the real forms, ask for and inspect
tokens, and wait, against a bound, for one host to see what the other did."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from conftest import csrf_of, pkce, remember

PASSWORD = "correct horse battery staple"
REDIRECT_URI = "https://app.example/cb"  # never fetched: the code is read from the Location header
SCOPE = "openid offline_access"
MAX_HOPS = 12  # redirects and forms in one sign-in
POLL = 0.05  # seconds between two looks while waiting for a host to see a change


@dataclass(frozen=True)
class App:
    client_id: str
    secret: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.client_id, self.secret)


def client(**kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(20.0), follow_redirects=False, **kwargs)


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _action(html: str) -> str:
    match = re.search(r'<form method="post" action="([^"]+)"', html)
    assert match, html
    return match.group(1)


def authorize_params(app: App, challenge: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPE,
        "state": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


async def sign_in(http: httpx.AsyncClient, base: str, app: App, username: str, **extra: str) -> httpx.Response:
    """/authorize at ``base`` through sign-in and consent, as far as each is needed, every page at that host; the
    last answer (the redirect to the client, or a page that stopped the flow)."""
    _, challenge = pkce()
    response = await http.get(f"{base}/authorize", params=authorize_params(app, challenge, **extra))
    for _ in range(MAX_HOPS):
        location = response.headers.get("location", "")
        if response.status_code in (302, 303) and location.startswith("/"):
            response = await http.get(base + location)
        elif response.status_code == 200 and 'name="password"' in response.text:
            form = {"csrf": csrf_of(response.text), "username": username, "password": PASSWORD}
            response = await http.post(base + _action(response.text), data=form)
        elif response.status_code == 200 and 'value="allow"' in response.text:
            form = {"csrf": csrf_of(response.text), "decision": "allow"}
            response = await http.post(base + _action(response.text), data=form)
        else:
            break
    return response


async def code_at(http: httpx.AsyncClient, base: str, app: App, username: str, **extra: str) -> tuple[str, str]:
    """A code from /authorize at ``base`` (signing in and consenting there if need be) and its PKCE verifier."""
    verifier, challenge = pkce()
    response = await http.get(f"{base}/authorize", params=authorize_params(app, challenge, **extra))
    if not response.headers.get("location", "").startswith(REDIRECT_URI):
        signed_in = await sign_in(http, base, app, username)
        assert signed_in.headers.get("location", "").startswith(REDIRECT_URI), signed_in.text[:500]
        response = await http.get(f"{base}/authorize", params=authorize_params(app, challenge, **extra))
    assert response.status_code == 303, f"{response.status_code}: {response.text[:500]}"
    answer = query(response.headers["location"])
    assert "code" in answer, answer
    remember(set(), answer["code"])
    return answer["code"], verifier


def redeem(code: str, verifier: str) -> dict[str, str]:
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}


def refresh(token: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": token}


async def token(http: httpx.AsyncClient, base: str, app: App, data: dict[str, str]) -> httpx.Response:
    """A token request at ``base``; every credential it hands out is remembered."""
    response = await http.post(f"{base}/token", data=data, auth=app.auth)
    if response.status_code == 200:
        body = response.json()
        remember(set(), *(body.get(f) for f in ("access_token", "refresh_token", "id_token")))
    return response


async def tokens(http: httpx.AsyncClient, base: str, app: App, data: dict[str, str]) -> dict[str, Any]:
    response = await token(http, base, app, data)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def active(http: httpx.AsyncClient, base: str, app: App, value: str) -> bool:
    """Whether /introspect at ``base`` says the token is active (RFC 7662 §2.2)."""
    response = await http.post(f"{base}/introspect", data={"token": value}, auth=app.auth)
    assert response.status_code == 200, response.text
    return bool(response.json()["active"])


def kid_of(jwt: str) -> str:
    header = jwt.split(".", 1)[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


async def within(bound: float, seen: Callable[[], Awaitable[bool]], since: float | None = None) -> float:
    """Look until ``seen()`` holds and return how long it took since ``since`` (a ``time.monotonic()``, by default
    now); fails once ``bound`` seconds have passed without it. Looking never stops early: a slow host fails."""
    started = time.monotonic() if since is None else since
    while True:
        looked = await seen()
        elapsed = time.monotonic() - started  # when the look that saw it ended: no earlier than it was seen
        assert elapsed <= bound, f"{'seen only after' if looked else 'not seen within'} {bound} s ({elapsed:.2f} s)"
        if looked:
            return elapsed
        await asyncio.sleep(POLL)
