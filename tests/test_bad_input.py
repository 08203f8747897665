"""Bad input gets a 4xx with the spec's error — never a 5xx, never a stack trace."""

from __future__ import annotations

import asyncio
import base64

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from frontdesk.web import create_app

NAMES = st.sampled_from(
    [
        "grant_type",
        "code",
        "redirect_uri",
        "code_verifier",
        "client_id",
        "client_secret",
        "refresh_token",
        "scope",
        "resource",
        "token",
        "token_type_hint",
        "response_type",
        "state",
        "code_challenge",
        "code_challenge_method",
        "prompt",
        "max_age",
        "nonce",
        "client_assertion",
        "client_assertion_type",
        "device_code",
        "request",
    ]
)
VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "code",
            "S256",
            "plain",
            "openid",
            "urn:ietf:params:oauth:grant-type:device_code",
            "https://app.example/cb",
            "none login",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "eyJhbGciOiJub25lIn0.e30.",
            "-1",
        ]
    ),
)
PAIRS = st.lists(st.tuples(NAMES, VALUES), max_size=8)
HEADERS = st.one_of(
    st.none(),
    st.sampled_from(
        ["Basic", "Basic !!!", "Basic Y29uZi1jbGllbnQ6", "Bearer x", "Basic Y29uZi1jbGllbnQ6eA==", "basic " + "A" * 200]
    ),
)
ENDPOINTS = [
    "/token",
    "/introspect",
    "/revoke",
    "/device_authorization",
    "/userinfo",
    "/authorize",
    "/device",
    "/device/decide",
    "/interaction/unknown/login",
    "/interaction/unknown/consent",
    "/interaction/unknown",
]


async def _send(fd, endpoint: str, query: list[tuple[str, str]] | None, body: bytes, headers: dict[str, str]):
    transport = httpx.ASGITransport(app=create_app(fd), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://as.example") as client:
        if endpoint in ("/authorize", "/userinfo", "/device", "/interaction/unknown") and query is not None:
            return await client.get(endpoint, params=query, headers=headers)
        return await client.post(endpoint, content=body, headers=headers)


def _body(pairs: list[tuple[str, str]]) -> bytes:
    from urllib.parse import urlencode

    return urlencode(pairs).encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    pairs=PAIRS,
    authorization=HEADERS,
    content_type=st.sampled_from(["application/x-www-form-urlencoded", "application/json", "text/plain", ""]),
    raw=st.booleans(),
    junk=st.binary(max_size=64),
    genuine=st.booleans(),
)
def test_random_requests_never_yield_a_server_error(
    fd, confidential, public, endpoint, pairs, authorization, content_type, raw, junk, genuine
):
    """Whatever arrives at a protocol endpoint, the answer is below 500 and carries no traceback."""
    headers = {"content-type": content_type} if content_type else {}
    if genuine:  # a correctly authenticated client, so the grant handlers themselves see the junk
        token = base64.b64encode(f"{confidential.client_id}:{confidential.secret}".encode()).decode()
        headers["authorization"] = f"Basic {token}"
    elif authorization:
        headers["authorization"] = authorization
    body = junk if raw else _body(pairs)
    response = asyncio.run(_send(fd, endpoint, pairs if not raw else None, body, headers))
    assert response.status_code < 500, (endpoint, pairs, response.text)
    assert "Traceback" not in response.text


async def test_a_client_that_hangs_up_mid_body_is_no_server_error(fd, caplog):
    """A request whose client disconnects before its body arrives ends quietly, without an error log."""
    app = create_app(fd)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/token",
        "raw_path": b"/token",
        "query_string": b"",
        "headers": [(b"content-type", b"application/x-www-form-urlencoded"), (b"host", b"as.example")],
        "scheme": "https",
        "server": ("as.example", 443),
        "client": ("203.0.113.7", 5000),
        "root_path": "",
        "http_version": "1.1",
        "asgi": {"version": "3.0"},
    }
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert sent[0]["status"] == 400
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
