"""The proxy's connection pool (vault/pool.py): an idle connection's check answers as httpcore's, found directly."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import httpcore
import httpx

from frontdesk.vault.pool import _Backend, checked_idle, readable


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


async def test_the_client_pool_gets_the_backend_once() -> None:
    """The client's own pool answers idle checks through the wrapped backend; asking again wraps nothing twice."""
    client = httpx.AsyncClient()
    try:
        checked_idle(client)
        backend = client._transport._pool._network_backend  # type: ignore[attr-defined]
        assert isinstance(backend, _Backend)
        checked_idle(client)
        assert client._transport._pool._network_backend is backend  # type: ignore[attr-defined]
    finally:
        await client.aclose()


async def test_a_transport_of_another_shape_is_left_alone() -> None:
    """A test's mock transport (or any other) is not touched."""
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    client = httpx.AsyncClient(transport=transport)
    checked_idle(client)
    assert client._transport is transport  # type: ignore[attr-defined]
    await client.aclose()


async def test_a_connection_the_server_closed_is_not_reused() -> None:
    """An idle connection the server closed is dropped by the pool and the next call opens a new one, as with
    httpcore's own check; one the server kept open is reused."""
    peers: list[int] = []
    close_after = asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peername")[1])
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
                if close_after.is_set():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed it
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = httpx.AsyncClient()
    checked_idle(client)
    try:
        for _ in range(2):
            assert (await client.get(f"http://127.0.0.1:{port}/")).status_code == 200
        assert len(peers) == 1  # kept alive and reused
        close_after.set()
        assert (await client.get(f"http://127.0.0.1:{port}/")).status_code == 200
        await asyncio.sleep(0.05)  # the server's close reaches the idle connection
        pool = client._transport._pool  # type: ignore[attr-defined]
        assert isinstance(pool, httpcore.AsyncConnectionPool)
        close_after.clear()
        assert (await client.get(f"http://127.0.0.1:{port}/")).status_code == 200
        assert len(peers) == 2  # the closed one was dropped, a new one opened
    finally:
        await client.aclose()
        await asyncio.sleep(0.05)  # the handlers see the client close and close their side
        server.close()
        await server.wait_closed()
