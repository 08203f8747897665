"""A small OAuth provider on loopback, for the vault's tests of each provider quirk.

It is a real HTTP server (uvicorn in a thread), so the vault talks to it over sockets exactly as it talks to Google.
Its authorization endpoint approves at once (the person said yes), its token endpoint checks the client
authentication style, PKCE and single-use codes, rotates refresh tokens when asked, and its API checks the
credential where the provider says it goes. Knobs reproduce the quirks: the token under ``authed_user``,
``expires_in`` as a string or in milliseconds or absent, a refresh that returns no new refresh token, a provider
that is down, a grant revoked behind the vault's back.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CLIENT_ID = "platform-app"
CLIENT_SECRET = "platform-app-secret-0123456789"


@dataclass
class Fake:
    port: int = 0
    client_auth: str = "basic"  # basic | body | json
    pkce: bool = True
    token_path: tuple[str, ...] = ()
    expires_in: Any = 3600  # an int, a string, milliseconds (with ms=True), or None for "never expires"
    ms: bool = False
    rotate: bool = True
    return_refresh_on_refresh: bool = True
    header: str = "Authorization"
    prefix: str = "Bearer "
    extra: dict[str, Any] = field(default_factory=dict)  # top-level response fields (instance_url, team…)
    down: bool = False  # the token endpoint answers 503
    refresh_delay: float = 0.0  # widen the window in which a second refresh could race
    # state
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    access: dict[str, float] = field(default_factory=dict)  # token -> expiry (monotonic)
    refresh: dict[str, bool] = field(default_factory=dict)  # token -> still valid
    refresh_calls: int = 0
    dead_refreshes: int = 0
    revoked: list[str] = field(default_factory=list)
    api_calls: list[dict[str, Any]] = field(default_factory=list)
    hooks: list[tuple[bytes, str]] = field(default_factory=list)  # webhook deliveries: body, signature header
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def expire_access_tokens(self) -> None:
        with self.lock:
            for token in self.access:
                self.access[token] = 0.0

    def revoke_everything(self) -> None:
        """The person removed the app at the provider: every token dies."""
        with self.lock:
            self.access.clear()
            for token in self.refresh:
                self.refresh[token] = False

    def _tokens(self) -> dict[str, Any]:
        access = "fake_at_" + secrets.token_urlsafe(24)
        refresh = "fake_rt_" + secrets.token_urlsafe(24)
        lifetime = float(self.expires_in) / (1000 if self.ms else 1) if self.expires_in is not None else 1e9
        self.access[access] = time.monotonic() + lifetime
        self.refresh[refresh] = True
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "refresh_token": refresh}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return body

    def _wrap(self, tokens: dict[str, Any], scope: str | None) -> dict[str, Any]:
        if scope is not None:
            tokens["scope"] = scope
        out: dict[str, Any] = dict(self.extra)
        if self.token_path:
            node = out
            for part in self.token_path[:-1]:
                node = node.setdefault(part, {})
            node[self.token_path[-1]] = tokens
        else:
            out.update(tokens)
        return out

    # --- endpoints -------------------------------------------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        assert q["client_id"] == CLIENT_ID
        if self.pkce:
            assert q.get("code_challenge_method") == "S256", "PKCE is required"
        code = "fake_code_" + secrets.token_urlsafe(16)
        self.codes[code] = {
            "redirect_uri": q["redirect_uri"],
            "challenge": q.get("code_challenge"),
            "scope": q.get("scope") or q.get("user_scope"),
            "query": dict(q),
        }
        return RedirectResponse(q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"]}), 302)

    async def _client_params(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        if self.client_auth == "json" or request.headers.get("content-type", "").startswith("application/json"):
            params: dict[str, Any] = json.loads(raw)
        else:
            params = dict(parse_qsl(raw.decode()))
        header = request.headers.get("authorization", "")
        if self.client_auth == "basic":
            expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if header != expected:
                raise PermissionError("client_secret_basic expected")
        elif params.get("client_id") != CLIENT_ID or params.get("client_secret") != CLIENT_SECRET:
            raise PermissionError("client credentials in the body expected")
        return params

    async def token(self, request: Request) -> Response:
        if self.down:
            return Response("unavailable", 503)
        try:
            params = await self._client_params(request)
        except PermissionError as exc:
            return JSONResponse({"error": "invalid_client", "error_description": str(exc)}, 401)
        if params.get("grant_type") == "authorization_code":
            grant = self.codes.pop(params.get("code", ""), None)
            if grant is None or grant["redirect_uri"] != params.get("redirect_uri"):
                return JSONResponse({"error": "invalid_grant"}, 400)
            if self.pkce:
                verifier = params.get("code_verifier", "")
                digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if digest != grant["challenge"]:
                    return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, 400)
            with self.lock:
                return JSONResponse(self._wrap(self._tokens(), grant["scope"]))
        if params.get("grant_type") == "refresh_token":
            if self.refresh_delay:
                await asyncio.sleep(self.refresh_delay)  # widen the window in which a second refresh could race
            with self.lock:
                self.refresh_calls += 1
                token = params.get("refresh_token", "")
                if not self.refresh.get(token):
                    self.dead_refreshes += 1
                    return JSONResponse({"error": "invalid_grant", "error_description": "refresh token is dead"}, 400)
                tokens = self._tokens()
                if self.rotate:
                    self.refresh[token] = False
                else:
                    del self.refresh[tokens["refresh_token"]]
                    tokens["refresh_token"] = token
                if not self.return_refresh_on_refresh:
                    tokens.pop("refresh_token")
                return JSONResponse(self._wrap(tokens, None))
        return JSONResponse({"error": "unsupported_grant_type"}, 400)

    async def revoke(self, request: Request) -> Response:
        try:
            params = await self._client_params(request)
        except PermissionError:
            return Response(status_code=401)
        with self.lock:
            self.revoked.append(params["token"])
            self.refresh[params["token"]] = False
        return Response(status_code=200)

    async def api(self, request: Request) -> Response:
        header = request.headers.get(self.header, "")
        token = header[len(self.prefix) :] if header.startswith(self.prefix) else ""
        expiry = self.access.get(token)
        body = await request.body()
        self.api_calls.append({"method": request.method, "path": request.url.path, "headers": dict(request.headers)})
        if expiry is None or expiry < time.monotonic():
            return JSONResponse({"error": "invalid_token"}, 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return JSONResponse(
            {
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "body": body.decode(),
                # Some APIs echo what they were sent; the vault must strip the credential from the answer.
                "echo": header,
            },
            headers={"Set-Cookie": "provider_session=1", "X-Echo": header},
        )

    async def hook(self, request: Request) -> Response:
        self.hooks.append((await request.body(), request.headers.get("frontdesk-signature", "")))
        return Response(status_code=204)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/revoke", self.revoke, methods=["POST"]),
                Route("/api/{rest:path}", self.api, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
                Route("/hook", self.hook, methods=["POST"]),
            ]
        )

    def provider_file(
        self,
        directory: Path,
        name: str = "fake",
        tables: dict[str, dict[str, Any]] | None = None,
        api_base: str = "/api",
        hosts: tuple[str, ...] = ("127.0.0.1",),
        **overrides: str,
    ) -> Path:
        """The catalog entry an operator would write for this provider (``overrides`` are raw TOML values)."""
        directory.mkdir(parents=True, exist_ok=True)
        lines = [
            'display_name = "Fake Calendar"',
            'access_words = "your Fake Calendar"',
            f'authorize_url = "{self.base}/authorize"',
            f'token_url = "{self.base}/token"',
            f'revoke_url = "{self.base}/revoke"',
            f'client_auth = "{self.client_auth}"',
            f'revoke_auth = "{self.client_auth}"',
            f"pkce = {'true' if self.pkce else 'false'}",
            'default_scopes = ["calendar.read"]',
        ]
        overrides.setdefault("refresh_margin", "60")
        if self.token_path:
            lines.append(f"token_path = {json.dumps(list(self.token_path))}")
        if self.ms:
            lines.append('expires_in_unit = "milliseconds"')
        lines += [f"{k} = {v}" for k, v in overrides.items()]
        for table, values in (tables or {}).items():
            lines.append(f"[{table}]")
            lines += [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in values.items()]
        lines += [
            "[api]",
            f'base_url = "{api_base if api_base.startswith("{") else self.base + api_base}"',
            f"hosts = {json.dumps(list(hosts))}",
            f'header = "{self.header}"',
            f'value = "{self.prefix}{{access_token}}"',
            "[scope_words]",
            '"calendar.read" = "your Fake Calendar"',
            '"calendar.write" = "changes to your Fake Calendar"',
        ]
        path = directory / f"{name}.toml"
        path.write_text("\n".join(lines) + "\n")
        return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running(fake: Fake) -> Iterator[Fake]:
    fake.port = _free_port()
    server = uvicorn.Server(uvicorn.Config(fake.app(), host="127.0.0.1", port=fake.port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the fake provider did not start"
        time.sleep(0.01)
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=5)
