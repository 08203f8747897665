"""Helpers for the admin console tests: a person given an admin role, signed in to ``/admin`` through the real forms
(password, then the second step the console asks for), and the console's forms."""

from __future__ import annotations

import re

import httpx
import pytest

from accounts import follow, post_code, recovery_codes_on, secret_on, sign_in_form, totp_code
from conftest import csrf_of, remember
from frontdesk.admin.principals import CLI
from frontdesk.admin.roles import grant_role
from frontdesk.core import Frontdesk


def give_role(fd: Frontdesk, username: str, role: str) -> None:
    grant_role(fd, CLI, username, role)


@pytest.fixture
def console_operator(fd: Frontdesk, person: tuple[str, str]) -> tuple[str, str]:
    """The suite's person, holding the operator role: they may change things."""
    give_role(fd, person[0], "operator")
    return person


@pytest.fixture
def console_auditor(fd: Frontdesk, person: tuple[str, str]) -> tuple[str, str]:
    """The suite's person, holding the auditor role: they may only look."""
    give_role(fd, person[0], "auditor")
    return person


def continue_link(page: httpx.Response) -> str:
    link = re.search(r'<a class="button" href="([^"]+)">', page.text)
    assert link, page.text
    return link[1]


async def step_up(http: httpx.AsyncClient, page: httpx.Response, seen: set[str]) -> httpx.Response:
    """From the console's "a second step is needed" page: enrol an authenticator app during the sign-in's second
    step, save the recovery codes, continue; the page the browser comes back to."""
    assert page.status_code == 403, page.text
    assert "A second step is needed" in page.text
    enrol = await http.get(continue_link(page))
    assert "Set up a second step" in enrol.text, enrol.text
    secret = secret_on(enrol)
    codes_page = await post_code(http, enrol, totp_code(secret))
    assert codes_page.status_code == 200, codes_page.text
    remember(seen, secret, *recovery_codes_on(codes_page))
    return await follow(http, await http.get(continue_link(codes_page)))


async def console(
    http: httpx.AsyncClient, username: str, password: str, seen: set[str], path: str = "/admin"
) -> httpx.Response:
    """Open a console page as a person holding an admin role: sign in, then the second step; the page."""
    page = await follow(http, await http.get(path))
    if 'name="password"' in page.text:
        page = await follow(http, await sign_in_form(http, page, username, password))
    if "A second step is needed" in page.text:
        page = await step_up(http, page, seen)
    return page


def forms_of(html: str) -> list[str]:
    return re.findall(r'<form method="post" action="([^"]+)"', html)


async def post(http: httpx.AsyncClient, page: httpx.Response, to: str, /, **fields: str) -> httpx.Response:
    """Post the form with action ``to`` on ``page`` (with the page's CSRF token and ``fields``); the answer."""
    assert to in forms_of(page.text), (to, forms_of(page.text))
    return await http.post(to, data={"csrf": csrf_of(page.text), **fields})
