"""Password hashing cost (``[passwords]``): production values by default, a floor that only a named and logged
relaxation lowers, and stored hashes that verify whatever the cost was when they were made."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from conftest import FAST_PASSWORDS, ISSUER, MASTER_KEY
from frontdesk.asgi import open_frontdesk
from frontdesk.config import ConfigError, PasswordHashing, Settings, load_settings
from frontdesk.crypto.passwords import hash_password, use_cost, verify_password
from frontdesk.storage.schema import User

PRODUCTION_PREFIX = "$argon2id$v=19$m=65536,t=3,p=4$"


@pytest.fixture
def cheap_cost_afterwards() -> Iterator[None]:
    """The cost is the process's: put the suite's cheap one back for the tests that follow on this worker."""
    yield
    use_cost(FAST_PASSWORDS.time_cost, FAST_PASSWORDS.memory_cost, FAST_PASSWORDS.parallelism)


@pytest.mark.usefixtures("cheap_cost_afterwards")
def test_default_settings_hash_at_production_cost(fd_database: str, tmp_path: Path):
    """A frontdesk opened on default settings stores argon2id hashes at argon2-cffi's (RFC 9106) cost, which verify."""
    settings = Settings(home=tmp_path, database_url=fd_database, issuer=ISSUER, master_key=MASTER_KEY).validated()
    assert settings.passwords == PasswordHashing()
    fd = open_frontdesk(settings, run_migrations=False, ensure_keys=False)
    try:
        fd.users.create("bob", "correct horse battery")
        with fd.engine.connect() as conn:
            stored = conn.execute(select(User.password_hash).where(User.username == "bob")).scalar_one()
        assert stored.startswith(PRODUCTION_PREFIX)
        assert PasswordHasher().hash("x").startswith(PRODUCTION_PREFIX)  # the library's own defaults
        assert fd.users.authenticate("bob", "correct horse battery") is not None
        assert fd.users.authenticate("bob", "correct horse batterY") is None
    finally:
        fd.close()


@pytest.mark.usefixtures("cheap_cost_afterwards")
def test_hashes_made_at_another_cost_still_verify():
    """A hash carries its own cost: changing the setting never locks out a password set before."""
    use_cost(FAST_PASSWORDS.time_cost, FAST_PASSWORDS.memory_cost, FAST_PASSWORDS.parallelism)
    cheap = hash_password("s3cret words")
    use_cost(3, 65536, 4)
    assert verify_password(cheap, "s3cret words")
    assert not verify_password(cheap, "other words")
    assert not verify_password(None, "s3cret words")


@pytest.mark.parametrize(("time_cost", "memory_cost"), [(1, 47104), (2, 19456), (3, 12288), (4, 9216), (5, 7168)])
def test_owasp_minimums_are_accepted(time_cost: int, memory_cost: int):
    """Each of OWASP's argon2id minimums is allowed without any relaxation."""
    cost = PasswordHashing(time_cost=time_cost, memory_cost=memory_cost, parallelism=1)
    assert Settings(issuer=ISSUER, passwords=cost).validated().passwords == cost


@pytest.mark.parametrize(("time_cost", "memory_cost"), [(1, 47103), (2, 19455), (5, 7167), (10, 4096)])
def test_cost_below_the_floor_is_refused(time_cost: int, memory_cost: int):
    """A cost below every OWASP minimum fails at start and names the relaxation."""
    cost = PasswordHashing(time_cost=time_cost, memory_cost=memory_cost, parallelism=1)
    with pytest.raises(ConfigError, match="FRONTDESK_INSECURE_FAST_PASSWORD_HASHING"):
        Settings(issuer=ISSUER, passwords=cost).validated()


def test_fast_hashing_relaxation_is_explicit_and_logged(caplog: pytest.LogCaptureFixture):
    """insecure_fast_password_hashing lets a test suite go below the floor, with a warning."""
    settings = load_settings(
        environ={
            "FRONTDESK_PASSWORDS_TIME_COST": "1",
            "FRONTDESK_PASSWORDS_MEMORY_COST": "8",
            "FRONTDESK_PASSWORDS_PARALLELISM": "1",
            "FRONTDESK_INSECURE_FAST_PASSWORD_HASHING": "1",
        }
    )
    assert settings.passwords == FAST_PASSWORDS
    assert "security relaxation: password hashing below OWASP's argon2id minimum" in caplog.text


def test_argon2_limits_hold_even_with_the_relaxation():
    """Below argon2's own limits (memory at least 8 KiB a lane) nothing is accepted."""
    cost = PasswordHashing(time_cost=1, memory_cost=8, parallelism=2)
    with pytest.raises(ConfigError, match="memory_cost >= 8 \\* parallelism"):
        Settings(issuer=ISSUER, passwords=cost, insecure_fast_password_hashing=True).validated()


def test_toml_passwords_section(tmp_path: Path):
    """[passwords] in the file sets the cost; the environment overrides one value of it."""
    path = tmp_path / "frontdesk.toml"
    path.write_text("[passwords]\ntime_cost = 4\nmemory_cost = 131072\nparallelism = 2\n")
    settings = load_settings(str(path), environ={"FRONTDESK_PASSWORDS_TIME_COST": "5"})
    assert settings.passwords == PasswordHashing(time_cost=5, memory_cost=131072, parallelism=2)


def test_unknown_passwords_setting_is_refused(tmp_path: Path):
    """A [passwords] key that is no setting stops the start."""
    path = tmp_path / "frontdesk.toml"
    path.write_text("[passwords]\nrounds = 4\n")
    with pytest.raises(ConfigError, match=r"unknown setting passwords\.rounds"):
        load_settings(str(path), environ={})
