"""The vault's commands, run as ``python -m frontdesk`` against a fresh database, as an operator runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, create_engine, select

from conftest import ISSUER, remember
from frontdesk.storage.db import normalise_url

# Each command is a `python -m frontdesk` of its own: the full matrix runs these, the quick loop does not.
pytestmark = pytest.mark.subprocess

Run = Callable[..., subprocess.CompletedProcess[str]]
SECRET = "google-client-secret-value-123456"


@pytest.fixture
def cli(database_url: str, tmp_path: Path) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    env.update({"FRONTDESK_HOME": str(tmp_path), "FRONTDESK_DATABASE_URL": database_url, "FRONTDESK_ISSUER": ISSUER})

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "frontdesk", *args], env=env, cwd=tmp_path, input=stdin, capture_output=True,
            text=True, timeout=120, check=False,
        )  # fmt: skip

    return run


def ok(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _dump(database_url: str) -> str:
    engine = create_engine(normalise_url(database_url))
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as conn:
        dump = "\n".join(repr(tuple(r)) for t in metadata.sorted_tables for r in conn.execute(select(t)))
    engine.dispose()
    return dump


def test_integrations_api_keys_and_key_rotation(
    cli: Run, database_url: str, tmp_path: Path, secrets_seen: set[str]
) -> None:
    remember(secrets_seen, SECRET)
    providers = ok(cli("vault", "providers", "--json"))
    assert {"google", "google-calendar", "gmail", "microsoft", "salesforce", "slack", "shopify", "oidc"} <= {
        p["name"] for p in providers
    }

    added = ok(
        cli("vault", "integration", "add", "calendar", "--provider", "google-calendar", "--client-id", "gid",
            "--client-secret-stdin", "--scope", "https://www.googleapis.com/auth/calendar.readonly", "--json",
            stdin=SECRET + "\n")
    )  # fmt: skip
    assert added["redirect_uri"] == ISSUER + "/vault/callback"
    assert added["has_client_secret"] is True
    assert SECRET not in json.dumps(added)
    ok(cli("vault", "integration", "add", "mail", "--provider", "microsoft", "--client-id", "mid", "--json"))
    listed = ok(cli("vault", "integration", "list", "--json"))
    assert {i["name"]: i["params"] for i in listed} == {"calendar": {}, "mail": {}}

    refused = cli("vault", "integration", "add", "x", "--provider", "microsoft", "--client-id", "m",
                  "--param", "tenant=evil.example/")  # fmt: skip
    assert refused.returncode == 1
    assert "tenant" in refused.stderr
    unknown = cli("vault", "integration", "add", "y", "--provider", "nope", "--client-id", "m")
    assert unknown.returncode == 1
    assert "nope" in unknown.stderr
    twice = cli("vault", "integration", "add", "calendar", "--provider", "google", "--client-id", "g")
    assert twice.returncode == 1
    assert "already exists" in twice.stderr

    key = ok(cli("apikey", "create", "--name", "chat backend", "--json"))
    remember(secrets_seen, key["api_key"])
    assert key["api_key"].startswith("fd_ak_")
    keys = ok(cli("apikey", "list", "--json"))
    assert key["api_key"] not in json.dumps(keys)
    assert [k["name"] for k in keys] == ["chat backend"]

    dump = _dump(database_url)
    assert SECRET not in dump
    assert key["api_key"] not in dump

    rotated = ok(cli("keys", "rotate-vault", "--new-key", "--batch", "1", "--json"))
    assert rotated["resealed"] == 1  # the one sealed client secret
    assert len((tmp_path / "vault.keys").read_text().split()) == 2
    assert ok(cli("keys", "rotate-vault", "--json"))["resealed"] == 0

    assert ok(cli("apikey", "revoke", key["id"], "--json")) == {"revoked": key["id"]}
    assert cli("apikey", "revoke", key["id"]).returncode == 1
    assert ok(cli("vault", "integration", "delete", "mail", "--json")) == {"deleted": "mail"}
    assert cli("vault", "integration", "delete", "mail").returncode == 1


# --- issue 11: the scopes an integration asks for, and the redirect URI it is given --------------------------------

OIDC = (
    "--provider", "oidc", "--client-id", "oid",
    "--param", "discovery_url=https://op.example/.well-known/openid-configuration",
    "--param", "api_base_url=https://op.example",
)  # fmt: skip


@pytest.fixture
def cli_no_issuer(database_url: str, tmp_path: Path) -> Run:
    """As ``cli``, with no issuer set anywhere: neither FRONTDESK_ISSUER nor a config file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    env.update({"FRONTDESK_HOME": str(tmp_path), "FRONTDESK_DATABASE_URL": database_url})

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "frontdesk", *args], env=env, cwd=tmp_path, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip

    return run


def test_integration_add_scope_replaces_the_defaults_and_prints_them(cli: Run) -> None:
    """The generic OpenID Connect entry asks for profile and email by default; --scope leaves them out."""
    shown = cli("vault", "integration", "add", "op", *OIDC, "--scope", "openid offline_access")
    assert shown.returncode == 0, shown.stderr
    assert "scopes asked for: openid offline_access\n" in shown.stdout
    assert "catalog default scopes not asked for: profile email\n" in shown.stdout
    listed = ok(cli("vault", "integration", "list", "--json"))
    assert listed[0]["scopes"] == ["openid", "offline_access"]


def test_integration_add_without_scope_prints_the_defaults(cli: Run) -> None:
    added = ok(cli("vault", "integration", "add", "op", *OIDC, "--json"))
    assert added["scopes"] == ["openid", "profile", "email", "offline_access"]


def test_integration_add_without_an_issuer_says_it_must_be_set(cli_no_issuer: Run) -> None:
    """No redirect URI on the default port is offered as the one to register: `serve --port` would change it."""
    shown = cli_no_issuer("vault", "integration", "add", "op", *OIDC)
    assert shown.returncode == 0, shown.stderr
    assert "no issuer is set" in shown.stdout
    assert "FRONTDESK_ISSUER" in shown.stdout
    assert "register this redirect URI" not in shown.stdout
    added = ok(cli_no_issuer("vault", "integration", "add", "op2", *OIDC, "--json"))
    assert added["redirect_uri"] is None
    assert "ISSUER/vault/callback" in added["redirect_uri_note"]


def test_integration_add_prints_the_config_files_issuer(cli_no_issuer: Run, tmp_path: Path) -> None:
    config = tmp_path / "frontdesk.toml"
    config.write_text('issuer = "https://id.example.org"\n')
    added = ok(cli_no_issuer("--config", str(config), "vault", "integration", "add", "op", *OIDC, "--json"))
    assert added["redirect_uri"] == "https://id.example.org/vault/callback"
