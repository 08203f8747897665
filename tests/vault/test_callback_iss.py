"""Issue 11, item 13 (the vault's part): the connect callback checks the provider's ``iss`` (RFC 9207, the mix-up
defence) against the issuer its discovery document names; a mismatch, or no ``iss`` from a provider that says it
always sends one, is refused before anything is exchanged, attached or used up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from conftest import ISSUER
from frontdesk.core import Frontdesk
from frontdesk.storage import audit
from frontdesk.storage.schema import VaultConnection, VaultConnectSession
from frontdesk.vault.service import Vault

from .conftest import connect_link, open_link, remember_tokens, reopen
from .fake_provider import Fake

MIX_UP = "https://attacker.example"


@dataclass
class OpenIdFake(Fake):
    """The fake provider with a discovery document naming it as the issuer, sending ``iss`` back (RFC 9207 §2)."""

    advertises_iss: bool = True  # authorization_response_iss_parameter_supported
    sends_iss: bool = True
    discovery_down: bool = False

    async def discovery(self, request: Request) -> Response:
        if self.discovery_down:
            return JSONResponse({"error": "unavailable"}, 503)
        return JSONResponse(
            {
                "issuer": self.base,
                "authorization_endpoint": f"{self.base}/authorize",
                "token_endpoint": f"{self.base}/token",
                "authorization_response_iss_parameter_supported": self.advertises_iss,
            }
        )

    async def authorize(self, request: Request) -> Response:
        response = await super().authorize(request)
        location = httpx.URL(response.headers["location"])
        if self.sends_iss:
            location = location.copy_add_param("iss", self.base)
        return RedirectResponse(str(location), 302)

    def app(self) -> Any:
        app = super().app()
        app.router.routes.append(Route("/.well-known/openid-configuration", self.discovery))
        return app


@pytest.fixture
def fake_class() -> type[Fake]:
    return OpenIdFake


@pytest.fixture
def provider_file_options(fake: OpenIdFake) -> dict[str, str]:
    return {"discovery_url": f'"{fake.base}/.well-known/openid-configuration"'}


async def _sent_back(http: httpx.AsyncClient, key: str) -> httpx.URL:
    """The callback URL the provider sends the person's browser to, not yet followed."""
    link = await connect_link(http, key)
    opened = await open_link(http, link["connect_url"])
    assert opened.status_code == 303, opened.text
    async with httpx.AsyncClient() as outside:
        at_provider = await outside.get(opened.headers["location"])
    assert at_provider.status_code == 302, at_provider.text
    return httpx.URL(at_provider.headers["location"])


def _with_iss(url: httpx.URL, iss: str | None) -> str:
    params = url.params.remove("iss")
    if iss is not None:
        params = params.add("iss", iss)
    return str(url.copy_with(params=params)).removeprefix(ISSUER)


def _connections(vault: Vault) -> list[Any]:
    with vault.engine.begin() as conn:
        return list(conn.execute(select(VaultConnection)).all())


def _refusals(vault: Vault) -> list[str]:
    return [
        e.detail.get("reason", "")
        for e in audit.tail(vault.engine, 100)
        if e.event == "vault.connection.created" and e.outcome == "failure"
    ]


async def test_a_callback_from_the_providers_issuer_connects(
    http: httpx.AsyncClient, api_key: str, fake: OpenIdFake, vault: Vault, secrets_seen: set[str]
) -> None:
    back = await _sent_back(http, api_key)
    assert back.params["iss"] == fake.base
    done = await http.get(str(back).removeprefix(ISSUER))
    remember_tokens(fake, secrets_seen)
    assert done.status_code == 200, done.text
    assert len(_connections(vault)) == 1


async def test_a_callback_naming_another_issuer_is_refused_and_leaves_the_session_usable(
    http: httpx.AsyncClient, api_key: str, fake: OpenIdFake, vault: Vault, secrets_seen: set[str]
) -> None:
    """RFC 9207 §2.4: the response is rejected, its code never exchanged, nothing attached; the session is not
    used up, so the response the person's own provider sends still completes it (in the browser bound to it: the
    refusal page clears that binding cookie, which the browser here keeps)."""
    back = await _sent_back(http, api_key)
    bound = httpx.Cookies(http.cookies)
    refused = await http.get(_with_iss(back, MIX_UP))
    assert refused.status_code == 400, refused.text
    assert _connections(vault) == []
    assert fake.codes  # the code was not redeemed
    assert _refusals(vault) == ["issuer_mismatch"]
    with vault.engine.begin() as conn:
        assert conn.execute(select(VaultConnectSession.consumed_at)).scalar_one() is None

    http.cookies = bound
    done = await http.get(_with_iss(back, fake.base))
    remember_tokens(fake, secrets_seen)
    assert done.status_code == 200, done.text
    assert len(_connections(vault)) == 1


@pytest.mark.parametrize("fake_options", [{"sends_iss": False}])
async def test_no_iss_from_a_provider_that_says_it_sends_one_is_refused(
    http: httpx.AsyncClient, api_key: str, fake: OpenIdFake, vault: Vault
) -> None:
    back = await _sent_back(http, api_key)
    assert "iss" not in back.params
    refused = await http.get(str(back).removeprefix(ISSUER))
    assert refused.status_code == 400, refused.text
    assert _connections(vault) == []
    assert fake.codes
    assert _refusals(vault) == ["issuer_missing"]


@pytest.mark.parametrize("fake_options", [{"sends_iss": False, "advertises_iss": False}])
async def test_no_iss_from_a_provider_that_does_not_send_one_connects(
    http: httpx.AsyncClient, api_key: str, fake: OpenIdFake, vault: Vault, secrets_seen: set[str]
) -> None:
    back = await _sent_back(http, api_key)
    done = await http.get(str(back).removeprefix(ISSUER))
    remember_tokens(fake, secrets_seen)
    assert done.status_code == 200, done.text
    assert len(_connections(vault)) == 1


@pytest.mark.parametrize("fake_options", [{"sends_iss": False, "advertises_iss": False}])
async def test_another_issuer_is_refused_even_from_a_provider_that_does_not_always_send_one(
    http: httpx.AsyncClient, api_key: str, fake: OpenIdFake, vault: Vault
) -> None:
    back = await _sent_back(http, api_key)
    refused = await http.get(_with_iss(back, MIX_UP))
    assert refused.status_code == 400, refused.text
    assert _connections(vault) == []


async def test_a_callback_when_the_discovery_document_cannot_be_fetched_is_a_503_page(
    http: httpx.AsyncClient, api_key: str, fake: OpenIdFake, fd: Frontdesk
) -> None:
    """The issuer to check ``iss`` against comes from the provider's discovery document: when that cannot be
    fetched (a restarted vault, its cache empty) the person gets the try-again page, not a 500; nothing attached."""
    back = await _sent_back(http, api_key)
    fake.discovery_down = True
    vault = reopen(fd)  # a new process, say: no discovery document cached
    answer = await http.get(str(back).removeprefix(ISSUER))
    assert answer.status_code == 503, answer.text
    assert "Try again in a moment" in answer.text
    assert _connections(vault) == []
