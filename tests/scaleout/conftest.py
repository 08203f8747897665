"""Two ``frontdesk serve`` processes on one fresh PostgreSQL database, deployed as an operator deploys two hosts
(issue 15 item 4; DESIGN §3): each host has its own ``FRONTDESK_HOME`` and its own copy of the configuration file,
the master key file (``FRONTDESK_MASTER_KEY_FILE``), the vault's key file (``FRONTDESK_VAULT_KEY_FILE``) and the
provider catalog directory; both answer as one issuer, the first host's, as behind a load balancer.

The pair is started once for the whole directory (on each test worker that runs part of it): starting it, with the
migrations and first keys, costs seconds, and the properties under test are about what one process sees of the
other's writes, which each test makes with rows of its own (its own client, person or connection)."""

from __future__ import annotations

import base64
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import PG_ENV, _drop_pg_database, _pg_database, remember
from servers import Cluster, serving_together
from vault.fake_provider import Fake, running

from .flows import PASSWORD, REDIRECT_URI, App

# Seconds the fake provider takes to refresh: the window in which both processes find the connection due.
REFRESH_DELAY = 1.0
# Failed client authentications one client may make from one address (README, [rate_limits]): lower than the
# default 10 to show that the configured number is the one that counts, in a fixed window long enough that the test
# seldom has to wait for a fresh one (test_rate_limits.py).
CLIENT_AUTH_LIMIT = 6
CLIENT_AUTH_WINDOW = 3600

CONFIG = f"""\
# The suite signs in many times: argon2id at its cheapest, under the named relaxation that allows it.
insecure_fast_password_hashing = true

[passwords]
time_cost = 1
memory_cost = 8
parallelism = 1

[rate_limits]
client_auth_per_client_and_ip = [{CLIENT_AUTH_LIMIT}, {CLIENT_AUTH_WINDOW}]
"""


@dataclass(frozen=True)
class Pair:
    """Hosts A and B of one deployment, the database they share and the fake provider their vault talks to."""

    cluster: Cluster
    database_url: str
    fake: Fake

    @property
    def a(self) -> str:
        return self.cluster.bases[0]

    @property
    def b(self) -> str:
        return self.cluster.bases[1]

    @property
    def issuer(self) -> str:
        return self.cluster.issuer

    def cli(self, *args: str, stdin: str | None = None) -> Any:
        """``frontdesk ARGS --json`` as host A's operator runs it (A's home, configuration and keys)."""
        return self.cluster.servers[0].cli(*args, stdin=stdin)


def _host(root: Path, name: str, master_key: str, vault_key: str, fake: Fake) -> dict[str, str]:
    """One host's files, each its own copy of what the operator distributes, and the variables that name them."""
    host = root / f"host-{name}"
    (host / "secrets").mkdir(parents=True)
    (host / "secrets").chmod(0o700)
    for file, content in (("master.key", master_key), ("vault.keys", vault_key)):
        (host / "secrets" / file).write_text(content + "\n")
        (host / "secrets" / file).chmod(0o600)
    (host / "frontdesk.toml").write_text(CONFIG)
    fake.provider_file(host / "providers")
    return {
        "FRONTDESK_HOME": str(host / "home"),
        "FRONTDESK_CONFIG": str(host / "frontdesk.toml"),
        "FRONTDESK_MASTER_KEY_FILE": str(host / "secrets" / "master.key"),
        "FRONTDESK_VAULT_KEY_FILE": str(host / "secrets" / "vault.keys"),
        "FRONTDESK_VAULT_PROVIDERS_DIR": str(host / "providers"),
    }


def _error_lines(log: Path) -> list[str]:
    text = log.read_text(errors="replace") if log.exists() else ""
    return [line for line in text.splitlines() if re.search(r'"level": ?"(error|critical)"|Traceback', line)]


@pytest.fixture(scope="package")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Hosts A and B, started together on a fresh database; afterwards neither may have logged an error."""
    admin_url = os.environ.get(PG_ENV)
    if not admin_url:  # never a skip: scale-out that goes untested on PostgreSQL is scale-out nobody has proven
        pytest.fail(f"{PG_ENV} is unset: the scale-out tests need PostgreSQL")
    root = tmp_path_factory.mktemp("scaleout")
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    vault_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    remember(set(), key, vault_key)
    database_url = _pg_database(admin_url)
    try:
        with running(Fake(refresh_delay=REFRESH_DELAY)) as fake:
            envs = [_host(root, name, key, vault_key, fake) for name in ("a", "b")]
            with serving_together(root, database_url, envs) as cluster:
                yield Pair(cluster, database_url, fake)
                errors = [line for server in cluster.servers for line in _error_lines(server.log)]
                assert not errors, "frontdesk logged errors:\n" + "\n".join(errors[:20])
    finally:
        _drop_pg_database(admin_url, database_url)


@pytest.fixture(scope="package")
def person(pair: Pair) -> str:
    """A person made with ``frontdesk user create --password-stdin``; returns the username."""
    created = pair.cli("user", "create", "--username", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    remember(set(), PASSWORD)
    return str(created["username"])


def register(pair: Pair, name: str, *grant_types: str) -> App:
    """A confidential client made with ``frontdesk client create``."""
    grants = grant_types or ("authorization_code", "refresh_token", "client_credentials")
    created = pair.cli(
        "client", "create", "--name", name, "--redirect-uri", REDIRECT_URI, "--scope", "openid offline_access",
        *(arg for grant in grants for arg in ("--grant-type", grant)),
    )  # fmt: skip
    remember(set(), created["client_secret"])
    return App(created["client_id"], created["client_secret"])


@pytest.fixture(scope="package")
def app(pair: Pair) -> App:
    """The relying party most tests sign in to: codes, refresh tokens and client credentials."""
    return register(pair, "Calendar Helper")
