"""Interop fixtures: frontdesk running as a separate process (see ``servers.py``), on SQLite and, when
FRONTDESK_TEST_POSTGRES_URL is set, on a fresh PostgreSQL database too."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from conftest import _backends
from servers import Server, serving


@dataclass(frozen=True)
class Person:
    username: str
    password: str
    sub: str


@pytest.fixture(scope="module", params=_backends())
def frontdesk_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per test module and backend: every test registers its own clients, so tests do not share state
    they could trip over, and the CLI and server start-ups (about two seconds each) are not paid per test."""
    with serving(request.param, tmp_path_factory.mktemp("frontdesk")) as server:
        yield server


@pytest.fixture(scope="module")
def interop_person(frontdesk_server: Server) -> Person:
    """A person created with ``frontdesk user create --password-stdin``."""
    password = "correct horse battery staple"
    created = frontdesk_server.cli(
        "user",
        "create",
        "--username",
        "alice",
        "--email",
        "alice@example.com",
        "--name",
        "Alice Example",
        "--password-stdin",
        stdin=password + "\n",
    )
    return Person(username=created["username"], password=password, sub=created["id"])
