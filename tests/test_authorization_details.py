"""Rich Authorization Requests (RFC 9396; issue 14 item 5) over HTTP on both databases: ``authorization_details`` at
/authorize validated against the operator's types, shown on the consent page in their words, kept with the grant,
returned by /token, carried in JWT access tokens and introspection, kept and narrowed on refresh; discovery; and the
``frontdesk authz-type`` commands."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import httpx
import pytest

from conftest import RS1, Browser, Registered, basic, pkce, query
from frontdesk.cli import authz_types as authz_cli
from frontdesk.cli import main
from frontdesk.core import Frontdesk
from frontdesk.oauth.authorization_detail_types import detail_types
from frontdesk.storage import audit
from rar import PAYMENT, PAYMENTS_API, SCHEMA, authorize, code_with, register_payments, tokens_with
from test_token import introspect, verified_claims


@pytest.fixture(autouse=True)
def payments(fd: Frontdesk) -> None:
    register_payments(fd)


def events(fd: Frontdesk, name: str) -> list[audit.AuditRecord]:
    return [e for e in audit.tail(fd.engine, 200) if e.event == name]


def assert_error(response: httpx.Response, error: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error, response.text


async def consent_page(browser: Browser, client: Registered, details: object, **extra: str) -> httpx.Response:
    """The consent page of an authorization request with ``details``, after signing in."""
    _, challenge = pkce()
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": "openid calendar.read",
        "state": "xyz",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "authorization_details": json.dumps(details),
        **extra,
    }
    response = await browser.follow(await browser.http.get("/authorize", params=params))
    if 'name="password"' in response.text:
        response = await browser.follow(await browser.sign_in(response))
    assert response.status_code == 200, response.text
    assert 'value="allow"' in response.text, response.text
    return response


# --- /authorize ---------------------------------------------------------------------------------------------------


async def test_an_invalid_detail_comes_back_as_an_error_redirect(browser, confidential):
    """Once the redirect URI is trusted, invalid details are an error redirect (RFC 9396 §5), with state and iss."""
    wrong = {**PAYMENT, "instructedAmount": {"currency": "EUR", "amount": 123.5}}
    answer = await authorize(browser, confidential, [wrong])
    assert answer["error"] == "invalid_authorization_details"
    assert answer["state"] == "xyz"
    assert "instructedAmount.amount" in answer["error_description"]
    assert "code" not in answer


async def test_the_consent_page_shows_the_scope_and_each_detail_in_plain_words(browser, confidential):
    """RFC 9396 §3.1: the person sees the scopes and the details, in the words the operator registered."""
    page = await consent_page(browser, confidential, [PAYMENT])
    assert "See your calendar events" in page.text
    assert "Pay 123.50 EUR to Merchant A" in page.text
    assert f"at: {PAYMENTS_API}" in page.text  # common fields the template leaves out still show


async def test_a_request_of_details_alone_asks_for_them_alone(browser, confidential):
    """Without scope the page lists the details only, not a scope nobody asked for."""
    page = await consent_page(browser, confidential, [PAYMENT], scope="")
    assert "Pay 123.50 EUR to Merchant A" in page.text
    assert '<ul class="scopes">\n</ul>' in page.text


async def test_a_value_with_markup_is_shown_as_text(browser, confidential):
    """A detail's values are the client's words: escaped on the page, never markup."""
    hostile = {**PAYMENT, "creditorName": '<script>alert("x")</script>'}
    page = await consent_page(browser, confidential, [hostile])
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert" in page.text


async def test_details_are_asked_for_every_time(browser, confidential):
    """A consent recorded for the scope does not answer a request with details: each is approved as such."""
    await authorize(browser, confidential, [PAYMENT])
    page = await consent_page(browser, confidential, [PAYMENT])
    assert "Pay 123.50 EUR" in page.text


async def test_details_under_prompt_none_are_consent_required(browser, confidential):
    """prompt=none cannot ask the person, so a request with details gets consent_required."""
    await authorize(browser, confidential, [PAYMENT])
    answer = await authorize(browser, confidential, [PAYMENT], prompt="none")
    assert answer["error"] == "consent_required"


async def test_consent_and_code_are_audited_with_the_detail_types(fd, browser, confidential):
    """The audit says which types were approved; the values (an account, an amount) stay in the grant."""
    await authorize(browser, confidential, [PAYMENT])
    consent = events(fd, "consent")[-1]
    issued = events(fd, "code.issued")[-1]
    assert consent.detail["authorization_details"] == "payment_initiation"
    assert issued.detail["authorization_details"] == "payment_initiation"
    assert "DE02100100109307118603" not in json.dumps([consent.detail, issued.detail])


# --- /token -------------------------------------------------------------------------------------------------------


async def test_the_token_response_returns_the_granted_details(http, browser, confidential):
    """RFC 9396 §7: the token response names the details the token was granted."""
    response = await tokens_with(http, browser, confidential)
    assert response.status_code == 200, response.text
    assert response.json()["authorization_details"] == [PAYMENT]


async def test_a_jwt_for_the_details_location_carries_them(http, browser, confidential):
    """RFC 9396 §9.1: a top-level claim of the access token, for the audience the details name."""
    code, verifier = await code_with(browser, confidential, [PAYMENT], resource=PAYMENTS_API)
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    body = (await http.post("/token", auth=basic(confidential), data=data)).json()
    claims = await verified_claims(http, body["access_token"])
    assert claims["aud"] == PAYMENTS_API
    assert claims["authorization_details"] == [PAYMENT]


async def test_details_for_another_audience_stay_out_of_the_jwt(fd, http, browser, confidential):
    """A detail whose locations do not name the token's audience is not handed to that resource server."""
    from frontdesk.oauth.resources import create as create_resource

    create_resource(fd, RS1, "Resource server one")
    anywhere = {k: v for k, v in PAYMENT.items() if k != "locations"}
    code, verifier = await code_with(browser, confidential, [PAYMENT, anywhere], resource=RS1)
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    body = (await http.post("/token", auth=basic(confidential), data=data)).json()
    claims = await verified_claims(http, body["access_token"])
    assert claims["authorization_details"] == [anywhere]


async def test_introspection_returns_the_details(http, browser, confidential):
    """RFC 9396 §9.2: the introspection answer carries the token's details."""
    code, verifier = await code_with(browser, confidential, [PAYMENT], resource=PAYMENTS_API)
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    body = (await http.post("/token", auth=basic(confidential), data=data)).json()
    assert (await introspect(http, confidential, body["access_token"]))["authorization_details"] == [PAYMENT]


async def test_a_token_request_may_narrow_the_details(http, browser, confidential):
    """RFC 9396 §6.1: fewer actions than granted are fine; the token and the response carry the narrowed ones."""
    fewer = {**PAYMENT, "actions": ["status"]}
    response = await tokens_with(http, browser, confidential, authorization_details=json.dumps([fewer]))
    assert response.status_code == 200, response.text
    assert response.json()["authorization_details"] == [fewer]


async def test_a_token_request_for_wider_details_is_refused(http, browser, confidential):
    """RFC 9396 §6.1: an action the person did not approve is invalid_authorization_details, and no code is burnt."""
    granted = {**PAYMENT, "actions": ["status"]}
    code, verifier = await code_with(browser, confidential, [granted])
    wider = json.dumps([{**granted, "actions": ["status", "initiate"]}])
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    assert_error(
        await http.post("/token", auth=basic(confidential), data={**data, "authorization_details": wider}),
        "invalid_authorization_details",
    )
    assert (await http.post("/token", auth=basic(confidential), data=data)).status_code == 200


async def test_a_token_request_cannot_change_the_amount(http, browser, confidential):
    """A type's own fields are the grant's exactly: another amount is not a narrower payment."""
    other = copy.deepcopy(PAYMENT)
    other["instructedAmount"]["amount"] = "1.00"
    response = await tokens_with(http, browser, confidential, authorization_details=json.dumps([other]))
    assert_error(response, "invalid_authorization_details")


async def test_a_token_request_cannot_add_details_to_a_grant_without_them(http, browser, confidential):
    """A code granted for scope only cannot be redeemed for details nobody approved."""
    verifier, challenge = pkce()
    response = await browser.authorize(
        response_type="code",
        client_id=confidential.client_id,
        redirect_uri=confidential.redirect_uri,
        scope="openid offline_access",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    code = query(response.headers["location"])["code"]
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    response = await http.post(
        "/token", auth=basic(confidential), data={**data, "authorization_details": json.dumps([PAYMENT])}
    )
    assert_error(response, "invalid_authorization_details")


async def test_a_refresh_keeps_the_details(http, browser, confidential):
    """RFC 9396 §6: a refresh without the parameter gets the grant's details again."""
    first = (await tokens_with(http, browser, confidential)).json()
    data = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    refreshed = await http.post("/token", auth=basic(confidential), data=data)
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["authorization_details"] == [PAYMENT]


async def test_a_refresh_may_narrow_but_the_grant_keeps_them_all(http, browser, confidential):
    """A narrowed refresh gets fewer; the next refresh without the parameter gets the grant's again."""
    first = (await tokens_with(http, browser, confidential)).json()
    fewer = json.dumps([{**PAYMENT, "actions": ["status"]}])
    data = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "authorization_details": fewer}
    narrow = (await http.post("/token", auth=basic(confidential), data=data)).json()
    assert narrow["authorization_details"][0]["actions"] == ["status"]
    again = {"grant_type": "refresh_token", "refresh_token": narrow["refresh_token"]}
    assert (await http.post("/token", auth=basic(confidential), data=again)).json()["authorization_details"] == [
        PAYMENT
    ]


async def test_a_refresh_for_wider_details_is_refused_and_the_token_survives(http, browser, confidential):
    """A wider refresh is invalid_authorization_details; the refresh token is not used up by it."""
    first = (await tokens_with(http, browser, confidential, authorization_details=json.dumps([PAYMENT]))).json()
    other = json.dumps([{**PAYMENT, "creditorName": "Someone Else"}])
    data = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    assert_error(
        await http.post("/token", auth=basic(confidential), data={**data, "authorization_details": other}),
        "invalid_authorization_details",
    )
    assert (await http.post("/token", auth=basic(confidential), data=data)).status_code == 200


# --- discovery ----------------------------------------------------------------------------------------------------


async def test_discovery_lists_the_registered_types(fd, http):
    """RFC 9396 §10.1: authorization_details_types_supported names each registered type, a new one at once."""
    from frontdesk.oauth.authorization_detail_types import create

    metadata = (await http.get("/.well-known/openid-configuration")).json()
    assert metadata["authorization_details_types_supported"] == ["payment_initiation"]
    create(fd, "account_information", json.dumps({"type": "object"}), "Read your accounts")
    metadata = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert metadata["authorization_details_types_supported"] == ["account_information", "payment_initiation"]


# --- frontdesk authz-type … ---------------------------------------------------------------------------------------


@pytest.fixture
def cli(fd: Frontdesk, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """``frontdesk authz-type …`` in this process on the test's frontdesk: (exit status, stdout, stderr)."""
    monkeypatch.setattr(authz_cli, "open_for", lambda args: fd)

    def run(*argv: str) -> tuple[int, str, str]:
        status = main(["authz-type", *argv])
        out, err = capsys.readouterr()
        return status, out, err

    return run


def test_authz_type_create_registers_a_type_and_audits_it(fd, cli, tmp_path: Path):
    """create stores the schema and the words; list and show read them back; the change is audited."""
    schema = tmp_path / "documents.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"type": {}, "name": {"type": "string"}}}))
    status, out, err = cli("create", "document_signing", "--schema", str(schema), "--describe", "Sign {name}", "--json")
    assert status == 0, err
    assert json.loads(out)["describe"] == "Sign {name}"
    assert "document_signing" in detail_types(fd, fresh=True)
    status, out, _ = cli("list", "--json")
    assert [t["type"] for t in json.loads(out)] == ["document_signing", "payment_initiation"]
    status, out, _ = cli("show", "document_signing", "--json")
    assert json.loads(out)["schema"]["properties"]["name"] == {"type": "string"}
    assert events(fd, "authorization_detail_type.created")[-1].detail["type"] == "document_signing"


@pytest.mark.parametrize(
    ("schema", "says"),
    [
        ("{not json", "not JSON"),
        ("[]", "JSON object"),
        ('{"type": "objekt"}', "not a valid JSON Schema"),
        ('{"$ref": "https://schemas.example/payment.json"}', "refers outside itself"),
        ('{"$schema": "http://json-schema.org/draft-04/schema#"}', "Draft 2020-12"),
        ('{"properties": {"amount": {}}, "additionalProperties": false}', '"type" field'),
    ],
)
def test_authz_type_create_refuses_a_bad_schema(fd, cli, tmp_path: Path, schema: str, says: str):
    """The schema is checked as a JSON Schema (Draft 2020-12) at creation, and nothing is stored when it fails."""
    path = tmp_path / "schema.json"
    path.write_text(schema)
    status, _, err = cli("create", "bad_type", "--schema", str(path), "--describe", "Something")
    assert status == 1
    assert says in err
    assert "bad_type" not in detail_types(fd, fresh=True)


def test_authz_type_create_refuses_a_taken_name_and_empty_words(cli, tmp_path: Path):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA))
    status, _, err = cli("create", "payment_initiation", "--schema", str(path), "--describe", "Pay")
    assert (status, "registered already" in err) == (1, True)
    status, _, err = cli("create", "other", "--schema", str(path), "--describe", "  ")
    assert (status, "plain words" in err) == (1, True)


async def test_authz_type_delete_refuses_new_requests_of_it(fd, cli, browser, confidential):
    """Deleted, a type is unknown to new requests; the deletion is audited."""
    status, _, err = cli("delete", "payment_initiation")
    assert status == 0, err
    assert events(fd, "authorization_detail_type.deleted")[-1].detail["type"] == "payment_initiation"
    answer = await authorize(browser, confidential, [PAYMENT])
    assert answer["error"] == "invalid_authorization_details"
    assert cli("delete", "payment_initiation")[0] == 1
