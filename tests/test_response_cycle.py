"""The response cycle ``frontdesk serve`` runs (server.py ``ResponseCycle``): every response's header block is byte for
byte what uvicorn's own cycle writes, refusals and framing included, whether its lines are new or remembered."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from frontdesk import server
from frontdesk.server import ResponseCycle

DATE = (b"date", b"Sun, 06 Dec 2026 23:00:00 GMT")


class Written(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.data = b""
        self.closed = False

    def write(self, data: Any) -> None:
        self.data += bytes(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _cycle(kind: type[RequestResponseCycle], method: str = "POST", keep_alive: bool = True) -> RequestResponseCycle:
    transport = Written()
    return kind(
        scope={"type": "http", "method": method, "path": "/token", "headers": []},  # type: ignore[typeddict-item]
        transport=transport,
        flow=FlowControl(transport),
        logger=logging.getLogger("test"),
        access_logger=logging.getLogger("test.access"),
        access_log=False,
        default_headers=[DATE],
        message_event=asyncio.Event(),
        expect_100_continue=False,
        keep_alive=keep_alive,
        on_response=lambda: None,
    )


async def _send(kind: type[RequestResponseCycle], messages: list[dict[str, Any]], **cycle: Any) -> tuple[Any, ...]:
    """What the cycle wrote and its state after the messages, or the error it raised."""
    sent = _cycle(kind, **cycle)
    try:
        for message in messages:
            await sent.send(message)  # type: ignore[arg-type]
    except Exception as exc:
        return ("raised", type(exc), str(exc))
    transport = sent.transport
    assert isinstance(transport, Written)
    state = (sent.response_started, sent.response_complete, sent.chunked_encoding, sent.expected_content_length)
    return transport.data, transport.closed, sent.keep_alive, state


def _start(status: int, *headers: Any) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status, "headers": list(headers)}


def _body(body: bytes) -> dict[str, Any]:
    return {"type": "http.response.body", "body": body}


JSON = (b"content-type", b"application/json")
CASES = {
    "a token answer": (
        [_start(200, (b"cache-control", b"no-store"), (b"content-length", b"2"), JSON), _body(b"{}")],
        {},
    ),
    "no length: chunked": ([_start(200, JSON), _body(b"{}")], {}),
    "HEAD without a length": ([_start(200, JSON), _body(b"")], {"method": "HEAD"}),
    "204": ([_start(204), _body(b"")], {}),
    "304 with its length": ([_start(304, (b"content-length", b"10")), _body(b"")], {}),
    "a name in capitals": ([_start(200, (b"Content-Length", b"2"), (b"X-Custom", b"A")), _body(b"{}")], {}),
    "two lengths: the first": ([_start(200, (b"content-length", b"2"), (b"content-length", b"9")), _body(b"{}")], {}),
    "client asked to close": ([_start(200, (b"content-length", b"2")), _body(b"{}")], {"keep_alive": False}),
    "connection: close": ([_start(200, (b"connection", b"close"), (b"content-length", b"0")), _body(b"")], {}),
    "transfer-encoding": ([_start(200, (b"transfer-encoding", b"chunked")), _body(b"ab"), _body(b"")], {}),
    "a redirect with a cookie": (
        [
            _start(
                302,
                (b"location", b"https://app.example/cb?code=abc"),
                (b"set-cookie", b"s=1"),
                (b"content-length", b"0"),
            )
        ],
        {},
    ),
    "headers as lists": ([_start(200, [b"content-length", b"2"], [b"x-a", b"b"]), _body(b"{}")], {}),
    "a bad name": ([_start(200, (b"bad name", b"x"))], {}),
    "a bad value": ([_start(200, (b"x-a", b"line\r\nbreak"))], {}),
    "a length not a number": ([_start(200, (b"content-length", b"two"))], {}),
    "a body past its length": ([_start(200, (b"content-length", b"1")), _body(b"{}")], {}),
    "an unknown status": ([_start(99)], {}),
    "body first": ([_body(b"{}")], {}),
}


@pytest.mark.parametrize("case", CASES)
async def test_a_response_is_written_as_uvicorns_cycle_writes_it(case: str) -> None:
    messages, cycle = CASES[case]
    expected = await _send(RequestResponseCycle, messages, **cycle)
    server._LINES.clear()
    assert await _send(ResponseCycle, messages, **cycle) == expected  # lines checked and remembered
    assert await _send(ResponseCycle, messages, **cycle) == expected  # lines remembered


def test_the_remembered_lines_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "_LINES_KEPT", 3)
    server._LINES.clear()

    async def answers() -> None:
        for n in range(10):
            await _send(ResponseCycle, [_start(200, (b"content-length", str(n).encode())), _body(b"x" * n)])

    asyncio.run(answers())
    assert len(server._LINES) <= 3


async def test_only_headers_whose_values_repeat_are_remembered() -> None:
    """A Location carries codes and a Set-Cookie a session: both are written, neither is kept in the process."""
    server._LINES.clear()
    sent = await _send(
        ResponseCycle,
        [_start(302, (b"location", b"https://app.example/cb?code=abc"), (b"set-cookie", b"s=secret"),
                (b"cache-control", b"no-store"), (b"content-length", b"0"))],
    )  # fmt: skip
    assert b"location: https://app.example/cb?code=abc\r\nset-cookie: s=secret\r\n" in sent[0]
    assert {name for name, _ in server._LINES} == {b"date", b"cache-control", b"content-length"}
