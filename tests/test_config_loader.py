"""The one config loader (config/loader.py): every table read from its dataclass's declared types, with the same
refusals for every table, and the named relaxations logged."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import pytest

from frontdesk.config import ConfigError, PasswordHashing, RateLimits, ServerLimits, Settings, load_settings
from frontdesk.config.loader import read_section
from frontdesk.config.sections import Section, SigninThrottle

ISSUER = "https://login.example.com"
SECTIONS = [f.name for f in dataclasses.fields(Settings) if isinstance(getattr(Settings(), f.name), Section)]


def _load(tmp_path: Path, text: str, **env: str) -> Settings:
    path = tmp_path / "frontdesk.toml"
    path.write_text(f'issuer = "{ISSUER}"\n{text}')
    return load_settings(str(path), environ=env)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


@pytest.mark.parametrize("name", SECTIONS)
def test_every_table_reads_back_its_defaults(tmp_path: Path, name: str) -> None:
    """Each setting of each table, written into the file as its default, loads as that default: every declared
    field type has a reader."""
    section = getattr(Settings(), name)
    assert isinstance(section, Section)
    lines = [f"{f.name} = {_toml(getattr(section, f.name))}" for f in dataclasses.fields(section)]
    assert getattr(_load(tmp_path, f"[{name}]\n" + "\n".join(lines) + "\n"), name) == section


@pytest.mark.parametrize("name", SECTIONS)
def test_an_unknown_key_in_any_table_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match=rf"^unknown setting {name}\.bogus$"):
        _load(tmp_path, f"[{name}]\nbogus = 1\n")


@pytest.mark.parametrize("name", [*SECTIONS, "scopes"])
def test_a_table_given_as_a_plain_value_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{name} must be a table$"):
        _load(tmp_path, f"{name} = 5\n")


def test_an_unknown_top_level_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^unknown setting 'colour'$"):
        _load(tmp_path, "colour = 1\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[lifetimes]\ncode = 'soon'\n", "lifetimes.code: expected an integer, got 'soon'"),
        ("[signin_throttle]\nenabled = 'maybe'\n", "signin_throttle.enabled: expected a boolean, got 'maybe'"),
        ("port = [1]\n", "port: expected an integer, got [1]"),
        (
            "[rate_limits]\nauthorize_per_ip = 5\n",
            "rate_limits.authorize_per_ip must be [attempts, window seconds], both positive integers",
        ),
        ("[second_factor]\nrequired_for_clients = 'app'\n", "second_factor.required_for_clients must be a list of"),
    ],
)
def test_a_value_of_the_wrong_type_names_the_setting(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    assert str(caught.value).startswith(message)


def test_a_wrong_type_from_the_environment_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"^FRONTDESK_SERVER_BODY_TIMEOUT: expected an integer, got 'long'$"):
        load_settings(environ={"FRONTDESK_SERVER_BODY_TIMEOUT": "long"})


@pytest.mark.parametrize("name", ["signin_throttle", "backchannel_logout", "server", "passwords"])
def test_counts_below_zero_are_refused_as_read(tmp_path: Path, name: str) -> None:
    """The tables of counts and durations refuse a negative value before any other check."""
    first = dataclasses.fields(getattr(Settings(), name))[-1].name
    with pytest.raises(ConfigError, match=rf"^{name}\.{first} must not be negative$"):
        _load(tmp_path, f"[{name}]\n{first} = -1\n")


def test_a_removed_setting_says_where_it_went() -> None:
    with pytest.raises(ConfigError, match=r"rate_limits\.signin_per_ip is no longer a setting: .*\[signin_throttle\]"):
        read_section(RateLimits, {"signin_per_ip": [5, 900]}, "rate_limits")


def test_read_section_builds_the_declared_dataclass() -> None:
    assert read_section(SigninThrottle, {"base_delay": "3", "enabled": "off"}, "signin_throttle") == SigninThrottle(
        base_delay=3, enabled=False
    )


def test_tables_from_the_environment_are_laid_over_the_file_one_setting_at_a_time(tmp_path: Path) -> None:
    settings = _load(tmp_path, "[server]\nheader_timeout = 7\n", FRONTDESK_SERVER_MAX_CONNECTIONS="5")
    assert settings.server == ServerLimits(header_timeout=7, max_connections=5)


def test_password_cost_below_the_floor_is_refused_without_the_relaxation(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"argon2id minimum .* FRONTDESK_INSECURE_FAST_PASSWORD_HASHING"):
        _load(tmp_path, "[passwords]\ntime_cost = 1\nmemory_cost = 1024\nparallelism = 1\n")


def test_the_password_relaxation_is_named_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """insecure_fast_password_hashing in the file lets the cost go below the floor, with a warning on
    ``frontdesk.config`` that names the relaxation."""
    with caplog.at_level(logging.WARNING, logger="frontdesk.config"):
        settings = _load(
            tmp_path,
            "insecure_fast_password_hashing = true\n[passwords]\ntime_cost = 1\nmemory_cost = 1024\nparallelism = 1\n",
        )
    assert settings.passwords == PasswordHashing(time_cost=1, memory_cost=1024, parallelism=1)
    [record] = [r for r in caplog.records if r.name == "frontdesk.config"]
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("security relaxation: password hashing below OWASP's argon2id minimum")


def test_without_a_relaxation_nothing_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="frontdesk.config"):
        _load(tmp_path, "")
    assert not [r for r in caplog.records if r.name == "frontdesk.config"]


def test_a_table_override_keeps_what_it_does_not_give(tmp_path: Path) -> None:
    """``serve``'s flags arrive as a dict with None for flags not given: only the given ones replace the file's."""
    path = tmp_path / "frontdesk.toml"
    path.write_text("[server]\nheader_timeout = 7\nbody_timeout = 20\n")
    settings = load_settings(str(path), environ={}, server={"header_timeout": None, "body_timeout": 9})
    assert settings.server == ServerLimits(header_timeout=7, body_timeout=9)
