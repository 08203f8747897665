"""The ``frontdesk`` command line, run as ``python -m frontdesk`` in a subprocess against a fresh database."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import MetaData, select

from conftest import ISSUER, Browser, Registered, code_for
from frontdesk.asgi import open_frontdesk
from frontdesk.cli.context import settings_of
from frontdesk.config import load_settings
from frontdesk.web import create_app

# Each command is a `python -m frontdesk` of its own: the full matrix runs these, the quick loop does not.
pytestmark = pytest.mark.subprocess

Run = Callable[..., subprocess.CompletedProcess[str]]
PASSWORD = "correct horse battery"


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    """The environment of every command: FRONTDESK_HOME is the test's directory, the database the test's own."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    return {
        **clean,
        "FRONTDESK_HOME": str(tmp_path),
        "FRONTDESK_DATABASE_URL": database_url,
        "FRONTDESK_ISSUER": ISSUER,
    }


@pytest.fixture
def cli(env: dict[str, str], tmp_path: Path) -> Run:
    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "frontdesk", *args],
            env=env,
            cwd=tmp_path,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


@pytest.fixture
def fd_of(env: dict[str, str]):
    """Open frontdesk in process on the same FRONTDESK_HOME and database as the commands."""
    opened = []

    def open_it():
        fd = open_frontdesk(load_settings(environ=env))
        opened.append(fd)
        return fd

    yield open_it
    for fd in opened:
        fd.engine.dispose()


def ok_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def create_client(cli: Run, *extra: str) -> dict[str, Any]:
    return ok_json(
        cli(
            "client",
            "create",
            "--name",
            "Calendar Helper",
            "--client-id",
            "conf-client",
            "--redirect-uri",
            "https://app.example/cb",
            "--scope",
            "openid profile offline_access",
            "--json",
            *extra,
        )
    )


# --- clients --------------------------------------------------------------------------------------------------------


async def test_client_create_prints_rfc7591_metadata_and_secret(cli):
    """client create --json prints RFC 7591 names, including the generated client_secret."""
    data = create_client(cli)
    assert data["client_id"] == "conf-client"
    assert data["redirect_uris"] == ["https://app.example/cb"]
    assert data["grant_types"] == ["authorization_code", "refresh_token"]
    assert data["token_endpoint_auth_method"] == "client_secret_basic"
    assert data["scope"] == "openid profile offline_access"
    assert data["client_secret"].startswith("fd_cs_")
    assert len(data["client_secret"]) >= 43


async def test_client_secret_is_shown_once(cli):
    """client show --json and client list --json never show the secret again."""
    secret = create_client(cli)["client_secret"]
    shown = cli("client", "show", "conf-client", "--json")
    listed = cli("client", "list", "--json")
    assert "client_secret" not in ok_json(shown)
    assert all("client_secret" not in c for c in ok_json(listed))
    for result in (shown, listed):
        assert secret not in result.stdout
        assert secret not in result.stderr


async def test_database_holds_only_the_secret_digest(cli, fd_of):
    """The clients row keeps the SHA-256 digest of the secret and no table anywhere holds the secret itself."""
    secret = create_client(cli)["client_secret"]
    fd = fd_of()
    metadata = MetaData()
    metadata.reflect(fd.engine)
    with fd.engine.connect() as conn:
        stored = conn.execute(select(metadata.tables["clients"].c.secret_digest)).scalar_one()
        dump = "\n".join(repr(row) for table in metadata.sorted_tables for row in conn.execute(select(table)))
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in dump


async def test_sqlite_file_does_not_contain_the_secret(tmp_path):
    """The bytes of the embedded SQLite database files do not contain the client secret."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    embedded = {**clean, "FRONTDESK_HOME": str(tmp_path), "FRONTDESK_ISSUER": ISSUER}  # the default database
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "frontdesk",
            "client",
            "create",
            "--name",
            "Calendar Helper",
            "--redirect-uri",
            "https://app.example/cb",
            "--json",
        ],
        env=embedded,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    secret = ok_json(result)["client_secret"]
    files = [p for p in tmp_path.iterdir() if p.name.startswith("frontdesk.db")]
    assert any(p.name == "frontdesk.db" for p in files)
    digest = hashlib.sha256(secret.encode()).hexdigest().encode()
    contents = b"".join(p.read_bytes() for p in files)
    assert secret.encode() not in contents
    assert secret.split("_", 2)[2].encode() not in contents
    assert digest in contents


async def test_public_client_has_no_secret(cli):
    """client create --public registers auth method none and prints no secret."""
    data = ok_json(
        cli(
            "client",
            "create",
            "--name",
            "Desktop",
            "--public",
            "--redirect-uri",
            "http://127.0.0.1/cb",
            "--json",
        )
    )
    assert data["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in data
    assert data["redirect_uris"] == ["http://127.0.0.1/cb"]


async def test_http_redirect_uri_off_loopback_is_refused(cli):
    """An http redirect URI on a non-loopback host exits non-zero, explains on stderr and registers nothing."""
    result = cli("client", "create", "--name", "Bad", "--redirect-uri", "http://app.example/cb", "--json")
    assert result.returncode != 0
    assert result.stdout == ""
    assert "invalid_redirect_uri" in result.stderr
    assert "http://app.example/cb" in result.stderr
    assert ok_json(cli("client", "list", "--json")) == []


async def test_client_create_refuses_a_scope_nobody_defined(cli):
    """client create with a scope that does not exist exits 1, names `frontdesk scope create` and registers
    nothing: such a client's every token request would fail with invalid_scope."""
    result = cli("client", "create", "--name", "API job", "--grant-type", "client_credentials", "--scope", "api:read")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "'api:read'" in result.stderr
    assert "frontdesk scope create api:read" in result.stderr
    assert ok_json(cli("client", "list", "--json")) == []


async def test_client_create_takes_a_scope_once_it_is_defined(cli):
    """After `frontdesk scope create`, the same registration succeeds and the client has the scope."""
    ok_json(cli("scope", "create", "api:read", "--description", "Read the API", "--json"))
    data = ok_json(
        cli("client", "create", "--name", "API job", "--grant-type", "client_credentials", "--scope", "api:read",
            "--json")
    )  # fmt: skip
    assert data["scope"] == "api:read"


async def test_client_create_assertion_audience_relaxation(cli, tmp_path):
    """--assertion-audience token-endpoint registers a private_key_jwt client that may also name the token
    endpoint; without it the audience is the issuer only; and it is refused for a client that makes no assertions."""
    jwks = tmp_path / "jwks.json"
    key = {
        "kty": "EC",
        "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    }
    jwks.write_text(json.dumps({"keys": [key]}))
    common = ("client", "create", "--grant-type", "client_credentials", "--auth-method", "private_key_jwt")
    strict = ok_json(cli(*common, "--name", "Strict", "--jwks", str(jwks), "--json"))
    relaxed = ok_json(
        cli(*common, "--name", "Relaxed", "--jwks", str(jwks), "--assertion-audience", "token-endpoint", "--json")
    )
    assert strict["assertion_audience"] == "issuer"
    assert relaxed["assertion_audience"] == "token-endpoint"
    refused = cli(*common[:4], "--name", "Secret", "--assertion-audience", "token-endpoint", "--json")
    assert refused.returncode == 1
    assert "private_key_jwt" in refused.stderr


async def test_client_list_and_delete(cli):
    """client list shows registered clients and client delete removes one of them."""
    create_client(cli)
    ok_json(
        cli(
            "client",
            "create",
            "--name",
            "Service",
            "--client-id",
            "svc",
            "--grant-type",
            "client_credentials",
            "--json",
        )
    )
    assert {c["client_id"] for c in ok_json(cli("client", "list", "--json"))} == {"conf-client", "svc"}
    assert ok_json(cli("client", "delete", "svc", "--json")) == {"deleted": "svc"}
    assert [c["client_id"] for c in ok_json(cli("client", "list", "--json"))] == ["conf-client"]
    assert cli("client", "show", "svc", "--json").returncode == 1


async def test_deleting_unknown_client_fails(cli):
    """client delete of an unknown client exits 1 with a message on stderr."""
    result = cli("client", "delete", "nobody")
    assert result.returncode == 1
    assert "nobody" in result.stderr


# --- users, scopes, keys --------------------------------------------------------------------------------------------


async def test_user_create_list_delete(cli):
    """user create --password-stdin, user list and user delete manage people."""
    created = ok_json(
        cli(
            "user",
            "create",
            "--username",
            "alice",
            "--email",
            "alice@example.com",
            "--password-stdin",
            "--json",
            stdin=PASSWORD + "\n",
        )
    )
    assert created["username"] == "alice"
    assert created["email"] == "alice@example.com"
    listed = ok_json(cli("user", "list", "--json"))
    assert [u["username"] for u in listed] == ["alice"]
    assert listed[0]["id"] == created["id"]
    assert PASSWORD not in json.dumps(listed)
    assert ok_json(cli("user", "delete", "alice", "--json")) == {"deleted": "alice"}
    assert ok_json(cli("user", "list", "--json")) == []


async def test_user_password_from_stdin_signs_in(cli, fd_of):
    """The password read by --password-stdin (without its newline) is the one that authenticates."""
    assert cli("user", "create", "--username", "alice", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    fd = fd_of()
    assert fd.users.authenticate("alice", PASSWORD) is not None
    assert fd.users.authenticate("alice", PASSWORD + "\n") is None


async def test_user_create_with_short_password_fails(cli):
    """A password shorter than eight characters exits 1 with a message on stderr."""
    result = cli("user", "create", "--username", "bob", "--password-stdin", stdin="short\n")
    assert result.returncode == 1
    assert "password" in result.stderr


async def test_scope_create_and_list(cli):
    """scope create defines a scope that scope list then shows with its description."""
    created = ok_json(cli("scope", "create", "calendar.read", "--description", "See your calendar", "--json"))
    assert created == {"name": "calendar.read", "description": "See your calendar"}
    scopes = {s["name"]: s["description"] for s in ok_json(cli("scope", "list", "--json"))}
    assert scopes["calendar.read"] == "See your calendar"
    assert {"openid", "profile", "email", "offline_access"} <= set(scopes)


async def test_scope_create_duplicate_fails(cli):
    """Defining a scope twice exits 1 with a message on stderr."""
    assert cli("scope", "create", "calendar.read", "--description", "See your calendar").returncode == 0
    result = cli("scope", "create", "calendar.read", "--description", "Again")
    assert result.returncode == 1
    assert "already exists" in result.stderr


async def test_keys_list(cli):
    """keys list --json shows one active and one next key for each signing algorithm."""
    keys = ok_json(cli("keys", "list", "--json"))
    states = sorted((k["alg"], k["state"]) for k in keys)
    assert states == sorted((alg, state) for alg in ("ES256", "RS256", "EdDSA") for state in ("active", "next"))
    assert len({k["kid"] for k in keys}) == 6


async def test_keys_rotate(cli):
    """keys rotate --json promotes the next keys, retires the active ones and publishes new next keys."""
    before = ok_json(cli("keys", "list", "--json"))
    rotated = ok_json(cli("keys", "rotate", "--json"))
    after = {k["kid"]: k for k in ok_json(cli("keys", "list", "--json"))}
    for key in before:
        expected = {"active": "retired", "next": "active"}[key["state"]]
        assert after[key["kid"]]["state"] == expected
    for key in before:
        if key["state"] == "active":
            assert after[key["kid"]]["publish_until"] is not None
    new_next = {k["kid"] for k in after.values() if k["state"] == "next"}
    assert len(new_next) == 3
    assert not new_next & {k["kid"] for k in before}
    assert {k["kid"] for k in rotated if k["state"] == "active"} == {k["kid"] for k in before if k["state"] == "next"}


# --- audit, migrate, usage ------------------------------------------------------------------------------------------


async def test_audit_tail_shows_signin_and_token_issued(cli, fd_of):
    """After a code flow, audit tail --json shows the sign-in and the issued tokens."""
    secret = create_client(cli)["client_secret"]
    assert cli("user", "create", "--username", "alice", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    fd = fd_of()
    client = Registered("conf-client", secret, "https://app.example/cb")
    transport = httpx.ASGITransport(app=create_app(fd), client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        code, verifier = await code_for(Browser(http, "alice", PASSWORD), client)
        response = await http.post(
            "/token",
            auth=(client.client_id, secret),
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": client.redirect_uri,
                "code_verifier": verifier,
            },
        )
        assert response.status_code == 200, response.text
    events = ok_json(cli("audit", "tail", "--json"))
    seen = {(e["event"], e["outcome"]) for e in events}
    assert ("signin", "success") in seen
    assert ("token.issued", "success") in seen
    issued = next(e for e in events if e["event"] == "token.issued")
    assert issued["client_id"] == "conf-client"
    assert issued["ip"] == "203.0.113.7"
    assert issued["detail"]["grant_type"] == "authorization_code"
    text = json.dumps(events)
    assert secret not in text
    assert PASSWORD not in text
    assert code not in text


async def test_migrate(cli):
    """migrate --json reports the schema up to date, and is idempotent."""
    assert ok_json(cli("migrate", "--json"))["status"] == "up to date"
    assert ok_json(cli("migrate", "--json"))["status"] == "up to date"


async def test_unknown_command_exits_2(cli):
    """An unknown command exits with status 2 and a usage message on stderr."""
    result = cli("frobnicate")
    assert result.returncode == 2
    assert "usage:" in result.stderr


GITHUB = (
    "upstream", "add", "gh", "--authorization-endpoint", "https://github.com/login/oauth/authorize",
    "--token-endpoint", "https://github.com/login/oauth/access_token", "--userinfo-endpoint",
    "https://api.github.com/user", "--client-id", "gh-client", "--client-secret-stdin",
)  # fmt: skip


async def test_upstream_add_prints_the_redirect_uri_under_the_issuer(cli):
    shown = cli(*GITHUB, "--scope", "read:user", stdin="gh-secret\n")
    assert shown.returncode == 0, shown.stderr
    assert f"register this redirect URI at the provider: {ISSUER}/upstream/gh/callback\n" in shown.stdout
    assert "scopes asked for: read:user\n" in shown.stdout


async def test_upstream_add_without_an_issuer_says_it_must_be_set(cli, env):
    """With no issuer set, `serve --port` decides it: no URI on port 8000 is offered as the one to register."""
    del env["FRONTDESK_ISSUER"]
    added = cli(*GITHUB, "--json", stdin="gh-secret\n")
    assert added.returncode == 0, added.stderr
    data = json.loads(added.stdout)
    assert data["redirect_uri"] is None
    assert "FRONTDESK_ISSUER" in data["redirect_uri_note"]
    assert "ISSUER/upstream/gh/callback" in data["redirect_uri_note"]


def test_serve_port_keeps_the_issuer_from_the_config_file(tmp_path, monkeypatch):
    """`frontdesk serve --port 9000` with `issuer` in the config file serves that issuer, not http://127.0.0.1:9000;
    without an issuer anywhere, --host and --port make it."""
    monkeypatch.delenv("FRONTDESK_ISSUER", raising=False)
    monkeypatch.delenv("FRONTDESK_CONFIG", raising=False)
    config = tmp_path / "frontdesk.toml"
    config.write_text(f'issuer = "https://login.example"\nhome = "{tmp_path / "home"}"\n')
    chosen = settings_of(argparse.Namespace(config=str(config), port=9000, host=None, issuer=None))
    assert chosen.issuer == "https://login.example"
    assert chosen.port == 9000
    bare = tmp_path / "bare.toml"
    bare.write_text(f'home = "{tmp_path / "home"}"\n')
    made = settings_of(argparse.Namespace(config=str(bare), port=9000, host=None, issuer=None))
    assert made.issuer == "http://127.0.0.1:9000"
