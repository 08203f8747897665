"""The admin console's Scopes and resources page, over HTTP in process on SQLite and PostgreSQL: scopes added, their
words changed, deleted unless something holds them; resources registered, DPoP required, deleted; what the page
refuses comes back on it in words; an auditor only looks."""

from __future__ import annotations

import pytest

from frontdesk.admin.catalog import list_resources, list_scopes
from frontdesk.admin.principals import CLI

from .console import console, forms_of, post

PAGE = "/admin/catalog"


def scopes(fd) -> dict[str, str]:
    return {s.name: s.description for s in list_scopes(fd, CLI)}


def resources(fd) -> dict[str, object]:
    return {r.uri: r for r in list_resources(fd, CLI)}


async def test_a_scope_is_added_described_and_deleted(http, fd, console_operator, secrets_seen):
    page = await console(http, *console_operator, secrets_seen, PAGE)
    assert page.status_code == 200, page.text
    assert "<h1>Scopes and resources</h1>" in page.text
    assert "<code>openid</code>" in page.text  # shown, with no form: OpenID Connect's scopes are the spec's
    assert 'value="openid"' not in page.text

    added = await post(http, page, PAGE, action="create-scope", name="files.read", description="Read your files")
    assert added.headers["location"] == f"{PAGE}?done=scope-created"
    page = await http.get(added.headers["location"])
    assert "The scope is added" in page.text
    assert scopes(fd)["files.read"] == "Read your files"

    changed = await post(http, page, PAGE, action="change-scope", name="files.read", description="See your files")
    assert changed.status_code == 303
    assert scopes(fd)["files.read"] == "See your files"

    page = await http.get(PAGE)
    deleted = await post(http, page, PAGE, action="delete-scope", name="files.read")
    assert deleted.headers["location"] == f"{PAGE}?done=scope-deleted"
    assert "files.read" not in scopes(fd)


async def test_a_scope_in_use_is_not_deleted_and_the_page_says_who_holds_it(http, fd, console_operator, secrets_seen):
    page = await console(http, *console_operator, secrets_seen, PAGE)
    await post(
        http,
        page,
        PAGE,
        action="create-resource",
        uri="https://api.example.com",
        resource_name="API",
        scope="files.read",
    )
    page = await http.get(PAGE)
    refused = await post(http, page, PAGE, action="delete-scope", name="files.read")
    assert refused.status_code == 409
    assert "registered for" in refused.text
    assert 'role="alert"' in refused.text
    assert "files.read" in scopes(fd)


async def test_openid_scopes_cannot_be_changed(http, fd, console_operator, secrets_seen):
    """A forged form for a built-in scope is refused in words, and nothing changes."""
    page = await console(http, *console_operator, secrets_seen, PAGE)
    before = scopes(fd)["openid"]
    refused = await http.post(
        PAGE, data={"csrf": _csrf(page.text), "action": "change-scope", "name": "openid", "description": "anything"}
    )
    assert refused.status_code == 409
    assert "OpenID Connect scope" in refused.text
    assert scopes(fd)["openid"] == before


async def test_a_resource_is_registered_bound_to_dpop_and_deleted(http, fd, console_operator, secrets_seen):
    page = await console(http, *console_operator, secrets_seen, PAGE)
    made = await post(
        http, page, PAGE, action="create-resource", uri="https://api.example.com/v1", resource_name="Files API",
        scope="files.read files.write", ttl="600",
    )  # fmt: skip
    assert made.headers["location"] == f"{PAGE}?done=resource-created"
    made_resource = resources(fd)["https://api.example.com/v1"]
    assert (made_resource.name, made_resource.scope, made_resource.access_token_ttl) == (
        "Files API",
        ("files.read", "files.write"),
        600,
    )
    assert {"files.read", "files.write"} <= set(scopes(fd))  # its new scopes came with it
    page = await http.get(made.headers["location"])
    assert "<code>https://api.example.com/v1</code>" in page.text
    assert "600 s" in page.text

    bound = await post(http, page, PAGE, action="dpop-resource", uri="https://api.example.com/v1", require_dpop="on")
    assert bound.status_code == 303
    assert resources(fd)["https://api.example.com/v1"].require_dpop is True
    page = await http.get(PAGE)
    assert "Stop requiring" in page.text

    gone = await post(http, page, PAGE, action="delete-resource", uri="https://api.example.com/v1")
    assert gone.headers["location"] == f"{PAGE}?done=resource-deleted"
    assert "https://api.example.com/v1" not in resources(fd)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"uri": "https://api.example.com/#part", "ttl": ""}, "fragment"),
        ({"uri": "https://api.example.com", "ttl": "ten minutes"}, "whole number of seconds"),
        ({"uri": "https://api.example.com", "ttl": "90000"}, "between 1 second and one day"),
    ],
)
async def test_a_refused_resource_keeps_what_was_typed(http, fd, console_operator, secrets_seen, fields, words):
    page = await console(http, *console_operator, secrets_seen, PAGE)
    refused = await post(
        http, page, PAGE, action="create-resource", resource_name="Files API", scope="files.read", **fields
    )
    assert refused.status_code == 422
    assert words in refused.text
    assert 'value="Files API"' in refused.text
    assert resources(fd) == {}


async def test_a_form_needs_the_consoles_csrf_token(http, fd, console_operator, secrets_seen):
    await console(http, *console_operator, secrets_seen, PAGE)
    refused = await http.post(
        PAGE, data={"csrf": "not-it", "action": "create-scope", "name": "x.y", "description": "X"}
    )
    assert refused.status_code == 403
    assert "x.y" not in scopes(fd)


async def test_an_auditor_sees_the_catalog_and_changes_nothing(http, fd, console_auditor, secrets_seen):
    page = await console(http, *console_auditor, secrets_seen, PAGE)
    assert page.status_code == 200
    assert forms_of(page.text) == []
    assert "<code>openid</code>" in page.text
    alerts = await http.get("/admin/alerts")
    refused = await http.post(
        PAGE, data={"csrf": _csrf(alerts.text), "action": "create-scope", "name": "x.y", "description": "X"}
    )
    assert refused.status_code == 403
    assert "x.y" not in scopes(fd)


def _csrf(html: str) -> str:
    import re

    found = re.search(r'name="csrf" value="([^"]+)"', html)
    return found[1] if found else ""
