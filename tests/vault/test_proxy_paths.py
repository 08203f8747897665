"""Issue 11, item 6: a proxied call's path stays under the provider's API base in every encoding a server along the
way might decode (``%2e``, ``%252e``, ``%5c``, ``..;``, overlong and full-width dots, mixed case), and a NUL byte is
a 400, not a 500 (vault/paths.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.responses import Response

from frontdesk.vault.paths import PathRefused, api_path, api_query, remove_dot_segments

from .conftest import bearer, connected, remember_tokens
from .fake_provider import Fake

pytestmark = pytest.mark.usefixtures("vault")


@dataclass
class RawFake(Fake):
    """The fake provider, keeping each API request's path as it came over the wire (before any decoding)."""

    raw_paths: list[bytes] = field(default_factory=list)

    async def api(self, request: Request) -> Response:
        self.raw_paths.append(request.scope["raw_path"])
        return await super().api(request)


@pytest.fixture
def fake_class() -> type[Fake]:
    return RawFake


@pytest.fixture
async def connection_id(http: httpx.AsyncClient, api_key: str, fake: RawFake, secrets_seen: set[str]) -> str:
    found = await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    return str(found["id"])


# What the caller sends after /vault/proxy/{id}/ (the ASGI server decodes it once), each a way out of /api.
ESCAPES = [
    "%2e%2e/token",
    "%2E%2E/token",
    "%2e./token",
    ".%2E/token",
    "%2e",
    "a/%2e%2e/%2e%2e/token",
    "%252e%252e/token",
    "%252E%252e/token",
    "%25252e%25252e/token",
    "a%2f..%2f..%2ftoken",
    "a%2F%2e%2e%2F%2e%2e%2Ftoken",
    "a%252f..%252f..%252ftoken",
    "%5c..%5ctoken",
    "a%5C%2e%2e%5Ctoken",
    "a%255c..%255ctoken",
    "..;/token",
    "a/..;x/..;y/token",
    "%2e%2e;/token",
    "%252e%252e%253b/token",
    "%25c0%25ae%25c0%25ae/token",  # overlong UTF-8 for "." (the ASGI server's one decoding replaces a bare %c0)
    "%ef%bc%8e%ef%bc%8e/token",
    "%2f%2fevil.example/x",
    "%252f%252fevil.example/x",
    "http:%2f%2fevil.example/x",
]


@pytest.mark.parametrize("path", ESCAPES)
async def test_a_path_that_leaves_the_api_base_in_any_encoding_is_refused(
    http: httpx.AsyncClient, api_key: str, fake: RawFake, connection_id: str, path: str
) -> None:
    before = len(fake.api_calls)
    response = await http.get(f"/vault/proxy/{connection_id}/{path}", headers=bearer(api_key))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert len(fake.api_calls) == before


@pytest.mark.parametrize("path", ["me%00", "me%00/x", "%2500", "a%25252500b"])
async def test_a_nul_byte_in_the_path_is_a_400(
    http: httpx.AsyncClient, api_key: str, fake: RawFake, connection_id: str, path: str
) -> None:
    response = await http.get(f"/vault/proxy/{connection_id}/{path}", headers=bearer(api_key))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert fake.api_calls == []


@pytest.mark.parametrize("route", ["/vault/proxy/conn%00x/me", "/vault/connections/conn%00x"])
async def test_a_nul_byte_in_a_connection_id_is_an_unknown_connection(
    http: httpx.AsyncClient, api_key: str, route: str
) -> None:
    """PostgreSQL text holds no NUL: the lookup must not reach it (it would fail there as a 500)."""
    response = await http.get(route, headers=bearer(api_key))
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "unknown_connection"


async def test_a_nul_byte_in_a_user_lists_no_connection(http: httpx.AsyncClient, api_key: str) -> None:
    response = await http.get("/vault/connections", params={"user": "u-123\x00"}, headers=bearer(api_key))
    assert response.status_code == 200, response.text
    assert response.json() == {"connections": []}


@pytest.mark.parametrize(
    ("path", "wire"),
    [
        ("events", b"/api/events"),
        ("a/b/", b"/api/a/b/"),
        ("...", b"/api/..."),
        ("a..b/.well", b"/api/a..b/.well"),
        ("projects/group%252Fname", b"/api/projects/group%2Fname"),  # GitLab's encoded project path, kept
        ("caf%C3%A9", b"/api/caf%C3%A9"),
        ("search%3Fq=1", b"/api/search%3Fq=1"),  # a decoded "?" stays in the path: no query of its own
        ("notes%23top", b"/api/notes%23top"),  # nor does a decoded "#" cut the path short
        ("100%25", b"/api/100%25"),
    ],
)
async def test_a_path_under_the_base_reaches_the_provider_as_written(
    http: httpx.AsyncClient, api_key: str, fake: RawFake, connection_id: str, path: str, wire: bytes
) -> None:
    response = await http.get(f"/vault/proxy/{connection_id}/{path}?x=1", headers=bearer(api_key))
    assert response.status_code == 200, response.text
    assert fake.raw_paths[-1] == wire
    assert response.json()["query"] == "x=1"


# --- the parser ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "removed"),
    [  # RFC 3986 §5.2.4's two examples, and §5.4.2's abnormal ones as they reach this step
        ("/a/b/c/./../../g", "/a/g"),
        ("mid/content=5/../6", "mid/6"),
        ("/../g", "/g"),
        ("/./g", "/g"),
        ("/g.", "/g."),
        ("/.g", "/.g"),
        ("/g..", "/g.."),
        ("/..g", "/..g"),
        ("/a/b/c/./g/.", "/a/b/c/g/"),
        ("/a/b/c/g/..", "/a/b/c/"),
        ("../../x", "x"),
    ],
)
def test_remove_dot_segments_follows_rfc_3986(path: str, removed: str) -> None:
    assert remove_dot_segments(path) == removed


def _readings(path: str) -> list[str]:
    out = [path]
    while (decoded := unquote(out[-1], errors="replace")) != out[-1] and len(out) < 8:
        out.append(decoded)
    return out


PIECES = st.sampled_from(
    [".", "..", "/", "%", "2", "5", "e", "E", "f", "F", "c", "C", "%2e", "%2f", "%5c", "%25", ";", "\\", "a", "?"]
)


@given(st.lists(PIECES, max_size=12).map("".join) | st.text(max_size=20))
@example("%252e%252e/x")
@example("a%2F..%2F..")
def test_an_accepted_path_stays_under_the_base_however_often_it_is_decoded(path: str) -> None:
    """Whatever a server does with the path the vault sends (decode it once, twice or until it stops changing, cut
    ';parameters' off its segments, take backslashes for slashes) and then resolves per RFC 3986 §5.2.4, it lands
    under the API base; and the first decoding, the one RFC 3986 gives, means what the caller's path meant."""
    try:
        wire = api_path(path)
    except PathRefused:
        return
    assert wire.isascii()
    assert not any(c in wire for c in "?#\\")
    assert all(" " < c < "\x7f" for c in wire)
    assert unquote(wire) == unquote(path)
    for reading in _readings(wire):
        for form in (reading, reading.replace("\\", "/"), "/".join(s.split(";")[0] for s in reading.split("/"))):
            assert remove_dot_segments("/api/" + form).startswith("/api/"), (path, wire, form)
            assert remove_dot_segments("/api/" + form) == "/api/" + form, (path, wire, form)


@given(st.text(max_size=30))
def test_a_query_goes_out_without_control_characters_or_a_fragment(query: str) -> None:
    try:
        sent = api_query(query)
    except PathRefused:
        assert any(c < " " or c == "\x7f" for c in query)
        return
    assert sent.isascii()
    assert "#" not in sent
    assert all(" " < c < "\x7f" for c in sent)
    assert unquote(sent) == unquote(query)
