"""OpenID Connect Client-Initiated Backchannel Authentication Flow - Core 1.0: the wire rules of an authentication
request (§7.1) and its error codes (§13). Pure: parses values the endpoint was sent and raises the exact error."""

from __future__ import annotations

import unicodedata
from typing import Literal

from ..errors import AccessDenied, InvalidRequest, OAuthError

__all__ = [
    "CIBA_GRANT",
    "DELIVERY_MODES",
    "MAX_BINDING_MESSAGE",
    "MAX_NOTIFICATION_TOKEN",
    "BackchannelAccessDenied",
    "DeliveryMode",
    "ExpiredLoginHintToken",
    "Hint",
    "InvalidBindingMessage",
    "InvalidUserCode",
    "MissingUserCode",
    "UnknownUserId",
    "binding_message",
    "notification_token",
    "one_hint",
    "requested_expiry",
]

CIBA_GRANT = "urn:openid:params:grant-type:ciba"  # §10.1
DeliveryMode = Literal["poll", "ping"]
# §4 backchannel_token_delivery_modes_supported: push (§10.3) is left out, as the FAPI-CIBA profile does: it sends
# the tokens themselves to a URL, where poll and ping leave them at the token endpoint behind client authentication.
DELIVERY_MODES: tuple[DeliveryMode, ...] = ("poll", "ping")
# §7.1: the binding message "SHOULD be relatively short and use a limited set of plain text characters": a person
# reads it on a phone beside the other device's screen, so a paragraph or control characters defeat its purpose.
MAX_BINDING_MESSAGE = 100
# §7.1 client_notification_token: "The length of the token MUST NOT exceed 1024 characters".
MAX_NOTIFICATION_TOKEN = 1024
# Decimal seconds, so a requested_expiry of absurd length is refused before it becomes an integer.
_MAX_EXPIRY_DIGITS = 9

Hint = tuple[Literal["login_hint", "id_token_hint", "login_hint_token"], str]


class ExpiredLoginHintToken(OAuthError):
    """§13: the login_hint_token has expired."""

    error = "expired_login_hint_token"


class UnknownUserId(OAuthError):
    """§13: the hint names nobody this server knows."""

    error = "unknown_user_id"


class InvalidBindingMessage(OAuthError):
    """§13: the binding message is invalid or unacceptable."""

    error = "invalid_binding_message"


class MissingUserCode(OAuthError):
    """§13: a user code is required but was not sent."""

    error = "missing_user_code"


class InvalidUserCode(OAuthError):
    """§13: the user code was invalid."""

    error = "invalid_user_code"


class BackchannelAccessDenied(AccessDenied):
    """§13: "The resource owner or OpenID Provider denied the CIBA flow": 403 at the backchannel endpoint (the token
    endpoint's ``access_denied`` stays 400, §11)."""

    status = 403


def one_hint(login_hint: str | None, id_token_hint: str | None, login_hint_token: str | None) -> Hint:
    """§7.1: "exactly one of" the three hints; an empty one counts as absent."""
    sent: list[Hint] = []
    if login_hint:
        sent.append(("login_hint", login_hint))
    if id_token_hint:
        sent.append(("id_token_hint", id_token_hint))
    if login_hint_token:
        sent.append(("login_hint_token", login_hint_token))
    if len(sent) != 1:
        raise InvalidRequest("send exactly one of login_hint, id_token_hint and login_hint_token")
    return sent[0]


def binding_message(value: str | None) -> str | None:
    """§7.1 ``binding_message``: short plain text (letters, marks, digits, punctuation, symbols and spaces), or
    ``invalid_binding_message`` (§13)."""
    if value is None:
        return None
    if not value.strip() or len(value) > MAX_BINDING_MESSAGE:
        raise InvalidBindingMessage(f"binding_message must be 1 to {MAX_BINDING_MESSAGE} characters of plain text")
    for char in value:
        # Unicode categories C* (control, format such as bidirectional overrides, private use, unassigned) and
        # line or paragraph separators could hide or reorder what the person reads.
        category = unicodedata.category(char)
        if category[0] == "C" or category in ("Zl", "Zp"):
            raise InvalidBindingMessage("binding_message must be plain text on one line")
    return value


def requested_expiry(value: str | None, default: int, maximum: int) -> int:
    """§7.1 ``requested_expiry``: "a positive integer" of seconds; the answer's ``expires_in`` (§7.3) is what the
    server grants, never more than ``maximum``."""
    if value is None:
        return min(default, maximum)
    if not (value.isascii() and value.isdigit()) or len(value) > _MAX_EXPIRY_DIGITS or int(value) < 1:
        raise InvalidRequest("requested_expiry must be a positive integer of seconds")
    return min(int(value), maximum)


def notification_token(mode: DeliveryMode, value: str | None) -> str | None:
    """§7.1 ``client_notification_token``: REQUIRED in ping mode, at most 1024 characters, a bearer token
    (RFC 6750 §2.1 ``b64token`` characters, since it goes back in an Authorization header, §10.2)."""
    if mode != "ping":
        return None
    if not value:
        raise InvalidRequest("client_notification_token is required in ping mode")
    if len(value) > MAX_NOTIFICATION_TOKEN:
        raise InvalidRequest(f"client_notification_token must not exceed {MAX_NOTIFICATION_TOKEN} characters")
    stripped = value.rstrip("=")
    if not stripped or not all(c.isascii() and (c.isalnum() or c in "-._~+/") for c in stripped):
        raise InvalidRequest("client_notification_token must be a bearer token (RFC 6750 §2.1)")
    return value
