"""Who may call the admin API (admin/tokens.py, admin/principals.py, web/admin_api_http.py) on SQLite and
PostgreSQL: admin tokens only, their roles enforced per operation, refusals audited, failed attempts limited per
address; and the tokens and roles managed through the API and the command line."""

from __future__ import annotations

import json

import httpx
import pytest

from conftest import remember
from frontdesk.admin.principals import CLI, OPERATIONS
from frontdesk.admin.tokens import create_token, revoke_token
from frontdesk.cli import admin as admin_cli
from frontdesk.cli import main
from frontdesk.config import Admin
from frontdesk.core import Frontdesk
from frontdesk.web.admin_api import OPERATIONS as ROUTES

from .admin_api import V1, Api, bearer, events, token_for


async def test_without_a_token_the_answer_is_a_bare_bearer_challenge(http: httpx.AsyncClient):
    response = await http.get(V1 + "/clients")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="frontdesk admin"'
    assert response.json()["error"] == "invalid_token"


async def test_a_wrong_token_is_refused_and_audited(http: httpx.AsyncClient, fd: Frontdesk):
    response = await http.get(V1 + "/clients", headers=bearer("fd_adm_nothing"))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    [failed] = events(fd, "admin.auth")
    assert failed.outcome == "failure"
    assert failed.ip == "203.0.113.7"


async def test_failed_attempts_are_limited_per_address(http: httpx.AsyncClient, fd: Frontdesk, secrets_seen):
    """Past [admin] token_failures_per_ip, even a good token from that address waits (429, Retry-After)."""
    good = token_for(fd, secrets_seen, "auditor")
    attempts, _ = Admin().token_failures_per_ip
    for _ in range(attempts):
        assert (await http.get(V1 + "/keys", headers=bearer("fd_adm_guess"))).status_code == 401
    refused = await http.get(V1 + "/keys", headers=bearer(good))
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert refused.json()["error"] == "too_many_attempts"


async def test_an_expired_or_revoked_token_is_refused(http: httpx.AsyncClient, fd: Frontdesk, clock, secrets_seen):
    token = token_for(fd, secrets_seen, "auditor")
    assert (await http.get(V1 + "/keys", headers=bearer(token))).status_code == 200
    clock.advance(Admin().token_days * 86400 + 1)
    assert (await http.get(V1 + "/keys", headers=bearer(token))).status_code == 401
    other = create_token(fd, CLI, role="auditor", name="short-lived")
    remember(secrets_seen, other.secret)
    assert (await http.get(V1 + "/keys", headers=bearer(other.secret))).status_code == 200
    revoke_token(fd, CLI, other.token.id)
    assert (await http.get(V1 + "/keys", headers=bearer(other.secret))).status_code == 401


async def test_an_auditor_reads_but_changes_nothing(auditor: Api, fd: Frontdesk):
    assert (await auditor.get("/clients")).status_code == 200
    refused = await auditor.post("/clients", {"name": "x", "redirect_uris": ["https://x.example/cb"]})
    assert refused.status_code == 403
    assert refused.json()["error"] == "insufficient_role"
    [denied] = events(fd, "admin.denied")
    assert denied.detail["operation"] == "clients.write"
    assert denied.detail["by"].startswith("token:")


async def test_only_an_owner_manages_admin_tokens(operator: Api, owner: Api, secrets_seen):
    assert (await operator.get("/admin-tokens")).status_code == 403
    made = await owner.post("/admin-tokens", {"role": "auditor", "name": "ci"})
    assert made.status_code == 201
    remember(secrets_seen, made.json()["secret"])
    assert made.json()["secret"].startswith("fd_adm_")
    listed = (await owner.get("/admin-tokens")).json()["items"]
    assert made.json()["secret"] not in json.dumps(listed)
    token_id = made.json()["token"]["id"]
    assert (await owner.delete(f"/admin-tokens/{token_id}")).status_code == 204
    assert (await owner.delete(f"/admin-tokens/{token_id}")).status_code == 404


async def test_roles_are_granted_to_people_by_username(owner: Api, person):
    granted = await owner.put("/roles/alice", {"role": "operator"})
    assert granted.status_code == 200
    assert granted.json()["role"]["role"] == "operator"
    assert [r["username"] for r in (await owner.get("/roles")).json()["items"]] == ["alice"]
    assert (await owner.put("/roles/nobody", {"role": "operator"})).status_code == 404
    assert (await owner.put("/roles/alice", {"role": "king"})).status_code == 422
    assert (await owner.delete("/roles/alice")).status_code == 204
    assert (await owner.delete("/roles/alice")).status_code == 404


def test_every_route_names_an_operation_with_a_role():
    """The route table and the role table agree: no route without a role, no role nobody uses."""
    assert {op.operation for op in ROUTES} == set(OPERATIONS)


def test_admin_token_and_role_commands(
    fd: Frontdesk, person, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], secrets_seen
):
    """frontdesk admin token create|list|revoke and admin role grant|list|revoke."""
    monkeypatch.setattr(admin_cli, "open_for", lambda args: fd)
    assert main(["admin", "token", "create", "--role", "operator", "--name", "deploy", "--days", "7", "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    remember(secrets_seen, created["token"])
    assert created["token"].startswith("fd_adm_")
    assert created["role"] == "operator"
    assert main(["admin", "token", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in listed] == ["deploy"]
    assert created["token"] not in json.dumps(listed)
    assert main(["admin", "token", "revoke", created["id"]]) == 0
    assert main(["admin", "token", "revoke", created["id"]]) == 1
    assert "no unrevoked admin token" in capsys.readouterr().err
    assert main(["admin", "role", "grant", "alice", "--role", "auditor"]) == 0
    assert main(["admin", "role", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])[0]["role"] == "auditor"
    assert main(["admin", "role", "revoke", "alice"]) == 0
    [granted] = events(fd, "admin.role.granted")
    assert granted.detail["by"] == "cli"
