"""Pure parts of the kit: the bearer header parser, the challenges, the metadata document, the key cache's pacing
and the MCP tool-scope rule."""

from __future__ import annotations

import json

import httpx
import pytest
from starlette.requests import Request

from frontdesk.resource_server import (
    AuthorizationServerUnavailable,
    Challenge,
    InvalidRequest,
    InvalidToken,
    KeyCache,
    ProtectedResource,
    bearer_token,
)
from frontdesk.resource_server.mcp import tool_scopes


@pytest.mark.parametrize(
    ("values", "expected"),
    [([], None), (["Basic YTpi"], None), (["Bearer abc.DEF-_~+/="], "abc.DEF-_~+/="), (["bearer  t0k "], "t0k")],
)
def test_bearer_token_reads_the_header(values: list[str], expected: str | None) -> None:
    assert bearer_token(values) == expected


@pytest.mark.parametrize("values", [["Bearer a", "Bearer b"], ["Bearer "], ["Bearer a b"], ['Bearer a"b']])
def test_bearer_token_refuses_malformed_headers(values: list[str]) -> None:
    with pytest.raises(InvalidRequest):
        bearer_token(values)


def test_challenge_descriptions_cannot_break_the_header() -> None:
    """RFC 6750 §3: no quote or backslash inside a quoted value."""
    challenge = Challenge.build("https://r.example/.well-known/oauth-protected-resource", [], InvalidToken('a"b\\c'))
    assert challenge.www_authenticate.startswith('Bearer error="invalid_token", error_description="a?b?c"')


@pytest.mark.parametrize(
    ("resource", "path"),
    [
        ("https://tools.example/mcp", "/.well-known/oauth-protected-resource/mcp"),
        ("https://tools.example/a/b/", "/.well-known/oauth-protected-resource/a/b"),
        ("https://tools.example", "/.well-known/oauth-protected-resource"),
        ("http://127.0.0.1:8001/mcp", "/.well-known/oauth-protected-resource/mcp"),
    ],
)
def test_metadata_url_puts_the_well_known_between_host_and_path(resource: str, path: str) -> None:
    """RFC 9728 §3.1."""
    described = ProtectedResource(resource, ["https://as.example"])
    assert described.metadata_path == path
    assert described.metadata_url == resource.split("/")[0] + "//" + resource.split("/")[2] + path


@pytest.mark.parametrize(
    ("resource", "servers", "scopes"),
    [
        ("https://t.example/mcp?x=1", ["https://as.example"], ()),
        ("https://t.example/mcp#f", ["https://as.example"], ()),
        ("http://t.example/mcp", ["https://as.example"], ()),
        ("https://t.example/mcp", [], ()),
        ("https://t.example/mcp", ["https://as.example"], ("offline_access",)),
    ],
)
def test_metadata_refuses_what_rfc_9728_and_mcp_forbid(resource: str, servers: list[str], scopes: tuple[str]) -> None:
    with pytest.raises(ValueError, match=r"resource|https|authorization server|offline_access"):
        ProtectedResource(resource, servers, scopes)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def where() -> str:
    return "https://as.example/jwks"


async def test_the_key_cache_does_not_retry_an_unreachable_issuer_on_every_request() -> None:
    calls: list[str] = []

    def down(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(503)

    clock = Clock()
    async with httpx.AsyncClient(transport=httpx.MockTransport(down)) as http:
        keys = KeyCache(http, where, clock=clock)
        for _ in range(3):
            with pytest.raises(AuthorizationServerUnavailable):
                await keys.key_for("k1", "ES256")
        assert len(calls) == 1
        clock.now += 11
        with pytest.raises(AuthorizationServerUnavailable):
            await keys.key_for("k1", "ES256")
        assert len(calls) == 2


async def test_the_key_cache_keeps_its_keys_through_an_outage() -> None:
    from joserfc.jwk import ECKey

    key = ECKey.generate_key("P-256", parameters={"kid": "k1"})
    up = {"on": True}

    def server(request: httpx.Request) -> httpx.Response:
        if not up["on"]:
            return httpx.Response(500)
        return httpx.Response(200, json={"keys": [key.as_dict(private=False)]})

    clock = Clock()
    async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as http:
        keys = KeyCache(http, where, clock=clock)
        assert await keys.key_for("k1", "ES256") is not None
        up["on"] = False
        clock.now += 3600
        assert await keys.key_for("k1", "ES256") is not None
        assert await keys.key_for("k1", "RS256") is None  # a key is used only for its own kind of algorithm


def request_with(body: object) -> Request:
    sent = {"done": False}

    async def receive() -> dict[str, object]:
        if sent["done"]:
            return {"type": "http.disconnect"}
        sent["done"] = True
        return {"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}

    return Request({"type": "http", "method": "POST", "path": "/mcp", "headers": []}, receive)


@pytest.mark.parametrize(
    ("body", "needed"),
    [
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, ("notes.read",)),
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "list_notes"}}, ("notes.read",)),
        (
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add_note"}},
            ("notes.read", "notes.write"),
        ),
        (
            [{"method": "tools/list"}, {"method": "tools/call", "params": {"name": "add_note"}}],
            ("notes.read", "notes.write"),
        ),
        ({"method": "tools/call", "params": "add_note"}, ("notes.read",)),
    ],
)
async def test_tool_scopes_adds_the_scopes_of_the_tool_called(body: object, needed: tuple[str, ...]) -> None:
    rule = tool_scopes({"add_note": ["notes.write"]}, ["notes.read"])
    assert tuple(await rule(request_with(body))) == needed
