"""Issue 11, item 7: nothing the person typed reaches a log. A proxied call's query (search terms, record ids) goes
to the provider and nowhere else: not through httpx's request line (INFO), not through httpcore's trace (DEBUG), not
through uvicorn's access line, with logging configured as ``frontdesk serve`` configures it, at DEBUG."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import update

from frontdesk.log_filters import QUERY_LOGGERS
from frontdesk.logs import JsonFormatter, configure_logging
from frontdesk.storage.schema import VaultConnection
from frontdesk.vault.service import Vault

from .conftest import bearer, connected, remember_tokens
from .fake_provider import Fake


class Lines(logging.Handler):
    """Every record as the JSON line frontdesk would write (message, arguments and extra fields), at any level."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.name, self.format(record)))


@pytest.fixture
def logged() -> Iterator[Lines]:
    """``configure_logging("DEBUG")``, then httpcore's trace turned on as well (an operator debugging a provider);
    the suite's own logging is put back afterwards."""
    root = logging.getLogger()
    names = ["httpcore", "sqlalchemy", "uvicorn", "uvicorn.error", *QUERY_LOGGERS]
    saved = {n: (lg.level, lg.filters[:], lg.handlers[:], lg.propagate) for n in names if (lg := logging.getLogger(n))}
    root_handlers, root_level, converter = root.handlers[:], root.level, logging.Formatter.converter
    configure_logging("DEBUG")
    logging.getLogger("httpcore").setLevel(logging.DEBUG)
    lines = Lines()
    root.addHandler(lines)
    access = logging.getLogger("uvicorn.access")
    try:
        yield lines
    finally:
        root.handlers[:] = root_handlers
        root.setLevel(root_level)
        logging.Formatter.converter = converter
        for name, (level, filters, handlers, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.filters[:] = filters
            logger.handlers[:] = handlers
            logger.propagate = propagate
        assert access.propagate == saved["uvicorn.access"][3]


async def test_a_proxied_calls_query_reaches_no_log(
    http: httpx.AsyncClient, api_key: str, fake: Fake, vault: Vault, secrets_seen: set[str], logged: Lines
) -> None:
    """A search, a call that refreshes first and a call the provider refuses once (401, refresh, retry): the query
    reaches the provider every time, and no log line at any level."""
    needle = "needle-" + secrets.token_hex(8)
    connection = await connected(http, api_key)
    cid = connection["id"]
    first = await http.get(f"/vault/proxy/{cid}/search", params={"q": needle}, headers=bearer(api_key))
    at = int(time.time())
    with vault.engine.begin() as conn:  # due: an hour's token with 5 s left
        conn.execute(update(VaultConnection).values(expires_at=at + 5, refreshed_at=at + 5 - 3600))
    refreshed = await http.get(f"/vault/proxy/{cid}/records/{needle}", params={"id": needle}, headers=bearer(api_key))
    fake.expire_access_tokens()
    retried = await http.get(f"/vault/proxy/{cid}/search", params={"q": needle}, headers=bearer(api_key))
    remember_tokens(fake, secrets_seen)

    for response in (first, refreshed, retried):
        assert response.status_code == 200, response.text
        assert response.json()["query"] in (f"q={needle}", f"id={needle}")  # the provider did get it
    assert fake.refresh_calls == 2
    leaked = [line for _, line in logged.lines if needle in line.replace(f"/records/{needle}", "/records/…")]
    assert not leaked, "\n".join(leaked)
    proxied = [line for name, line in logged.lines if name == "httpx" and "/api/search" in line]
    assert len(proxied) == 3  # the lines are there (the first and the retried call's two requests), without the query
    assert all("?[query]" in line for line in proxied)
    assert any(name.startswith("httpcore") for name, _ in logged.lines)  # the trace ran


def test_uvicorns_access_line_loses_the_query(logged: Lines) -> None:
    """The request lines frontdesk answers: a proxied call's query, an upstream's or a provider's callback."""
    needle = "needle-" + secrets.token_hex(8)
    access = logging.getLogger("uvicorn.access")
    # As configure_logging leaves it, whatever a provider fake's uvicorn set up earlier in the run.
    access.setLevel(logging.NOTSET)
    access.propagate = True
    access.info(
        '%s - "%s %s HTTP/%s" %d', "203.0.113.7:5000", "GET", f"/vault/proxy/conn_x/search?q={needle}", "1.1", 200
    )
    access.info('%s - "%s %s HTTP/%s" %d', "203.0.113.7:5000", "GET", f"/upstream/cb?state={needle}", "1.1", 302)
    lines = [json.loads(line)["msg"] for name, line in logged.lines if name == "uvicorn.access"]
    assert lines == [
        '203.0.113.7:5000 - "GET /vault/proxy/conn_x/search?[query] HTTP/1.1" 200',
        '203.0.113.7:5000 - "GET /upstream/cb?[query] HTTP/1.1" 302',
    ]


def test_httpcores_trace_loses_the_query_of_a_location_it_prints(logged: Lines) -> None:
    """httpcore's DEBUG trace prints the response headers, a redirect's Location (and its query) among them."""
    needle = "needle-" + secrets.token_hex(8)
    logging.getLogger("httpcore.http11").debug(
        "receive_response_headers.complete return_value=(b'HTTP/1.1', 302, b'Found', "
        f"[(b'Location', b'https://app.example/cb?code={needle}&state={needle}'), (b'X-Next', b'/p?after={needle}')])"
    )
    (line,) = [json.loads(line)["msg"] for name, line in logged.lines if name == "httpcore.http11"]
    assert needle not in line
    assert "b'https://app.example/cb?[query]'" in line
    assert "b'/p?[query]'" in line
