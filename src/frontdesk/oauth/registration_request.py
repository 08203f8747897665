"""An RFC 7591 §2 registration request (a JSON object) read into the :class:`ClientRequest` that
``oauth.registration.validate`` judges: every field checked for its JSON type and named when it has the wrong one
(RFC 7591 §3.2.2 ``invalid_client_metadata``).

Only the metadata a client may choose for itself is read. Unknown fields are ignored (RFC 7591 §2), and so are those
only an operator sets (``client_id``, ``client_secret``: the server makes both, §3.2.1; ``resources``, which would let
a client introspect others' tokens; token lifetimes). A JSON ``null`` is a field left out, as in OAuth's forms.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .client_metadata import DISPLAY_FIELDS, ClientError
from .registration import ClientRequest

__all__ = ["requested"]

_STRINGS = ("scope", "jwks_uri", "backchannel_logout_uri", *(f for f in DISPLAY_FIELDS if f != "contacts"))
_LISTS = ("grant_types", "response_types", "post_logout_redirect_uris", "contacts")


def _string(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise ClientError(f"{name} must be a string")
    return value


def _strings(body: Mapping[str, Any], name: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ClientError(f"{name} must be an array of strings")
    return value


def requested(body: Mapping[str, Any]) -> ClientRequest:
    """The client's request, typed; :class:`ClientError` naming the first field of the wrong JSON type."""
    uris = body.get("redirect_uris")
    if uris is not None and (not isinstance(uris, list) or not all(isinstance(u, str) for u in uris)):
        raise ClientError("redirect_uris must be an array of strings", "invalid_redirect_uri")
    if body.get("jwks") is not None and body.get("jwks_uri") is not None:
        raise ClientError("jwks and jwks_uri must not both be present (RFC 7591 §2)")
    session_required = body.get("backchannel_logout_session_required")
    if session_required is not None and not isinstance(session_required, bool):
        raise ClientError("backchannel_logout_session_required must be a boolean")
    dpop_bound = body.get("dpop_bound_access_tokens")  # RFC 9449 §5.2
    if dpop_bound is not None and not isinstance(dpop_bound, bool):
        raise ClientError("dpop_bound_access_tokens must be a boolean")
    strings = {name: _string(body, name) for name in _STRINGS}
    lists = {name: _strings(body, name) for name in _LISTS}
    return ClientRequest(
        name=_string(body, "client_name") or "",
        redirect_uris=uris or [],
        # RFC 7591 §2: client_secret_basic when left out.
        auth_method=_string(body, "token_endpoint_auth_method") or "client_secret_basic",
        # OpenID Connect Registration 1.0 §2: web when left out.
        application_type=_string(body, "application_type") or "web",
        id_token_alg=_string(body, "id_token_signed_response_alg"),
        jwks=body.get("jwks"),
        backchannel_logout_session_required=bool(session_required),
        dpop_bound_access_tokens=bool(dpop_bound),
        grant_types=lists["grant_types"],
        response_types=lists["response_types"],
        post_logout_redirect_uris=lists["post_logout_redirect_uris"],
        contacts=lists["contacts"],
        scope=strings["scope"],
        jwks_uri=strings["jwks_uri"],
        backchannel_logout_uri=strings["backchannel_logout_uri"],
        client_uri=strings["client_uri"],
        logo_uri=strings["logo_uri"],
        tos_uri=strings["tos_uri"],
        policy_uri=strings["policy_uri"],
        software_id=strings["software_id"],
        software_version=strings["software_version"],
    )
