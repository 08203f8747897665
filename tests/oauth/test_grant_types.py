"""The grant-type registry (``frontdesk.oauth.grants.GRANT_TYPES``), declared once and read by the token endpoint,
discovery and registration; and the client authentication methods (``AUTH_METHODS``), likewise."""

from __future__ import annotations

from frontdesk.oauth.client_auth import AUTH_METHODS
from frontdesk.oauth.grants import DEVICE_CODE, GRANT_TYPES
from frontdesk.oauth.token_exchange import TOKEN_EXCHANGE
from frontdesk.protocol.ciba import CIBA_GRANT
from frontdesk.web.discovery import metadata


def test_each_grant_type_is_declared_under_its_own_name():
    assert all(name == grant.name for name, grant in GRANT_TYPES.items())
    assert list(GRANT_TYPES) == [
        "authorization_code",
        "refresh_token",
        "client_credentials",
        DEVICE_CODE,
        TOKEN_EXCHANGE,
        CIBA_GRANT,
    ]


def test_grant_types_that_rfc_9700_removed_are_not_declared():
    """RFC 9700 §2.4 and OAuth 2.1 §10: neither password nor implicit."""
    assert not {"password", "implicit"} & set(GRANT_TYPES)


def test_grants_that_act_on_the_clients_word_alone_need_a_confidential_client():
    """RFC 6749 §4.4: client_credentials has only the client's credentials to go on; RFC 8693 §5 and CIBA Core 1.0
    §7.1 ask the same of token exchange and backchannel authentication."""
    assert [g.name for g in GRANT_TYPES.values() if not g.public] == ["client_credentials", TOKEN_EXCHANGE, CIBA_GRANT]


def test_only_the_code_grant_goes_through_the_authorization_endpoint():
    assert [g.name for g in GRANT_TYPES.values() if g.redirect] == ["authorization_code"]


def test_discovery_lists_the_registry(fd):
    """RFC 8414 §2: grant_types_supported and the auth methods are read from the one declaration of each."""
    document = metadata(fd)
    assert document["grant_types_supported"] == list(GRANT_TYPES)
    assert document["token_endpoint_auth_methods_supported"] == list(AUTH_METHODS)
    assert document["introspection_endpoint_auth_methods_supported"] == [m for m in AUTH_METHODS if m != "none"]
