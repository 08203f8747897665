"""The proxy's own connections to providers (vault/pool.py): kept alive and reused per origin, bounded, checked
before reuse, with the client's TLS verification, timeouts and default headers, no redirect followed, and httpx's
errors; a client they cannot serve is left to httpx."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from frontdesk.vault import pool as vault_pool
from frontdesk.vault.pool import Connections, ResponseTooLarge, connections, readable
from metadata_host import throwaway_certificates

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


def direct(client: httpx.AsyncClient) -> Connections:
    pool = connections(client)
    assert pool is not None
    return pool


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


async def test_the_clients_pool_is_taken_over_once_and_closed_with_it() -> None:
    """The client's httpcore pool is wrapped once (asking again gives the same); its other requests still go
    through httpx; closing the client closes the proxy's idle connections too."""
    async with upstream(ok) as up:
        client = httpx.AsyncClient()
        pool = direct(client)
        assert connections(client) is pool
        assert (await pool.send("GET", f"http://127.0.0.1:{up.port}/a", [], b"", 100)).content == b"ok"
        assert (await client.get(f"http://127.0.0.1:{up.port}/b")).text == "ok"  # httpcore's pool, as before
        await client.aclose()
        await asyncio.sleep(0.05)
        assert sorted(up.closed) == sorted(up.peers)


@pytest.mark.parametrize(
    "options",
    [
        {"transport": httpx.MockTransport(lambda request: httpx.Response(200))},
        {"mounts": {"http://": httpx.AsyncHTTPTransport()}},
        {"follow_redirects": True},
        {"event_hooks": {"request": [lambda request: None]}},
        {"transport": httpx.AsyncHTTPTransport(retries=1)},
    ],
)
async def test_a_client_it_cannot_serve_is_left_to_httpx(options: dict[str, object]) -> None:
    """A mock transport, a mounted (proxy) transport, redirects followed, hooks, connect retries: untouched."""
    client = httpx.AsyncClient(**options)  # type: ignore[arg-type]
    transport = client._transport  # type: ignore[attr-defined]
    pool = getattr(transport, "_pool", None)
    assert connections(client) is None
    assert client._transport is transport  # type: ignore[attr-defined]
    assert getattr(transport, "_pool", None) is pool
    await client.aclose()


async def test_an_httpcore_whose_private_fields_moved_is_left_to_httpx(caplog: pytest.LogCaptureFixture) -> None:
    """The pool reads httpcore's private settings (pyproject asks httpx >= 0.27 only): a release that renamed one
    leaves the client as it is, with one warning, rather than failing every proxied call."""
    client = httpx.AsyncClient()
    pool = client._transport._pool  # type: ignore[attr-defined]
    del pool._http2  # as a newer httpcore might have it
    vault_pool._moved.cache_clear()  # the warning is said once a process
    with caplog.at_level("WARNING", logger="frontdesk.vault"):
        assert connections(client) is None
    assert client._transport._pool is pool  # type: ignore[attr-defined]
    assert "proxying through httpx" in caplog.text
    await client.aclose()


async def test_a_no_proxy_entry_alone_keeps_the_direct_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_PROXY without a proxy mounts "no proxy" (None) entries: the client's own transport, served directly."""
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    async with httpx.AsyncClient() as client:
        assert client._mounts  # type: ignore[attr-defined]
        assert connections(client) is not None


async def test_a_connection_is_reused_and_one_the_server_closed_is_not() -> None:
    """Calls one after another share one connection; an idle one the provider closed is dropped by the check
    before reuse and the call opens another; one dropped in the middle of a call fails it, not retried."""
    async with upstream(ok) as up, httpx.AsyncClient() as client:
        pool = direct(client)
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
        async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(5.0, pool=0.2)) as client:
            pool = direct(client)
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


async def test_timeouts_and_connection_errors_are_httpxs() -> None:
    """A provider that does not answer in the read timeout, and one that refuses the connection."""

    async def never(head: bytes) -> bytes:
        await asyncio.sleep(10)
        return OK

    async with upstream(never) as up, httpx.AsyncClient(timeout=httpx.Timeout(0.2)) as client:
        with pytest.raises(httpx.ReadTimeout):
            await direct(client).send("GET", f"http://127.0.0.1:{up.port}/", [], b"", 100)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await direct(client).send("GET", f"http://127.0.0.1:{port}/", [], b"", 100)


async def test_headers_body_and_redirects() -> None:
    """The client's default headers go out under the call's own (a name given replaces the default), Host and
    Content-Length as httpx sets them; a redirect comes back as it is, not followed."""

    async def moved(head: bytes) -> bytes:
        return b"HTTP/1.1 302 Found\r\nlocation: https://elsewhere.example/\r\ncontent-length: 0\r\n\r\n"

    async with upstream(moved) as up, httpx.AsyncClient(headers={"User-Agent": "frontdesk-test"}) as client:
        given = [("Accept", "application/json"), ("X-Vendor", "1")]
        answer = await direct(client).send("POST", f"http://127.0.0.1:{up.port}/p?q=1", given, b"{}", 100)
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

    async with upstream(big) as up, httpx.AsyncClient() as client:
        pool = direct(client)
        with pytest.raises(ResponseTooLarge):
            await pool.send("GET", f"http://127.0.0.1:{up.port}/", [], b"", 100)
        assert (await pool.send("GET", f"http://127.0.0.1:{up.port}/", [], b"", 1000)).content == b"x" * 1000
        assert len(up.peers) == 2


async def test_a_compressed_answer_is_decoded_and_its_limit_is_the_decoded_size() -> None:
    body = gzip.compress(b"y" * 500)

    async def gzipped(head: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)

    async with upstream(gzipped) as up, httpx.AsyncClient() as client:
        pool = direct(client)
        assert (await pool.send("GET", f"http://127.0.0.1:{up.port}/", [], b"", 500)).content == b"y" * 500
        with pytest.raises(ResponseTooLarge):
            await pool.send("GET", f"http://127.0.0.1:{up.port}/", [], b"", 499)


async def test_tls_is_verified_with_the_clients_context(tmp_path: Path) -> None:
    """A certificate the client's context trusts is accepted (and the connection reused); the default context,
    which does not trust that test CA, refuses the same server."""
    ca, cert, key = throwaway_certificates(tmp_path)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    async with upstream(ok, tls=served) as up:
        url = f"https://localhost:{up.port}/"
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(ca))) as trusting:
            pool = direct(trusting)
            for _ in range(2):
                assert (await pool.send("GET", url, [], b"", 100)).content == b"ok"
            assert len(up.peers) == 1
        async with httpx.AsyncClient() as default:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await direct(default).send("GET", url, [], b"", 100)


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
                async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(ca))) as client:
                    pool = direct(client)
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

    async with upstream(large) as up, httpx.AsyncClient() as client:
        pool = direct(client)
        for _ in range(2):
            assert (await pool.send("GET", f"http://127.0.0.1:{up.port}/", [], b"", len(body))).content == body
        assert len(up.peers) == 1
