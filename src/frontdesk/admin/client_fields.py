"""The client fields an operator may set through the admin API and console, with the JSON type each must have, and
the metadata a registered client stands at, as a request ``oauth.registration.validate`` judges again. Types are
checked here so that a value of the wrong kind is refused naming its field before any rule reads it; the rules
themselves are registration's, the same for the command line, ``/register`` and the admin API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..oauth.client_metadata import DISPLAY_FIELDS
from ..storage.clients import ClientRecord
from .errors import Invalid

__all__ = ["FIELDS", "MAX_ITEMS", "MAX_TEXT", "current_request", "typed_changes"]

MAX_ITEMS = 100  # entries of a list field
MAX_TEXT = 2048  # characters of a string field

# Field → its JSON kind: "str", "str?" (or null), "strs" (array of strings), "bool", "int?", "object?".
FIELDS: dict[str, str] = {
    "name": "str",
    "redirect_uris": "strs",
    "post_logout_redirect_uris": "strs",
    "grant_types": "strs",
    "scope": "str",
    "auth_method": "str",
    "jwks": "object?",
    "jwks_uri": "str?",
    "resources": "strs",
    "access_token_ttl": "int?",
    "id_token_alg": "str?",
    "backchannel_logout_uri": "str?",
    "backchannel_logout_session_required": "bool",
    "assertion_audience": "str",
    "may_exchange_for": "strs",
    "backchannel_token_delivery_mode": "str?",
    "backchannel_client_notification_endpoint": "str?",
    "dpop_bound_access_tokens": "bool",
    **dict.fromkeys(tuple(f for f in DISPLAY_FIELDS if f != "contacts"), "str?"),
    "contacts": "strs",
}


def _typed(name: str, kind: str, value: Any) -> Any:
    if value is None and kind.endswith("?"):
        return None
    base = kind.rstrip("?")
    if base == "str" and isinstance(value, str) and len(value) <= MAX_TEXT:
        return value
    if base == "bool" and isinstance(value, bool):
        return value
    if base == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if base == "object" and isinstance(value, dict):
        return value
    if (
        base == "strs"
        and isinstance(value, list)
        and len(value) <= MAX_ITEMS
        and all(isinstance(v, str) and len(v) <= MAX_TEXT for v in value)
    ):
        return list(value)
    shown = {
        "str": f"a string of at most {MAX_TEXT} characters",
        "bool": "true or false",
        "int": "an integer",
        "object": "a JSON object",
        "strs": f"an array of at most {MAX_ITEMS} strings",
    }[base]
    raise Invalid(f"{name} must be {shown}{' or null' if kind.endswith('?') else ''}", error="invalid_client_metadata")


def typed_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """``changes`` with every field known and of its kind, or :class:`Invalid` naming the first that is not."""
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise Invalid(f"unknown client field {unknown[0][:64]!r}", error="invalid_client_metadata")
    return {name: _typed(name, FIELDS[name], value) for name, value in changes.items()}


def current_request(client: ClientRecord) -> dict[str, Any]:
    """The metadata ``client`` stands at, as the fields of a registration request (never its secret).

    The operator's own clients are judged again as the command line registers them (their application type
    inferred); a client that registered itself keeps the application type it declared."""
    request: dict[str, Any] = {
        "name": client.name,
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "grant_types": list(client.grant_types),
        "scope": " ".join(client.scope),
        "auth_method": client.auth_method,
        "jwks": client.jwks,
        "jwks_uri": client.jwks_uri,
        "resources": list(client.resources),
        "access_token_ttl": client.access_token_ttl,
        "id_token_alg": client.id_token_alg,
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "backchannel_logout_session_required": client.backchannel_logout_session_required,
        "assertion_audience": client.assertion_audience,
        "may_exchange_for": list(client.may_exchange_for),
        "backchannel_token_delivery_mode": client.backchannel_token_delivery_mode,
        "backchannel_client_notification_endpoint": client.backchannel_client_notification_endpoint,
        "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
        "application_type": None if client.vetted else client.application_type,
    }
    request.update({k: v for k, v in client.extra_metadata.items() if k in DISPLAY_FIELDS})
    return request
