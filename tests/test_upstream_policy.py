"""Signing in with an upstream provider goes through the one sign-in policy (issue 11, item 4): a client that
requires a second factor gets none of its codes or device approvals on the provider's word alone."""

from __future__ import annotations

import re
from dataclasses import replace

import httpx
import pytest

from accounts import follow
from conftest import csrf_of
from frontdesk.config import SecondFactorPolicy
from test_device import started
from test_upstream import NEWBIE, at_provider, finish, op, provider, through, upstream_tokens  # noqa: F401

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("provider")]


@pytest.fixture
def fd(fd):
    """The suite's frontdesk, where the confidential and the public (device) client require a second factor."""
    policy = SecondFactorPolicy(required_for_clients=("conf-client", "public-client"))
    fd.settings = replace(fd.settings, second_factor=policy)
    return fd


async def upstream_from(http: httpx.AsyncClient, login: httpx.Response) -> httpx.Response:
    """Press "Continue with Op" on ``login``, sign in at the provider, and come back; the page that follows."""
    action = re.search(r'<form method="post" action="(/interaction/[^"/]+/upstream/op)"', login.text)
    assert action, login.text
    out = await http.post(action.group(1), data={"csrf": csrf_of(login.text)})
    assert out.status_code == 303, out.text
    return await finish(http, await http.get(await at_provider(out.headers["location"], NEWBIE)))


async def test_upstream_sign_in_for_a_client_that_requires_it_asks_for_the_second_factor(http, confidential):
    """After the provider vouches for the person, the second factor the client requires comes before consent."""
    page = await finish(http, await through(http, confidential, NEWBIE))
    assert "Set up a second step" in page.text, page.text
    assert 'value="allow"' not in page.text


async def test_upstream_sign_in_for_a_device_asks_for_the_second_factor(http, public):
    """Signing in with the provider from a device link of a client that requires a second factor leads to it,
    not to the approval."""
    body = await started(http, public)
    login = await follow(http, await http.get("/device", params={"user_code": body["user_code"]}))
    page = await upstream_from(http, login)
    assert "Set up a second step" in page.text, page.text
    assert 'action="/device"' not in page.text


async def test_upstream_session_approving_a_device_steps_up_first(http, public):
    """A provider-only session typing a device's user code is sent to the second factor first."""
    body = await started(http, public)
    login = await follow(http, await http.get("/device"))
    form = await upstream_from(http, login)
    assert 'action="/device"' in form.text, form.text
    response = await http.post("/device", data={"csrf": csrf_of(form.text), "user_code": body["user_code"]})
    assert response.status_code == 303, response.text
    assert re.fullmatch(r"/interaction/[^/]+/second-factor", response.headers["location"])
