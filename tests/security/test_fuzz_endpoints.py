"""Fuzzing every endpoint that reads a form, a query or a JSON body: whatever arrives, the answer is a response below
500 — never a server error, never a connection dropped without one.

Requests are made at the ASGI level, so the bytes are exactly the generated ones (raw query strings that are not
UTF-8, percent escapes of NUL or of surrogates, repeated and huge parameters, wrong content types), and each goes
to both ways ``frontdesk`` dispatches: the Starlette router (``create_app``) and the app ``frontdesk serve`` runs
(``asgi.served``), which calls the hot endpoints around the router. Examples are bounded so the module runs in well
under a minute on SQLite.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from conftest import Registered, remember
from frontdesk.asgi import served
from frontdesk.core import Frontdesk
from frontdesk.vault import api_key_store
from frontdesk.web import create_app

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

FORM_PATHS = [
    "/token",
    "/introspect",
    "/revoke",
    "/device_authorization",
    "/authorize",
    "/userinfo",
    "/device",
    "/device/decide",
    "/logout",
    "/logout/confirm",
    "/interaction/{id}/login",
    "/interaction/{id}/consent",
    "/interaction/{id}/second-factor",
    "/interaction/{id}/passkey",
    "/interaction/{id}/passkey/options",
    "/interaction/{id}/upstream",
    "/interaction/{id}/upstream/{id}",
    "/account/apps/revoke",
    "/account/approvals/decide",
    "/account/connections/disconnect",
    "/bc-authorize",
    "/account/sessions/sign-out",
    "/account/sessions/sign-out-everywhere",
    "/account/password",
    "/account/passkeys",
    "/account/passkeys/options",
    "/account/passkeys/rename",
    "/account/passkeys/remove",
    "/account/second-factor",
    "/account/second-factor/remove",
    "/account/recovery-codes",
    "/vault/connect/{id}",
    "/account/email",
    "/account/email/verify",
    "/email/verify",
    "/password/forgot",
    "/password/reset",
    "/admin/access/roles",
    "/admin/access/roles/revoke",
    "/admin/access/tokens",
    "/admin/access/tokens/revoke",
    "/admin/alerts",
    "/admin/audit/export",
    "/admin/catalog",
    "/admin/keys/rotate",
    "/admin/upstreams",
    "/admin/clients/change",
    "/admin/clients/delete",
    "/admin/clients/new",
    "/admin/clients/rotate-secret",
    "/admin/connections/delete",
    "/admin/people/{id}/{id}",
]
QUERY_PATHS = [
    "/authorize",
    "/register/{id}",
    "/userinfo",
    "/device",
    "/logout",
    "/interaction/{id}",
    "/interaction/{id}/login",
    "/interaction/{id}/upstream",
    "/upstream/{id}/callback",
    "/vault/callback",
    "/vault/connect/{id}",
    "/vault/connect",
    "/vault/connections",
    "/vault/connections/{id}",
    "/vault/connections/{id}/credentials",
    "/interaction/{id}/consent",
    "/interaction/{id}/second-factor",
    "/account",
    "/account/activity",
    "/account/apps",
    "/account/approvals",
    "/account/connections",
    "/account/security",
    "/account/sessions",
    "/account/second-factor",
    "/jwks",
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
    "/.well-known/oauth-protected-resource/mcp",
    "/email/verify",
    "/password/forgot",
    "/password/reset",
    "/healthz",
    "/readyz",
    "/admin",
    "/admin/access",
    "/admin/alerts",
    "/admin/audit",
    "/admin/catalog",
    "/admin/keys",
    "/admin/upstreams",
    "/admin/clients",
    "/admin/clients/new",
    "/admin/clients/view",
    "/admin/connections",
    "/admin/people",
    "/admin/people/{id}",
]
JSON_PATHS = ["/vault/connect-sessions", "/vault/check", "/register"]
# Routes fuzzed elsewhere: the proxy passes any path and body on to a provider (tests/vault/test_proxy_paths.py).
FUZZED_ELSEWHERE = {"/vault/proxy/{id}/{id}"}
# The admin API is fuzzed by schemathesis against its own OpenAPI document (tests/admin/test_api_schemathesis.py).
ADMIN_API = "/admin/api/v1/"

NAMES = st.sampled_from(
    [
        "grant_type", "code", "redirect_uri", "code_verifier", "client_id", "client_secret", "refresh_token", "scope",
        "resource", "token", "token_type_hint", "response_type", "state", "code_challenge", "code_challenge_method",
        "prompt", "max_age", "nonce", "client_assertion", "client_assertion_type", "device_code", "user_code",
        "request", "request_uri", "post_logout_redirect_uri", "id_token_hint", "csrf", "username", "password",
        "decision", "credential", "name", "passkey", "user", "integration", "error", "login_hint", "acr_values",
    ]
)  # fmt: skip
# Values as they go on the wire, already form-encoded: escapes of NUL, of a UTF-16 surrogate (ED A0 80), of bytes
# that are no UTF-8, broken escapes, bracketed hosts urllib refuses, and plain text of any kind, escaped.
ODD_WIRE_VALUES = st.sampled_from(
    [
        "%00", "%ED%A0%80", "%ff%fe", "%", "%zz", "%%", "%C0%80", "http://[::1", "https://[::1/cb", "http://a]b/",
        "https://[x]/", "https%3A%2F%2F%5B%3A%3A1", "[", "]", "[[]]", "{}", "%7B%22a%22%3A1%7D", "+", "++%2B",
        "authorization_code", "client_credentials", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code",
        "code", "S256", "openid", "none", "https://app.example/cb", "conf-client", "public-client", "-1",
        "99999999999999999999", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "eyJhbGciOiJub25lIn0.e30.",
        "eyJhbGciOiJFUzI1NiJ9." + "W1tb" * 200 + ".c2ln", "A" * 5000,
    ]
)  # fmt: skip
WIRE_VALUES = st.one_of(ODD_WIRE_VALUES, st.text(max_size=40).map(lambda v: quote(v, safe="")))
PAIRS = st.lists(st.tuples(NAMES, WIRE_VALUES), max_size=8)
REPEATS = st.integers(min_value=1, max_value=3)  # a parameter sent more than once
PATH_IDS = st.one_of(
    st.sampled_from(["unknown", "%00", "a%2Fb", "..", "%ED%A0%80", "%ff", "[::1", "x" * 300]),
    st.text(min_size=1, max_size=20).map(lambda v: quote(v, safe="")),
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=utf-8",
        "APPLICATION/X-WWW-FORM-URLENCODED",
        "application/json",
        "multipart/form-data; boundary=x",
        "text/plain",
        "",
        "application/x-www-form-urlencoded; charset=latin-1",
    ]
)
AUTHORIZATIONS = st.sampled_from(
    [None, "genuine", "genuine", "genuine", "Basic", "Basic !!!", "Basic Y29uZi1jbGllbnQ6", "Basic JTAwOiUwMA==",
     "Bearer x", "Bearer", "DPoP x", "Basic " + "A" * 300, "basic Y29uZi1jbGllbnQ6eA=="]
)  # fmt: skip
JSON_BODIES = st.one_of(
    st.sampled_from(
        [
            b'{"user": "\\ud800", "integration": "cal"}',
            b'{"user": "\\udfff\\ud800", "integration": "cal"}',
            b'{"user": "u\\u0000", "integration": "cal"}',
            b'{"user": "u-1", "integration": "cal", "params": {"shop\\u0000": "x"}}',
            b'{"user": "u-1", "integration": "cal", "return_url": "https://[::1"}',
            b'{"user": "u-1", "integration": "cal", "return_url": "http://a]b/"}',
            b'{"user": "u-1", "integration": "cal", "scopes": [[[]]]}',
            b'{"user": "u-1", "integration": "cal", "scopes": "repo"}',
            b'{"user": 1e400, "integration": "cal"}',
            b'{"user": NaN}',
            b'{"user": "u-1", "user": "u-2", "integration": "cal"}',
            b"\xef\xbb\xbf{}",
            b'{"user": "\xff"}',
            b"[" * 3000 + b"]" * 3000,
            b'{"a": ' + b'{"a": ' * 2000 + b"1" + b"}" * 2001,
            b"",
            b"null",
            b'"just a string"',
        ]
    ),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)),
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)),
        max_leaves=10,
    )
    .map(lambda v: {"user": "u-1", "integration": "cal", "extra": v})
    .map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"user": st.text(max_size=20), "integration": st.sampled_from(["cal", "", "nope"])},
        optional={
            "scopes": st.lists(st.text(max_size=10), max_size=3),
            "params": st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=2),
            "return_url": st.one_of(st.text(max_size=30), st.sampled_from(["https://[::1", "https://ok.example/"])),
        },
    ).map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
)


class Answer:
    """What went on the wire for one request: the status, or None when nothing was sent at all."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.body = b""


async def call(
    asgi: Any, method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]], body: bytes
) -> Answer:
    """One request straight through ASGI, as a server would make it: ``path`` is percent-decoded as uvicorn does,
    ``raw_path`` and the query string are the bytes as sent; the body arrives in two chunks."""
    from urllib.parse import unquote

    scope = {
        "type": "http",
        "method": method,
        "path": unquote(path),
        "raw_path": path.encode("latin-1"),
        "query_string": query,
        "headers": [(b"host", b"as.example"), *headers],
        "scheme": "https",
        "server": ("as.example", 443),
        "client": ("203.0.113.7", 5000),
        "root_path": "",
        "http_version": "1.1",
        "asgi": {"version": "3.0"},
    }
    chunks = [body[: len(body) // 2], body[len(body) // 2 :]]
    answer = Answer()

    async def receive() -> dict[str, Any]:
        if chunks:
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
        await asyncio.sleep(3600)  # no disconnect while the app still answers
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
        elif message["type"] == "http.response.body":
            answer.body += message.get("body", b"")

    # A server logs what the app raised; the wire shows only what was sent before it.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asgi(scope, receive, send), timeout=30)
    return answer


@pytest.fixture
def apps(fd: Frontdesk, secrets_seen: set[str], confidential: Registered, public: Registered) -> Any:
    """Both dispatches over one frontdesk, with registered clients, a vault integration and an API key, so that
    well-authenticated junk reaches the grant handlers and JSON bodies reach the store."""
    assert fd.vault is not None
    fd.vault.add_integration("cal", "github", "gh-client", "gh-secret-0123456789", ["repo"])
    remember(secrets_seen, "gh-secret-0123456789")
    _, key = api_key_store.create_api_key(fd.vault.engine, "platform backend")
    remember(secrets_seen, key.value)
    router, serving = create_app(fd), served(fd)
    genuine = base64.b64encode(f"{confidential.client_id}:{confidential.secret}".encode()).decode()
    yield {"router": router, "served": serving, "key": key.value, "basic": f"Basic {genuine}"}
    for app in (router, serving.app):
        assert isinstance(app, Starlette)
        asyncio.run(app.state.vault_http.aclose())


def assert_answered(apps: dict[str, Any], *request: Any) -> None:
    for dispatch in ("router", "served"):
        answer = asyncio.run(call(apps[dispatch], *request))
        assert answer.status is not None, (dispatch, request[:3], "no response: the connection would be dropped")
        assert answer.status < 500, (dispatch, request[:3], answer.status, answer.body[:300])
        assert b"Traceback" not in answer.body


def _encode(pairs: list[tuple[str, str]], repeats: int) -> bytes:
    return "&".join(f"{name}={value}" for name, value in pairs * repeats).encode()


def _fill(path: str, ident: str) -> str:
    return path.replace("{id}", ident)


@FUZZ
@given(
    path=st.sampled_from(FORM_PATHS),
    ident=PATH_IDS,
    pairs=PAIRS,
    repeats=REPEATS,
    content_type=CONTENT_TYPES,
    authorization=AUTHORIZATIONS,
    raw=st.one_of(st.none(), st.binary(max_size=100), st.just(b"a=" + b"b" * 70_000)),
)
def test_form_endpoints_never_answer_a_server_error(
    apps, path, ident, pairs, repeats, content_type, authorization, raw
):
    """Every form endpoint answers odd, repeated, oversized and undecodable parameters below 500."""
    headers = [(b"content-type", content_type.encode())] if content_type else []
    if authorization == "genuine":  # a correctly authenticated client: the grant handlers themselves see the junk
        headers.append((b"authorization", apps["basic"].encode()))
    elif authorization:
        headers.append((b"authorization", authorization.encode()))
    body = raw if raw is not None else _encode(pairs, repeats)
    assert_answered(apps, "POST", _fill(path, ident), b"", headers, body)


@FUZZ
@given(
    path=st.sampled_from(QUERY_PATHS),
    ident=PATH_IDS,
    pairs=PAIRS,
    repeats=REPEATS,
    raw=st.one_of(st.none(), st.binary(max_size=100)),
    bearer=st.booleans(),
)
def test_query_endpoints_never_answer_a_server_error(apps, path, ident, pairs, repeats, raw, bearer):
    """Every GET endpoint answers odd query strings — raw bytes that are no UTF-8 included — and odd path
    segments below 500."""
    headers = [(b"authorization", f"Bearer {apps['key']}".encode())] if bearer else []
    query = raw if raw is not None else _encode(pairs, repeats)
    assert_answered(apps, "GET", _fill(path, ident), query, headers, b"")


@FUZZ
@given(
    path=st.sampled_from(JSON_PATHS),
    body=JSON_BODIES,
    content_type=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", ""]),
    bearer=st.sampled_from(["key", "none", "junk"]),
)
def test_json_endpoints_never_answer_a_server_error(apps, path, body, content_type, bearer):
    """The vault API's JSON endpoints answer any body — lone surrogates, NULs, deep nesting, duplicate names, bytes
    that are no JSON — below 500."""
    headers = [(b"content-type", content_type.encode())] if content_type else []
    if bearer != "none":
        headers.append((b"authorization", f"Bearer {apps['key'] if bearer == 'key' else 'fd_key_x'}".encode()))
    assert_answered(apps, "POST", path, b"", headers, body)


def test_every_route_is_fuzzed(fd: Frontdesk) -> None:
    """A route added to the app is in one of the lists above (or named as fuzzed elsewhere): nothing escapes."""
    posted, got = set(), set()
    for route in create_app(fd).routes:
        path = re.sub(r"\{[^}]+\}", "{id}", getattr(route, "path", ""))
        methods = getattr(route, "methods", None) or set()
        if "POST" in methods:
            posted.add(path)
        if "GET" in methods:
            got.add(path)
    posted = {path for path in posted if not path.startswith(ADMIN_API)}
    got = {path for path in got if not path.startswith(ADMIN_API)}
    assert posted - set(FORM_PATHS) - set(JSON_PATHS) - FUZZED_ELSEWHERE == set()
    assert got - set(QUERY_PATHS) - FUZZED_ELSEWHERE == set()
