"""The admin console's Sign-in providers page, over HTTP in process on SQLite and PostgreSQL: a provider added by its
endpoints (discovery is exercised against node-oidc-provider in tests/test_upstream.py), listed with the redirect
URI to register at it, never its secret; a refused form given back without the secret; removed; an auditor only
looks."""

from __future__ import annotations

import re

import pytest

from conftest import remember
from frontdesk.upstream import list_providers

from .console import console, forms_of, post

PAGE = "/admin/upstreams"
SECRET = "secret-at-the-provider-" + "x" * 20
CORP = {
    "action": "add",
    "name": "corp",
    "display_name": "Corp Login",
    "client_id": "frontdesk-at-corp",
    "client_secret": SECRET,
    "authorization_endpoint": "https://idp.corp.example/authorize",
    "token_endpoint": "https://idp.corp.example/token",
    "userinfo_endpoint": "https://idp.corp.example/userinfo",
    "scope": "openid email",
    "token_auth_method": "client_secret_post",
}


@pytest.fixture(autouse=True)
def the_secret_is_watched(secrets_seen: set[str]) -> None:
    remember(secrets_seen, SECRET)  # the suite then proves it in no log and no page


async def test_a_provider_is_added_with_its_redirect_uri_and_removed(http, fd, console_operator, secrets_seen):
    page = await console(http, *console_operator, secrets_seen, PAGE)
    assert page.status_code == 200, page.text
    assert "No provider is set up" in page.text
    added = await post(http, page, PAGE, **CORP)
    assert added.headers["location"] == f"{PAGE}?done=added"
    page = await http.get(added.headers["location"])
    assert "The provider is added" in page.text
    assert '<h2 id="provider-corp">Corp Login</h2>' in page.text
    assert "<code>https://as.example/upstream/corp/callback</code>" in page.text
    assert "(client_secret_post)" in page.text
    assert SECRET not in page.text
    [corp] = list_providers(fd)
    assert (corp.name, corp.client_id, corp.token_auth_method) == ("corp", "frontdesk-at-corp", "client_secret_post")

    removed = await post(http, page, PAGE, action="remove", name="corp")
    assert removed.headers["location"] == f"{PAGE}?done=removed"
    assert list_providers(fd) == []


async def test_a_refused_provider_comes_back_without_its_secret(http, fd, console_operator, secrets_seen):
    page = await console(http, *console_operator, secrets_seen, PAGE)
    refused = await post(http, page, PAGE, **{**CORP, "token_endpoint": "http://idp.corp.example/token"})
    assert refused.status_code == 422
    assert 'role="alert"' in refused.text
    assert 'value="http://idp.corp.example/token"' in refused.text  # what was typed, to correct
    assert 'value="frontdesk-at-corp"' in refused.text
    assert SECRET not in refused.text
    assert list_providers(fd) == []
    bad_name = await post(http, page, PAGE, **{**CORP, "name": "Corp Login"})
    assert bad_name.status_code == 422
    assert "lowercase" in bad_name.text


async def test_an_auditor_sees_the_providers_and_changes_nothing(http, fd, console_auditor, secrets_seen):
    page = await console(http, *console_auditor, secrets_seen, PAGE)
    assert page.status_code == 200
    assert forms_of(page.text) == []
    token = re.search(r'name="csrf" value="([^"]+)"', (await http.get("/admin/alerts")).text)
    refused = await http.post(PAGE, data={**CORP, "csrf": token[1] if token else ""})
    assert refused.status_code == 403
    assert list_providers(fd) == []
