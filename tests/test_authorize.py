"""The authorization endpoint over HTTP (RFC 6749 §4.1, OAuth 2.1 §4.1, RFC 9700, RFC 9207, OpenID Connect Core
§3.1.2), through the real sign-in and consent forms. Checklist IDs (BCP-xx, O21-xx, OIDC-xx) name the rule tested."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from conftest import ISSUER, Browser, Registered, code_for, csrf_of, pkce, query
from frontdesk.oauth.registration import register

CONSENTED = "openid profile offline_access"  # what code_for consents to
STATE = "xyz"


def params_for(client: Registered, **overrides: str | None) -> dict[str, str]:
    """A valid authorization request for ``client``; an override of None drops the parameter."""
    _, challenge = pkce()
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": CONSENTED,
        "state": STATE,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **overrides,
    }
    return {k: v for k, v in params.items() if v is not None}


def assert_no_redirect(response: httpx.Response) -> None:
    """Checklist §0 "no redirect": an HTML error page, nothing sent to any client."""
    assert response.status_code == 400, (response.status_code, response.headers.get("location"))
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert 'name="password"' not in response.text


def assert_error_redirect(
    response: httpx.Response, redirect_uri: str, error: str, state: str | None = STATE
) -> dict[str, str]:
    """Checklist §0 "error redirect": to the client's redirect URI with error, state and iss, and no code."""
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(redirect_uri + "?"), location
    params = query(location)
    assert params.get("error") == error, params
    assert params.get("state") == state
    assert params.get("iss") == ISSUER
    assert "code" not in params
    assert "access_token" not in location
    return params


def assert_code_redirect(response: httpx.Response, redirect_uri: str, state: str | None = STATE) -> dict[str, str]:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(redirect_uri + "?"), location
    params = query(location)
    assert params.get("code"), params
    assert "error" not in params
    assert params.get("state") == state
    assert params.get("iss") == ISSUER
    return params


def assert_interaction(response: httpx.Response, step: str) -> None:
    """A 303 that stays on this server and hands the person to the sign-in or consent page."""
    assert response.status_code == 303, response.text
    assert re.fullmatch(rf"/interaction/[^/?#]+/{step}", response.headers["location"]), response.headers["location"]


async def sign_in(browser: Browser, client: Registered) -> None:
    """Sign in and consent to CONSENTED for ``client`` through the real forms; the session cookie stays."""
    await code_for(browser, client, scope=CONSENTED)


def form_action(html: str) -> str:
    match = re.search(r'<form method="post" action="([^"]+)"', html)
    assert match, html
    return match.group(1)


async def login_page(http: httpx.AsyncClient, client: Registered, **overrides: str | None) -> httpx.Response:
    first = await http.get("/authorize", params=params_for(client, **overrides))
    assert_interaction(first, "login")
    page = await http.get(first.headers["location"])
    assert page.status_code == 200
    assert 'name="password"' in page.text
    return page


async def consent_page(browser: Browser, client: Registered, **overrides: str | None) -> httpx.Response:
    page = await browser.authorize(consent=None, **params_for(client, **overrides))
    assert page.status_code == 200, page.text
    assert 'value="allow"' in page.text
    return page


@pytest.fixture
def two_uris(fd: Any) -> Registered:
    """A confidential client with two registered redirect URIs."""
    client, secret = register(
        fd,
        name="Two Doors",
        client_id="two-uris",
        redirect_uris=["https://app.example/cb", "https://app.example/cb2"],
        grant_types=["authorization_code"],
        scope="openid profile offline_access",
    )
    return Registered(client.client_id, secret, "https://app.example/cb")


@pytest.fixture
async def other_jar(http: httpx.AsyncClient) -> Any:
    """A second browser: same transport (same server and database), its own empty cookie jar."""
    async with httpx.AsyncClient(transport=http._transport, base_url=ISSUER, follow_redirects=False) as client:
        yield client


# --- redirect URI: BCP-01..04 -------------------------------------------------------------------------------------


async def test_exact_redirect_uri_gets_code(browser, confidential):
    """BCP-01 control: the registered redirect URI, byte for byte, receives a code."""
    response = await browser.authorize(**params_for(confidential))
    assert_code_redirect(response, "https://app.example/cb")


BYPASSES = [
    "https://app.example/cb/../evil",
    "https://app.example/cb/",
    "https://app.example/CB",
    "https://APP.example/cb",
    "https://app.example/cb?x=1",
    "https://app.example/cb#f",
    "https://app.example:443/cb",
    "https://app.example/cb%2F..%2Fevil",
    "https://app.example.evil.com/cb",
    "https://app.example./cb",
    "https://app-example.com/cb",
    "https://app.example@evil.com/cb",
    "https://evil.com@app.example/cb",
    "http://app.example/cb",
]


@pytest.mark.parametrize("redirect_uri", BYPASSES)
async def test_redirect_uri_bypass_shows_page(browser, confidential, redirect_uri):
    """BCP-01: a near miss of the registered URI gives an error page and no redirect, even to a signed-in person."""
    await sign_in(browser, confidential)
    response = await browser.http.get("/authorize", params=params_for(confidential, redirect_uri=redirect_uri))
    assert_no_redirect(response)


async def test_unknown_client_shows_page(http, confidential):
    """BCP-04: an unknown client_id gives an error page, never a redirect."""
    response = await http.get("/authorize", params=params_for(confidential, client_id="no-such-client"))
    assert_no_redirect(response)


async def test_missing_client_id_shows_page(http, confidential):
    """BCP-04: a request without client_id gives an error page, never a redirect."""
    response = await http.get("/authorize", params=params_for(confidential, client_id=None))
    assert_no_redirect(response)


async def test_missing_redirect_uri_with_two_registered_shows_page(http, two_uris):
    """BCP-04 / O21 §2.3.2: with two registered redirect URIs the request must name one, or no redirect."""
    response = await http.get("/authorize", params=params_for(two_uris, redirect_uri=None))
    assert_no_redirect(response)


async def test_missing_redirect_uri_with_one_registered_uses_it(browser, confidential):
    """O21 §2.3.2: with exactly one registered redirect URI it may be omitted, and the code goes there."""
    response = await browser.authorize(**params_for(confidential, redirect_uri=None))
    assert_code_redirect(response, "https://app.example/cb")


# --- PKCE: BCP-09, BCP-10 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"code_challenge": None, "code_challenge_method": None},
        {"code_challenge": ""},
        {"code_challenge_method": None},
        {"code_challenge_method": "plain"},
        {"code_challenge_method": "S512"},
        {"code_challenge": "abc"},
        {"code_challenge": "A" * 129},
        {"code_challenge": "+" * 43},
    ],
    ids=["missing", "empty", "no-method", "plain", "S512", "short", "long", "charset"],
)
async def test_pkce_problem_is_invalid_request(browser, public, overrides):
    """BCP-09/10: a missing, plain, unknown or malformed PKCE challenge is an invalid_request error redirect."""
    response = await browser.authorize(**params_for(public, **overrides))
    assert_error_redirect(response, public.redirect_uri, "invalid_request")


async def test_confidential_client_needs_pkce_too(browser, confidential):
    """BCP-09: PKCE is required of confidential clients as well."""
    response = await browser.authorize(**params_for(confidential, code_challenge=None, code_challenge_method=None))
    assert_error_redirect(response, confidential.redirect_uri, "invalid_request")


# --- errors only after sign-in: BCP-32 -----------------------------------------------------------------------------


async def test_error_before_sign_in_shows_login_page(http, person, confidential):
    """BCP-32: with a bad scope, a person who is not signed in gets the sign-in page (200), not a redirect."""
    await login_page(http, confidential, scope="bogus")


async def test_error_after_sign_in_is_redirected(browser, confidential):
    """BCP-32: once the person signs in, the bad scope goes back to the client as invalid_scope."""
    response = await browser.authorize(**params_for(confidential, scope="openid bogus"))
    assert_error_redirect(response, confidential.redirect_uri, "invalid_scope")


async def test_error_with_session_is_redirected_at_once(browser, confidential):
    """BCP-32: a person already signed in gets the error redirect straight from /authorize."""
    await sign_in(browser, confidential)
    response = await browser.http.get("/authorize", params=params_for(confidential, scope="bogus"))
    assert_error_redirect(response, confidential.redirect_uri, "invalid_scope")


async def test_error_under_prompt_none_is_redirected_without_session(http, confidential):
    """BCP-32: under prompt=none no page may be shown, so the error is redirected without a session."""
    response = await http.get("/authorize", params=params_for(confidential, scope="bogus", prompt="none"))
    assert_error_redirect(response, confidential.redirect_uri, "invalid_scope")


async def test_scope_not_registered_for_client_is_invalid_scope(browser, second):
    """RFC 6749 §3.3: a known scope the client is not registered for is invalid_scope."""
    response = await browser.authorize(**params_for(second, scope="openid email"))
    assert_error_redirect(response, second.redirect_uri, "invalid_scope")


# --- response types: BCP-17, O21-10 --------------------------------------------------------------------------------


@pytest.mark.parametrize("response_type", ["token", "code id_token", "id_token", "code token", "id_token token"])
async def test_implicit_and_hybrid_are_unsupported(browser, confidential, response_type):
    """BCP-17: any response_type but code is unsupported_response_type, and no token is sent anywhere."""
    response = await browser.authorize(**params_for(confidential, response_type=response_type))
    assert_error_redirect(response, confidential.redirect_uri, "unsupported_response_type")
    location = response.headers["location"]
    assert "#" not in location
    for name in ("access_token", "id_token", "token_type"):
        assert name not in location
        assert name not in response.text


async def test_missing_response_type_is_invalid_request(browser, confidential):
    """O21-10: a request without response_type is an invalid_request error redirect."""
    response = await browser.authorize(**params_for(confidential, response_type=None))
    assert_error_redirect(response, confidential.redirect_uri, "invalid_request")


async def test_response_mode_fragment_is_invalid_request(browser, confidential):
    """Only the query response mode is offered; fragment is refused as invalid_request."""
    response = await browser.authorize(**params_for(confidential, response_mode="fragment"))
    assert_error_redirect(response, confidential.redirect_uri, "invalid_request")


# --- state and iss: BCP-29, BCP-34 ---------------------------------------------------------------------------------

ODD_STATE = "a b+c/=&x"


async def test_state_round_trips_on_success(browser, confidential):
    """BCP-34: state comes back byte for byte in a success redirect."""
    response = await browser.authorize(**params_for(confidential, state=ODD_STATE))
    assert_code_redirect(response, confidential.redirect_uri, state=ODD_STATE)


async def test_state_round_trips_on_error(browser, confidential):
    """BCP-34: state comes back byte for byte in an error redirect."""
    response = await browser.authorize(**params_for(confidential, state=ODD_STATE, scope="bogus"))
    assert_error_redirect(response, confidential.redirect_uri, "invalid_scope", state=ODD_STATE)


async def test_state_is_not_invented(browser, confidential):
    """A request without state gets a redirect without state."""
    response = await browser.authorize(**params_for(confidential, state=None))
    assert_code_redirect(response, confidential.redirect_uri, state=None)


async def test_iss_on_success_equals_issuer(browser, confidential):
    """BCP-29 / RFC 9207 §2: the success redirect carries iss equal to the issuer, byte for byte."""
    response = await browser.authorize(**params_for(confidential))
    assert query(response.headers["location"])["iss"] == ISSUER
    metadata = (await browser.http.get("/.well-known/oauth-authorization-server")).json()
    assert query(response.headers["location"])["iss"] == metadata["issuer"]


async def test_iss_on_error_equals_issuer(browser, confidential):
    """BCP-29 / RFC 9207 §2: an error redirect carries iss equal to the issuer too."""
    response = await browser.authorize(**params_for(confidential, scope="bogus"))
    assert query(response.headers["location"])["iss"] == ISSUER


# --- error redirects: OIDC-12 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"scope": "openid bogus\r\nX-Injected: 1"}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"prompt": "none login"}, "invalid_request"),
    ],
)
async def test_error_redirects_say_what_in_rfc6749_characters(browser, confidential, extra, error):
    """OIDC-12 (Core §3.1.2.6, RFC 6749 §4.1.2.1): an error redirect carries the error code and state and no code;
    its error_description holds only the characters RFC 6749 allows (%x20-21 / %x23-5B / %x5D-7E), whatever the
    request carried."""
    response = await browser.authorize(**params_for(confidential, **extra))
    params = assert_error_redirect(response, confidential.redirect_uri, error)
    description = params.get("error_description", "")
    assert description
    assert re.fullmatch(r"[\x20\x21\x23-\x5B\x5D-\x7E]*", description), description


# --- request parameters that must not break a request: OIDC-08 ---------------------------------------------------


async def test_display_locales_and_hints_do_not_cause_errors(browser, confidential):
    """OIDC-08 (Core §15.1): display, ui_locales, claims_locales, login_hint and acr_values are accepted (used or
    ignored), and the flow ends with a code as it would without them."""
    extra = {
        "display": "popup",
        "ui_locales": "fr-CA fr en",
        "claims_locales": "de en",
        "login_hint": "alice",
        "acr_values": "urn:example:unknown-acr",
    }
    response = await browser.authorize(**params_for(confidential, **extra))
    assert response.status_code == 303, response.text
    params = query(response.headers["location"])
    assert "code" in params, params
    assert "error" not in params


# --- prompt and max_age: OIDC-05, OIDC-06 --------------------------------------------------------------------------


async def test_prompt_none_without_session_is_login_required(http, confidential):
    """OIDC-05: prompt=none with no session is a login_required error redirect."""
    response = await http.get("/authorize", params=params_for(confidential, prompt="none"))
    assert_error_redirect(response, confidential.redirect_uri, "login_required")


async def test_prompt_none_without_consent_is_consent_required(browser, confidential, second):
    """OIDC-05: prompt=none, signed in, but no consent for this client, is a consent_required error redirect."""
    await sign_in(browser, second)
    response = await browser.http.get("/authorize", params=params_for(confidential, prompt="none"))
    assert_error_redirect(response, confidential.redirect_uri, "consent_required")


async def test_prompt_none_with_session_and_consent_answers_at_once(browser, confidential):
    """OIDC-05: prompt=none with a session and consent returns a code without any page."""
    await sign_in(browser, confidential)
    response = await browser.http.get("/authorize", params=params_for(confidential, prompt="none"))
    assert_code_redirect(response, confidential.redirect_uri)


async def test_prompt_none_with_other_value_is_invalid_request(browser, confidential):
    """OIDC-05: prompt=none combined with another value is invalid_request."""
    await sign_in(browser, confidential)
    response = await browser.http.get("/authorize", params=params_for(confidential, prompt="none login"))
    assert_error_redirect(response, confidential.redirect_uri, "invalid_request")


async def test_prompt_login_forces_sign_in(browser, confidential):
    """OIDC-05: prompt=login shows the sign-in form again although a session exists."""
    await sign_in(browser, confidential)
    response = await browser.http.get("/authorize", params=params_for(confidential, prompt="login"))
    assert_interaction(response, "login")
    page = await browser.http.get(response.headers["location"])
    assert 'name="password"' in page.text


async def test_max_age_zero_forces_sign_in(browser, confidential):
    """OIDC-06: max_age=0 forces sign-in at once, like prompt=login (OIDC Core §3.1.2.1)."""
    await sign_in(browser, confidential)
    response = await browser.http.get("/authorize", params=params_for(confidential, max_age="0"))
    assert_interaction(response, "login")


async def test_generous_max_age_keeps_session(browser, confidential):
    """OIDC-06: a max_age larger than the session's age needs no new sign-in."""
    await sign_in(browser, confidential)
    response = await browser.http.get("/authorize", params=params_for(confidential, max_age="10000"))
    assert_code_redirect(response, confidential.redirect_uri)


@pytest.mark.parametrize("max_age", ["-1", "1.5", "x", "²", "٣"])
async def test_malformed_max_age_is_invalid_request(browser, confidential, max_age):
    """A max_age that is not a non-negative integer in ASCII digits is an invalid_request error redirect."""
    response = await browser.authorize(**params_for(confidential, max_age=max_age))
    assert_error_redirect(response, confidential.redirect_uri, "invalid_request")


# --- consent -------------------------------------------------------------------------------------------------------


async def test_consent_is_remembered(browser, confidential):
    """A second request for already-consented scopes skips the consent page and returns a code."""
    await sign_in(browser, confidential)
    response = await browser.http.get("/authorize", params=params_for(confidential))
    assert_code_redirect(response, confidential.redirect_uri)


async def test_wider_scope_asks_again(browser, confidential):
    """A request for a scope beyond what was consented shows the consent page again."""
    await sign_in(browser, confidential)
    response = await browser.http.get("/authorize", params=params_for(confidential, scope=CONSENTED + " email"))
    assert_interaction(response, "consent")


async def test_prompt_consent_asks_again(browser, confidential):
    """OIDC-10: prompt=consent shows the consent page although consent was given."""
    await sign_in(browser, confidential)
    response = await browser.http.get("/authorize", params=params_for(confidential, prompt="consent"))
    assert_interaction(response, "consent")
    page = await browser.http.get(response.headers["location"])
    assert 'value="allow"' in page.text


async def test_deny_is_access_denied(browser, confidential):
    """BCP-29: denying consent is an access_denied error redirect with state and iss."""
    response = await browser.authorize(consent="deny", **params_for(confidential))
    assert_error_redirect(response, confidential.redirect_uri, "access_denied")


async def test_consent_without_csrf_is_refused(browser, confidential):
    """BCP-35: a consent POST without the CSRF token is 403 and issues no code."""
    page = await consent_page(browser, confidential)
    response = await browser.http.post(form_action(page.text), data={"decision": "allow"})
    assert response.status_code == 403
    assert "location" not in response.headers


async def test_consent_with_wrong_csrf_is_refused(browser, confidential):
    """BCP-35: a consent POST with a wrong CSRF token is 403 and issues no code."""
    page = await consent_page(browser, confidential)
    wrong = "0" * len(csrf_of(page.text))
    response = await browser.http.post(form_action(page.text), data={"csrf": wrong, "decision": "allow"})
    assert response.status_code == 403
    assert "location" not in response.headers


async def test_login_without_csrf_is_refused(http, person, confidential):
    """BCP-35: a sign-in POST without the CSRF token is 403 and opens no session."""
    page = await login_page(http, confidential)
    username, password = person
    response = await http.post(form_action(page.text), data={"username": username, "password": password})
    assert response.status_code == 403
    assert "location" not in response.headers
    assert "session" not in response.headers.get("set-cookie", "")


async def test_login_from_another_browser_is_refused(http, other_jar, person, confidential):
    """An interaction opened in one browser cannot be signed into from another (its binding cookie is missing)."""
    page = await login_page(http, confidential)
    action = form_action(page.text)
    assert (await other_jar.get(action)).status_code == 400
    username, password = person
    response = await other_jar.post(
        action, data={"csrf": csrf_of(page.text), "username": username, "password": password}
    )
    assert_no_redirect(response)
    assert "set-cookie" not in response.headers


async def test_consent_from_another_browser_is_refused(browser, other_jar, confidential):
    """An interaction opened in one browser cannot be consented to from another, and stays usable in the first."""
    page = await consent_page(browser, confidential)
    action, csrf = form_action(page.text), csrf_of(page.text)
    response = await other_jar.post(action, data={"csrf": csrf, "decision": "allow"})
    assert_no_redirect(response)
    finished = await browser.http.post(action, data={"csrf": csrf, "decision": "allow"})
    assert_code_redirect(finished, confidential.redirect_uri)


# --- browser-level protections: BCP-36..39, O21-05 ------------------------------------------------------------------


async def _page(kind: str, browser: Browser, client: Registered) -> httpx.Response:
    if kind == "error":
        response = await browser.http.get("/authorize", params=params_for(client, client_id="no-such-client"))
        assert response.status_code == 400
        return response
    if kind == "login":
        return await login_page(browser.http, client)
    return await consent_page(browser, client)


@pytest.mark.parametrize("kind", ["error", "login", "consent"])
async def test_pages_forbid_framing_and_referrer(browser, confidential, kind):
    """BCP-36/38: each page sends CSP frame-ancestors 'none', X-Frame-Options DENY, Referrer-Policy no-referrer."""
    response = await _page(kind, browser, confidential)
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "action", "srcset", "formaction")]


@pytest.mark.parametrize("kind", ["error", "login", "consent"])
async def test_pages_load_nothing_from_third_parties(browser, confidential, kind):
    """BCP-38: the pages reference no foreign origin in src, href or action."""
    response = await _page(kind, browser, confidential)
    links = _Links()
    links.feed(response.text)
    assert links.urls, "expected at least the stylesheet link"
    for url in links.urls:
        parts = urlsplit(url)
        same_origin = (not parts.scheme and not parts.netloc) or url.startswith(ISSUER + "/")
        assert same_origin, url


async def test_login_post_answers_303(http, person, confidential):
    """BCP-37: a successful sign-in POST answers 303, never 307 or 308."""
    page = await login_page(http, confidential)
    username, password = person
    response = await http.post(
        form_action(page.text), data={"csrf": csrf_of(page.text), "username": username, "password": password}
    )
    assert response.status_code == 303


@pytest.mark.parametrize("decision", ["allow", "deny"])
async def test_consent_post_answers_303(browser, confidential, decision):
    """BCP-37: a consent POST answers 303, never 307 or 308."""
    page = await consent_page(browser, confidential)
    response = await browser.http.post(form_action(page.text), data={"csrf": csrf_of(page.text), "decision": decision})
    assert response.status_code == 303


async def test_authorize_post_error_answers_303(browser, confidential):
    """BCP-37: an authorization request sent as a POST is answered with 303 too."""
    await sign_in(browser, confidential)
    response = await browser.http.post("/authorize", data=params_for(confidential, scope="bogus"))
    assert_error_redirect(response, confidential.redirect_uri, "invalid_scope")


@pytest.mark.parametrize("method", ["GET", "OPTIONS"])
async def test_authorize_has_no_cors(http, confidential, method):
    """BCP-39: /authorize sends no Access-Control-Allow-Origin, even to a cross-origin request."""
    headers = {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    response = await http.request(method, "/authorize", params=params_for(confidential), headers=headers)
    assert not any(name.lower().startswith("access-control-") for name in response.headers)


@pytest.mark.parametrize("name", ["client_id", "redirect_uri", "state", "response_type", "code_challenge"])
async def test_duplicated_parameter_shows_page(browser, confidential, name):
    """O21-05: a repeated parameter, even with the same value, gives a 400 error page and no redirect."""
    await sign_in(browser, confidential)
    params = list(params_for(confidential).items())
    params.append((name, dict(params)[name]))
    response = await browser.http.get("/authorize", params=params)
    assert_no_redirect(response)


async def test_unknown_parameter_is_ignored(browser, confidential):
    """O21-05: an unknown parameter does not stop the request."""
    response = await browser.authorize(**params_for(confidential, extra="foobar"))
    assert_code_redirect(response, confidential.redirect_uri)


# --- unsupported features: OIDC-09, RFC 8707 -----------------------------------------------------------------------


async def test_request_object_is_request_not_supported(browser, confidential):
    """OIDC-09: a request object is refused with request_not_supported."""
    response = await browser.authorize(**params_for(confidential, request="eyJhbGciOiJub25lIn0.e30."))
    assert_error_redirect(response, confidential.redirect_uri, "request_not_supported")


async def test_request_uri_is_request_uri_not_supported(browser, confidential):
    """OIDC-09: a request_uri is refused with request_uri_not_supported."""
    response = await browser.authorize(**params_for(confidential, request_uri="https://app.example/request.jwt"))
    assert_error_redirect(response, confidential.redirect_uri, "request_uri_not_supported")


async def test_resource_with_fragment_is_invalid_target(browser, confidential):
    """RFC 8707 §2: a resource indicator with a fragment is an invalid_target error redirect."""
    response = await browser.authorize(**params_for(confidential, resource="https://rs.example/api#frag"))
    assert_error_redirect(response, confidential.redirect_uri, "invalid_target")


async def test_relative_resource_is_invalid_target(browser, confidential):
    """RFC 8707 §2: a resource indicator that is not an absolute URI is an invalid_target error redirect."""
    response = await browser.authorize(**params_for(confidential, resource="/api"))
    assert_error_redirect(response, confidential.redirect_uri, "invalid_target")
