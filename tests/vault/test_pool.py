"""The proxy's own connections to providers (vault/pool.py): kept alive and reused per origin, bounded, checked
before reuse, with the TLS verification, timeouts and default headers the app gives its client, no redirect
followed, and httpx's errors; the app's client carries them to the proxy, any other client goes through httpx."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from frontdesk.core import Frontdesk
from frontdesk.vault.pool import Answer, Connections, ProviderClient, ResponseTooLarge, readable
from frontdesk.vault.proxy import PreparedCall, ProxyResponse
from frontdesk.vault.service import Vault
from frontdesk.web.app import create_app
from metadata_host import throwaway_certificates

from .conftest import bearer, connected, remember_tokens
from .fake_provider import Fake

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
Answerer = Callable[[bytes], Awaitable[bytes | None]]  # a request's head -> the raw answer, None: close instead


@dataclass
class Upstream:
    """A provider on loopback that answers each request with what ``answer`` gives, and notes every connection
    (by its client port) and every request head it receives."""

    answer: Answerer
    peers: list[int] = field(default_factory=list)
    heads: list[bytes] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)  # connections the client closed
    close_after: bool = False  # close each connection after its answer
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")[1]
        self.peers.append(peer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                raw = await self.answer(head)
                if raw is None:
                    break
                writer.write(raw)
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            self.closed.append(peer)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def upstream(answer: Answerer, tls: ssl.SSLContext | None = None) -> AsyncIterator[Upstream]:
    up = Upstream(answer)
    server = await asyncio.start_server(up.handle, "127.0.0.1", 0, ssl=tls)
    up.port = server.sockets[0].getsockname()[1]
    try:
        yield up
    finally:
        await asyncio.sleep(0.05)  # the handlers see the client close and close their side
        server.close()
        await server.wait_closed()


async def ok(head: bytes) -> bytes:
    return OK


def direct(
    *,
    limits: httpx.Limits | None = None,
    timeout: httpx.Timeout | None = None,
    tls: ssl.SSLContext | None = None,
    headers: httpx.Headers | None = None,
) -> Connections:
    """Connections as the app builds them (web/app.py): unbounded, with httpx's TLS context, unless given."""
    return Connections(
        tls or httpx.create_ssl_context(),
        limits or httpx.Limits(),
        timeout or httpx.Timeout(5.0),
        headers or httpx.Headers(),
    )


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment with no proxy named in it, for a test to name its own."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def test_a_socket_is_readable_once_its_peer_has_closed() -> None:
    """An idle keep-alive socket with nothing to read is not readable; once the peer closes it, it is (EOF)."""
    ours, theirs = socket.socketpair()
    try:
        assert not readable(ours)
        theirs.close()
        assert readable(ours)
    finally:
        ours.close()


def test_a_socket_that_is_gone_counts_as_readable() -> None:
    """No socket, or one closed here, is treated as closed by the peer: the pool drops the connection."""
    ours, theirs = socket.socketpair()
    ours.close()
    theirs.close()
    assert readable(None)
    assert readable(ours)


async def test_the_apps_client_and_its_connections_share_one_tls_context_and_close_together(
    fd: Frontdesk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app makes one TLS context (httpx's) for its client to providers and the proxy's connections: a CA that
    context trusts is trusted by both; closing the client closes the connections the proxy keeps too."""
    ca, cert, key = throwaway_certificates(tmp_path)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    monkeypatch.setattr(httpx, "create_ssl_context", lambda: ssl.create_default_context(cafile=str(ca)))
    client = create_app(fd).state.vault_http
    assert isinstance(client, ProviderClient)
    pool = client.connections
    assert pool is not None
    assert pool.limits == httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)
    assert pool.timeouts == httpx.Timeout(30.0, connect=5.0).as_dict()
    async with upstream(ok, tls=served) as up:
        url = f"https://localhost:{up.port}/"
        assert (await pool.send("GET", url, [], b"", 100)).content == b"ok"
        assert (await client.get(url)).text == "ok"
        await client.aclose()
        await asyncio.sleep(0.05)
        assert len(up.peers) == 2
        assert sorted(up.closed) == sorted(up.peers)


async def test_a_served_proxy_call_goes_through_the_apps_connections(
    http: httpx.AsyncClient, api_key: str, fake: Fake, secrets_seen: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app's client carries its connections to the proxy route: the provider is called through them."""
    sent: list[str] = []
    send = Connections.send

    async def noted(pool: Connections, method: str, url: str, *args: Any) -> Answer:
        sent.append(url)
        return await send(pool, method, url, *args)

    connection = await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    monkeypatch.setattr(Connections, "send", noted)
    response = await http.get(f"/vault/proxy/{connection['id']}/me?x=1", headers=bearer(api_key))
    assert response.status_code == 200, response.text
    assert sent == [f"{fake.base}/api/me?x=1"]


async def test_a_client_without_connections_goes_through_httpx(
    http: httpx.AsyncClient, api_key: str, fake: Fake, vault: Vault, secrets_seen: set[str]
) -> None:
    """A client the proxy is handed that carries none of its connections (a mock, an embedding) sends the call."""
    connection = await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"from": "mock"})

    _, call = vault.prepare_for(api_key, connection["id"], "me", "")
    assert isinstance(call, PreparedCall)
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        result = await vault.proxy(call, "GET", {}, b"", client)
    assert isinstance(result, ProxyResponse)
    assert (result.status, result.content) == (200, b'{"from":"mock"}')
    (request,) = seen
    assert str(request.url) == f"{fake.base}/api/me"
    assert request.headers["authorization"].startswith("Bearer fake_at_")


PROXY = "http://proxy.internal.example:3128"


@pytest.mark.parametrize(
    ("named", "direct_path"),
    [
        ({"HTTPS_PROXY": PROXY}, False),
        ({"NO_PROXY": "localhost,127.0.0.1"}, True),
        ({"HTTPS_PROXY": PROXY, "NO_PROXY": "*"}, True),
    ],
)
async def test_a_proxy_from_the_environment_leaves_the_app_on_httpx(
    fd: Frontdesk, environment: pytest.MonkeyPatch, named: dict[str, str], direct_path: bool
) -> None:
    """The proxy's own connections would go around a proxy the environment names: the app's client then carries
    none. NO_PROXY alone names none, and NO_PROXY=* turns off any that is named (as httpx reads them)."""
    for name, value in named.items():
        environment.setenv(name, value)
    client = create_app(fd).state.vault_http
    assert (client.connections is not None) is direct_path
    await client.aclose()


async def test_a_connection_is_reused_and_one_the_server_closed_is_not() -> None:
    """Calls one after another share one connection; an idle one the provider closed is dropped by the check
    before reuse and the call opens another; one dropped in the middle of a call fails it, not retried."""
    async with upstream(ok) as up, direct() as pool:
        url = f"http://127.0.0.1:{up.port}/"
        for _ in range(3):
            assert (await pool.send("GET", url, [], b"", 100)).status == 200
        assert len(up.peers) == 1
        up.close_after = True
        assert (await pool.send("GET", url, [], b"", 100)).status == 200
        await asyncio.sleep(0.05)  # the provider's close reaches the idle connection
        up.close_after = False
        assert (await pool.send("GET", url, [], b"", 100)).status == 200
        assert len(up.peers) == 2

        async def hang_up(head: bytes) -> None:
            return None

        up.answer = hang_up
        requests = len(up.heads)
        with pytest.raises(httpx.RemoteProtocolError):
            await pool.send("GET", url, [], b"", 100)
        assert len(up.heads) == requests + 1


async def test_concurrent_calls_are_bounded_and_wait_their_turn() -> None:
    """With one connection allowed, a second call waits for the first to finish and reuses its connection; a call
    that cannot get one within the pool timeout fails with httpx's PoolTimeout."""
    release = asyncio.Event()

    async def slow(head: bytes) -> bytes:
        await release.wait()
        return OK

    async with upstream(slow) as up:
        limits = httpx.Limits(max_connections=1)
        async with direct(limits=limits, timeout=httpx.Timeout(5.0, pool=0.2)) as pool:
            url = f"http://127.0.0.1:{up.port}/"
            first = asyncio.ensure_future(pool.send("GET", url, [], b"", 100))
            await asyncio.sleep(0.05)
            with pytest.raises(httpx.PoolTimeout):
                await pool.send("GET", url, [], b"", 100)
            second = asyncio.ensure_future(pool.send("GET", url, [], b"", 100))
            await asyncio.sleep(0.05)
            release.set()
            assert [a.status for a in await asyncio.gather(first, second)] == [200, 200]
            assert len(up.peers) == 1


async def test_no_more_connections_are_kept_than_the_keep_alive_limit() -> None:
    """Two calls at once open two connections; with one kept alive, the other is closed after its answer, and the
    next call reuses the kept one."""
    release = asyncio.Event()

    async def held(head: bytes) -> bytes:
        await release.wait()
        return OK

    async with upstream(held) as up, direct(limits=httpx.Limits(max_keepalive_connections=1)) as pool:
        url = f"http://127.0.0.1:{up.port}/"
        calls = [asyncio.ensure_future(pool.send("GET", url, [], b"", 100)) for _ in range(2)]
        await asyncio.sleep(0.05)
        release.set()
        assert [a.status for a in await asyncio.gather(*calls)] == [200, 200]
        await asyncio.sleep(0.05)
        assert len(up.peers) == 2
        assert len(up.closed) == 1
        assert (await pool.send("GET", url, [], b"", 100)).status == 200
        assert len(up.peers) == 2


async def test_timeouts_and_connection_errors_are_httpxs() -> None:
    """A provider that does not answer in the read timeout, and one that refuses the connection."""

    async def never(head: bytes) -> bytes:
        await asyncio.sleep(10)
        return OK

    async with upstream(never) as up, direct(timeout=httpx.Timeout(0.2)) as pool:
        with pytest.raises(httpx.ReadTimeout):
            await pool.send("GET", f"http://127.0.0.1:{up.port}/", [], b"", 100)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    async with direct() as pool:
        with pytest.raises(httpx.ConnectError):
            await pool.send("GET", f"http://127.0.0.1:{port}/", [], b"", 100)


async def test_headers_body_and_redirects() -> None:
    """The default headers given go out under the call's own (a name given replaces the default), Host and
    Content-Length as httpx sets them; a redirect comes back as it is, not followed."""

    async def moved(head: bytes) -> bytes:
        return b"HTTP/1.1 302 Found\r\nlocation: https://elsewhere.example/\r\ncontent-length: 0\r\n\r\n"

    defaults = httpx.Headers({"User-Agent": "frontdesk-test", "Accept": "*/*"})
    async with upstream(moved) as up, direct(headers=defaults) as pool:
        given = [("Accept", "application/json"), ("X-Vendor", "1")]
        answer = await pool.send("POST", f"http://127.0.0.1:{up.port}/p?q=1", given, b"{}", 100)
    assert answer.status == 302
    assert ("location", "https://elsewhere.example/") in answer.headers
    (head,) = up.heads
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /p?q=1 HTTP/1.1"
    fields = [line.lower() for line in lines[1:] if line]
    assert f"host: 127.0.0.1:{up.port}" in fields
    assert "user-agent: frontdesk-test" in fields
    assert "accept: application/json" in fields
    assert "accept: */*" not in fields
    assert "x-vendor: 1" in fields
    assert "content-length: 2" in fields


async def test_an_answer_too_large_fails_and_its_connection_is_not_kept() -> None:
    """Past the limit the call fails with ResponseTooLarge, and the half-read connection is closed."""

    async def big(head: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n" + b"x" * 1000

    async with upstream(big) as up, direct() as pool:
        with pytest.raises(ResponseTooLarge):
            await pool.send("GET", f"http://127.0.0.1:{up.port}/", [], b"", 100)
        assert (await pool.send("GET", f"http://127.0.0.1:{up.port}/", [], b"", 1000)).content == b"x" * 1000
        assert len(up.peers) == 2


async def test_a_compressed_answer_is_decoded_and_its_limit_is_the_decoded_size() -> None:
    body = gzip.compress(b"y" * 500)

    async def gzipped(head: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)

    async with upstream(gzipped) as up, direct() as pool:
        assert (await pool.send("GET", f"http://127.0.0.1:{up.port}/", [], b"", 500)).content == b"y" * 500
        with pytest.raises(ResponseTooLarge):
            await pool.send("GET", f"http://127.0.0.1:{up.port}/", [], b"", 499)


async def test_tls_is_verified_with_the_context_given(tmp_path: Path) -> None:
    """A certificate the given context trusts is accepted (and the connection reused); the default context,
    which does not trust that test CA, refuses the same server."""
    ca, cert, key = throwaway_certificates(tmp_path)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    async with upstream(ok, tls=served) as up:
        url = f"https://localhost:{up.port}/"
        async with direct(tls=ssl.create_default_context(cafile=str(ca))) as pool:
            for _ in range(2):
                assert (await pool.send("GET", url, [], b"", 100)).content == b"ok"
            assert len(up.peers) == 1
        async with direct() as default:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await default.send("GET", url, [], b"", 100)


def test_it_runs_on_uvloop_as_served(tmp_path: Path) -> None:
    """``frontdesk serve`` runs on uvloop, whose transports are not asyncio's classes: plain and TLS calls there."""
    uvloop = pytest.importorskip("uvloop")
    ca, cert, key = throwaway_certificates(tmp_path)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)

    async def calls() -> list[int]:
        statuses = []
        for tls in (None, served):
            async with upstream(ok, tls=tls) as up:
                scheme = "https" if tls else "http"
                async with direct(tls=ssl.create_default_context(cafile=str(ca))) as pool:
                    for _ in range(2):
                        answer = await asyncio.wait_for(
                            pool.send("GET", f"{scheme}://localhost:{up.port}/", [], b"", 9), 5
                        )
                        statuses.append(answer.status)
                assert len(up.peers) == 1
        return statuses

    assert uvloop.run(calls()) == [200] * 4


async def test_a_large_answer_arrives_whole_and_the_connection_is_kept() -> None:
    """An answer larger than what a connection holds unread (reading pauses, then resumes) comes back whole."""
    body = bytes(range(256)) * 4096  # 1 MiB

    async def large(head: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)

    async with upstream(large) as up, direct() as pool:
        for _ in range(2):
            assert (await pool.send("GET", f"http://127.0.0.1:{up.port}/", [], b"", len(body))).content == body
        assert len(up.peers) == 1
