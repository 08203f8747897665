"""Configuration: defaults, file, environment, and the loud failures of invalid settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from frontdesk.config import ConfigError, load_settings


def test_defaults_are_the_embedded_loopback_server():
    """Without configuration frontdesk serves http://127.0.0.1:8000 on SQLite under ./var."""
    settings = load_settings(environ={})
    assert settings.issuer == "http://127.0.0.1:8000"
    assert settings.db_url.startswith("sqlite:///")
    assert settings.db_url.endswith("var/frontdesk.db")
    assert settings.lifetimes.code == 60


def test_plain_http_issuer_off_loopback_is_refused():
    """A plain-http issuer on a public host fails at start unless the named relaxation is set."""
    with pytest.raises(ConfigError, match="https"):
        load_settings(environ={"FRONTDESK_ISSUER": "http://login.example.com"})


def test_insecure_issuer_relaxation_is_explicit_and_logged(caplog):
    """FRONTDESK_ALLOW_INSECURE_ISSUER=1 allows it, with a warning naming the relaxation."""
    settings = load_settings(
        environ={"FRONTDESK_ISSUER": "http://login.example.com", "FRONTDESK_ALLOW_INSECURE_ISSUER": "1"}
    )
    assert settings.allow_insecure_issuer
    assert "security relaxation" in caplog.text


@pytest.mark.parametrize("issuer", ["http://localhost:9000", "http://127.0.0.1:9000", "http://[::1]:9000"])
def test_loopback_issuers_may_be_plain_http(issuer):
    """Loopback issuers need no TLS."""
    assert load_settings(environ={"FRONTDESK_ISSUER": issuer}).issuer == issuer


@pytest.mark.parametrize("issuer", ["https://as.example/", "https://as.example?x=1", "ftp://as.example", "as.example"])
def test_malformed_issuers_are_refused(issuer):
    """RFC 8414 §2: an https URL without query, fragment or trailing slash."""
    with pytest.raises(ConfigError):
        load_settings(environ={"FRONTDESK_ISSUER": issuer})


def test_toml_file_sets_lifetimes_and_scopes(tmp_path: Path):
    """The TOML file configures lifetimes and described scopes; the environment overrides the file."""
    path = tmp_path / "frontdesk.toml"
    path.write_text(
        'issuer = "https://login.example.com"\n[lifetimes]\naccess_token = 300\n'
        '[scopes]\n"calendar.read" = { description = "See your calendar" }\n'
    )
    settings = load_settings(str(path), environ={"FRONTDESK_ISSUER": "https://other.example"})
    assert settings.lifetimes.access_token == 300
    assert settings.scopes == {"calendar.read": "See your calendar"}
    assert settings.issuer == "https://other.example"


@pytest.mark.parametrize(
    "text",
    [
        "unknown = 1\n",
        "[lifetimes]\ncode = 3600\n",
        "[lifetimes]\nbogus = 1\n",
        'access_token_alg = "HS256"\n',
        "not toml ===",
    ],
)
def test_invalid_files_fail_loudly(tmp_path: Path, text: str):
    """Unknown keys, out-of-range lifetimes, unsupported algorithms and broken TOML all stop the start."""
    path = tmp_path / "frontdesk.toml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_settings(str(path), environ={})


@pytest.mark.parametrize("name", ["signin_per_account_and_ip", "signin_per_account", "signin_per_ip"])
def test_removed_signin_rate_limits_name_their_replacement(tmp_path: Path, name: str):
    """A file still carrying the old fixed sign-in limits stops the start, and the message names [signin_throttle]."""
    path = tmp_path / "frontdesk.toml"
    path.write_text(f"[rate_limits]\n{name} = [5, 900]\n")
    with pytest.raises(ConfigError, match=rf"rate_limits\.{name} .*\[signin_throttle\]"):
        load_settings(str(path), environ={})
