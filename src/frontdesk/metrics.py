"""Prometheus metrics (``[metrics]``), collected only when something serves them.

With ``[metrics]`` off (the default) nothing here runs and ``prometheus_client`` is never imported: the composition
root then builds the plain ``Served`` app, the audit trail has no observer, and no thread samples anything. On, it
measures three things, each from a seam that already exists rather than from new calls in the services:

- every request, around the app (``RequestMeter``): count and latency by method, route template (``/interaction/
  {ix}``, never the raw path, so a label cannot grow with ids) and status; a 429 is a rate-limit refusal;
- every audit event as it is recorded (``storage.audit.observer``): tokens issued by grant type, replays detected,
  vault refreshes and proxied calls by integration;
- once a second, from a thread of its own: the database pool's connections in use and idle, and the audit queue.

Several workers (``frontdesk serve --workers N``) keep their numbers in files, prometheus_client's multiprocess mode:
the directory is ``FRONTDESK_HOME/metrics``, emptied at start (``prepare_workers``), and whoever scrapes sums the
files of every worker, dead or alive, except the gauges of workers that have died (``_Workers``).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Engine
from starlette.routing import Mount
from starlette.types import Message, Receive, Scope, Send

from .config import ConfigError, Metrics
from .storage import audit

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector

    from .core import Frontdesk

__all__ = [
    "MULTIPROCESS_ENV",
    "Meters",
    "RequestMeter",
    "exposition",
    "meters",
    "prepare_workers",
    "registry",
    "route_of",
    "sample",
    "serve_listener",
    "watch",
]

log = logging.getLogger("frontdesk.metrics")
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
SAMPLE_EVERY = 1.0  # seconds between two samples of the pool and the audit queue
# From a fast token response (a millisecond) to a slow provider behind the vault proxy.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Any other method a client sends is "other": a label must not take whatever a client writes.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # the route label of a request no route took (a 404)


@dataclass(frozen=True, slots=True)
class Meters:
    requests: Counter
    latency: Histogram
    refusals: Counter
    tokens: Counter
    replays: Counter
    vault_refreshes: Counter
    proxy_calls: Counter
    proxy_errors: Counter
    pool: Gauge
    audit_queue: Gauge


@functools.cache
def meters() -> Meters:
    """The process's meters, made once (prometheus_client refuses a name registered twice)."""
    from prometheus_client import Counter, Gauge, Histogram

    route = ("method", "route", "status")
    return Meters(
        requests=Counter("frontdesk_http_requests", "HTTP requests answered", route),
        latency=Histogram(
            "frontdesk_http_request_duration_seconds", "Time to answer a request", route, buckets=LATENCY_BUCKETS
        ),
        refusals=Counter("frontdesk_rate_limit_refusals", "Requests refused for a rate limit (429)", ("route",)),
        tokens=Counter("frontdesk_tokens_issued", "Tokens issued, by grant type", ("grant_type",)),
        replays=Counter(
            "frontdesk_replays_detected", "Codes and refresh tokens used twice (their grant was revoked)", ("kind",)
        ),
        vault_refreshes=Counter(
            "frontdesk_vault_refreshes", "Refreshes of vault connections", ("integration", "outcome")
        ),
        proxy_calls=Counter("frontdesk_vault_proxy_calls", "Calls through the vault proxy", ("integration",)),
        proxy_errors=Counter(
            "frontdesk_vault_proxy_errors", "Proxied calls the provider answered with an error", ("integration",)
        ),
        # livesum: several workers add up, and a dead worker's last value leaves the sum.
        pool=Gauge(
            "frontdesk_db_pool_connections", "Database connections of the pool", ("state",), multiprocess_mode="livesum"
        ),
        audit_queue=Gauge(
            "frontdesk_audit_queue_depth", "Audit events waiting to be written", multiprocess_mode="livesum"
        ),
    )


# --- requests ---------------------------------------------------------------------------------------------------


def route_of(scope: Scope, direct_paths: Collection[str]) -> str:
    """The route template that answered: the router leaves the route it chose in the scope (a 405 too); the hot
    routes asgi.py calls directly have fixed paths."""
    route = scope.get("route")
    if route is not None:
        path = str(getattr(route, "path", UNMATCHED))
        return path + "/{path}" if isinstance(route, Mount) else path
    path = scope.get("path", "")
    return path if path in direct_paths else UNMATCHED


class RequestMeter:
    """Count and time each HTTP request through ``call`` (the served app's dispatch)."""

    __slots__ = ("children", "direct_paths", "meters")

    def __init__(self, direct: Iterable[tuple[str, str]]) -> None:
        self.direct_paths = frozenset(path for _, path in direct)
        self.meters = meters()
        # (method, route, status) -> its counter and histogram: ``labels()`` validates and locks on every call.
        # Bounded: eight methods, the route table, the statuses frontdesk answers.
        self.children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    async def __call__(
        self, call: Callable[[Scope, Receive, Send], Awaitable[None]], scope: Scope, receive: Receive, send: Send
    ) -> None:
        if scope["type"] != "http":
            await call(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers for an app that raised before it answered

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await call(scope, receive, send_status)
        finally:
            self.observe(scope, status, time.perf_counter() - started)

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope.get("method", "")
        route = route_of(scope, self.direct_paths)
        labels = (method if method in METHODS else "other", route, str(status))
        children = self.children.get(labels)
        if children is None:
            m = self.meters
            children = self.children[labels] = (m.requests.labels(*labels), m.latency.labels(*labels))
        children[0].inc()
        children[1].observe(seconds)
        if status == 429:
            self.meters.refusals.labels(route).inc()


# --- audit events -------------------------------------------------------------------------------------------------

REPLAYS = {"code.replayed": "authorization_code", "refresh.reused": "refresh_token"}  # oauth/grants.py, RFC 9700
VAULT_REFRESHES = ("vault.connection.refreshed", "vault.connection.refresh", "vault.connection.needs_reauth")


def _observe(event: str, outcome: str, detail: dict[str, Any]) -> None:
    """Count an audit event (storage/audit.py calls this for every event while metrics are on)."""
    m = meters()
    if event == "token.issued" or event == "token.exchanged":
        m.tokens.labels(str(detail.get("grant_type", "unknown"))).inc()
    elif event == "token.refreshed":
        m.tokens.labels("refresh_token").inc()
    elif event in REPLAYS:
        m.replays.labels(REPLAYS[event]).inc()
    elif event == "vault.proxy":
        integration = str(detail.get("integration", "unknown"))
        m.proxy_calls.labels(integration).inc()
        if outcome != "success":
            m.proxy_errors.labels(integration).inc()
    elif event in VAULT_REFRESHES:
        m.vault_refreshes.labels(str(detail.get("integration", "unknown")), outcome).inc()


# --- samples ------------------------------------------------------------------------------------------------------


def sample(engine: Engine) -> None:
    """Set the gauges from the engine's pool and audit writer as they are now."""
    m = meters()
    pool: Any = engine.pool
    if hasattr(pool, "checkedout"):  # a QueuePool (both databases); other pools keep no count
        m.pool.labels("in_use").set(pool.checkedout())
        m.pool.labels("idle").set(pool.checkedin())
    m.audit_queue.set(audit.queued(engine))


_sampled: list[weakref.ref[Engine]] = []  # the engine the sampler reads: the one last watched in this process
_sampler_lock = threading.Lock()


def _sample_forever() -> None:
    while True:
        time.sleep(SAMPLE_EVERY)
        engine = _sampled[0]() if _sampled else None
        if engine is not None:
            try:
                sample(engine)
            except Exception:  # a pool being disposed: the next round reads it again
                log.debug("metrics sample failed", exc_info=True)
        del engine  # no reference kept between rounds


def watch(fd: Frontdesk) -> None:
    """Start measuring this process: audit events counted as they are recorded, the pool and the audit queue
    sampled every ``SAMPLE_EVERY`` seconds (by one thread per process, of the frontdesk watched last)."""
    meters()
    audit.observer = _observe
    with _sampler_lock:
        first = not _sampled
        _sampled[:] = [weakref.ref(fd.engine)]
        if first:
            threading.Thread(target=_sample_forever, name="frontdesk-metrics", daemon=True).start()
    sample(fd.engine)


# --- exposition ---------------------------------------------------------------------------------------------------


def prepare_workers(home: Path) -> Path:
    """Before ``--workers N`` start (and before prometheus_client is imported): their shared directory under
    ``home``, emptied, so that a previous run's counts do not add to this one's; workers inherit the variable."""
    path = (home / "metrics").resolve()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    for old in path.glob("*.db"):
        old.unlink()
    os.environ[MULTIPROCESS_ENV] = str(path)
    return path


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process by now: not one of ours, but not ours to judge either
        return True
    try:  # a worker that died and was not yet reaped by uvicorn's supervisor still answers the signal
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc here
        return True


class _Workers:
    """Every worker's files, summed; the live gauges of workers that died are dropped first (their counters stay:
    what they counted happened)."""

    def __init__(self, path: str) -> None:
        from prometheus_client import multiprocess

        self.path = path
        self.multiprocess: Any = multiprocess  # untyped
        self.files: Any = self.multiprocess.MultiProcessCollector(None, path)

    def collect(self) -> Iterable[Metric]:
        for file in Path(self.path).glob("gauge_live*_*.db"):
            pid = file.stem.rpartition("_")[2]
            if pid.isdigit() and not _alive(int(pid)):
                self.multiprocess.mark_process_dead(int(pid), self.path)
        collected: Iterable[Metric] = self.files.collect()
        return collected


@functools.cache
def registry() -> CollectorRegistry:
    """What a scrape reads: every worker's files in multiprocess mode, else this process's own registry."""
    from prometheus_client import REGISTRY, CollectorRegistry

    path = os.environ.get(MULTIPROCESS_ENV)
    if not path:
        return REGISTRY
    if not os.path.isdir(path):
        raise ConfigError(f"{MULTIPROCESS_ENV} {path} is not a directory")
    merged = CollectorRegistry(auto_describe=False)
    merged.register(cast("Collector", _Workers(path)))
    return merged


def exposition() -> tuple[bytes, str]:
    """A scrape's body and content type (Prometheus text format)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(registry()), CONTENT_TYPE_LATEST


def serve_listener(settings: Metrics) -> None:
    """Serve ``/metrics`` on ``[metrics] listen``, from a thread of this process (the parent of the workers, or the
    one worker). A port that cannot be bound stops the start."""
    from prometheus_client import start_http_server

    host, _, port = settings.listen.rpartition(":")
    try:
        start_http_server(int(port), host.strip("[]"), registry=registry())
    except OSError as exc:
        raise ConfigError(f"metrics.listen {settings.listen}: {exc.strerror or exc}") from None
