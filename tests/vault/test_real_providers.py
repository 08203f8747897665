"""The vault against real authorization servers on loopback, with frontdesk itself running as a process (see
``servers.py``) and set up through its CLI as an operator would: node-oidc-provider (generic OpenID Connect from a
discovery URL, rotating refresh tokens), and a second frontdesk as the upstream provider.

Each scenario connects through the real pages, calls the provider's API through the proxy, lets the access token
expire (or fall due) so that the next call refreshes (exactly once: oidc-provider and frontdesk both rotate refresh
tokens and treat a replayed one as theft, so a double refresh would kill the grant), revokes at the provider and sees
``needs_reauth``; one runs two ``frontdesk serve`` processes on one database and races 50 calls across them. After
each, the provider's tokens (read back through the audited export API) must not be in the database nor in any log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from sqlalchemy import MetaData, create_engine, select, text

from conftest import SEEN
from frontdesk.storage.db import normalise_url
from peers.oidc_provider import Op, OpAccount, OpClient, running_op, sign_in_and_consent
from servers import (
    START_ATTEMPTS,
    START_TIMEOUT,
    STOP_TIMEOUT,
    Server,
    _free_port,
    _stop,
    assert_no_secret_in_log,
    serving,
)

pytestmark = pytest.mark.interop

# The vault counts expiry in whole seconds: with a 1 s refresh margin, a token that lives 5 s is not yet due for at
# least 3 s after it was issued (time enough to connect and call) and has expired 5-6 s later (bounded waits).
ACCESS_TTL = 5
REFRESH_MARGIN = 1
# In the race the token refreshed at its start must not fall due again before the last of the 50 calls is answered.
STORM_ACCESS_TTL = 10
# frontdesk gives a client's access tokens 30 s at the least: a margin of 15 s, half their lifetime (the most the
# vault takes ahead of expiry: vault/refresh.py ``margin``), makes the vault refresh one ahead of its expiry (DESIGN
# §6) 15 s after it was issued, while it is still valid at the upstream.
FD_ACCESS_TTL = 30
FD_REFRESH_MARGIN = FD_ACCESS_TTL // 2
SLACK = 0.05  # seconds past the moment the vault's own clock reaches, before the call that must refresh
HTTP_TIMEOUT = httpx.Timeout(30.0)
MAX_HOPS = 12
STORM = 50  # proxied calls raced across the two processes, half to each
USER = "u-alice"  # the platform's id of the person
STAND_IN_CALLBACK = "https://vault.example/vault/callback"  # see _set_redirect_uri

ALICE = OpAccount("alice", "alice@example.com", "alice at the provider " + secrets.token_urlsafe(8), name="Alice")
OP_SECRET = "op-client-secret-" + secrets.token_urlsafe(24)
FD_PASSWORD = "correct horse battery " + secrets.token_urlsafe(8)

# Operator provider files: the shipped entries with a refresh margin to suit the short tokens instead of 300 s (their
# default), which would refresh a token that lives seconds at every call.
PROVIDER_FILES = {
    "oidc-short": f'extends = "oidc"\nrefresh_margin = {REFRESH_MARGIN}\n',
    "frontdesk-early": f'extends = "frontdesk"\nrefresh_margin = {FD_REFRESH_MARGIN}\n',
}


def _remember(tokens: set[str], *values: Any) -> None:
    """Secrets to look for at rest and in every log, here and in the suite's own DEBUG log (conftest.SEEN)."""
    for value in values:
        if isinstance(value, str) and len(value) >= 8:
            tokens.add(value)
            SEEN.add(value)


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Independent set-up steps run side by side: each CLI command is a Python process that takes seconds to start."""
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        return [future.result() for future in futures]


def _fresh(directory: Path) -> Path:
    """A directory of its own for one ``serving`` (its home and its log), so two servers can share a test."""
    directory.mkdir()
    return directory


def _providers_dir(tmp_path: Path) -> dict[str, str]:
    directory = tmp_path / "providers"
    directory.mkdir()
    for name, toml in PROVIDER_FILES.items():
        (directory / f"{name}.toml").write_text(toml)
    return {"FRONTDESK_VAULT_PROVIDERS_DIR": str(directory)}


@dataclass
class Platform:
    """The platform's backend speaking to frontdesk's vault API with its API keys (one may export, audited)."""

    server: Server
    api_key: str
    export_key: str
    http: httpx.Client
    made: list[Any]  # what the set-up steps returned, in order

    @classmethod
    @contextlib.contextmanager
    def of(cls, server: Server, tokens: set[str], *setup: Callable[[], Any]) -> Iterator[Platform]:
        """Its two API keys from ``frontdesk apikey create``, made together with the rest of the ``setup``."""
        keys = (
            partial(server.cli, "apikey", "create", "--name", "platform backend"),
            partial(server.cli, "apikey", "create", "--name", "admin", "--export"),
        )
        done = at_once(*keys, *setup)
        api_key, export_key = (created["api_key"] for created in done[:2])
        assert api_key.startswith("fd_ak_")
        _remember(tokens, api_key, export_key)
        with httpx.Client(base_url=server.issuer, timeout=HTTP_TIMEOUT, follow_redirects=False) as http:
            yield cls(server, api_key, export_key, http, done[2:])

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.api_key}"}

    def connect_url(self, integration: str) -> str:
        created = self.http.post(
            "/vault/connect-sessions", json={"user": USER, "integration": integration}, headers=self.headers()
        )
        assert created.status_code == 201, created.text
        url: str = created.json()["connect_url"]
        assert url.startswith(f"{self.server.issuer}/vault/connect/fd_vc_"), url
        return url

    def connections(self) -> list[dict[str, Any]]:
        listing = self.http.get("/vault/connections", params={"user": USER}, headers=self.headers())
        assert listing.status_code == 200, listing.text
        found: list[dict[str, Any]] = listing.json()["connections"]
        return found

    def connection(self, connection_id: str) -> dict[str, Any]:
        response = self.http.get(f"/vault/connections/{connection_id}", headers=self.headers())
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def proxy(self, connection_id: str, path: str, method: str = "GET", **kwargs: Any) -> httpx.Response:
        headers = {**self.headers(), **kwargs.pop("headers", {})}
        return self.http.request(method, f"/vault/proxy/{connection_id}/{path}", headers=headers, **kwargs)

    def export(self, connection_id: str, tokens: set[str]) -> dict[str, Any]:
        """The provider's current tokens, through the admin-only export (which refreshes first only when due)."""
        response = self.http.get(
            f"/vault/connections/{connection_id}/credentials", headers=self.headers(self.export_key)
        )
        assert response.status_code == 200, response.text
        exported: dict[str, Any] = response.json()
        assert exported["access_token"]
        assert exported["refresh_token"]
        _remember(tokens, exported["access_token"], exported["refresh_token"])
        return exported

    def delete(self, connection_id: str) -> None:
        deleted = self.http.delete(f"/vault/connections/{connection_id}", headers=self.headers())
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["deleted"] is True
        gone = self.http.get(f"/vault/connections/{connection_id}", headers=self.headers())
        assert gone.status_code == 404, gone.text
        assert self.proxy(connection_id, "me").status_code == 404
        assert self.connections() == []


def _finish(platform: Platform, browser: httpx.Client, callback: str) -> dict[str, Any]:
    """The provider sent the browser back to frontdesk: the same browser lands on the callback, and is connected."""
    assert callback.startswith(f"{platform.server.issuer}/vault/callback?"), callback
    done = browser.get(callback)
    assert done.status_code == 200, done.text
    assert "connected" in done.text
    (connection,) = platform.connections()
    assert connection["status"] == "active"
    return connection


def open_link(browser: httpx.Client, connect_url: str) -> httpx.Response:
    """The connect link's page, then its Continue form: the answer is the redirect to the provider."""
    shown = browser.get(connect_url)
    assert shown.status_code == 200, shown.text
    page = _Forms()
    page.feed(shown.text)
    (form,) = page.forms
    return browser.post(urljoin(str(shown.url), form["action"]), data=form["inputs"])


def connect_at_op(platform: Platform, integration: str, account: OpAccount) -> dict[str, Any]:
    """connect link → the provider's authorization URL → its sign-in and consent → frontdesk's callback."""
    with httpx.Client(timeout=HTTP_TIMEOUT, follow_redirects=False) as browser:
        opened = open_link(browser, platform.connect_url(integration))
        assert opened.status_code == 303, opened.text
        assert "fd_vault" in browser.cookies  # this browser is now the one that must finish
        back = sign_in_and_consent(opened.headers["location"], account.email, account.password)
        return _finish(platform, browser, back)


class _Forms(HTMLParser):
    """The POST forms of a frontdesk page: action, hidden values, whether it asks for a password, its buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._form: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method", "").lower() == "post":
            self._form = {"action": a.get("action", ""), "inputs": {}, "password": False, "buttons": set()}
            self.forms.append(self._form)
        elif self._form is not None and tag == "input" and a.get("name"):
            if a.get("type") == "password":
                self._form["password"] = True
            self._form["inputs"][a["name"]] = a.get("value", "")
        elif self._form is not None and tag == "button" and a.get("name"):
            self._form["buttons"].add((a["name"], a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


def sign_in_at_frontdesk(browser: httpx.Client, authorization_url: str, username: str, password: str) -> str:
    """Through the upstream frontdesk's sign-in and consent pages (csrf, username, password, decision=allow);
    returns the URL it finally redirects to outside its own origin, without fetching it."""
    origin = urlsplit(authorization_url).netloc
    response = browser.get(authorization_url)
    signed_in = False
    for _ in range(MAX_HOPS):
        if response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if urlsplit(location).netloc != origin:
                return location
            response = browser.get(location)
            continue
        assert response.status_code == 200, f"{response.url} answered {response.status_code}: {response.text[:500]}"
        page = _Forms()
        page.feed(response.text)
        login = [f for f in page.forms if f["password"]]
        consent = [f for f in page.forms if ("decision", "allow") in f["buttons"]]
        if login and not signed_in:
            form, fields = login[0], {"username": username, "password": password}
            signed_in = True
        elif consent:
            form, fields = consent[0], {"decision": "allow"}
        else:
            pytest.fail(f"{response.url} shows neither a sign-in nor a consent form:\n{response.text[:800]}")
        response = browser.post(urljoin(str(response.url), form["action"]), data={**form["inputs"], **fields})
    pytest.fail(f"no redirect out of {origin} after {MAX_HOPS} hops")


def connect_at_frontdesk(platform: Platform, integration: str, username: str, password: str) -> dict[str, Any]:
    with httpx.Client(timeout=HTTP_TIMEOUT, follow_redirects=False) as browser:
        opened = open_link(browser, platform.connect_url(integration))
        assert opened.status_code == 303, opened.text
        back = sign_in_at_frontdesk(browser, opened.headers["location"], username, password)
        return _finish(platform, browser, back)


def wait_until_due(platform: Platform, connection_id: str, margin: int = 0, bound: int = ACCESS_TTL) -> dict[str, Any]:
    """Until the access token the vault holds is ``margin`` seconds from expiry by the vault's own clock; with no
    margin, until it has expired (the expiry the vault recorded is never later than the provider's: it counts from
    after the token response, in whole seconds). A wait on the clock, bounded by ``bound`` seconds."""
    connection = platform.connection(connection_id)
    if margin and connection.get("refreshed_at") is not None:
        # The vault's own cap (vault.refresh.margin): never more than half the lifetime the provider gave, which
        # may be a second short of the configured TTL (the provider counts from its issue time, in whole seconds).
        margin = min(margin, (connection["expires_at"] - connection["refreshed_at"]) // 2)
    at = connection["expires_at"] - margin
    remaining = at - time.time()
    assert remaining <= bound + 1, connection
    if remaining > 0:
        time.sleep(remaining + SLACK)
    assert time.time() >= at
    return connection


def assert_needs_reauth(platform: Platform, connection_id: str, path: str) -> None:
    """A proxied call on a dead grant: 424 with the structured answer and a fresh connect link, never an error
    string; the connection is listed as needs_reauth."""
    dead = platform.proxy(connection_id, path)
    assert dead.status_code == 424, dead.text
    body = dead.json()
    assert body["status"] == "authorization_required"
    assert body["reason"] == "needs_reauth"
    assert body["authorization_url"].startswith(f"{platform.server.issuer}/vault/connect/fd_vc_")
    assert "Reconnect" in body["message"]
    (listed,) = platform.connections()
    assert listed["id"] == connection_id
    assert listed["status"] == "needs_reauth"
    assert listed["last_error"] == "invalid_grant"


# --- what must not be at rest or in a log ---------------------------------------------------------------------


def _database_url(server: Server) -> str:
    home = Path(server.env["FRONTDESK_HOME"])
    return server.env.get("FRONTDESK_DATABASE_URL") or f"sqlite:///{home / 'frontdesk.db'}"


def _stored(server: Server) -> bytes:
    """Everything the server's database holds: the SQLite files' bytes (the WAL too), or every row of every table."""
    if server.backend == "sqlite":
        home = Path(server.env["FRONTDESK_HOME"])
        files = sorted(home.glob("frontdesk.db*"))
        assert home / "frontdesk.db" in files, files
        return b"".join(path.read_bytes() for path in files)
    engine = create_engine(normalise_url(_database_url(server)))
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        with engine.connect() as conn:
            rows = [repr(tuple(row)) for table in metadata.sorted_tables for row in conn.execute(select(table))]
    finally:
        engine.dispose()
    assert rows
    return "\n".join(rows).encode()


def assert_not_at_rest(server: Server, tokens: set[str], known: str = USER) -> None:
    """No token in the clear in the server's database; ``known`` (stored in the clear) shows the scan sees rows."""
    stored = _stored(server)
    assert known.encode() in stored
    leaked = sorted(t[:12] + "…" for t in tokens if t.encode() in stored)
    assert not leaked, f"secrets in the clear in the {server.backend} database: {leaked}"


def assert_not_logged(logs: list[Path], tokens: set[str]) -> None:
    """No token in any server's DEBUG log (nor anything shaped like a frontdesk credential), and no error logged."""
    for log in logs:
        text = log.read_text(errors="replace")
        leaked = sorted(t[:12] + "…" for t in tokens if t in text)
        assert not leaked, f"secrets in the server log {log}: {leaked}"
        assert_no_secret_in_log(log)
        errors = [line for line in text.splitlines() if re.search(r'"level": ?"(error|critical)"|Traceback', line)]
        assert not errors, f"{log} holds errors:\n" + "\n".join(errors[:10])


def _add_oidc_integration(server: Server, op: Op, client: OpClient) -> None:
    added = server.cli(
        "vault", "integration", "add", "provider", "--provider", "oidc-short", "--client-id", client.client_id,
        "--client-secret-stdin", "--param", f"discovery_url={op.issuer}/.well-known/openid-configuration",
        "--param", f"api_base_url={op.issuer}/api",
        stdin=client.client_secret + "\n",
    )  # fmt: skip
    assert added["provider"] == "oidc-short"
    assert added["has_client_secret"] is True
    assert "client_secret" not in added


def _op_client(server: Server) -> OpClient:
    return OpClient("frontdesk-vault", OP_SECRET, [f"{server.issuer}/vault/callback"])


# --- 1. node-oidc-provider ------------------------------------------------------------------------------------


def test_node_oidc_provider_connect_call_refresh_revoke_delete(backend: str, tmp_path: Path) -> None:
    """Generic OpenID Connect from node-oidc-provider's discovery document: connect through its real pages, call its
    API as the person, refresh exactly once when the access token expires (the rotated refresh token kept), then
    revoke at the provider → 424 needs_reauth, and delete."""
    tokens: set[str] = {OP_SECRET, ALICE.password}
    with serving(backend, _fresh(tmp_path / "vault"), env=_providers_dir(tmp_path)) as server:
        client = _op_client(server)
        with (
            running_op(tmp_path / "op", clients=[client], accounts=[ALICE], access_token_ttl=ACCESS_TTL) as op,
            Platform.of(server, tokens, partial(_add_oidc_integration, server, op, client)) as platform,
        ):
            connection = connect_at_op(platform, "provider", ALICE)
            cid = connection["id"]
            assert {"openid", "offline_access"} <= set(connection["scopes"])
            assert connection["expires_at"] <= time.time() + ACCESS_TTL
            first = platform.export(cid, tokens)
            assert op.refresh_count() == 0

            me = platform.proxy(cid, "me")
            assert me.status_code == 200, me.text
            assert me.json()["sub"] == ALICE.id
            assert me.json()["client_id"] == client.client_id
            echo = platform.proxy(
                cid, "echo/items", "POST", params={"q": "1"}, json={"title": "lunch"},
                headers={"X-Trace": "t1", "Cookie": "platform=1"},
            )  # fmt: skip
            assert echo.status_code == 200, echo.text
            echoed = echo.json()
            assert echoed["path"] == "/api/echo/items"
            assert echoed["query"] == {"q": "1"}
            assert echoed["json"] == {"title": "lunch"}
            assert echoed["headers"]["x-trace"] == "t1"
            assert "cookie" not in echoed["headers"]  # the platform's own headers stay home
            assert first["access_token"] not in echo.text
            assert op.refresh_count() == 0  # not due yet: no refresh

            before = wait_until_due(platform, cid)
            refreshed = platform.proxy(cid, "me")
            assert refreshed.status_code == 200, refreshed.text
            assert refreshed.json()["sub"] == ALICE.id
            assert op.refresh_count() == 1
            assert op.counts()["refresh_token"]["succeeded"] == 1
            after = platform.connection(cid)
            assert after["status"] == "active"
            assert after["expires_at"] > before["expires_at"]
            assert after["refreshed_at"] >= before["expires_at"]
            second = platform.export(cid, tokens)
            assert second["access_token"] != first["access_token"]
            assert second["refresh_token"] != first["refresh_token"]  # rotated, and the new one kept
            again = platform.proxy(cid, "me")
            assert again.status_code == 200, again.text
            assert op.refresh_count() == 1  # the new token is used as it is

            assert op.revoke_all(ALICE.id) >= 1
            # The revoked access token is refused (401), the one refresh that follows gets invalid_grant.
            assert_needs_reauth(platform, cid, "me")
            assert op.refresh_count() == 2
            assert_needs_reauth(platform, cid, "me")
            assert op.refresh_count() == 2  # a dead connection does not call the provider again

            assert_not_at_rest(server, tokens)  # while the connection holds the provider's tokens
            platform.delete(cid)
            assert_not_at_rest(server, tokens)
    assert_not_logged([server.log], tokens)


# --- 2. frontdesk as the upstream provider ---------------------------------------------------------------------


def _set_redirect_uri(upstream: Server, client_id: str, redirect_uri: str) -> None:
    """Register the vault's loopback callback for a confidential client, as the database row the CLI would write
    for an https one: frontdesk keeps plain-http loopback redirect URIs to native (public) clients (RFC 8252,
    RFC 9700 §2.6), while a deployed vault's callback is https and the tests' vault speaks http on 127.0.0.1."""
    engine = create_engine(normalise_url(_database_url(upstream)))
    try:
        with engine.begin() as conn:
            updated = conn.execute(
                text("UPDATE clients SET redirect_uris = :uris WHERE client_id = :id"),
                {"uris": json.dumps([redirect_uri]), "id": client_id},
            )
            assert updated.rowcount == 1
    finally:
        engine.dispose()


def _upstream_events(upstream: Server) -> dict[str, int]:
    """How often each event is in the upstream frontdesk's audit log (``frontdesk audit tail``)."""
    events = upstream.cli("audit", "tail", "-n", "1000")
    counted: dict[str, int] = {}
    for event in events:
        counted[event["event"]] = counted.get(event["event"], 0) + 1
    return counted


def test_frontdesk_as_the_upstream_provider(backend: str, tmp_path: Path) -> None:
    """A second frontdesk process is the provider, with a confidential client for the vault: its person signs in and
    consents on its pages, the vault calls its UserInfo as that person, refreshes exactly once when the access token
    is due, refreshes and retries once when an access token revoked at the upstream is refused, and a refresh token
    revoked at the upstream (RFC 7009) turns the connection into needs_reauth."""
    tokens: set[str] = {FD_PASSWORD}
    with (
        serving(backend, _fresh(tmp_path / "upstream")) as upstream,
        serving(backend, _fresh(tmp_path / "vault"), env=_providers_dir(tmp_path)) as server,
    ):
        person = partial(
            upstream.cli, "user", "create", "--username", "alice", "--email", "alice@example.com", "--name",
            "Alice Example", "--password-stdin", stdin=FD_PASSWORD + "\n",
        )  # fmt: skip

        def app_and_integration() -> dict[str, Any]:
            """The platform's app at the upstream, then the vault's integration for it."""
            app: dict[str, Any] = upstream.cli(
                "client", "create", "--name", "The platform's vault", "--redirect-uri", STAND_IN_CALLBACK,
                "--grant-type", "authorization_code", "--grant-type", "refresh_token",
                "--access-token-ttl", str(FD_ACCESS_TTL),
                # the frontdesk catalog entry asks for email too (its default scopes)
                "--scope", "openid profile email offline_access",
            )  # fmt: skip
            _remember(tokens, app["client_secret"])
            _set_redirect_uri(upstream, app["client_id"], f"{server.issuer}/vault/callback")
            added = server.cli(
                "vault", "integration", "add", "home", "--provider", "frontdesk-early", "--client-id",
                app["client_id"], "--client-secret-stdin", "--param", f"issuer={upstream.issuer}",
                stdin=app["client_secret"] + "\n",
            )  # fmt: skip
            assert added["has_client_secret"] is True
            return app

        with Platform.of(server, tokens, person, app_and_integration) as platform:
            run_frontdesk_scenario(platform, upstream, tokens, *platform.made)
            assert_not_at_rest(server, tokens)
            assert_not_at_rest(upstream, tokens, known="alice@example.com")
    assert_not_logged([server.log, upstream.log], tokens)


def run_frontdesk_scenario(
    platform: Platform, upstream: Server, tokens: set[str], person: dict[str, Any], app: dict[str, Any]
) -> None:
    """Connect through the upstream's sign-in and consent pages, call its UserInfo as the person, refresh when due,
    refresh on a 401, revoke at the upstream, delete."""

    def revoke(token: str, hint: str) -> None:
        revoked = httpx.post(
            f"{upstream.issuer}/revoke", data={"token": token, "token_type_hint": hint},
            auth=(app["client_id"], app["client_secret"]), timeout=HTTP_TIMEOUT,
        )  # fmt: skip
        assert revoked.status_code == 200, revoked.text

    connection = connect_at_frontdesk(platform, "home", "alice", FD_PASSWORD)
    cid = connection["id"]
    assert {"openid", "offline_access"} <= set(connection["scopes"])
    first = platform.export(cid, tokens)
    assert first["refresh_token"].startswith("fd_rt_")

    me = platform.proxy(cid, "userinfo")
    assert me.status_code == 200, me.text
    assert me.json()["sub"] == person["id"]
    assert me.json()["preferred_username"] == "alice"

    # Due (15 s before the upstream's expiry): the vault refreshes ahead of time, once.
    before = wait_until_due(platform, cid, FD_REFRESH_MARGIN, FD_ACCESS_TTL - FD_REFRESH_MARGIN)
    refreshed = platform.proxy(cid, "userinfo")
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["sub"] == person["id"]
    assert platform.connection(cid)["expires_at"] > before["expires_at"]
    second = platform.export(cid, tokens)
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]  # rotated, and the new one kept
    assert platform.proxy(cid, "userinfo").status_code == 200

    # An access token the upstream stopped honouring before its expiry (RFC 7009): UserInfo answers 401, and the
    # vault refreshes once and retries once.
    revoke(second["access_token"], "access_token")
    retried = platform.proxy(cid, "userinfo")
    assert retried.status_code == 200, retried.text
    assert retried.json()["sub"] == person["id"]
    third = platform.export(cid, tokens)
    assert third["access_token"] != second["access_token"]
    assert third["refresh_token"] != second["refresh_token"]

    # The person's grant is revoked at the upstream: the refresh token takes its family with it (RFC 7009 §2.1).
    revoke(third["refresh_token"], "refresh_token")
    assert_needs_reauth(platform, cid, "userinfo")
    assert_needs_reauth(platform, cid, "userinfo")
    # The upstream's own audit log: one code redeemed, exactly two refreshes (none before the token was due, none
    # twice), no refresh token replayed, the two revocations.
    events = _upstream_events(upstream)
    assert events.get("token.issued") == 1, events
    assert events.get("token.refreshed") == 2, events
    assert events.get("token.revoked") == 2, events
    assert not {"refresh.reused", "code.replayed"} & set(events), events

    assert_not_at_rest(platform.server, tokens)  # while the connection holds the provider's tokens
    platform.delete(cid)


# --- 3. two processes, one database ---------------------------------------------------------------------------


@contextlib.contextmanager
def another_process(server: Server, log: Path) -> Iterator[str]:
    """A second ``frontdesk serve`` on the first one's database and home (master key, vault key file, providers
    directory) and issuer, on a port of its own; yields its base URL."""
    env = {**server.env, "FRONTDESK_ISSUER": server.issuer}
    process: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(START_ATTEMPTS):
            base = f"http://127.0.0.1:{_free_port()}"
            with log.open("ab") as sink:
                process = subprocess.Popen(
                    [sys.executable, "-m", "frontdesk", "serve", "--host", "127.0.0.1", "--port", base.rsplit(":")[-1]],
                    env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                )  # fmt: skip
            if _ready(process, base, server.issuer, log):
                break
            process.wait(timeout=STOP_TIMEOUT)
        else:
            pytest.fail(f"a second frontdesk serve exited before answering, {START_ATTEMPTS} times:\n{log.read_text()}")
        yield base
        assert process.poll() is None, f"the second frontdesk died during the test; its log:\n{log.read_text()}"
    finally:
        if process is not None:
            _stop(process)


def _ready(process: subprocess.Popen[bytes], base: str, issuer: str, log: Path) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            response = httpx.get(f"{base}/.well-known/openid-configuration", timeout=2.0)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        assert response.status_code == 200, response.text
        assert response.json()["issuer"] == issuer
        return True
    _stop(process)
    pytest.fail(f"the second frontdesk did not answer at {base} within {START_TIMEOUT:.0f} s:\n{log.read_text()}")


async def test_two_processes_refresh_once_under_50_concurrent_calls(backend: str, tmp_path: Path) -> None:
    """Two ``frontdesk serve`` processes on one database; the access token expires; 50 proxied calls at once, 25 to
    each process: all answer 200 and node-oidc-provider sees exactly one refresh (a second one would have replayed a
    rotated refresh token, which kills the grant there)."""
    tokens: set[str] = {OP_SECRET, ALICE.password}
    second_log = tmp_path / "frontdesk-2.log"
    with serving(backend, _fresh(tmp_path / "vault"), env=_providers_dir(tmp_path)) as server:
        client = _op_client(server)
        with (
            running_op(tmp_path / "op", clients=[client], accounts=[ALICE], access_token_ttl=STORM_ACCESS_TTL) as op,
            Platform.of(server, tokens, partial(_add_oidc_integration, server, op, client)) as platform,
            another_process(server, second_log) as other,
        ):
            cid = connect_at_op(platform, "provider", ALICE)["id"]
            first = platform.export(cid, tokens)
            bases = (server.issuer, other)
            headers = platform.headers()
            limits = httpx.Limits(max_connections=STORM, max_keepalive_connections=STORM)
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT, limits=limits) as http:
                for base in bases:  # both serve the connection (and have read the provider's discovery document)
                    warm = await http.get(f"{base}/vault/proxy/{cid}/me", headers=headers)
                    assert warm.status_code == 200, warm.text
                assert op.refresh_count() == 0

                await asyncio.to_thread(wait_until_due, platform, cid, 0, STORM_ACCESS_TTL)
                calls = [http.get(f"{bases[i % 2]}/vault/proxy/{cid}/me", headers=headers) for i in range(STORM)]
                answers = await asyncio.gather(*calls)
            statuses = [a.status_code for a in answers]
            assert statuses == [200] * STORM, [
                f"{a.status_code} {a.text[:200]}" for a in answers if a.status_code != 200
            ]
            assert all(a.json()["sub"] == ALICE.id for a in answers)
            assert op.refresh_count() == 1
            assert op.counts()["refresh_token"]["succeeded"] == 1

            assert platform.connection(cid)["status"] == "active"
            second = platform.export(cid, tokens)
            assert second["refresh_token"] != first["refresh_token"]
            for base in bases:  # the grant is alive, and both processes use the rotated tokens
                after = httpx.get(f"{base}/vault/proxy/{cid}/me", headers=headers, timeout=HTTP_TIMEOUT)
                assert after.status_code == 200, after.text
            refreshes = op.counts()["refresh_token"]
            assert refreshes["requests"] == refreshes["succeeded"], refreshes  # no refresh token was ever replayed

            assert_not_at_rest(server, tokens)  # while the connection holds the provider's tokens
            platform.delete(cid)
            assert_not_at_rest(server, tokens)
    assert_not_logged([server.log, second_log], tokens)
