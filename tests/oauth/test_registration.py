"""Client registration (``frontdesk.oauth.registration``): :func:`validate` judges requested metadata as a pure
function, naming the field that fails with its RFC 7591 §3.2.2 code; :func:`register` and :func:`update_logout`
store only what it accepted. The RFC 7591 §2 JSON of ``/register`` is read by ``registration_request.requested``
and a client is rendered back by :func:`render_metadata`."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frontdesk.oauth.client_auth import AUTH_METHODS
from frontdesk.oauth.grants import GRANT_TYPES
from frontdesk.oauth.registration import (
    ClientError,
    ClientMetadata,
    Limits,
    UnknownScope,
    register,
    render_metadata,
    update_logout,
    validate,
)
from frontdesk.oauth.registration_request import requested
from frontdesk.protocol.ciba import CIBA_GRANT

WEB = "https://app.example/cb"
PUBLIC_KEY = {
    "kty": "EC",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
}


def test_defaults_are_filled_in():
    """A confidential web client that names only itself and its redirect URI gets the server's defaults."""
    metadata = validate({"name": "  App  ", "redirect_uris": [WEB]})
    assert metadata == ClientMetadata(
        name="App",
        auth_method="client_secret_basic",
        redirect_uris=(WEB,),
        grant_types=("authorization_code", "refresh_token"),
        scope=("openid", "profile", "email", "offline_access"),
        jwks=None,
        jwks_uri=None,
        resources=(),
        access_token_ttl=None,
        id_token_alg=None,
        post_logout_redirect_uris=(),
        backchannel_logout_uri=None,
        backchannel_logout_session_required=False,
        assertion_audience="issuer",
        client_id=None,
        secret=None,
    )


def test_the_default_grant_types_come_from_the_registry():
    """A client that names no grant types is registered for the ones the registry marks as defaults."""
    defaults = tuple(g.name for g in GRANT_TYPES.values() if g.default)
    assert validate({"name": "App", "redirect_uris": [WEB]}).grant_types == defaults


def test_repeated_grant_types_are_kept_once():
    assert validate(
        {"name": "App", "redirect_uris": [WEB], "grant_types": ["refresh_token", "authorization_code", "refresh_token"]}
    ).grant_types == ("refresh_token", "authorization_code")


def test_the_secret_is_not_in_the_repr():
    """The validated value can be logged or shown in a traceback without its secret."""
    metadata = validate({"name": "App", "redirect_uris": [WEB], "secret": "s" * 20})
    assert metadata.secret == "s" * 20
    assert "s" * 20 not in repr(metadata)


@pytest.mark.parametrize(
    ("request_", "error", "message"),
    [
        ({"name": " "}, "invalid_client_metadata", "client name must not be empty"),
        ({"auth_method": "client_secret_jwt"}, "invalid_client_metadata", "token_endpoint_auth_method must be one of"),
        ({"grant_types": ["password"]}, "invalid_client_metadata", "RFC 9700 §2.4 forbids password"),
        ({"grant_types": ["implicit"]}, "invalid_client_metadata", "'implicit' is not supported"),
        (
            {"auth_method": "none", "grant_types": ["client_credentials"], "redirect_uris": []},
            "invalid_client_metadata",
            "a public client cannot use client_credentials",
        ),
        ({"redirect_uris": []}, "invalid_redirect_uri", "the authorization_code grant needs at least one redirect URI"),
        ({"redirect_uris": ["https://app.example/cb#frag"]}, "invalid_redirect_uri", "fragment"),
        ({"redirect_uris": ["http://app.example/cb"]}, "invalid_redirect_uri", "https"),
        ({"auth_method": "private_key_jwt"}, "invalid_client_metadata", "private_key_jwt needs jwks or jwks_uri"),
        (
            {"auth_method": "private_key_jwt", "jwks": {"keys": [{**PUBLIC_KEY, "d": "private"}]}},
            "invalid_client_metadata",
            "jwks must hold public keys only",
        ),
        (
            {"auth_method": "private_key_jwt", "jwks_uri": "http://client.example/jwks"},
            "invalid_client_metadata",
            "jwks_uri must be an https URL with a host",
        ),
        ({"assertion_audience": "token-endpoint"}, "invalid_client_metadata", "only for private_key_jwt clients"),
        ({"assertion_audience": "anything"}, "invalid_client_metadata", "assertion audience must be one of"),
        ({"resources": ["not a uri"]}, "invalid_client_metadata", "resource must be an absolute URI"),
        ({"post_logout_redirect_uris": ["http://app.example/bye"]}, "invalid_client_metadata", "post-logout"),
        ({"backchannel_logout_uri": "http://app.example/bcl"}, "invalid_client_metadata", "backchannel_logout_uri"),
        ({"id_token_alg": "HS256"}, "invalid_client_metadata", "id_token_signed_response_alg must be one of"),
        ({"access_token_ttl": 29}, "invalid_client_metadata", "between 30 seconds and one day"),
        (
            {"auth_method": "none", "secret": "s" * 20},
            "invalid_client_metadata",
            "a secret is only for client_secret_basic or client_secret_post",
        ),
        ({"scope": 'openid "quoted"'}, "invalid_client_metadata", "outside RFC 6749"),
        ({"secret": "short"}, "invalid_client_metadata", "at least 16 characters"),
    ],
)
def test_each_field_is_judged_with_its_code(request_: dict[str, Any], error: str, message: str):
    """RFC 7591 §3.2.2: a refused field is named with invalid_redirect_uri or invalid_client_metadata."""
    with pytest.raises(ClientError, match=message) as refused:
        validate({"name": "App", "redirect_uris": [WEB], **request_})
    assert refused.value.error == error


def test_the_first_field_that_fails_is_the_one_named():
    """Fields are judged in a fixed order, so the same request is always refused for the same reason."""
    with pytest.raises(ClientError, match="token_endpoint_auth_method"):
        validate({"name": "App", "auth_method": "bogus", "grant_types": ["password"], "redirect_uris": []})


def test_every_grant_type_a_public_client_may_not_use_is_refused_for_one():
    """RFC 6749 §2.1: the registry says which grant types need client credentials; registration follows it."""
    for grant in GRANT_TYPES.values():
        request = {"name": "App", "auth_method": "none", "redirect_uris": [WEB], "grant_types": [grant.name]}
        if grant.public:
            assert validate(request).grant_types == (grant.name,)
        else:
            with pytest.raises(ClientError, match="a public client cannot use"):
                validate(request)


def test_every_redirecting_grant_type_needs_a_redirect_uri():
    """RFC 6749 §3.1.2: a grant that goes through the authorization endpoint needs somewhere to send the answer."""
    for grant in GRANT_TYPES.values():
        request: dict[str, Any] = {"name": "App", "redirect_uris": [], "grant_types": [grant.name]}
        if grant.name == CIBA_GRANT:  # CIBA Core 1.0 §4: a CIBA client says how its tokens reach it
            request["backchannel_token_delivery_mode"] = "poll"
        if grant.redirect:
            with pytest.raises(ClientError) as refused:
                validate(request)
            assert refused.value.error == "invalid_redirect_uri"
        else:
            assert validate(request).grant_types == (grant.name,)


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_every_declared_auth_method_can_be_registered(method: str):
    keys = {"jwks": {"keys": [PUBLIC_KEY]}} if method == "private_key_jwt" else {}
    assert validate({"name": "App", "redirect_uris": [WEB], "auth_method": method, **keys}).auth_method == method


def test_scopes_nobody_defined_are_named():
    """With the known scopes given, a client is not registered for scopes no token request could be granted."""
    with pytest.raises(UnknownScope) as refused:
        validate(
            {"name": "App", "redirect_uris": [WEB], "scope": "openid calendar.read mail.send"}, known_scopes={"openid"}
        )
    assert refused.value.scopes == ("calendar.read", "mail.send")
    assert str(refused.value) == "unknown scopes 'calendar.read', 'mail.send'"


def test_register_stores_what_was_judged_and_issues_a_secret(fd):
    """A confidential client gets a generated secret, shown once; storage keeps its digest, not the secret."""
    client, secret = register(fd, name="App", redirect_uris=[WEB])
    assert secret is not None
    assert client.secret_digest is not None
    assert secret not in client.secret_digest
    assert fd.clients.get(client.client_id, cached=False) == client


def test_a_public_client_gets_no_secret(fd):
    client, secret = register(fd, name="App", auth_method="none", redirect_uris=["http://127.0.0.1/cb"])
    assert secret is None
    assert client.secret_digest is None


def test_a_taken_client_id_is_refused(fd):
    register(fd, name="App", client_id="taken", redirect_uris=[WEB])
    with pytest.raises(ClientError) as refused:
        register(fd, name="Other", client_id="taken", redirect_uris=[WEB])
    assert refused.value.error == "invalid_client_id"
    assert str(refused.value) == "client 'taken' already exists"


def test_nothing_is_stored_when_validation_fails(fd):
    with pytest.raises(ClientError):
        register(fd, name="App", client_id="refused", redirect_uris=["http://app.example/cb"])
    assert fd.clients.get("refused", cached=False) is None


def test_update_logout_is_judged_as_at_registration(fd):
    """Sign-out URIs changed later follow the same rules; a refused change leaves the client as it was."""
    client, _ = register(fd, name="App", redirect_uris=[WEB], post_logout_redirect_uris=["https://app.example/bye"])
    with pytest.raises(ClientError, match="post-logout redirect URI"):
        update_logout(
            fd,
            client.client_id,
            post_logout_redirect_uris=["http://app.example/bye"],
            backchannel_logout_uri=None,
            backchannel_logout_session_required=False,
        )
    assert fd.clients.get(client.client_id, cached=False) == client
    updated = update_logout(
        fd,
        client.client_id,
        post_logout_redirect_uris=[],
        backchannel_logout_uri="https://app.example/bcl",
        backchannel_logout_session_required=True,
    )
    assert updated is not None
    assert updated.post_logout_redirect_uris == ()
    assert updated.backchannel_logout_uri == "https://app.example/bcl"
    assert updated.backchannel_logout_session_required


def test_update_logout_of_an_unknown_client_is_none(fd):
    assert (
        update_logout(
            fd,
            "nobody",
            post_logout_redirect_uris=[],
            backchannel_logout_uri=None,
            backchannel_logout_session_required=False,
        )
        is None
    )


LIMITS = Limits(max_redirect_uris=3, max_uri_length=60, max_name_length=20)
NATIVE_URIS = ["http://127.0.0.1/cb", "http://[::1]:8080/cb", "com.example.app:/cb", "https://app.example/cb"]


@pytest.mark.parametrize("uri", NATIVE_URIS)
def test_AG_DCR_07_a_native_client_may_use_loopback_private_use_and_https(uri: str):
    """OpenID Connect Registration 1.0 §2, RFC 8252 §7."""
    request = {"name": "CLI", "auth_method": "none", "redirect_uris": [uri], "application_type": "native"}
    assert validate(request).application_type == "native"


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1/cb",
        "https://localhost/cb",
        "https://127.0.0.1/cb",
        "https://[::1]/cb",
        "https://a.localhost/cb",
    ],
)
def test_AG_DCR_07_a_web_client_may_not_redirect_to_this_machine(uri: str):
    request = {"name": "App", "auth_method": "none", "redirect_uris": [uri], "application_type": "web"}
    with pytest.raises(ClientError, match="native") as refused:
        validate(request)
    assert refused.value.error == "invalid_redirect_uri"


def test_a_native_client_with_a_secret_may_use_a_loopback_redirect():
    """RFC 8252 §8.5: a dynamically registered native instance with a secret of its own (as MCP SDKs register)."""
    request = {"name": "Agent", "auth_method": "client_secret_post", "redirect_uris": ["http://127.0.0.1:3030/cb"]}
    assert validate({**request, "application_type": "native"}).redirect_uris == ("http://127.0.0.1:3030/cb",)
    with pytest.raises(ClientError, match="native") as refused:
        validate(request)  # the operator's command line, as before: loopback is for public clients
    assert refused.value.error == "invalid_redirect_uri"


def test_an_unknown_application_type_is_named():
    with pytest.raises(ClientError, match="application_type must be one of web, native"):
        validate({"name": "App", "redirect_uris": [WEB], "application_type": "desktop"})


def test_the_operator_path_infers_the_application_type_and_keeps_its_rules():
    """Without an application_type (the command line), loopback stays open to public clients, as before."""
    public = {"name": "CLI", "auth_method": "none"}
    assert validate({**public, "redirect_uris": ["http://127.0.0.1/cb"]}).application_type == "native"
    assert validate({**public, "redirect_uris": [WEB]}).application_type == "web"


@pytest.mark.parametrize(
    ("grant_types", "response_types", "expected"),
    [
        (None, None, ("code",)),
        (["authorization_code"], ["code", "code"], ("code",)),
        (["client_credentials"], [], ()),
        (["client_credentials"], None, ()),
    ],
)
def test_response_types_follow_the_grant_types(grant_types, response_types, expected):
    """RFC 7591 §2.1: code goes with authorization_code, and only with it."""
    request = {"name": "App", "redirect_uris": [WEB], "grant_types": grant_types, "response_types": response_types}
    assert validate(request).response_types == expected


@pytest.mark.parametrize(
    ("grant_types", "response_types", "message"),
    [
        (None, ["token"], "'token' is not supported"),
        (None, ["code", "id_token"], "'id_token' is not supported"),
        (None, [], "response_types must be"),
        (["client_credentials"], ["code"], "response_types must be"),
    ],
)
def test_inconsistent_response_types_are_named(grant_types, response_types, message):
    request = {"name": "App", "redirect_uris": [WEB], "grant_types": grant_types, "response_types": response_types}
    with pytest.raises(ClientError, match=message) as refused:
        validate(request)
    assert refused.value.error == "invalid_client_metadata"


def test_display_fields_are_kept():
    metadata = validate(
        {
            "name": "App",
            "redirect_uris": [WEB],
            "client_uri": "https://app.example/",
            "policy_uri": "https://app.example/privacy",
            "contacts": ["dev@app.example"],
            "software_version": "1.0",
        }
    )
    assert metadata.extra_metadata == {
        "client_uri": "https://app.example/",
        "policy_uri": "https://app.example/privacy",
        "contacts": ["dev@app.example"],
        "software_version": "1.0",
    }


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"logo_uri": "http://app.example/logo.png"}, "logo_uri must be an https URL"),
        ({"tos_uri": "https://user@app.example/tos"}, "tos_uri must not carry user information"),
        ({"client_uri": "https://app.example/" + "a" * 60}, "client_uri must not carry spaces"),
        ({"contacts": ["a", "b", "c", "d"]}, "contacts may hold at most 3"),
        ({"contacts": ["dev\n@app.example"]}, "contacts entries must be printable"),
        ({"software_id": "x" * 21}, "software_id must be printable and at most 20"),
    ],
)
def test_display_fields_are_judged_within_the_limits(fields, message):
    with pytest.raises(ClientError, match=message):
        validate({"name": "App", "redirect_uris": [WEB], **fields}, limits=LIMITS)


@pytest.mark.parametrize(
    ("request_", "error", "message"),
    [
        ({"name": "x" * 21}, "invalid_client_metadata", "client_name must be printable and at most 20"),
        ({"name": "App\u0007"}, "invalid_client_metadata", "client_name must be printable"),
        ({"redirect_uris": [f"https://app.example/{i}" for i in range(4)]}, "invalid_redirect_uri", "at most 3"),
        ({"redirect_uris": ["https://app.example/" + "a" * 60]}, "invalid_redirect_uri", "at most 60 characters"),
        ({"post_logout_redirect_uris": [WEB] * 4}, "invalid_client_metadata", "post_logout_redirect_uris"),
    ],
)
def test_counts_and_lengths_are_bounded_by_the_limits(request_, error, message):
    """RFC 7591 §5: a self-registered client's metadata is stored and shown, so none of it is unbounded."""
    with pytest.raises(ClientError, match=message) as refused:
        validate({"name": "App", "redirect_uris": [WEB], **request_}, limits=LIMITS)
    assert refused.value.error == error


def test_without_limits_the_operator_may_register_more():
    uris = [f"https://app.example/{i}" for i in range(12)]
    assert len(validate({"name": "App", "redirect_uris": uris}).redirect_uris) == 12


def test_requested_reads_rfc7591_names_with_their_defaults():
    """RFC 7591 §2: client_secret_basic and web when left out; operator-only fields and unknown ones ignored."""
    request = requested(
        {
            "client_name": "App",
            "redirect_uris": [WEB],
            "client_id": "chosen",
            "client_secret": "chosen-secret-value",
            "resources": ["https://api.example"],
            "access_token_lifetime": 86400,
            "foo": 1,
            "scope": None,
        }
    )
    assert request["auth_method"] == "client_secret_basic"
    assert request["application_type"] == "web"
    assert request.get("scope") is None
    assert not {"client_id", "secret", "resources", "access_token_ttl"} & set(request)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"redirect_uris": "https://app.example/cb"}, "redirect_uris must be an array of strings"),
        ({"redirect_uris": [1]}, "redirect_uris must be an array of strings"),
        ({"grant_types": [None]}, "grant_types must be an array of strings"),
        ({"scope": 1}, "scope must be a string"),
        ({"client_name": ["App"]}, "client_name must be a string"),
        ({"token_endpoint_auth_method": True}, "token_endpoint_auth_method must be a string"),
        ({"contacts": {"a": 1}}, "contacts must be an array of strings"),
        ({"jwks": {"keys": []}, "jwks_uri": "https://app.example/jwks"}, "must not both be present"),
        ({"backchannel_logout_session_required": 1}, "backchannel_logout_session_required must be a boolean"),
    ],
)
def test_requested_names_each_field_of_the_wrong_json_type(body, message):
    with pytest.raises(ClientError, match=message):
        requested(body)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
FIELDS = st.sampled_from(
    [
        "client_name",
        "redirect_uris",
        "grant_types",
        "response_types",
        "token_endpoint_auth_method",
        "scope",
        "jwks",
        "jwks_uri",
        "application_type",
        "contacts",
        "logo_uri",
        "post_logout_redirect_uris",
        "backchannel_logout_uri",
        "backchannel_logout_session_required",
        "id_token_signed_response_alg",
    ]
)


@given(st.dictionaries(FIELDS, JSON | st.lists(st.text(max_size=40), max_size=4), max_size=6))
def test_any_json_object_is_accepted_or_refused_with_a_named_field(body):
    """No JSON a client sends makes registration fail other than with ClientError (never a 500)."""
    error = None
    try:
        validate(requested({"client_name": "App", **body}), known_scopes={"openid"}, limits=LIMITS)
    except ClientError as exc:
        error = exc.error
    assert error in (None, "invalid_client_metadata", "invalid_redirect_uri")


def test_render_metadata_answers_every_stored_value_and_never_the_secret(fd):
    client, secret = register(
        fd,
        name="App",
        redirect_uris=[WEB],
        application_type="web",
        logo_uri="https://app.example/logo.png",
        contacts=["dev@app.example"],
    )
    rendered = render_metadata(client)
    assert rendered == {
        "client_id": client.client_id,
        "client_name": "App",
        "redirect_uris": [WEB],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": "openid profile email offline_access",
        "client_id_issued_at": client.created_at,
        "application_type": "web",
        "logo_uri": "https://app.example/logo.png",
        "contacts": ["dev@app.example"],
    }
    assert secret not in repr(rendered)
