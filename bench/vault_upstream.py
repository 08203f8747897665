"""Scenario (g): the local upstream API the vault proxies to, its provider file, and the connection to it.

    python bench/vault_upstream.py serve PORT                  (BENCH_UPSTREAM_TOKEN: the one access token it takes)
    python bench/vault_upstream.py connect INTEGRATION USER    (FRONTDESK_* environment, BENCH_UPSTREAM_TOKEN)

``serve`` is a bare ASGI app under uvicorn (uvloop, httptools) that answers ``GET /api/v1/events`` with a small JSON
resource when the request carries ``Authorization: Bearer <token>``, and 401 otherwise: the direct call and the
proxied one are the same request at the upstream, so the proxy's credential placement is checked on every call.
``GET /bench/stats`` returns (and resets) what it saw: requests, refusals, TCP connections (distinct client ports).

``connect`` stores the connection the way the vault's callback stores it after a person's consent, through
frontdesk's own storage layer (``store.save_connection`` with the vault keys, and the audit event), and prints the
connection id. The access token lives a day, so no refresh is due during a run; the upstream has no token
endpoint, so a refresh would fail and show in the non-2xx column.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

PROVIDER = "bench-upstream"
API_PREFIX = "/api"
RESOURCE = "v1/events?limit=3"  # relative to the API base: what the platform names in /vault/proxy/{id}/…
SCOPE = "events.read"
LIFETIME = 86_400

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_EVENTS = json.dumps(
    {
        "items": [
            {"id": f"evt_{i}", "summary": summary, "start": f"2026-12-0{i}T09:00:00Z", "end": f"2026-12-0{i}T09:30:00Z"}
            for i, summary in enumerate(("Stand-up", "Design review", "Lunch"), start=1)
        ],
        "next_page_token": None,
    },
    separators=(",", ":"),
).encode()


def provider_file(directory: Path, base: str) -> Path:
    """The catalog entry an operator would write for this API: its endpoints on loopback (plain http is allowed for
    a loopback host), the token in ``Authorization: Bearer``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{PROVIDER}.toml"
    path.write_text(
        "\n".join(
            [
                'display_name = "Benchmark upstream"',
                'access_words = "the benchmark API"',
                f'authorize_url = "{base}/authorize"',
                f'token_url = "{base}/token"',
                'client_auth = "basic"',
                "pkce = true",
                f'default_scopes = ["{SCOPE}"]',
                "[api]",
                f'base_url = "{base}{API_PREFIX}"',
                'hosts = ["127.0.0.1"]',
                'header = "Authorization"',
                'value = "Bearer {access_token}"',
                "[scope_words]",
                f'"{SCOPE}" = "your benchmark events"',
            ]
        )
        + "\n"
    )
    return path


class Upstream:
    """The upstream API: one resource, one accepted bearer token."""

    def __init__(self, token: str) -> None:
        self.expected = b"Bearer " + token.encode()
        self.requests = 0
        self.refused = 0
        self.clients: set[tuple[str, int]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/bench/stats":
            stats = {"requests": self.requests, "refused": self.refused, "connections": len(self.clients)}
            self.requests, self.refused, self.clients = 0, 0, set()
            await _answer(send, 200, json.dumps(stats).encode())
            return
        self.requests += 1
        client = scope.get("client")
        if client:
            self.clients.add((str(client[0]), int(client[1])))
        if scope["method"] != "GET" or scope["path"] != f"{API_PREFIX}/v1/events":
            await _answer(send, 404, b'{"error":"not_found"}')
            return
        auth = next((value for name, value in scope["headers"] if name == b"authorization"), b"")
        if not hmac.compare_digest(auth, self.expected):
            self.refused += 1
            challenge = [(b"www-authenticate", b'Bearer error="invalid_token"')]
            await _answer(send, 401, b'{"error":"invalid_token"}', challenge)
            return
        await _answer(send, 200, _EVENTS)


async def _answer(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def serve(port: int, token: str) -> None:
    import uvicorn

    uvicorn.run(
        Upstream(token), host="127.0.0.1", port=port, loop="uvloop", http="httptools", lifespan="off",
        log_level="warning", access_log=False, server_header=False,
    )  # fmt: skip


def connect(integration: str, user: str, token: str) -> str:
    """The connection as the vault's callback saves it after a person's consent (``Vault.finish``)."""
    from frontdesk.config import load_settings
    from frontdesk.storage import audit
    from frontdesk.storage.db import now, open_engine, transaction
    from frontdesk.vault import store
    from frontdesk.vault.keys import load_vault_keys

    settings = load_settings()
    engine = open_engine(settings.db_url)
    keys = load_vault_keys(settings, engine)
    credentials = store.Credentials(token, "bench_rt_never_used")
    with transaction(engine) as conn:
        record, _ = store.save_connection(
            conn, keys, integration_name=integration, user=user, credentials=credentials, scopes=[SCOPE], meta={},
            expires_at=now() + LIFETIME, person=None,
        )  # fmt: skip
        audit.record(
            conn, "vault.connection.created", "success", integration=integration, user=user, connection=record.id
        )
    engine.dispose()
    return record.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve_ = sub.add_parser("serve")
    serve_.add_argument("port", type=int)
    connect_ = sub.add_parser("connect")
    connect_.add_argument("integration")
    connect_.add_argument("user")
    args = parser.parse_args()
    token = os.environ["BENCH_UPSTREAM_TOKEN"]
    if args.command == "serve":
        serve(args.port, token)
    else:
        sys.stdout.write(connect(args.integration, args.user, token) + "\n")


if __name__ == "__main__":
    main()
