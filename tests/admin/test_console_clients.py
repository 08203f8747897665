"""The admin console's Clients pages over HTTP in process, on SQLite and PostgreSQL: find, register, change the
redirect URIs, rotate the secret with an overlap, delete; registration's refusals shown on the form."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from conftest import basic, remember
from frontdesk.oauth.grants import GRANT_TYPES
from frontdesk.web.admin_clients import GRANT_WORDS

from .console import console, forms_of, give_role, post
from .test_console import events


@pytest.fixture
def operator(fd, person) -> tuple[str, str]:
    give_role(fd, person[0], "operator")
    return person


def view(client_id: str) -> str:
    return f"/admin/clients/view?client_id={quote(client_id, safe='')}"


def secret_on(html: str) -> str:
    found = re.search(r"<code class=\"once\" data-secret>([^<]+)</code>", html)
    assert found, html
    return found[1]


def test_every_grant_type_has_words():
    """The forms name every grant type registration knows in plain words."""
    assert set(GRANT_WORDS) == set(GRANT_TYPES)


async def test_list_and_find_clients(http, operator, confidential, second, secrets_seen):
    page = await console(http, *operator, secrets_seen, "/admin/clients")
    assert "Calendar Helper" in page.text
    assert "Other App" in page.text
    found = await http.get("/admin/clients?q=other")
    assert "Other App" in found.text
    assert "Calendar Helper" not in found.text


async def test_register_a_confidential_client_shows_its_secret_once(http, fd, operator, secrets_seen):
    """Registering shows the client ID and its secret on the answer page only; the secret authenticates."""
    form = await console(http, *operator, secrets_seen, "/admin/clients/new")
    done = await post(
        http,
        form,
        "/admin/clients/new",
        auth_method="client_secret_basic",
        name="Billing Portal",
        redirect_uris="https://billing.example/cb\nhttps://billing.example/cb2",
        **{"grant:authorization_code": "on"},
        scope="openid profile",
    )
    assert done.status_code == 200, done.text
    secret = secret_on(done.text)
    remember(secrets_seen, secret)
    client_id = re.search(r"<dt>Client ID</dt><dd><code>([^<]+)</code>", done.text)[1]
    page = await http.get(view(client_id))
    assert "https://billing.example/cb2" in page.text
    assert secret not in page.text
    assert len(events(fd, "admin.client.created")) == 1
    token = await http.post(
        "/token", auth=(client_id, secret), data={"grant_type": "client_credentials", "scope": "openid"}
    )
    assert token.status_code == 400  # authenticated, but not allowed that grant
    assert token.json()["error"] == "unauthorized_client"


async def test_registration_refusal_is_shown_on_the_form(http, operator, secrets_seen):
    """A redirect URI registration refuses comes back on the form, in words, with what was typed kept."""
    form = await console(http, *operator, secrets_seen, "/admin/clients/new")
    done = await post(
        http,
        form,
        "/admin/clients/new",
        auth_method="client_secret_basic",
        name="Sloppy",
        redirect_uris="http://sloppy.example/cb",
        **{"grant:authorization_code": "on"},
        scope="openid",
    )
    assert done.status_code == 422
    assert 'role="alert"' in done.text
    assert "http://sloppy.example/cb" in done.text
    assert 'value="Sloppy"' in done.text


async def test_change_redirect_uris(http, fd, operator, confidential, secrets_seen):
    page = await console(http, *operator, secrets_seen, view(confidential.client_id))
    done = await post(
        http,
        page,
        "/admin/clients/change",
        client_id=confidential.client_id,
        name="Calendar Helper",
        redirect_uris="https://app.example/new-cb",
        **{"grant:authorization_code": "on", "grant:refresh_token": "on", "grant:client_credentials": "on"},
        scope="openid profile email offline_access calendar.read",
    )
    assert done.status_code == 303
    page = await http.get(done.headers["location"])
    assert "The client&#39;s settings are saved." in page.text
    assert fd.clients.get(confidential.client_id, cached=False).redirect_uris == ("https://app.example/new-cb",)
    [event] = events(fd, "admin.client.updated")
    assert event.client_id == confidential.client_id


async def test_rotate_secret_keeps_the_old_one_until_the_overlap_ends(
    http, clock, operator, confidential, secrets_seen
):
    """The new secret is shown once; the old one works for the hour chosen, then not."""
    page = await console(http, *operator, secrets_seen, view(confidential.client_id))
    assert '<option value="86400" selected>24 hours</option>' in page.text  # the default overlap
    done = await post(http, page, "/admin/clients/rotate-secret", client_id=confidential.client_id, overlap="3600")
    assert done.status_code == 200
    new = secret_on(done.text)
    remember(secrets_seen, new)
    assert "The previous secret keeps working until" in done.text
    data = {"grant_type": "client_credentials", "scope": "calendar.read"}
    assert (await http.post("/token", auth=(confidential.client_id, new), data=data)).status_code == 200
    assert (await http.post("/token", auth=basic(confidential), data=data)).status_code == 200
    clock.advance(3601)
    assert (await http.post("/token", auth=basic(confidential), data=data)).status_code == 401
    assert new not in (await http.get(view(confidential.client_id))).text


async def test_public_client_has_no_secret_to_rotate(http, operator, public, secrets_seen):
    page = await console(http, *operator, secrets_seen, view(public.client_id))
    assert "/admin/clients/rotate-secret" not in forms_of(page.text)


async def test_delete_a_client(http, fd, operator, second, secrets_seen):
    page = await console(http, *operator, secrets_seen, view(second.client_id))
    done = await post(http, page, "/admin/clients/delete", client_id=second.client_id)
    assert done.status_code == 303
    page = await http.get(done.headers["location"])
    assert "The client is deleted" in page.text
    assert fd.clients.get(second.client_id, cached=False) is None
    assert len(events(fd, "admin.client.deleted")) == 1


async def test_unknown_client_is_a_404_page(http, operator, secrets_seen):
    page = await console(http, *operator, secrets_seen, view("no-such-client"))
    assert page.status_code == 404


@pytest.mark.parametrize("action", ["new", "change", "rotate-secret", "delete"])
async def test_every_client_form_needs_the_csrf_token(http, fd, operator, second, secrets_seen, action):
    await console(http, *operator, secrets_seen)
    response = await http.post(f"/admin/clients/{action}", data={"csrf": "nope", "client_id": second.client_id})
    assert response.status_code == 403
    assert fd.clients.get(second.client_id, cached=False) is not None


async def test_auditor_may_look_not_register(http, fd, person, second, secrets_seen):
    give_role(fd, person[0], "auditor")
    page = await console(http, *person, secrets_seen, view(second.client_id))
    assert page.status_code == 200
    assert forms_of(page.text) == []
    assert "Register a client" not in (await http.get("/admin/clients")).text
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    response = await http.post(
        "/admin/clients/delete", data={"csrf": token[1] if token else "", "client_id": second.client_id}
    )
    assert response.status_code == 403
    assert fd.clients.get(second.client_id, cached=False) is not None


@pytest.mark.parametrize(("overlap", "status"), [("soon", 400), ("-1", 422), (str(31 * 86400), 422)])
async def test_an_overlap_out_of_range_is_refused_in_words(http, operator, confidential, secrets_seen, overlap, status):
    page = await console(http, *operator, secrets_seen, view(confidential.client_id))
    refused = await post(http, page, "/admin/clients/rotate-secret", client_id=confidential.client_id, overlap=overlap)
    assert refused.status_code == status
    assert 'role="alert"' in refused.text
    assert "data-secret" not in refused.text


async def test_registering_needs_a_kind_of_app(http, operator, secrets_seen):
    form = await console(http, *operator, secrets_seen, "/admin/clients/new")
    refused = await post(http, form, "/admin/clients/new", auth_method="private_key_jwt", name="X", scope="openid")
    assert refused.status_code == 400
    assert "Choose what kind of app this is." in refused.text
