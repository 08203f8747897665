"""The benchmark: frontdesk side by side with node-oidc-provider and a minimal Authlib server, on loopback.

    .venv/bin/python bench/run.py            # the full matrix (≈ 20 minutes); `make bench`
    .venv/bin/python bench/run.py --quick    # SQLite, one worker, short runs (≈ 3 minutes)

Every server runs pinned to core 0 (``taskset``), the load generator (``wrk``, one thread) to core 1; frontdesk with
two workers gets both cores and shares core 1 with ``wrk``. Each scenario runs on every target back to back, so a
ratio compares runs made seconds apart on the same machine. Results go to ``bench/results/<date>-<commit>.json``;
a full run also rewrites the table in ``BENCHMARKS.md`` between its markers. See BENCHMARKS.md for what each
scenario sends.
"""

# ruff: noqa: S603, S607  -- a benchmark driver starts its servers and tools by name, with arguments it builds

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from mint import CHALLENGE, CLIENT_ID, REDIRECT_URI, RESOURCE, SCOPE, VERIFIER  # noqa: E402
from vault_upstream import API_PREFIX, PROVIDER, provider_file  # noqa: E402
from vault_upstream import RESOURCE as UPSTREAM_RESOURCE  # noqa: E402

SECRET = "bench-secret-0123456789-abcdefghijklmnop"
PASSWORD = "bench passphrase for the flow scenario"
OPAQUE_RESOURCE = "https://opaque.bench.example"
BASIC = "Basic " + base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
NODE_DIR = BENCH / "peers" / "oidc-provider"
SERVER_CORE, LOAD_CORE = "0", "1"
CONNECTIONS = 32
POOL_HEADROOM = 1.6  # pool = client_credentials rate x seconds x this: a refresh or code exchange is never faster

SCENARIOS = {
    "a_client_credentials": "client_credentials, client_secret_basic, ES256 JWT access token",
    "b_introspection": "introspection of an active access token",
    "c_refresh": "refresh token rotation, each token of a pool used once",
    "d_code": "authorization code + PKCE redemption, codes minted ahead",
    "e_jwks": "GET JWKS",
    "e_discovery": "GET discovery document",
    "f_flow": "whole browser-less code flow: authorize, sign in, consent, token (flows/s)",
    "g_vault_proxy": "GET through the vault proxy, against the same GET sent to the local upstream directly",
}
VAULT_PROXY = "g_vault_proxy"
# What frontdesk as shipped (default settings, INFO) runs beside the comparison at --log-level: the targets' scenarios.
SHIPPED_SCENARIOS = ("a_client_credentials", "b_introspection", "c_refresh", "d_code", "e_jwks", "e_discovery")
# The two-worker runs, set against one worker: requests per second, CPU per request, and what a busy core costs.
SCALING_SCENARIOS = ("a_client_credentials", "b_introspection")
SCALING_GOAL = 1.7  # two workers ÷ one, by CPU per request (issue 15)
# The scaling table's neighbour (scaling()): pure Python (dict writes, string building) at the lowest priority on
# the load core, where it takes what wrk leaves, as a second worker does.
NEIGHBOUR = "d = {}\ni = 0\nwhile True:\n    i += 1\n    d[i % 50000] = str(i)\n"
# Issue 15's targets: frontdesk as shipped (default settings, INFO), one worker, ÷ node-oidc-provider, on one core
# each, in the same run, by store. node keeps everything in memory; frontdesk persists, hence PostgreSQL's lower bar.
SHIPPED_GOAL = {
    ("sqlite", "a_client_credentials"): 2.0,
    ("sqlite", "b_introspection"): 2.0,
    ("sqlite", "c_refresh"): 1.2,
    ("sqlite", "d_code"): 1.2,
    ("sqlite", "e_jwks"): 2.0,
    ("sqlite", "e_discovery"): 2.0,
    ("postgresql", "a_client_credentials"): 1.0,
    ("postgresql", "b_introspection"): 1.0,
    ("postgresql", "c_refresh"): 0.8,
    ("postgresql", "d_code"): 0.8,
}
# The first round's goals (2026-12-02), for the rows at --log-level: frontdesk (1 worker) ÷ peer, whatever the store.
TARGETS_GOAL = {
    ("node", "a_client_credentials"): 1.5,
    ("node", "b_introspection"): 1.5,
    ("node", "e_jwks"): 1.5,
    ("node", "e_discovery"): 1.5,
    ("node", "c_refresh"): 1.0,
    ("node", "d_code"): 1.0,
    ("authlib", "a_client_credentials"): 3.0,
    ("authlib-flask", "a_client_credentials"): 3.0,
}


def goal_for(peer: str, scenario: str, backend: str, shipped: bool) -> float | None:
    """The ratio a row of the comparison is held to: issue 15's for frontdesk as shipped against node (no goal
    against another peer), the first round's for the rows at ``--log-level``."""
    if shipped:
        return SHIPPED_GOAL.get((backend, scenario)) if peer == "node" else None
    return TARGETS_GOAL.get((peer, scenario))


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- processes ---------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and everything under it."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in descendants(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0).status_code < 500:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- targets -----------------------------------------------------------------------------------------------------


@dataclass
class Target:
    name: str  # node | authlib | frontdesk
    label: str
    backend: str  # memory for the peers
    workers: int
    port: int
    paths: dict[str, str]
    scenarios: tuple[str, ...]
    process: subprocess.Popen[bytes] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    log_level: str = ""  # frontdesk's; "INFO (default)" for frontdesk as shipped

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def worker_pids(self) -> list[int]:
        pids = descendants(self.pid)
        return pids[1:] if self.workers > 1 else pids[:1]

    def mint(self, kind: str, n: int) -> list[str]:
        # Only servers that run the pool scenarios (c, d) mint; the Authlib peer runs (a) alone.
        raise ValueError(f"{self.label} runs no scenario that needs minted {kind}s")

    def access_token(self) -> str:
        resource = OPAQUE_RESOURCE if self.name == "node" else RESOURCE
        response = httpx.post(
            self.url + self.paths["token"],
            headers={"Authorization": BASIC},
            data={"grant_type": "client_credentials", "scope": "api.read", "resource": resource},
        )
        response.raise_for_status()
        return str(response.json()["access_token"])


class NodeTarget(Target):
    def mint(self, kind: str, n: int) -> list[str]:
        out: list[str] = []
        while len(out) < n:
            chunk = min(20_000, n - len(out))
            response = httpx.get(f"{self.url}/bench/mint", params={"kind": kind, "n": chunk}, timeout=120.0)
            response.raise_for_status()
            out.extend(response.text.split())
        return out


class FrontdeskTarget(Target):
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
        env.update(self.extra["env"])
        return env

    def mint(self, kind: str, n: int, expired: bool = False) -> list[str]:
        done = subprocess.run(
            [sys.executable, str(BENCH / "mint.py"), kind, str(n), *(["--expired"] if expired else [])],
            env=self.env(),
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"bench/mint.py {kind} {n} failed:\n{done.stderr[-2000:]}")
        return done.stdout.split()


def start_node(workdir: Path) -> NodeTarget:
    if not (NODE_DIR / "node_modules" / "oidc-provider").exists():
        log("installing node-oidc-provider (npm ci)")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR, check=True)
    port = free_port()
    target = NodeTarget(
        "node",
        "node-oidc-provider",
        "memory",
        1,
        port,
        {
            "token": "/token",
            "introspect": "/token/introspection",
            "jwks": "/jwks",
            "discovery": "/.well-known/openid-configuration",
        },
        ("a_client_credentials", "b_introspection", "c_refresh", "d_code", "e_jwks", "e_discovery"),
    )
    env = {**os.environ, "BENCH_CODE_CHALLENGE": CHALLENGE, "NODE_ENV": "production"}
    with (workdir / "node.log").open("ab") as sink:
        target.process = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, "node", "server.mjs", str(port), SECRET],
            cwd=NODE_DIR,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    wait_ready(target.url + "/jwks", target.process)
    return target


def start_authlib(workdir: Path) -> Target:
    port = free_port()
    target = Target("authlib", "Authlib (minimal)", "memory", 1, port, {"token": "/token"}, ("a_client_credentials",))
    with (workdir / "authlib.log").open("ab") as sink:
        target.process = subprocess.Popen(
            [
                "taskset",
                "-c",
                SERVER_CORE,
                sys.executable,
                str(BENCH / "peers" / "authlib_server.py"),
                str(port),
                SECRET,
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    wait_ready(target.url + "/token", target.process)
    return target


FLASK_DIR = BENCH / "peers" / "authlib_flask"


def start_authlib_flask(workdir: Path) -> Target | None:
    """The same Authlib server as most deployments run it: Flask under gunicorn (one worker, eight threads)."""
    venv = FLASK_DIR / ".venv"
    if not (venv / "bin" / "gunicorn").exists():
        log("installing the Flask peer's virtual environment")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "pip"), "install", "-q", "-r", str(FLASK_DIR / "requirements.txt")]
        if subprocess.run(pip, check=False).returncode != 0:
            log("the Flask peer could not be installed: skipped")
            return None
    port = free_port()
    target = Target(
        "authlib-flask", "Authlib on Flask", "memory", 1, port, {"token": "/token"}, ("a_client_credentials",)
    )
    env = {**os.environ, "BENCH_ISSUER": f"http://127.0.0.1:{port}", "BENCH_SECRET": SECRET}
    with (workdir / "authlib-flask.log").open("ab") as sink:
        target.process = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, str(venv / "bin" / "gunicorn"), "-k", "gthread", "--threads", "8",
             "-w", "1", "-b", f"127.0.0.1:{port}", "--chdir", str(FLASK_DIR), "app:app"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    wait_ready(target.url + "/token", target.process)
    return target


def start_upstream(workdir: Path) -> Target:
    """Scenario (g)'s upstream API on loopback, pinned like the servers, and the provider file that names it."""
    port = free_port()
    token = "bench_at_" + secrets.token_urlsafe(24)
    target = Target("upstream", "upstream (direct)", "memory", 1, port, {}, (VAULT_PROXY,), extra={"token": token})
    with (workdir / "upstream.log").open("ab") as sink:
        target.process = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, sys.executable, str(BENCH / "vault_upstream.py"), "serve", str(port)],
            env={**os.environ, "BENCH_UPSTREAM_TOKEN": token},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    wait_ready(target.url + "/bench/stats", target.process)
    resource = f"{target.url}{API_PREFIX}/{UPSTREAM_RESOURCE}"
    # The upstream really checks the credential: without it 401, with it the resource.
    refused = httpx.get(resource, headers={"Authorization": "Bearer bench_at_wrong"})
    answered = httpx.get(resource, headers={"Authorization": f"Bearer {token}"})
    if refused.status_code != 401 or answered.status_code != 200:
        raise RuntimeError(f"the upstream answered {refused.status_code} and {answered.status_code}, not 401 and 200")
    target.extra["providers"] = provider_file(workdir / "providers", target.url).parent
    upstream_stats(target.url)
    return target


def upstream_stats(url: str) -> dict[str, int]:
    """What the upstream saw since the last call (requests, 401s, TCP connections), and reset."""
    response = httpx.get(url + "/bench/stats")
    response.raise_for_status()
    return dict(response.json())


def postgres_database(workers: int, shipped: bool = False) -> str:
    return f"fdbench_{workers}{'_shipped' if shipped else ''}"


def postgres_url(admin: str, database: str) -> str:
    parts = urlsplit(admin)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, "", ""))


def fresh_postgres(admin: str, database: str) -> str:
    import psycopg

    with psycopg.connect(postgres_url(admin, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')
    return postgres_url(admin, database)


def drop_postgres(admin: str, database: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url(admin, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def provision(env: dict[str, str]) -> Callable[..., str]:
    """The benchmark's store, set up as an operator sets one up (its CLI): schema, scope, client, person. Returns
    the way to run more of the CLI in that environment."""

    def run(*command: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "frontdesk", *command], env=env, input=stdin, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"frontdesk {' '.join(command[:2])} failed:\n{done.stderr[-2000:]}")
        return done.stdout

    run("migrate")
    run("scope", "create", "api.read", "--description", "Read the benchmark API")
    run("resource", "create", RESOURCE, "--name", "Benchmark API", "--scope", "api.read")  # tokens are minted for it
    run(
        "client", "create", "--name", "Benchmark", "--client-id", CLIENT_ID, "--secret", SECRET,
        "--grant-type", "client_credentials", "--grant-type", "authorization_code", "--grant-type", "refresh_token",
        "--redirect-uri", REDIRECT_URI, "--scope", SCOPE, "--id-token-alg", "ES256",
    )  # fmt: skip
    run("user", "create", "--username", "bench", "--password-stdin", stdin=PASSWORD + "\n")
    return run


def start_frontdesk(
    workdir: Path,
    backend: str,
    workers: int,
    args: argparse.Namespace,
    upstream: Target | None = None,
    shipped: bool = False,
    src: str | None = None,
    python: str | None = None,
) -> FrontdeskTarget:
    """frontdesk at ``--log-level``, or ``shipped``: with nothing but its home and database set, as the README
    starts it (log level INFO, access lines and audit lines written). ``src``: another tree's source directory,
    served instead of the installed frontdesk; ``python``: another interpreter (with frontdesk's dependencies) that
    serves it (both for bench/ab.py)."""
    port = free_port()
    name = f"{backend}-{workers}{'-shipped' if shipped else ''}"
    home = workdir / f"home-{name}"
    home.mkdir()
    env = {"FRONTDESK_HOME": str(home)}
    if not shipped:
        env.update({"FRONTDESK_LOG_LEVEL": args.log_level, "PYTHONUNBUFFERED": "1"})
    if src is not None:
        env["PYTHONPATH"] = str(Path(src).resolve())
    if backend == "postgresql":
        env["FRONTDESK_DATABASE_URL"] = fresh_postgres(args.postgres, postgres_database(workers, shipped))
        if workers > 1:
            # Every target runs at once on one server of max_connections 100 (the machine's default): the one-worker
            # targets keep the default pool of 30 (+1 listener) each, the two workers 15 (+1) each.
            env["FRONTDESK_DATABASE_POOL_SIZE"] = "15"
    if upstream is not None:
        env["FRONTDESK_VAULT_PROVIDERS_DIR"] = str(upstream.extra["providers"])
    target = FrontdeskTarget(
        "frontdesk",
        f"frontdesk {backend} {workers}w{' shipped' if shipped else ''}",
        backend,
        workers,
        port,
        {
            "token": "/token",
            "introspect": "/introspect",
            "jwks": "/jwks",
            "discovery": "/.well-known/openid-configuration",
        },
        tuple(s for s in SCENARIOS if s != VAULT_PROXY or upstream is not None) if not shipped else SHIPPED_SCENARIOS,
        extra={"env": env},
        log_level="INFO (default)" if shipped else args.log_level,
    )
    cli = [python or sys.executable, "-m", "frontdesk"]
    fd_env = target.env()
    run = provision(fd_env)
    if upstream is not None:
        connect_vault(target, upstream, run)
    cores = SERVER_CORE if workers == 1 else f"{SERVER_CORE},{LOAD_CORE}"
    with (workdir / f"frontdesk-{name}.log").open("ab") as sink:
        target.process = subprocess.Popen(
            [
                "taskset",
                "-c",
                cores,
                *cli,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=fd_env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    wait_ready(target.url + "/jwks", target.process)
    if upstream is not None:
        check_proxy(target, upstream)
    return target


def connect_vault(target: FrontdeskTarget, upstream: Target, run: Callable[..., str]) -> None:
    """Scenario (g)'s set-up as an operator and a platform make it: an integration for the upstream's provider file
    (`frontdesk vault integration add`), the platform's API key (`frontdesk apikey create`), and one person's
    connection, stored through the vault's storage layer as its callback stores it (bench/vault_upstream.py)."""
    run(
        "vault", "integration", "add", "bench", "--provider", PROVIDER, "--client-id", "bench-platform",
        "--client-secret-stdin", stdin="bench-platform-secret-0123456789\n",
    )  # fmt: skip
    target.extra["api_key"] = json.loads(run("apikey", "create", "--name", "bench platform", "--json"))["api_key"]
    done = subprocess.run(
        [sys.executable, str(BENCH / "vault_upstream.py"), "connect", "bench", "bench-user"],
        env={**target.env(), "BENCH_UPSTREAM_TOKEN": upstream.extra["token"]},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench/vault_upstream.py connect failed:\n{done.stderr[-2000:]}")
    target.extra["connection"] = done.stdout.strip()
    target.extra["upstream"] = upstream.url


def check_proxy(target: FrontdeskTarget, upstream: Target) -> None:
    """The proxied call answers what the direct one answers, and only with the platform's API key."""
    path = request_for(target, VAULT_PROXY, None).path
    proxied = httpx.get(target.url + path, headers={"Authorization": f"Bearer {target.extra['api_key']}"})
    direct = httpx.get(
        upstream.url + request_for(upstream, VAULT_PROXY, None).path,
        headers={"Authorization": f"Bearer {upstream.extra['token']}"},
    )
    refused = httpx.get(target.url + path, headers={"Authorization": "Bearer fd_ak_wrong"})
    if proxied.status_code != 200 or proxied.content != direct.content or refused.status_code != 401:
        raise RuntimeError(
            f"vault proxy check failed: proxied {proxied.status_code} {proxied.text[:300]!r}, "
            f"direct {direct.status_code}, without the API key {refused.status_code}"
        )
    upstream_stats(upstream.url)


# --- load --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: str = ""
    auth: str = ""
    pool: str | None = None  # refresh | code


def request_for(target: Target, scenario: str, token: str | None) -> Request:
    form = lambda **kw: "&".join(f"{k}={quote(v, safe='{}')}" for k, v in kw.items())  # noqa: E731
    token_path = target.paths.get("token", "/token")
    if scenario == "a_client_credentials":
        return Request(
            "POST", token_path, form(grant_type="client_credentials", scope="api.read", resource=RESOURCE), BASIC
        )
    if scenario == "b_introspection":
        assert token is not None
        return Request("POST", target.paths["introspect"], form(token=token, token_type_hint="access_token"), BASIC)
    if scenario == "c_refresh":
        return Request("POST", token_path, form(grant_type="refresh_token", refresh_token="{token}"), BASIC, "refresh")
    if scenario == "d_code":
        body = form(grant_type="authorization_code", code="{token}", code_verifier=VERIFIER, redirect_uri=REDIRECT_URI)
        return Request("POST", token_path, body, BASIC, "code")
    if scenario == "e_jwks":
        return Request("GET", target.paths["jwks"])
    if scenario == "e_discovery":
        return Request("GET", target.paths["discovery"])
    if scenario == VAULT_PROXY:
        if target.name == "upstream":
            return Request("GET", f"{API_PREFIX}/{UPSTREAM_RESOURCE}", auth=f"Bearer {target.extra['token']}")
        proxied = f"/vault/proxy/{target.extra['connection']}/{UPSTREAM_RESOURCE}"
        return Request("GET", proxied, auth=f"Bearer {target.extra['api_key']}")
    raise ValueError(scenario)


def wrk(target: Target, req: Request, seconds: float, workdir: Path, pool: list[str] | None = None) -> dict[str, Any]:
    out = workdir / "wrk.json"
    out.unlink(missing_ok=True)
    env = {
        **os.environ,
        "BENCH_METHOD": req.method,
        "BENCH_PATH": req.path,
        "BENCH_BODY": req.body,
        "BENCH_AUTH": req.auth,
        "BENCH_OUT": str(out),
        "BENCH_POOL": "",
    }
    if pool is not None:
        pool_file = workdir / "pool.txt"
        pool_file.write_text("\n".join(pool) + "\n")
        env["BENCH_POOL"] = str(pool_file)
    cpu_before = cpu_seconds(target.pid)
    subprocess.run(
        [
            "taskset",
            "-c",
            LOAD_CORE,
            "wrk",
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{seconds:.0f}s",
            "--timeout",
            "10s",
            "-s",
            str(BENCH / "wrk" / "scenario.lua"),
            target.url,
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    cpu = cpu_seconds(target.pid) - cpu_before
    result: dict[str, Any] = json.loads(out.read_text())
    result["cpu_s"] = cpu
    return result


def measure(target: Target, scenario: str, args: argparse.Namespace, workdir: Path, hint: float) -> dict[str, Any]:
    """Warm up, then one measured run; a pool scenario gets fresh pools sized from ``hint`` (requests/s)."""
    token = target.access_token() if scenario == "b_introspection" else None
    req = request_for(target, scenario, token)
    warm_pool = pool = None
    if req.pool:
        warm_n = max(500, int(hint * args.warmup * POOL_HEADROOM))
        n = max(2000, int(hint * args.duration * POOL_HEADROOM))
        minted = target.mint(req.pool, warm_n + n)
        warm_pool, pool = minted[:warm_n], minted[warm_n:]
    wrk(target, req, args.warmup, workdir, warm_pool)
    upstream = target.extra.get("upstream", target.url) if scenario == VAULT_PROXY else None
    if upstream is not None:
        upstream_stats(upstream)
    raw = wrk(target, req, args.duration, workdir, pool)
    requests = raw["requests"]
    seconds = raw["duration_us"] / 1e6
    ok = sum(n for code, n in raw["statuses"].items() if code.startswith("2"))
    exhausted = pool is not None and requests >= len(pool)
    extra = {"upstream_saw": upstream_stats(upstream)} if upstream is not None else {}
    return {
        "target": target.name,
        "label": target.label,
        "log_level": target.log_level,
        "backend": target.backend,
        "workers": target.workers,
        "scenario": scenario,
        "rps": round(requests / seconds, 1),
        "p50_ms": round(raw["latency_us"]["p50"] / 1000, 2),
        "p99_ms": round(raw["latency_us"]["p99"] / 1000, 2),
        "cpu_s_per_1k": round(raw["cpu_s"] / max(1, requests) * 1000, 3),
        "requests": requests,
        "ok": ok,
        "statuses": raw["statuses"],
        "socket_errors": {k: v for k, v in raw["errors"].items() if k != "status" and v},
        "pool_exhausted": exhausted,
        **extra,
    }


def measure_flow(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    cpu_before = cpu_seconds(target.pid)
    done = subprocess.run(
        [
            "taskset",
            "-c",
            LOAD_CORE,
            sys.executable,
            str(BENCH / "flow.py"),
            target.url,
            SECRET,
            PASSWORD,
            "--duration",
            str(args.duration),
            "--concurrency",
            "4",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    cpu = cpu_seconds(target.pid) - cpu_before
    raw = json.loads(done.stdout)
    flows = raw["requests"]
    return {
        "target": target.name,
        "label": target.label,
        "log_level": target.log_level,
        "backend": target.backend,
        "workers": target.workers,
        "scenario": "f_flow",
        "rps": round(flows / (raw["duration_us"] / 1e6), 2),
        "p50_ms": round(raw["latency_us"]["p50"] / 1000, 2),
        "p99_ms": round(raw["latency_us"]["p99"] / 1000, 2),
        "cpu_s_per_1k": round(cpu / max(1, flows) * 1000, 3),
        "requests": flows,
        "ok": flows,
        "statuses": {},
        "socket_errors": {},
        "failures": raw["errors"]["status"],
        "first_failure": raw["first_failure"],
        "pool_exhausted": False,
    }


# --- growth (part 3) ---------------------------------------------------------------------------------------------


def growth(target: FrontdeskTarget, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Resident memory over 100,000 issued tokens; refresh and introspection before and after 1M stored rows."""
    out: dict[str, Any] = {"backend": target.backend}
    worker = target.worker_pids()[0]
    req = request_for(target, "a_client_credentials", None)
    issued, samples = 0, [(0, round(rss_mib(worker), 1))]
    while issued < args.growth_tokens:
        issued += wrk(target, req, 3, workdir)["statuses"].get("200", 0)
        samples.append((issued, round(rss_mib(worker), 1)))
    out["rss_mib_by_issued_tokens"] = samples
    log(f"  rss {samples[1][1]} MiB after {samples[1][0]} tokens, {samples[-1][1]} MiB after {samples[-1][0]}")
    empty = {
        s: measure(target, s, args, workdir, hint=args.hints.get(s, 3000)) for s in ("c_refresh", "b_introspection")
    }
    log(f"  filling the store with {args.filler:,} refresh tokens and grants")
    started = time.monotonic()
    target.mint("filler", args.filler)
    out["filler_seconds"] = round(time.monotonic() - started, 1)
    full = {
        s: measure(target, s, args, workdir, hint=args.hints.get(s, 3000)) for s in ("c_refresh", "b_introspection")
    }
    log(f"  purge: {args.expired:,} expired refresh tokens and grants, then `frontdesk purge` as the server runs it")
    target.mint("filler", args.expired, expired=True)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "frontdesk", "purge", "--json"], env=target.env(), capture_output=True, text=True
    )
    out["purge"] = {
        "expired_rows_per_table": args.expired,
        "seconds": round(time.monotonic() - started, 1),
        "deleted": json.loads(done.stdout) if done.returncode == 0 else done.stderr[-500:],
    }
    log(f"  purge: {out['purge']}")
    out["throughput"] = {
        s: {
            "empty_rps": empty[s]["rps"],
            "full_rps": full[s]["rps"],
            "ratio": round(full[s]["rps"] / empty[s]["rps"], 3),
            "empty_cpu_s_per_1k": empty[s]["cpu_s_per_1k"],
            "full_cpu_s_per_1k": full[s]["cpu_s_per_1k"],
        }
        for s in empty
    }
    log(f"  1M rows: {out['throughput']}")
    return out


# --- report ------------------------------------------------------------------------------------------------------


def machine(python: str | None = None) -> dict[str, Any]:
    """The machine, and the interpreter that serves frontdesk (``python``, else this one): its version and where it
    lives, since how CPython was built (profile-guided, link-time optimised, or neither) moves frontdesk's numbers
    by a fifth (BENCHMARKS.md)."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": subprocess.run(
            [python or sys.executable, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip(),
        "python_executable": str(Path(python or sys.executable).resolve()),
        "node": node,
        "load_average_at_start": os.getloadavg(),
    }


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    peers = {(r["target"], r["scenario"]): r for r in results if r["target"] != "frontdesk"}
    for r in results:
        if r["target"] != "frontdesk" or r["workers"] != 1:
            continue
        for peer in ("node", "authlib", "authlib-flask"):
            p = peers.get((peer, r["scenario"]))
            if p is None:
                continue
            ratio = round(r["rps"] / p["rps"], 2)
            shipped = r.get("log_level", "").endswith("(default)")
            goal = goal_for(peer, r["scenario"], r["backend"], shipped)
            out.append(
                {
                    "scenario": r["scenario"],
                    "backend": r["backend"],
                    "log_level": r.get("log_level", ""),
                    "peer": peer,
                    "frontdesk_rps": r["rps"],
                    "peer_rps": p["rps"],
                    "ratio": ratio,
                    # Peer CPU per request ÷ frontdesk CPU per request: the same comparison, less sensitive to
                    # other load on the machine than requests per second.
                    "cpu_ratio": round(p["cpu_s_per_1k"] / r["cpu_s_per_1k"], 2) if r["cpu_s_per_1k"] else None,
                    "goal": goal,
                    "met": goal is None or ratio >= goal,
                    "shipped": shipped,
                }
            )
    return out


def vault_proxy(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Scenario (g): what the proxy adds to the same GET sent to the upstream directly, for each frontdesk."""
    direct = next((r for r in results if r["target"] == "upstream" and r["scenario"] == VAULT_PROXY), None)
    if direct is None:
        return []
    return [
        {
            "backend": r["backend"],
            "workers": r["workers"],
            "proxied_rps": r["rps"],
            "direct_rps": direct["rps"],
            "proxied_p50_ms": r["p50_ms"],
            "direct_p50_ms": direct["p50_ms"],
            "proxied_p99_ms": r["p99_ms"],
            "direct_p99_ms": direct["p99_ms"],
            "added_p50_ms": round(r["p50_ms"] - direct["p50_ms"], 2),
            "added_p99_ms": round(r["p99_ms"] - direct["p99_ms"], 2),
            # frontdesk's own CPU for one proxied call (the upstream's work is not in it)
            "frontdesk_cpu_ms_per_request": r["cpu_s_per_1k"],
            "upstream_cpu_ms_per_request": direct["cpu_s_per_1k"],
        }
        for r in results
        if r["target"] == "frontdesk" and r["scenario"] == VAULT_PROXY
    ]


@contextlib.contextmanager
def neighbour() -> Any:
    """A CPU-bound process on the load core for as long as ``with`` runs (see ``NEIGHBOUR``)."""
    process = subprocess.Popen(
        ["taskset", "-c", LOAD_CORE, "nice", "-n", "19", sys.executable, "-c", NEIGHBOUR],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        yield
    finally:
        process.kill()
        process.wait()


def scaling(scenario: str, targets: list[Target], args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    """Two workers against one, for each store, on ``scenario`` (one of ``SCALING_SCENARIOS``, measured right after
    its comparison so that the stores are as the comparison left them): by requests per second, and by CPU per
    request (2 × one worker's ÷ two workers'), which the issue's goal names where the load generator has no core of
    its own. With them, in the same rounds, the one worker with the load core kept busy by a neighbour that shares
    nothing with it: 2 × its CPU per request alone ÷ beside the neighbour is the ratio two workers would show if
    the second cost the first only what any busy core next to it costs (on a machine whose cores share caches,
    memory and the host's scheduling, two busy cores each run slower than one). Each is the median of ``--rounds``
    interleaved runs: one run of each moves by ±10 % on a shared machine."""
    out = []
    for backend in sorted({t.backend for t in targets if isinstance(t, FrontdeskTarget)}):
        one = next((t for t in targets if t.label == f"frontdesk {backend} 1w"), None)
        two = next((t for t in targets if t.label == f"frontdesk {backend} 2w"), None)
        if one is None or two is None or scenario not in one.scenarios:
            continue
        hint = args.hints.get(f"{one.label}:a", 3000.0)
        runs: dict[str, list[dict[str, Any]]] = {"one": [], "two": [], "busy": []}
        for _ in range(args.rounds):
            runs["one"].append(measure(one, scenario, args, workdir, hint))
            runs["two"].append(measure(two, scenario, args, workdir, 2 * hint))
            with neighbour():
                runs["busy"].append(measure(one, scenario, args, workdir, hint))
        rps = {k: _median([r["rps"] for r in v]) for k, v in runs.items()}
        cpu = {k: _median([r["cpu_s_per_1k"] for r in v]) for k, v in runs.items()}
        log(
            f"{scenario:22} scaling on {backend}: {rps['one']:,.0f} → {rps['two']:,.0f}/s, cpu {cpu['one']:.3f} → "
            f"{cpu['two']:.3f} s/1k, one worker beside a busy load core {cpu['busy']:.3f} s/1k"
        )
        by_cpu = round(2 * cpu["one"] / cpu["two"], 2)
        out.append(
            {
                "scenario": scenario,
                "backend": backend,
                "rounds": args.rounds,
                "one_rps": rps["one"],
                "two_rps": rps["two"],
                "by_rps": round(rps["two"] / rps["one"], 2),
                "one_cpu_s_per_1k": cpu["one"],
                "two_cpu_s_per_1k": cpu["two"],
                "busy_cpu_s_per_1k": cpu["busy"],
                "by_cpu": by_cpu,
                "busy_core_by_cpu": round(2 * cpu["one"] / cpu["busy"], 2),
                "goal": SCALING_GOAL,
                "met": by_cpu >= SCALING_GOAL,
            }
        )
    return out


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else round((ordered[middle - 1] + ordered[middle]) / 2, 3)


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "?"


def table(run: dict[str, Any]) -> str:
    lines = [
        f"Run {run['date']}, commit `{run['commit'][:12]}`{' (uncommitted changes)' if run['dirty'] else ''}, "
        f"{run['machine']['cpu']}, {run['machine']['cores']} cores, Python {run['machine']['python']}"
        f"{' (' + run['machine']['python_executable'] + ')' if run['machine'].get('python_executable') else ''}, "
        f"Node {run['machine']['node']}; {run['settings']['duration']} s per measurement after "
        f"{run['settings']['warmup']} s warm-up, best of {run['settings']['rounds']} interleaved rounds (one worker), "
        f"{CONNECTIONS} connections, frontdesk log level {run['settings']['log_level']}; "
        f"load average at start {run['machine']['load_average_at_start'][0]:.1f}. "
        "Column *log*: frontdesk's log level; `INFO (default)` is frontdesk as shipped (no setting but its home and "
        "database: access line and audit event logged per request), the other rows the comparison at the level "
        "above.",
        "",
        "| scenario | server | store | workers | log | req/s (best) | rounds | p50 ms | p99 ms | CPU s / 1k req "
        "| non-2xx |",
        "|---|---|---|---|---|---:|---|---:|---:|---:|---:|",
    ]
    level = run["settings"]["log_level"]  # results from before the shipped rows name no level of their own
    for r in run["results"]:
        bad = r["requests"] - r["ok"] if r["scenario"] != "f_flow" else r.get("failures", 0)
        flag = " (pool ran dry)" if r["pool_exhausted"] else ""
        digits = 1 if r["scenario"] == "f_flow" else 0
        lines.append(
            f"| {r['scenario']} | {r['target']} | {r['backend']} | {r['workers']} | "
            f"{r.get('log_level') or (level if r['target'] == 'frontdesk' else '')} | "
            f"{r['rps']:,.{digits}f}{flag} | "
            f"{' / '.join(f'{x:,.{digits}f}' for x in r.get('rounds', []))} | "
            f"{r['p50_ms']} | {r['p99_ms']} | {r['cpu_s_per_1k']} | {bad} |"
        )
    lines += [
        "",
        "| scenario | store | frontdesk log | frontdesk ÷ peer (req/s) | ratio | CPU-per-request ratio | goal | |",
        "|---|---|---|---|---:|---:|---:|---|",
    ]
    for q in run["ratios"]:
        goal = f"≥ {q['goal']}" if q["goal"] else ""
        mark = "" if q["goal"] is None else ("met" if q["met"] else "**not met**")
        lines.append(
            f"| {q['scenario']} | {q['backend']} | {q.get('log_level') or level} | "
            f"÷ {q['peer']} ({q['frontdesk_rps']:,.0f} ÷ {q['peer_rps']:,.0f}) | "
            f"{q['ratio']} | {q['cpu_ratio']} | {goal} | {mark} |"
        )
    if run.get("scaling"):
        lines += [
            "",
            "| two workers ÷ one | store | req/s, 1 → 2 workers | by req/s | CPU s / 1k req, 1 → 2 workers | by CPU "
            "| one worker beside a busy load core: CPU s / 1k | 2 × alone ÷ beside it | goal (by CPU) | |",
            "|---|---|---|---:|---|---:|---:|---:|---:|---|",
        ]
        for c in run["scaling"]:
            lines.append(
                f"| {c['scenario']} | {c['backend']} | {c['one_rps']:,.0f} → {c['two_rps']:,.0f} | {c['by_rps']} | "
                f"{c['one_cpu_s_per_1k']} → {c['two_cpu_s_per_1k']} | {c['by_cpu']} | {c['busy_cpu_s_per_1k']} | "
                f"{c['busy_core_by_cpu']} | ≥ {c['goal']} | {'met' if c['met'] else '**not met**'} |"
            )
    if run.get("vault_proxy"):
        lines += [
            "",
            "| g_vault_proxy | workers | proxied p50 / p99 ms | direct p50 / p99 ms | added p50 ms | added p99 ms | "
            "frontdesk CPU ms per proxied request |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for v in run["vault_proxy"]:
            lines.append(
                f"| {v['backend']} | {v['workers']} | {v['proxied_p50_ms']} / {v['proxied_p99_ms']} | "
                f"{v['direct_p50_ms']} / {v['direct_p99_ms']} | {v['added_p50_ms']} | {v['added_p99_ms']} | "
                f"{v['frontdesk_cpu_ms_per_request']} |"
            )
    for g in run.get("growth", []):
        rss = g["rss_mib_by_issued_tokens"]
        purge = g.get("purge", {})
        deleted = purge.get("deleted") if isinstance(purge.get("deleted"), dict) else {}
        lines += [
            "",
            f"Growth on {g['backend']}: worker RSS {rss[1][1]} MiB after {rss[1][0]:,} client_credentials tokens, "
            f"{rss[-1][1]} MiB after {rss[-1][0]:,}. With {run['settings']['filler']:,} more refresh tokens and "
            "grants in the store: "
            + "; ".join(
                f"{s} {v['full_rps']:,.0f} vs {v['empty_rps']:,.0f} req/s ({v['ratio']}×), CPU "
                f"{v['full_cpu_s_per_1k']} vs {v['empty_cpu_s_per_1k']} s/1k"
                for s, v in g["throughput"].items()
            )
            + f". Purge of {purge.get('expired_rows_per_table', 0):,} expired refresh tokens and grants: "
            f"{_n(deleted.get('refresh_tokens'))} and {_n(deleted.get('grants'))} rows deleted in "
            f"{purge.get('seconds', '?')} s.",
        ]
    return "\n".join(lines)


def splice(markdown: str) -> None:
    doc = ROOT / "BENCHMARKS.md"
    text = doc.read_text()
    start, end = "<!-- bench:table:start -->", "<!-- bench:table:end -->"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        doc.write_text(head + start + "\n" + markdown + "\n" + end + rest.split(end, 1)[1])


# --- main --------------------------------------------------------------------------------------------------------


def preflight() -> None:
    missing = [tool for tool in ("wrk", "taskset", "node", "npm") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"bench needs {', '.join(missing)}: apt-get install wrk util-linux nodejs npm")
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("bench needs two cores: one for the server, one for the load generator")


def postgres_reachable(admin: str) -> bool:
    try:
        import psycopg

        with psycopg.connect(postgres_url(admin, "postgres"), connect_timeout=3):
            return True
    except Exception:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description="frontdesk benchmarks (see BENCHMARKS.md)")
    parser.add_argument("--quick", action="store_true", help="SQLite, one worker, 3 s runs, no growth phase")
    parser.add_argument("--duration", type=float, help="seconds per measurement (default 5, quick 3)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up (default 1)")
    parser.add_argument("--backends", default=None, help="sqlite,postgresql")
    parser.add_argument("--workers", default=None, help="1,2")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--growth", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--growth-tokens", type=int, default=100_000)
    parser.add_argument("--filler", type=int, default=1_000_000)
    parser.add_argument("--expired", type=int, default=150_000, help="expired rows per table for the purge check")
    parser.add_argument(
        "--rounds", type=int, help="interleaved rounds of the one-worker comparison (default 3, quick 2)"
    )
    parser.add_argument(
        "--log-level",
        default="WARNING",
        help="frontdesk's log level (default WARNING: no line per request, as the peers)",
    )
    parser.add_argument(
        "--shipped",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run one worker of frontdesk as shipped (default settings: INFO) per store (default: yes)",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL server where databases fdbench_1 and fdbench_2 may be created and dropped",
    )
    parser.add_argument(
        "--python",
        help="the interpreter that serves frontdesk, with its dependencies installed (default: this one, the "
        "checkout's .venv); the Authlib peers keep theirs",
    )
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    parser.add_argument("--render", type=Path, help="only re-render a results JSON into BENCHMARKS.md, no run")
    args = parser.parse_args()
    if args.render:
        splice(table(json.loads(args.render.read_text())))
        return
    args.duration = args.duration or (3.0 if args.quick else 5.0)
    args.warmup = args.warmup or 1.0
    args.rounds = args.rounds or (2 if args.quick else 3)
    backends = (args.backends or ("sqlite" if args.quick else "sqlite,postgresql")).split(",")
    workers = [int(w) for w in (args.workers or ("1" if args.quick else "1,2")).split(",")]
    scenarios = [s for s in args.scenarios.split(",") if s]
    do_growth = args.growth if args.growth is not None else not args.quick
    preflight()
    if "postgresql" in backends and not postgres_reachable(args.postgres):
        log(f"PostgreSQL at {args.postgres} is not reachable: SQLite only")
        backends = [b for b in backends if b != "postgresql"]

    began = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="fdbench-"))
    targets: list[Target] = []
    results: list[dict[str, Any]] = []
    run: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": git("rev-parse", "HEAD"),
        # The server's code differs from the commit: tracked changes under src/ (bench/ itself does not count).
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no", "--", "src", "pyproject.toml")),
        "machine": machine(args.python),
        "settings": {
            "duration": args.duration,
            "warmup": args.warmup,
            "connections": CONNECTIONS,
            "log_level": args.log_level,
            "shipped": args.shipped and 1 in workers,
            "rounds": args.rounds,
            "filler": args.filler,
            "pinning": f"servers on core {SERVER_CORE} (2 workers: {SERVER_CORE},{LOAD_CORE}), wrk on core {LOAD_CORE}",
        },
    }
    try:
        if not args.no_peers:
            log("starting node-oidc-provider and the Authlib servers")
            targets += [start_node(workdir), start_authlib(workdir)]
            flask = start_authlib_flask(workdir)
            if flask is not None:
                targets.append(flask)
        upstream = None
        if VAULT_PROXY in scenarios:
            log("starting the vault proxy's upstream")
            upstream = start_upstream(workdir)
            targets.append(upstream)
        for w in workers:
            for b in backends:
                log(f"starting frontdesk on {b} with {w} worker(s)")
                targets.append(start_frontdesk(workdir, b, w, args, upstream, python=args.python))
                if w == 1 and args.shipped:
                    log(f"starting frontdesk as shipped (default settings, INFO) on {b}")
                    targets.append(start_frontdesk(workdir, b, w, args, shipped=True, python=args.python))
        hints: dict[str, float] = {}
        args.hints = hints
        for scenario in scenarios:
            # The comparison (peers and frontdesk with one worker) runs in interleaved rounds, best run kept:
            # other load on the machine only ever slows a run down. Two workers (the scaling) run once.
            runs: dict[str, list[dict[str, Any]]] = {}
            for round_ in range(args.rounds):
                for target in targets:
                    if scenario not in target.scenarios or (round_ > 0 and target.workers > 1):
                        continue
                    if scenario == "f_flow":
                        if round_ > 0:
                            continue
                        r = measure_flow(target, args)
                    else:
                        hint = hints.get(f"{target.label}:a", 3000.0)
                        r = measure(target, scenario, args, workdir, hint)
                    runs.setdefault(target.label, []).append(r)
                    log(
                        f"{scenario:22} {target.label:34} {r['rps']:>9,.1f}/s  p50 {r['p50_ms']:6} ms"
                        f"  p99 {r['p99_ms']:7} ms  cpu {r['cpu_s_per_1k']:.3f} s/1k  ok {r['ok']}/{r['requests']}"
                    )
            for label, measured in runs.items():
                best = dict(max(measured, key=lambda r: r["rps"]))
                cpu = sorted(r["cpu_s_per_1k"] for r in measured)
                best["cpu_s_per_1k"] = cpu[len(cpu) // 2]  # the median: CPU per request barely depends on load
                best["rounds"] = [r["rps"] for r in measured]
                results.append(best)
                if scenario == "a_client_credentials":
                    hints[f"{label}:a"] = best["rps"]
            if scenario in SCALING_SCENARIOS and 1 in workers and 2 in workers:
                log(f"{scenario}: two workers against one, and one beside a busy load core")
                run.setdefault("scaling", []).extend(scaling(scenario, targets, args, workdir))
        run["results"] = results
        run["ratios"] = ratios(results)
        run["vault_proxy"] = vault_proxy(results)

        if do_growth:
            run["growth"] = []
            for target in targets:
                if isinstance(target, FrontdeskTarget) and target.workers == 1 and not target.label.endswith("shipped"):
                    log(f"growth on {target.label}")
                    args.hints = {
                        s: next(r["rps"] for r in results if r["label"] == target.label and r["scenario"] == s)
                        for s in ("c_refresh", "b_introspection")
                        if any(r["label"] == target.label and r["scenario"] == s for r in results)
                    }
                    try:
                        run["growth"].append(growth(target, args, workdir))
                    except Exception as exc:  # the comparison above stands; say what failed
                        log(f"growth on {target.label} failed: {exc}")
                        run.setdefault("errors", []).append(f"growth on {target.label}: {exc}")
    finally:
        for target in targets:
            if target.process is not None:
                stop(target.process)
        if "postgresql" in backends:
            for w in workers:
                for shipped in (False, True):
                    with contextlib.suppress(Exception):
                        drop_postgres(args.postgres, postgres_database(w, shipped))
    run["seconds"] = round(time.monotonic() - began)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path = args.out / f"{stamp}-{run['commit'][:8]}{'-quick' if args.quick else ''}.json"
    path.write_text(json.dumps(run, indent=2) + "\n")
    markdown = table(run)
    print(markdown)
    if not args.quick and args.scenarios == ",".join(SCENARIOS):
        splice(markdown)
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path  # --out may lie anywhere
    log(f"done in {run['seconds']} s; results in {shown}; server logs in {workdir}")


if __name__ == "__main__":
    main()
