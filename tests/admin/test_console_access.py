"""The admin console's Admin access page over HTTP in process, on SQLite and PostgreSQL: only an owner sees it; an
owner grants, changes and takes away roles, and makes (shown once) and revokes admin API tokens."""

from __future__ import annotations

import re

import pytest

from conftest import csrf_of, remember
from frontdesk.admin.principals import ROLES
from frontdesk.web.admin_access import ROLE_WORDS

from .console import console, forms_of, give_role, post
from .test_console import events


@pytest.fixture
def owner(fd, person) -> tuple[str, str]:
    give_role(fd, person[0], "owner")
    return person


@pytest.fixture
def bob(fd, secrets_seen) -> str:
    remember(secrets_seen, "bob's long password")
    return fd.users.create("bob", "bob's long password", email="bob@example.com").id


def test_every_role_has_words():
    assert set(ROLE_WORDS) == set(ROLES)


async def test_only_an_owner_sees_admin_access(http, fd, person, secrets_seen):
    """An operator's menu has no Admin access, and the page itself refuses them with a 403."""
    give_role(fd, person[0], "operator")
    page = await console(http, *person, secrets_seen)
    assert "/admin/access" not in page.text
    refused = await http.get("/admin/access")
    assert refused.status_code == 403
    token = await http.post("/admin/access/tokens", data={"csrf": "x", "name": "n", "role": "owner", "days": "1"})
    assert token.status_code == 403


async def test_owner_grants_changes_and_takes_away_a_role(http, fd, owner, bob, secrets_seen):
    page = await console(http, *owner, secrets_seen, "/admin/access")
    assert 'href="/admin/access" aria-current="page"' in page.text
    done = await post(http, page, "/admin/access/roles", username="bob", role="auditor")
    assert done.status_code == 303
    page = await http.get(done.headers["location"])
    assert "The role is granted." in page.text
    assert "<strong>bob</strong> · auditor" in page.text
    done = await post(http, page, "/admin/access/roles", username="bob", role="operator")
    page = await http.get(done.headers["location"])
    assert "<strong>bob</strong> · operator" in page.text
    done = await post(http, page, "/admin/access/roles/revoke", username="bob")
    page = await http.get(done.headers["location"])
    assert "The role is taken away." in page.text
    assert "<strong>bob</strong>" not in page.text
    assert len(events(fd, "admin.role.granted")) == 3  # the owner's own, by the test, then bob's two


async def test_granting_to_nobody_says_so(http, owner, secrets_seen):
    page = await console(http, *owner, secrets_seen, "/admin/access")
    refused = await post(http, page, "/admin/access/roles", username="nobody", role="auditor")
    assert refused.status_code == 404
    assert 'role="alert"' in refused.text


async def test_owner_makes_a_token_shown_once_then_revokes_it(http, fd, owner, secrets_seen):
    """A new token's value is on the answer page only; it authenticates to the admin API until revoked."""
    page = await console(http, *owner, secrets_seen, "/admin/access")
    made = await post(http, page, "/admin/access/tokens", name="ci-deploy", role="auditor", days="30")
    assert made.status_code == 200
    value = re.search(r"<code class=\"once\" data-secret>([^<]+)</code>", made.text)
    assert value
    remember(secrets_seen, value[1])
    assert value[1].startswith("fd_adm_")
    bearer = {"Authorization": f"Bearer {value[1]}"}
    assert (await http.get("/admin/api/v1/clients", headers=bearer)).status_code == 200
    page = await http.get("/admin/access")
    assert "ci-deploy" in page.text
    assert value[1] not in page.text
    token_id = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token_id
    done = await post(http, page, "/admin/access/tokens/revoke", token=token_id[1])
    page = await http.get(done.headers["location"])
    assert "The token is revoked" in page.text
    assert "Revoked</span>" in page.text
    assert (await http.get("/admin/api/v1/clients", headers=bearer)).status_code == 401
    assert len(events(fd, "admin.token.revoked")) == 1


async def test_a_token_needs_a_name(http, owner, secrets_seen):
    page = await console(http, *owner, secrets_seen, "/admin/access")
    refused = await post(http, page, "/admin/access/tokens", name=" ", role="auditor", days="30")
    assert refused.status_code == 422
    assert "name the token" in refused.text


@pytest.mark.parametrize("action", ["roles", "roles/revoke", "tokens", "tokens/revoke"])
async def test_every_access_form_needs_the_csrf_token(http, fd, owner, bob, secrets_seen, action):
    await console(http, *owner, secrets_seen, "/admin/access")
    fields = {"csrf": "no", "username": "bob", "role": "owner", "name": "x", "days": "1", "token": "t"}
    response = await http.post(f"/admin/access/{action}", data=fields)
    assert response.status_code == 403
    assert events(fd, "admin.role.granted")[-1].user_id != bob


async def test_an_owner_is_not_offered_to_take_their_own_role_away(http, fd, owner, bob, secrets_seen):
    """The owner's own role has no "Take away" (they would lock themselves out); another person's has."""
    give_role(fd, "bob", "auditor")
    page = await console(http, *owner, secrets_seen, "/admin/access")
    assert forms_of(page.text).count("/admin/access/roles/revoke") == 1
    assert 'name="username" value="bob"' in page.text
    assert csrf_of(page.text)
