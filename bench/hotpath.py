"""The application alone, in process: CPU per request of one scenario, and where it goes.

    .venv/bin/python bench/hotpath.py a_client_credentials            # µs of CPU per request, no server, no sockets
    .venv/bin/python bench/hotpath.py c_refresh --profile              # plus the top of a cProfile, by own time
    .venv/bin/python bench/hotpath.py d_code --database-url postgresql://postgres@127.0.0.1:5432/fdprof
    .venv/bin/python bench/hotpath.py a_client_credentials --log-level INFO 2>/dev/null  # as shipped, with its lines
    valgrind --tool=callgrind --instr-atstart=no .venv/bin/python bench/hotpath.py a_client_credentials -n 1000 \
        --instructions                                                  # instructions, whatever the machine's load
    .venv/bin/python bench/hotpath.py g_vault_proxy -n 2000            # the vault proxy, against a local upstream

What ``bench/run.py`` measures end to end is this plus the ASGI server and the kernel (about 22 µs a request for
uvicorn with uvloop and httptools on these machines, measured with a bare ASGI "hello"). Each call goes through the
app exactly as ``frontdesk serve`` builds it (``asgi.served``): the direct dispatch of the hot endpoints, the
exception handlers and the security headers. Requests run ``--concurrency`` at a time on one uvloop event loop, as
under load. The store is a fresh one in a temporary home, set up through the CLI as ``bench/run.py`` sets it up.

``g_vault_proxy`` sends ``bench/run.py``'s scenario (g) through the proxy route: the upstream
(``bench/vault_upstream.py``) runs as a process of its own, so its work is in neither the CPU time nor the
instruction count (valgrind follows no child process); what is counted is frontdesk's side of each call, the
outgoing HTTP request (``vault/pool.py``: httpcore's HTTP/1.1 connections on the loop's own transports) and the
loopback socket calls included. It goes through the router (the proxy is no hot route), at ``--concurrency`` 8
unless given.
"""

# ruff: noqa: S603, S607  -- runs frontdesk's own CLI and callgrind_control with arguments it builds

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from mint import REDIRECT_URI, RESOURCE, VERIFIER  # noqa: E402
from run import BASIC, VAULT_PROXY, Target, connect_vault, provision, start_upstream  # noqa: E402
from vault_upstream import RESOURCE as UPSTREAM_RESOURCE  # noqa: E402

SCENARIOS = ("a_client_credentials", "b_introspection", "c_refresh", "d_code", "e_jwks", "e_discovery", VAULT_PROXY)


class _Home:
    """What ``connect_vault`` reads of a served target: its environment."""

    def __init__(self, env: dict[str, str]) -> None:
        self._env = env
        self.extra: dict[str, Any] = {}

    def env(self) -> dict[str, str]:
        return self._env


def set_up(home: Path, database_url: str | None, log_level: str = "WARNING", upstream: Target | None = None) -> str:
    """The store; with ``upstream``, also scenario (g)'s integration, API key and connection. Returns the path and
    authorization of the proxied call (empty without an upstream)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    env.update({"FRONTDESK_HOME": str(home), "FRONTDESK_LOG_LEVEL": "WARNING"})
    if database_url:
        env["FRONTDESK_DATABASE_URL"] = database_url
    if upstream is not None:
        env["FRONTDESK_VAULT_PROVIDERS_DIR"] = str(upstream.extra["providers"])
    run = provision(env)
    proxied = ""
    if upstream is not None:
        served = _Home(env)
        connect_vault(served, upstream, run)  # type: ignore[arg-type]
        proxied = f"/vault/proxy/{served.extra['connection']}/{UPSTREAM_RESOURCE}\0Bearer {served.extra['api_key']}"
    env["FRONTDESK_LOG_LEVEL"] = log_level  # the served app's; provisioning stays quiet
    os.environ.update({k: v for k, v in env.items() if k.startswith("FRONTDESK_")})
    return proxied


def request(scenario: str, token: str = "") -> tuple[str, str, bytes, list[tuple[bytes, bytes]]]:
    if scenario == VAULT_PROXY:  # token: the proxied path and query, NUL, the API key's Authorization
        target, authorization = token.split("\0")
        return "GET", target, b"", [(b"authorization", authorization.encode())]
    form = [(b"content-type", b"application/x-www-form-urlencoded"), (b"authorization", BASIC.encode())]
    if scenario == "a_client_credentials":
        body = f"grant_type=client_credentials&scope=api.read&resource={RESOURCE}"
        return "POST", "/token", body.encode(), form
    if scenario == "b_introspection":
        return "POST", "/introspect", f"token={token}&token_type_hint=access_token".encode(), form
    if scenario == "c_refresh":
        return "POST", "/token", f"grant_type=refresh_token&refresh_token={token}".encode(), form
    if scenario == "d_code":
        body = f"grant_type=authorization_code&code={token}&code_verifier={VERIFIER}&redirect_uri={REDIRECT_URI}"
        return "POST", "/token", body.encode(), form
    if scenario == "e_jwks":
        return "GET", "/jwks", b"", []
    return "GET", "/.well-known/openid-configuration", b"", []


async def call(
    app: Any, method: str, target: str, body: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[int, bytes]:
    path, _, query = target.partition("?")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"content-length", str(len(body)).encode()), *headers],
        "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000), "state": {},
    }  # fmt: skip
    status = 0
    answer: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        else:
            answer.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(answer)


async def drive(app: Any, scenario: str, tokens: list[str], n: int, concurrency: int) -> list[int]:
    statuses: list[int] = []
    queue = iter(tokens if tokens else [""] * n)

    async def worker() -> None:
        for token in queue:
            statuses.append((await call(app, *request(scenario, token)))[0])

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("-n", type=int, default=5000, help="requests to measure (after 500 to warm up)")
    parser.add_argument("--concurrency", type=int, help="requests at a time (default 32; 8 for g_vault_proxy)")
    parser.add_argument("--profile", action="store_true", help="print the top of a cProfile of the measured run")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--profile-out", help="with --profile: also write the raw cProfile stats to this file")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="under valgrind --tool=callgrind --instr-atstart=no: count instructions of the measured requests only",
    )
    parser.add_argument("--database-url", help="PostgreSQL (or another SQLite) instead of the home's SQLite file")
    parser.add_argument(
        "--log-level", default="WARNING", help="the app's log level (INFO: as shipped; lines go to stderr)"
    )
    args = parser.parse_args()

    proxy = args.scenario == VAULT_PROXY
    concurrency = args.concurrency or (8 if proxy else 32)
    with tempfile.TemporaryDirectory(prefix="fdprof-") as tmp:
        upstream = start_upstream(Path(tmp)) if proxy else None
        try:
            proxied = set_up(Path(tmp), args.database_url, args.log_level, upstream)
            _measure(args, proxied, concurrency)
        finally:
            if upstream is not None and upstream.process is not None:
                upstream.process.terminate()
                upstream.process.wait()


def _measure(args: argparse.Namespace, proxied: str, concurrency: int) -> None:
    import uvloop
    from mint import mint

    from frontdesk.asgi import app as make_app

    app = make_app()
    warm, n = 500, args.n
    pooled = args.scenario in ("c_refresh", "d_code")
    tokens = mint("refresh" if args.scenario == "c_refresh" else "code", warm + n, 100) if pooled else []

    async def session() -> None:
        lifespan: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        started = asyncio.Event()
        await lifespan.put({"type": "lifespan.startup"})

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "lifespan.startup.complete":
                started.set()

        life = asyncio.ensure_future(app({"type": "lifespan", "asgi": {"version": "3.0"}}, lifespan.get, send))
        await started.wait()
        token = proxied
        if args.scenario == "b_introspection":
            token = await _access_token(app)
        first = tokens[:warm] if pooled else [token] * warm
        rest = tokens[warm:] if pooled else [token] * n
        await drive(app, args.scenario, first, warm, concurrency)
        profiler = cProfile.Profile() if args.profile else None
        if args.instructions:
            _callgrind("on")
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        statuses = await drive(app, args.scenario, rest, n, concurrency)
        if profiler:
            profiler.disable()
        if args.instructions:
            _callgrind("off")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        bad = sum(1 for s in statuses if s != 200)
        print(
            f"{args.scenario}: {len(statuses)} requests, {cpu / len(statuses) * 1e6:.0f} µs CPU each, "
            f"{len(statuses) / wall:,.0f}/s on one core in process, non-200: {bad}"
        )
        if profiler:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)
            if args.profile_out:
                profiler.dump_stats(args.profile_out)
        await lifespan.put({"type": "lifespan.shutdown"})
        await life

    uvloop.run(session())


def _callgrind(state: str) -> None:
    # Instruction counts do not move with the machine's load, as CPU time does on a shared machine.
    subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True)


async def _access_token(app: Any) -> str:
    status, body = await call(app, *request("a_client_credentials"))
    if status != 200:
        raise SystemExit(f"client_credentials answered {status}: {body!r}")
    return str(json.loads(body)["access_token"])


if __name__ == "__main__":
    main()
