"""RFC 8414 and OpenID Connect Discovery 1.0 metadata, and the JWKS (RFC 7517)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..config import SIGNING_ALGS
from ..core import Frontdesk
from ..oauth.authorization_detail_types import types_supported
from ..oauth.client_auth import AUTH_METHODS
from ..oauth.grants import GRANT_TYPES
from ..oauth.tokens import ACR_VALUES
from ..oauth.writes import run_cached
from ..protocol.ciba import DELIVERY_MODES
from ..protocol.rfc7523 import ASYMMETRIC_ALGS
from ..protocol.rfc9449 import ALGORITHMS as DPOP_ALGORITHMS
from .http import Prepared

__all__ = ["jwks", "metadata", "oauth_authorization_server", "openid_configuration"]

_CLIENT_AUTH = list(AUTH_METHODS)


def metadata(fd: Frontdesk) -> dict[str, Any]:
    url = fd.url
    return {
        "issuer": fd.issuer,
        "authorization_endpoint": url("/authorize"),
        "token_endpoint": url("/token"),
        "jwks_uri": url("/jwks"),
        "userinfo_endpoint": url("/userinfo"),
        "introspection_endpoint": url("/introspect"),
        "revocation_endpoint": url("/revoke"),
        "device_authorization_endpoint": url("/device_authorization"),
        # OpenID Connect CIBA Core 1.0 §4; no signed requests, no user_code (metadata left out / false).
        "backchannel_authentication_endpoint": url("/bc-authorize"),
        "backchannel_token_delivery_modes_supported": list(DELIVERY_MODES),
        "backchannel_user_code_parameter_supported": False,
        "end_session_endpoint": url("/logout"),  # RP-Initiated Logout 1.0 §2.1
        "scopes_supported": sorted(fd.scopes()),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANT_TYPES),
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": _CLIENT_AUTH,
        "token_endpoint_auth_signing_alg_values_supported": ASYMMETRIC_ALGS,
        "introspection_endpoint_auth_methods_supported": [m for m in _CLIENT_AUTH if m != "none"],
        "introspection_endpoint_auth_signing_alg_values_supported": ASYMMETRIC_ALGS,
        "revocation_endpoint_auth_methods_supported": _CLIENT_AUTH,
        "revocation_endpoint_auth_signing_alg_values_supported": ASYMMETRIC_ALGS,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(SIGNING_ALGS),
        "userinfo_signing_alg_values_supported": [],
        "acr_values_supported": list(ACR_VALUES),
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "azp",
            "at_hash",
            "sid",
            "name",
            "preferred_username",
            "email",
            "email_verified",
        ],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "resource_indicators_supported": True,
        "dpop_signing_alg_values_supported": list(DPOP_ALGORITHMS),  # RFC 9449 §5.1
        "authorization_details_types_supported": list(types_supported(fd)),  # RFC 9396 §10.1
        "backchannel_logout_supported": True,  # Back-Channel Logout 1.0 §2.1
        "backchannel_logout_session_supported": True,
        # draft-ietf-oauth-client-id-metadata-document §5: https client_ids naming a metadata document are fetched.
        "client_id_metadata_document_supported": fd.settings.registration.metadata_documents,
        # RFC 8414 §2, RFC 7591 §3: advertised only when the endpoint exists ([registration] mode).
        **({"registration_endpoint": url("/register")} if fd.settings.registration.mode != "closed" else {}),
    }


# The rendered document for the scope and authorization details type registries it was rendered with: fd.scopes()
# returns the same dict for as long as its cache holds, and a new one when the scopes may have changed;
# types_supported the same tuple until the types change.
_rendered: tuple[object, object, bytes] | None = None


def _render(fd: Frontdesk) -> bytes:
    global _rendered
    scopes, types = fd.scopes(), types_supported(fd)
    cached = _rendered
    if cached is not None and cached[0] is scopes and cached[1] is types:
        return cached[2]
    body = json.dumps(metadata(fd), separators=(",", ":")).encode()
    _rendered = (scopes, types, body)
    return body


# The answers as sent, for the bodies they were built for (web/http.py ``Prepared``): the same bytes, the same answer.
_documents: tuple[bytes, Prepared] | None = None
_key_set: tuple[bytes, Prepared] | None = None


def _document(fd: Frontdesk) -> Response:
    global _documents
    body = _render(fd)
    prepared = _documents
    if prepared is None or prepared[0] is not body:
        headers = {"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"}
        prepared = _documents = (body, Prepared(body, "application/json", headers))
    return prepared[1]


async def openid_configuration(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    return await run_cached(fd.engine, _document, fd)  # the scopes are read every few seconds, not per request


async def oauth_authorization_server(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    return await run_cached(fd.engine, _document, fd)


async def jwks(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    # The ring is read once at start-up and re-read in the background (crypto/key_ring.py): this never waits.
    global _key_set
    body = fd.keys.jwks
    prepared = _key_set
    if prepared is None or prepared[0] is not body:
        headers = {"Cache-Control": "public, max-age=60", "Access-Control-Allow-Origin": "*"}
        prepared = _key_set = (body, Prepared(body, "application/jwk-set+json", headers))
    return prepared[1]
