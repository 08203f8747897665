"""Signing in with another provider, against node-oidc-provider as the upstream (tests/peers): the code flow with
PKCE, state and nonce; new accounts; linking by verified email only after the person confirms; and every way a
trip back can be refused (wrong state, replay, another browser, tampered nonce, mixed-up issuer)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio
import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey
from sqlalchemy import select

from conftest import ISSUER, MASTER_KEY, Browser, Registered, basic, csrf_of, pkce, query, remember
from frontdesk.oauth.signin_throttle import record_failure, refusal
from frontdesk.secret import Secret, digest
from frontdesk.storage import audit
from frontdesk.storage.db import now
from frontdesk.storage.schema import UpstreamIdentity, User
from frontdesk.upstream import ProviderError, add_provider, list_providers, remove_provider
from frontdesk.upstream.id_token import InvalidIdToken, validate_id_token
from frontdesk.web import create_app
from peers.oidc_provider import Op, OpAccount, OpClient, running_op, sign_in_and_consent
from test_authorize import params_for

pytestmark = pytest.mark.interop

SECRET = "frontdesk-at-the-op-" + "s" * 32
OP_CLIENT = OpClient("frontdesk", SECRET, [f"{ISSUER}/upstream/op/callback", f"{ISSUER}/upstream/plain/callback"])
NEWBIE = OpAccount("newbie", "newbie@example.org", "newbie password", name="New Person")
ALICE_UP = OpAccount("alice-up", "alice@example.com", "alice upstream password", name="Alice Upstream")
MALLORY = OpAccount("mallory", "alice@example.com", "mallory password", email_verified=False, name="Not Alice")


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Op]:
    with running_op(tmp_path_factory.mktemp("op"), clients=[OP_CLIENT], accounts=[NEWBIE, ALICE_UP, MALLORY]) as op:
        yield op


@pytest.fixture(autouse=True)
def upstream_tokens(monkeypatch: pytest.MonkeyPatch, secrets_seen: set[str]) -> list[dict[str, Any]]:
    """Every token response frontdesk gets from the provider, remembered as a secret: the suite then proves none
    of them lands in the database or the log."""
    bodies: list[dict[str, Any]] = []
    real = httpx.Client

    def hook(response: httpx.Response) -> None:
        if response.request.method == "POST" and response.request.url.path.endswith("/token"):
            response.read()
            body = response.json()
            remember(secrets_seen, *(str(body.get(k) or "") for k in ("access_token", "id_token", "refresh_token")))
            bodies.append(body)

    def client(*args: Any, **kwargs: Any) -> httpx.Client:
        return real(*args, event_hooks={"response": [hook]}, **kwargs)

    monkeypatch.setattr("frontdesk.upstream.arrival.httpx.Client", client)
    return bodies


@pytest.fixture
def provider(fd, op: Op, secrets_seen: set[str]) -> str:
    remember(secrets_seen, SECRET)
    with httpx.Client() as http:
        add_provider(fd, http, "op", discovery_url=op.issuer, client_id="frontdesk", client_secret=Secret(SECRET))
    return "op"


# --- driving the browser ------------------------------------------------------------------------------------------


async def login_page(http: httpx.AsyncClient, client: Registered) -> httpx.Response:
    page = await Browser(http, "", "").follow(await http.get("/authorize", params=params_for(client)))
    assert 'name="password"' in page.text, page.text
    return page


async def leave_for(http: httpx.AsyncClient, client: Registered, name: str = "op") -> str:
    """Press "Continue with …" on the sign-in page; returns the provider's authorization URL."""
    page = await login_page(http, client)
    action = re.search(rf'<form method="post" action="(/interaction/[^"/]+/upstream/{name})"', page.text)
    assert action, page.text
    response = await http.post(action.group(1), data={"csrf": csrf_of(page.text)})
    assert response.status_code == 303, response.text
    return response.headers["location"]


async def at_provider(authorization_url: str, account: OpAccount, consent: bool = True) -> str:
    """Sign in and consent at the provider; returns the callback URL it sends the browser to."""
    return await anyio.to_thread.run_sync(
        lambda: sign_in_and_consent(authorization_url, account.id, account.password, consent=consent)
    )


async def through(http: httpx.AsyncClient, client: Registered, account: OpAccount) -> httpx.Response:
    """The whole trip: out to the provider and back; returns the answer to the callback."""
    return await http.get(await at_provider(await leave_for(http, client), account))


async def finish(http: httpx.AsyncClient, callback: httpx.Response) -> httpx.Response:
    """From the callback's redirect to where the interaction goes next (consent, or the link page)."""
    assert callback.status_code == 303, callback.text
    assert re.fullmatch(r"/interaction/[^/]+/upstream", callback.headers["location"])
    return await Browser(http, "", "").follow(await http.get(callback.headers["location"]))


async def allow_and_redeem(http: httpx.AsyncClient, page: httpx.Response, client: Registered) -> dict[str, Any]:
    """Allow on the consent page, then redeem the code. The code was asked for with params_for's own PKCE
    challenge, so this redeems with a fresh request instead: sign-in is done, and the session carries over."""
    assert 'value="allow"' in page.text, page.text
    action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
    await http.post(action, data={"csrf": csrf_of(page.text), "decision": "allow"})
    verifier, challenge = pkce()
    response = await http.get(
        "/authorize", params=params_for(client, code_challenge=challenge, scope="openid profile email")
    )
    page = await Browser(http, "", "").follow(response)
    if page.status_code == 200 and 'value="allow"' in page.text:
        action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
        page = await http.post(action, data={"csrf": csrf_of(page.text), "decision": "allow"})
    code = query(page.headers["location"])["code"]
    tokens = await http.post(
        "/token", auth=basic(client), data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    )
    assert tokens.status_code == 200, tokens.text
    return tokens.json()


def fresh_browser(fd) -> httpx.AsyncClient:
    """Another browser (no cookies) at another address, on the same server and database."""
    transport = httpx.ASGITransport(app=create_app(fd), client=("198.51.100.3", 1))
    return httpx.AsyncClient(transport=transport, base_url=ISSUER)


def signed_in(response: httpx.Response) -> bool:
    """The interaction went on as for a signed-in person: to consent, or (consented before) back to the client."""
    if response.status_code == 303:
        return "code" in query(response.headers["location"])
    return 'value="allow"' in response.text


def users(fd) -> dict[str, Any]:
    with fd.engine.connect() as conn:
        return {r.username: r for r in conn.execute(select(User))}


def identities(fd) -> list[Any]:
    with fd.engine.connect() as conn:
        return list(conn.execute(select(UpstreamIdentity)))


def refusals(fd) -> list[str]:
    return [
        e.detail["reason"]
        for e in audit.tail(fd.engine, 100)
        if e.event == "upstream.signin" and e.outcome == "refused"
    ]


# --- the sign-in page -------------------------------------------------------------------------------------------


async def test_sign_in_page_offers_each_provider(http, confidential, provider, fd):
    """Each provider is a "Continue with …" button after the password form; a removed one is gone."""
    page = await login_page(http, confidential)
    assert "Continue with Op" in page.text
    assert page.text.index('name="password"') < page.text.index("Continue with Op")
    remove_provider(fd, provider)
    assert "Continue with" not in (await login_page(http, confidential)).text


async def test_the_trip_uses_pkce_state_and_nonce(http, confidential, provider):
    """The authorization request to the provider carries S256 PKCE, a state and a nonce, and our callback."""
    url = urlsplit(await leave_for(http, confidential))
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 43
    assert len(params["nonce"]) >= 43
    assert params["redirect_uri"] == f"{ISSUER}/upstream/op/callback"
    assert params["scope"] == "openid email profile"


# --- who signs in -------------------------------------------------------------------------------------------------


async def test_first_sign_in_creates_an_account(http, confidential, provider, fd, upstream_tokens):
    """A person new here gets an account (with the provider's verified email), and ID tokens say amr fed."""
    page = await finish(http, await through(http, confidential, NEWBIE))
    tokens = await allow_and_redeem(http, page, confidential)
    created = users(fd)["op-newbie"]
    assert created.email == NEWBIE.email
    assert created.name == NEWBIE.name
    claims = fd.keys.verify(tokens["id_token"]).claims
    assert claims["sub"] == created.id
    assert claims["amr"] == ["fed"]
    assert [(i.provider, i.subject, i.user_id) for i in identities(fd)] == [("op", NEWBIE.id, created.id)]
    # The provider's tokens stay with frontdesk: the client gets frontdesk's own, and nothing of the provider's.
    assert upstream_tokens
    for body in upstream_tokens:
        assert body["access_token"] not in str(tokens)
        assert body["id_token"] not in str(tokens)
    assert [e.outcome for e in audit.tail(fd.engine) if e.event == "upstream.signin"] == ["created"]


async def test_the_same_upstream_account_signs_in_to_the_same_account(http, confidential, provider, fd):
    """The second trip finds the linked account: no new account."""
    await finish(http, await through(http, confidential, NEWBIE))
    async with fresh_browser(fd) as again:
        page = await finish(again, await through(again, confidential, NEWBIE))
        assert 'value="allow"' in page.text
    assert [u for u in users(fd) if u.startswith("op-")] == ["op-newbie"]


async def test_a_second_sign_in_does_not_fetch_the_provider_keys_again(confidential, provider, fd, op):
    """Two people signing in through the provider in one process: its JWKS is fetched for the first only."""
    app = create_app(fd)
    op.reset_counts()
    try:
        for address in ("198.51.100.3", "198.51.100.4"):
            transport = httpx.ASGITransport(app=app, client=(address, 1))
            async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as browser:
                assert signed_in(await finish(browser, await through(browser, confidential, NEWBIE)))
    finally:
        await app.state.vault_http.aclose()
    assert op.counts()["jwks"]["requests"] == 1


async def test_verified_email_links_only_after_the_password(http, confidential, provider, fd, person):
    """An upstream account whose verified email is alice's is offered the link; a wrong password links nothing;
    alice's password links and signs in as alice; later trips go straight in."""
    page = await finish(http, await through(http, confidential, ALICE_UP))
    assert page.status_code == 200
    assert "Link your account?" in page.text
    assert "alice@example.com" in page.text
    assert identities(fd) == []
    action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
    wrong = await http.post(action, data={"csrf": csrf_of(page.text), "decision": "link", "password": "not hers!"})
    assert wrong.status_code == 401
    assert "Wrong password." in wrong.text
    assert identities(fd) == []
    linked = await http.post(action, data={"csrf": csrf_of(page.text), "decision": "link", "password": person[1]})
    tokens = await allow_and_redeem(http, await Browser(http, "", "").follow(linked), confidential)
    alice = users(fd)["alice"]
    claims = fd.keys.verify(tokens["id_token"]).claims
    assert claims["sub"] == alice.id
    assert set(claims["amr"]) == {"fed", "pwd"}
    assert [(i.subject, i.user_id) for i in identities(fd)] == [(ALICE_UP.id, alice.id)]
    async with fresh_browser(fd) as other:
        again = await finish(other, await through(other, confidential, ALICE_UP))
    assert signed_in(again)
    assert len(users(fd)) == 1


async def test_declining_the_link_links_nothing(http, confidential, provider, fd, person):
    """Cancel on the link page goes back to the sign-in page; no account is linked or made."""
    page = await finish(http, await through(http, confidential, ALICE_UP))
    action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
    response = await http.post(action, data={"csrf": csrf_of(page.text), "decision": "cancel"})
    assert response.status_code == 303
    assert response.headers["location"].endswith("/login")
    assert identities(fd) == []
    assert list(users(fd)) == ["alice"]


async def test_unverified_email_is_never_linked(http, confidential, provider, fd, person):
    """An upstream account claiming alice's address without email_verified gets an account of its own, without
    that address, and alice's account is untouched."""
    page = await finish(http, await through(http, confidential, MALLORY))
    assert 'value="allow"' in page.text
    assert sorted(users(fd)) == ["alice", "op-mallory"]
    created = users(fd)["op-mallory"]
    assert created.email is None
    assert [i.user_id for i in identities(fd)] == [created.id]


async def test_password_failures_do_not_stop_an_upstream_sign_in(http, confidential, provider, fd, person):
    """However many wrong passwords alice's account has, from anywhere, her linked provider still signs her in."""
    page = await finish(http, await through(http, confidential, ALICE_UP))
    action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
    await http.post(action, data={"csrf": csrf_of(page.text), "decision": "link", "password": person[1]})
    for address in ("198.51.100.3", "192.0.2.1", "192.0.2.2"):
        for _ in range(30):
            record_failure(fd, "alice", address, now())
    assert refusal(fd, "alice", "198.51.100.3", now()) is not None  # her password would have to wait here
    async with fresh_browser(fd) as other:
        again = await finish(other, await through(other, confidential, ALICE_UP))
    assert signed_in(again)


# --- refused trips back -------------------------------------------------------------------------------------------


def with_param(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    params[name] = value
    return parts._replace(query=urlencode(params)).geturl()


async def test_wrong_state_is_refused(http, confidential, provider, fd):
    """A callback whose state this server never issued is refused with a page."""
    callback = await at_provider(await leave_for(http, confidential), NEWBIE)
    response = await http.get(with_param(callback, "state", "forged-state-" + "x" * 30))
    assert response.status_code == 400
    assert "not valid" in response.text
    assert refusals(fd) == ["unknown_state"]
    assert "op-newbie" not in users(fd)


async def test_replayed_callback_is_refused(http, confidential, provider, fd):
    """The same callback twice: the first signs in, the second is refused."""
    callback = await at_provider(await leave_for(http, confidential), NEWBIE)
    assert (await http.get(callback)).status_code == 303
    replay = await http.get(callback)
    assert replay.status_code == 400
    assert "already used" in replay.text
    assert refusals(fd) == ["replayed"]


async def test_tampered_nonce_is_refused(http, confidential, provider, fd):
    """A nonce changed on the way to the provider comes back in the ID token and does not match: refused."""
    url = await leave_for(http, confidential)
    callback = await at_provider(with_param(url, "nonce", "tampered-" + "n" * 40), NEWBIE)
    response = await http.get(callback)
    assert response.status_code == 400
    assert "could not sign you in" in response.text
    assert refusals(fd) == ["invalid_id_token"]
    assert "op-newbie" not in users(fd)


async def test_callback_in_another_browser_is_refused(http, confidential, provider, fd):
    """A callback opened in a browser that did not start the trip (login CSRF) is refused, and stays usable."""
    callback = await at_provider(await leave_for(http, confidential), NEWBIE)
    async with fresh_browser(fd) as stranger:
        refused = await stranger.get(callback)
    assert refused.status_code == 400
    assert "another browser" in refused.text
    assert (await http.get(callback)).status_code == 303


async def test_mixed_up_issuer_is_refused(http, confidential, provider, fd):
    """RFC 9207: an iss in the response that is not this provider's is refused (mix-up defence)."""
    callback = await at_provider(await leave_for(http, confidential), NEWBIE)
    response = await http.get(with_param(callback, "iss", "https://evil.example"))
    assert response.status_code == 400
    assert refusals(fd) == ["issuer_mismatch"]


async def test_denied_at_the_provider(http, confidential, provider, fd):
    """The person denies at the provider: a page that says so and leads back to the sign-in page."""
    callback = await at_provider(await leave_for(http, confidential), NEWBIE, consent=False)
    response = await http.get(callback)
    assert response.status_code == 400
    assert "Op could not sign you in" in response.text
    assert re.search(r'href="/interaction/[^"]+/login"', response.text)
    assert refusals(fd) == ["provider_error"]


# --- plain OAuth 2.0 providers ------------------------------------------------------------------------------------


async def test_plain_oauth2_provider_signs_in_by_its_userinfo(http, confidential, fd, op, secrets_seen):
    """A provider added by endpoints (as GitHub would be) is asked its userinfo URL who signed in."""
    remember(secrets_seen, SECRET)
    meta = op.metadata()
    with httpx.Client() as client:
        add_provider(
            fd,
            client,
            "plain",
            client_id="frontdesk",
            client_secret=Secret(SECRET),
            authorization_endpoint=meta["authorization_endpoint"],
            token_endpoint=meta["token_endpoint"],
            userinfo_endpoint=meta["userinfo_endpoint"],
            scope="openid email",
            display_name="Plain",
        )
    callback = await at_provider(await leave_for(http, confidential, "plain"), NEWBIE)
    response = await http.get(callback)
    assert response.status_code == 303, [e.detail for e in audit.tail(fd.engine) if e.event == "upstream.signin"]
    page = await finish(http, response)
    assert 'value="allow"' in page.text
    assert users(fd)["plain-newbie"].email == NEWBIE.email
    assert [(i.provider, i.subject) for i in identities(fd)] == [("plain", NEWBIE.id)]


# --- operators: registering providers -----------------------------------------------------------------------------


def test_cli_adds_lists_and_deletes_a_provider(fd, fd_database, op, tmp_path, secrets_seen):
    """`frontdesk upstream add` reads the secret from stdin and keeps it sealed; list shows no secret; delete."""
    remember(secrets_seen, SECRET)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    env |= {
        "FRONTDESK_HOME": str(tmp_path),
        "FRONTDESK_DATABASE_URL": fd_database,
        "FRONTDESK_ISSUER": ISSUER,
        "FRONTDESK_MASTER_KEY": MASTER_KEY,
    }

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "frontdesk", *args, "--json"],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    added = cli(
        "upstream", "add", "google", "--discovery-url", op.issuer, "--client-id", "frontdesk",
        "--client-secret-stdin", "--display-name", "Google", stdin=SECRET + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert SECRET not in added.stdout
    shown = json.loads(added.stdout)
    assert shown["redirect_uri"] == f"{ISSUER}/upstream/google/callback"
    assert shown["issuer"] == op.issuer
    listed = cli("upstream", "list")
    assert SECRET not in listed.stdout
    assert [p["name"] for p in json.loads(listed.stdout)] == ["google"]
    assert [p.display_name for p in list_providers(fd)] == ["Google"]
    assert cli("upstream", "delete", "google").returncode == 0
    assert list_providers(fd) == []


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("Bad Name", {"discovery_url": "OP"}),
        ("op", {"discovery_url": "OP/elsewhere"}),  # issuer in the document is not this URL
        (
            "op",
            {"authorization_endpoint": "http://evil.example/a", "token_endpoint": "OP/t", "userinfo_endpoint": "OP/"},
        ),
        ("op", {"authorization_endpoint": "OP/a", "token_endpoint": "OP/t"}),  # plain OAuth 2.0 needs userinfo
    ],
)
def test_providers_that_cannot_work_are_refused(fd, op, name, kwargs):
    """Names, discovery documents whose issuer differs, plain-http endpoints off loopback, missing userinfo."""
    filled = {k: v.replace("OP", op.issuer) for k, v in kwargs.items()}
    with httpx.Client() as client, pytest.raises(ProviderError):
        add_provider(fd, client, name, client_id="frontdesk", client_secret=Secret(SECRET), **filled)


# --- the upstream ID token, check by check (OpenID Connect Core §3.1.3.7) -----------------------------------------

KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
JWKS = {"keys": [KEY.as_dict(private=False)]}
NOW = 1_700_000_000
GOOD = {
    "iss": "https://op.example",
    "aud": "frontdesk",
    "sub": "u1",
    "iat": NOW,
    "exp": NOW + 300,
    "nonce": "the-nonce",
}


def check(claims: dict[str, Any], header: dict[str, Any] | None = None, key: Any = KEY) -> dict[str, Any]:
    token = jwt.encode(header or {"alg": "RS256", "kid": "k1"}, claims, key)
    return validate_id_token(
        token, jwks=JWKS, issuer="https://op.example", client_id="frontdesk", nonce_digest=digest("the-nonce"), at=NOW
    )


def test_a_good_id_token_passes():
    assert check(GOOD)["sub"] == "u1"


@pytest.mark.parametrize(
    "change",
    [
        {"iss": "https://evil.example"},
        {"aud": "someone-else"},
        {"aud": ["frontdesk", "other"]},  # several audiences need azp
        {"azp": "other"},
        {"exp": NOW - 120},
        {"iat": NOW + 3600},
        {"nonce": "another-nonce"},
        {"nonce": None},
        {"sub": ""},
    ],
    ids=str,
)
def test_each_claim_check_refuses(change):
    claims = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(InvalidIdToken):
        check(claims)


def test_a_token_signed_by_another_key_is_refused():
    other = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
    with pytest.raises(InvalidIdToken):
        check(GOOD, key=other)


def test_symmetric_and_unsigned_tokens_are_refused():
    """HS256 with a guessable key, or alg none, is never an upstream ID token."""
    with pytest.raises(InvalidIdToken):
        check(GOOD, {"alg": "HS256", "kid": "k1"}, OctKey.import_key("x" * 32))
    header = "eyJhbGciOiJub25lIn0"
    payload = jwt.encode({"alg": "RS256", "kid": "k1"}, GOOD, KEY).split(".")[1]
    with pytest.raises(InvalidIdToken):
        validate_id_token(
            f"{header}.{payload}.", jwks=JWKS, issuer=GOOD["iss"], client_id="frontdesk",
            nonce_digest=digest("the-nonce"), at=NOW,
        )  # fmt: skip


def test_an_unknown_kid_is_refused():
    with pytest.raises(InvalidIdToken):
        check(GOOD, {"alg": "RS256", "kid": "k2"})
