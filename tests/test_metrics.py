"""Prometheus metrics (metrics.py): off the public listener unless asked, measured only when on, by route template
and status, tokens by grant type, replays, rate-limit refusals, vault calls by integration, the pool and the audit
queue; and with ``--workers 2``, every worker's counts summed on the listener of their own."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import basic, code_for
from frontdesk import metrics
from frontdesk.asgi import MeasuredServed, Served, served
from frontdesk.config import Metrics, RateLimits
from frontdesk.core import Frontdesk
from frontdesk.storage import audit


def value(text: str, name: str, **labels: str) -> float:
    """The sample ``name`` with exactly these labels in a scrape, 0 when absent (a counter not yet counted)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def grew(before: str, after: str, name: str, **labels: str) -> float:
    """How much a sample grew between two scrapes."""
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.fixture
def fd(fd: Frontdesk) -> Iterator[Frontdesk]:
    """The conftest's frontdesk with ``[metrics] public = true``: the ``http`` fixture serves /metrics."""
    fd.settings = replace(fd.settings, metrics=Metrics(public=True))
    yield fd
    audit.observer = None  # a test process measures only while a test asks for it


@pytest.fixture
def rate_limits() -> RateLimits:
    return RateLimits(client_auth_per_client_and_ip=(2, 60))


async def scrape(http: httpx.AsyncClient) -> str:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_requests_are_counted_by_route_template_and_status(http):
    """A path with an id is counted under its route's template, never the raw path."""
    before = await scrape(http)
    assert (await http.get("/interaction/not-a-real-one")).status_code in (400, 404)
    assert (await http.get("/jwks")).status_code == 200
    assert (await http.get("/no/such/page")).status_code == 404
    after = await scrape(http)
    for route, status in (("/jwks", "200"), ("unmatched", "404")):
        labels = {"method": "GET", "route": route, "status": status}
        assert grew(before, after, "frontdesk_http_requests_total", **labels) == 1
        assert value(after, "frontdesk_http_request_duration_seconds_count", **labels) >= 1
    assert "not-a-real-one" not in after
    assert "/interaction/{ix}" in after


async def test_tokens_are_counted_by_grant_type(http, confidential):
    before = await scrape(http)
    response = await http.post("/token", auth=basic(confidential), data={"grant_type": "client_credentials"})
    assert response.status_code == 200
    after = await scrape(http)
    grant = {"grant_type": "client_credentials"}
    assert grew(before, after, "frontdesk_tokens_issued_total", **grant) == 1


async def test_a_replayed_code_is_counted(http, browser, confidential):
    code, verifier = await code_for(browser, confidential)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": confidential.redirect_uri,
        "code_verifier": verifier,
    }
    assert (await http.post("/token", auth=basic(confidential), data=form)).status_code == 200
    before = await scrape(http)
    replayed = await http.post("/token", auth=basic(confidential), data=form)
    assert replayed.json()["error"] == "invalid_grant"
    after = await scrape(http)
    kind = {"kind": "authorization_code"}
    assert grew(before, after, "frontdesk_replays_detected_total", **kind) == 1


async def test_rate_limit_refusals_are_counted(http, confidential):
    before = await scrape(http)
    wrong = (confidential.client_id, "not-the-secret")
    statuses = [
        (await http.post("/token", auth=wrong, data={"grant_type": "client_credentials"})).status_code for _ in range(3)
    ]
    assert statuses == [401, 401, 429]
    after = await scrape(http)
    route = {"route": "/token"}
    assert grew(before, after, "frontdesk_rate_limit_refusals_total", **route) == 1


async def test_vault_refreshes_and_proxied_calls_are_counted_by_integration(http, fd):
    """Counted from the vault's audit events as they are recorded (vault/proxy.py, vault/refresh.py)."""
    before = await scrape(http)
    audit.record_soon(fd.engine, "vault.proxy", "success", integration="metrics-test", status=200)
    audit.record_soon(fd.engine, "vault.proxy", "failure", integration="metrics-test", status=502)
    audit.record_soon(fd.engine, "vault.connection.refreshed", "success", integration="metrics-test")
    audit.record_soon(fd.engine, "vault.connection.refresh", "failure", integration="metrics-test")
    after = await scrape(http)
    integration = "metrics-test"
    assert grew(before, after, "frontdesk_vault_proxy_calls_total", integration=integration) == 2
    assert grew(before, after, "frontdesk_vault_proxy_errors_total", integration=integration) == 1
    for outcome in ("success", "failure"):
        assert grew(before, after, "frontdesk_vault_refreshes_total", integration=integration, outcome=outcome) == 1


async def test_the_pool_and_the_audit_queue_are_sampled(http, fd):
    writer = audit.start_writer(fd.engine)
    try:
        audit.record_soon(fd.engine, "metrics.test", "success")
        metrics.sample(fd.engine)
        text = await scrape(http)
        assert value(text, "frontdesk_audit_queue_depth") == len(writer._queue)
        assert "frontdesk_db_pool_connections" in text
        assert value(text, "frontdesk_db_pool_connections", state="idle") >= 1  # the scrape's own request
    finally:
        audit.stop_writer(fd.engine)


async def test_with_metrics_off_nothing_is_measured(fd):
    """Off, the app is the plain one (the request path pays nothing) and audit events have no observer."""
    fd.settings = replace(fd.settings, metrics=Metrics())
    audit.observer = None
    off = served(fd)
    assert type(off) is Served
    assert audit.observer is None
    fd.settings = replace(fd.settings, metrics=Metrics(public=True))
    on = served(fd)
    assert isinstance(on, MeasuredServed)
    assert audit.observer is not None
    for app in (off, on):
        await app.app.state.vault_http.aclose()


async def test_the_public_listener_serves_no_metrics_by_default(fd):
    fd.settings = replace(fd.settings, metrics=Metrics(listen="127.0.0.1:9464"))
    app = served(fd)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="https://as.example") as client:
        assert (await client.get("/metrics")).status_code == 404
        assert (await client.get("/healthz")).status_code == 200
    await app.app.state.vault_http.aclose()


def test_a_listen_address_that_cannot_be_bound_stops_the_start():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(Exception, match=r"metrics\.listen"):
            metrics.serve_listener(Metrics(listen=f"127.0.0.1:{port}"))


# --- two workers, scraped on the listener of their own ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _until(condition: object, seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():  # type: ignore[operator]
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("timed out")


def _access_lines(log: Path) -> list[str]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line["msg"] for line in lines if line["logger"] == "uvicorn.access" and "/jwks" in line["msg"]]


@pytest.mark.subprocess
def test_two_workers_are_scraped_together_on_their_own_listener(database_url: str, tmp_path: Path):
    """``--workers 2`` with ``[metrics] listen``: one scrape sums both workers' requests; the public listener
    serves no /metrics; a worker that dies keeps its counts, and its gauges leave the sum."""
    port, metrics_port = _free_port(), _free_port()
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRONTDESK_", "PROMETHEUS_"))}
    env.update(
        {
            "FRONTDESK_HOME": str(home),
            "FRONTDESK_DATABASE_URL": database_url,
            "FRONTDESK_METRICS_LISTEN": f"127.0.0.1:{metrics_port}",
        }
    )
    stale = home / "metrics" / "counter_1.db"  # a previous run's file: emptied at start
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"\0" * 16)
    base, scrape_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics"
    with (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "frontdesk", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _until(lambda: httpx.get(f"{base}/healthz", timeout=2).status_code == 200)
        assert not stale.exists()
        counter_files = lambda: sorted((home / "metrics").glob("counter_*.db"))  # noqa: E731
        sent = 0

        def hit(n: int) -> None:
            for _ in range(n):  # a connection each: the two workers take turns accepting
                assert httpx.get(f"{base}/jwks", timeout=10).status_code == 200

        while len(counter_files()) < 2 and sent < 2000:
            threads = [threading.Thread(target=hit, args=(10,)) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            sent += 80
        assert len(counter_files()) == 2, "one worker took every request"
        scraped = httpx.get(scrape_url, timeout=10).text
        jwks = {"method": "GET", "route": "/jwks", "status": "200"}
        assert value(scraped, "frontdesk_http_requests_total", **jwks) == sent
        assert 'frontdesk_db_pool_connections{state="idle"}' in scraped  # the sum of both workers' samples
        assert len(list((home / "metrics").glob("gauge_livesum_*.db"))) == 2
        assert httpx.get(f"{base}/metrics", timeout=10).status_code == 404

        # One access line a request, in the workers too (uvicorn's own would be a second: server.py).
        _until(lambda: len(_access_lines(tmp_path / "serve.log")) >= sent, 30)
        time.sleep(0.3)  # a second line of each would have come with the first
        assert len(_access_lines(tmp_path / "serve.log")) == sent

        dead = int(counter_files()[0].stem.rpartition("_")[2])
        os.kill(dead, signal.SIGKILL)
        _until(lambda: not Path(f"/proc/{dead}").exists() or "zombie" in Path(f"/proc/{dead}/status").read_text())
        scraped = httpx.get(scrape_url, timeout=10).text
        assert value(scraped, "frontdesk_http_requests_total", **jwks) == sent  # what it counted happened
        assert not (home / "metrics" / f"gauge_livesum_{dead}.db").exists()
    finally:
        server.terminate()
        server.wait(timeout=30)
