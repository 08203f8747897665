"""Helpers for the admin API's tests: admin tokens of each role, and requests that carry one."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import remember
from frontdesk.admin.principals import CLI
from frontdesk.admin.tokens import create_token
from frontdesk.core import Frontdesk

V1 = "/admin/api/v1"


def token_for(fd: Frontdesk, seen: set[str], role: str, name: str | None = None) -> str:
    issued = create_token(fd, CLI, role=role, name=name or f"{role} token")
    remember(seen, issued.secret)
    return issued.secret


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Api:
    """The admin API as one token calls it."""

    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self.http = http
        self.headers = bearer(token)

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(V1 + path, params=params, headers=self.headers)

    async def post(self, path: str, body: Any = None) -> httpx.Response:
        return await self.http.post(V1 + path, json=body, headers=self.headers)

    async def patch(self, path: str, body: Any) -> httpx.Response:
        return await self.http.patch(V1 + path, json=body, headers=self.headers)

    async def put(self, path: str, body: Any) -> httpx.Response:
        return await self.http.put(V1 + path, json=body, headers=self.headers)

    async def delete(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.delete(V1 + path, params=params, headers=self.headers)


@pytest.fixture
def owner(fd: Frontdesk, http: httpx.AsyncClient, secrets_seen: set[str]) -> Api:
    return Api(http, token_for(fd, secrets_seen, "owner"))


@pytest.fixture
def operator(fd: Frontdesk, http: httpx.AsyncClient, secrets_seen: set[str]) -> Api:
    return Api(http, token_for(fd, secrets_seen, "operator"))


@pytest.fixture
def auditor(fd: Frontdesk, http: httpx.AsyncClient, secrets_seen: set[str]) -> Api:
    return Api(http, token_for(fd, secrets_seen, "auditor"))


def events(fd: Frontdesk, prefix: str) -> list[Any]:
    """The audit events whose name starts with ``prefix``, oldest first."""
    from frontdesk.admin.audit_search import AuditQuery, search_audit

    found = search_audit(fd, CLI, AuditQuery(event=prefix + "*"), limit=200)
    return list(reversed(found.items))
