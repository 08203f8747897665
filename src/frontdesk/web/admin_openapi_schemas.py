"""The schemas of the admin API's OpenAPI 3.1 document (web/admin_openapi.py): what each resource looks like as
the API answers it (the ``as_dict`` of the admin services' views) and what it takes (JSON Schema 2020-12)."""

from __future__ import annotations

from typing import Any

from ..admin.client_fields import FIELDS, MAX_ITEMS, MAX_TEXT

__all__ = ["SCHEMAS", "nullable", "ref"]


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(kind: str) -> dict[str, Any]:
    return {"type": [kind, "null"]}


def _object(properties: dict[str, Any], *, required: tuple[str, ...] | None = None) -> dict[str, Any]:
    """An object with these properties, all of them always present unless ``required`` says which are."""
    return {
        "type": "object",
        "required": list(properties if required is None else required),
        "properties": properties,
    }


_S = {"type": "string"}
_I = {"type": "integer"}
_B = {"type": "boolean"}
_STRINGS = {"type": "array", "items": _S}
_KINDS: dict[str, dict[str, Any]] = {
    "str": {"type": "string", "maxLength": MAX_TEXT},
    "str?": {"type": ["string", "null"], "maxLength": MAX_TEXT},
    "strs": {"type": "array", "maxItems": MAX_ITEMS, "items": {"type": "string", "maxLength": MAX_TEXT}},
    "bool": _B,
    "int?": nullable("integer"),
    "object?": nullable("object"),
}
_CLIENT_FIELDS = {name: _KINDS[kind] for name, kind in FIELDS.items()}
_DISPLAY = ("client_uri", "logo_uri", "tos_uri", "policy_uri", "software_id", "software_version", "contacts")

SCHEMAS: dict[str, Any] = {
    "Problem": _object({"error": _S, "error_description": _S}),
    "Client": _object(
        {
            "client_id": _S,
            **_CLIENT_FIELDS,
            "application_type": _S,
            "registered_by": {"type": "string", "enum": ["operator", "self", "document"]},
            "created_at": _I,
            "last_used_at": nullable("integer"),
            "has_secret": _B,
            "previous_secret_expires_at": nullable("integer"),
        },
        required=(
            "client_id",
            *(name for name in _CLIENT_FIELDS if name not in _DISPLAY),
            "application_type",
            "registered_by",
            "created_at",
            "last_used_at",
            "has_secret",
            "previous_secret_expires_at",
        ),
    ),
    "ClientFields": {"type": "object", "additionalProperties": False, "properties": _CLIENT_FIELDS},
    "ClientCreate": {
        "type": "object",
        "examples": [
            {"name": "Shop", "redirect_uris": ["https://shop.example/callback"], "scope": "openid profile"},
            {"name": "Reports", "auth_method": "client_secret_post", "grant_types": ["client_credentials"]},
        ],
        "additionalProperties": False,
        "required": ["name"],
        "properties": {
            **_CLIENT_FIELDS,
            "client_id": {"type": "string", "minLength": 1, "maxLength": 255},
            "secret": {"type": "string", "minLength": 16, "maxLength": 255},
        },
    },
    "ClientWithSecret": _object(
        {"client": ref("Client"), "client_secret": {"type": "string", "description": "shown this once"}},
        required=("client",),
    ),
    "RotatedSecret": _object(
        {"client": ref("Client"), "client_secret": _S, "previous_secret_valid_until": nullable("integer")}
    ),
    "Person": _object(
        {
            "id": _S,
            "username": _S,
            "email": nullable("string"),
            "name": nullable("string"),
            "created_at": _I,
            "email_verified": _B,
            "disabled": _B,
            "disabled_at": nullable("integer"),
            "second_factor": _B,
            "passkeys": _I,
            "admin_role": {"type": ["string", "null"], "enum": ["owner", "operator", "auditor", None]},
        }
    ),
    "PersonCreate": {
        "type": "object",
        "examples": [{"username": "robin", "password": "a long enough password", "email": "robin@example.com"}],
        "additionalProperties": False,
        "required": ["username", "password"],
        "properties": {
            "username": {"type": "string", "maxLength": 255},
            "password": {"type": "string", "maxLength": 1024},
            "email": {"type": ["string", "null"], "maxLength": 320},
            "name": {"type": ["string", "null"], "maxLength": 255},
        },
    },
    "Sent": _object({"sent": _B}),
    "Scope": _object({"name": _S, "description": _S, "built_in": _B}),
    "ScopeCreate": {
        "type": "object",
        "examples": [{"name": "orders:read", "description": "See your orders"}],
        "additionalProperties": False,
        "required": ["name", "description"],
        "properties": {
            "name": {"type": "string", "maxLength": 255},
            "description": {"type": "string", "maxLength": 1000},
        },
    },
    "ScopeUpdate": {
        "type": "object",
        "examples": [{"description": "See and cancel your orders"}],
        "additionalProperties": False,
        "required": ["description"],
        "properties": {"description": {"type": "string", "maxLength": 1000}},
    },
    "Resource": _object(
        {
            "uri": _S,
            "name": _S,
            "scope": _S,
            "access_token_ttl": nullable("integer"),
            "created_at": _I,
            "require_dpop": _B,
        }
    ),
    "ResourceCreate": {
        "type": "object",
        "examples": [{"uri": "https://api.example/orders", "name": "Orders", "scope": "orders:read"}],
        "additionalProperties": False,
        "required": ["uri", "name"],
        "properties": {
            "uri": {"type": "string", "maxLength": 255},
            "name": {"type": "string", "maxLength": 255},
            "scope": {"type": ["string", "null"], "maxLength": 2048},
            "access_token_ttl": nullable("integer"),
            "require_dpop": _B,
        },
    },
    "ResourceCreated": _object({"resource": ref("Resource"), "created_scopes": _STRINGS}),
    "Key": _object(
        {
            "kid": _S,
            "alg": _S,
            "state": {"type": "string", "enum": ["next", "active", "retired"]},
            "created_at": _I,
            "publish_until": nullable("integer"),
        }
    ),
    "Upstream": _object(
        {
            "name": _S,
            "display_name": _S,
            "kind": {"type": "string", "enum": ["oidc", "oauth2"]},
            "issuer": nullable("string"),
            "authorization_endpoint": _S,
            "token_endpoint": _S,
            "userinfo_endpoint": nullable("string"),
            "jwks_uri": nullable("string"),
            "token_endpoint_auth_method": _S,
            "client_id": _S,
            "scope": _S,
            "redirect_uri": _S,
        }
    ),
    "UpstreamCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "client_id"],
        "properties": {
            "name": {"type": "string", "maxLength": 64},
            "client_id": {"type": "string", "maxLength": 1000},
            "client_secret": {"type": ["string", "null"], "maxLength": 1024},
            **{
                name: {"type": ["string", "null"], "maxLength": 2048}
                for name in ("discovery_url", "authorization_endpoint", "token_endpoint", "userinfo_endpoint")
            },
            "display_name": {"type": ["string", "null"], "maxLength": 100},
            "scope": {"type": ["string", "null"], "maxLength": 1000},
            "token_auth_method": {"type": ["string", "null"], "maxLength": 64},
        },
    },
    "Integration": _object(
        {
            "name": _S,
            "provider": _S,
            "client_id": _S,
            "has_client_secret": _B,
            "scopes": _STRINGS,
            "params": {"type": "object", "additionalProperties": _S},
            "created_at": _I,
        }
    ),
    "Connection": _object(
        {
            "id": _S,
            "integration": _S,
            "user": _S,
            "person": nullable("string"),
            "status": {"type": "string", "enum": ["active", "needs_reauth", "revoked"]},
            "scopes": _STRINGS,
            "expires_at": nullable("integer"),
            "refreshed_at": nullable("integer"),
            "last_used_at": nullable("integer"),
            "failures": _I,
            "last_error": nullable("string"),
            "created_at": _I,
            "updated_at": _I,
        }
    ),
    "ConnectionDeleted": _object({"deleted": _B, "revoked_at_provider": _B}),
    "AuditEvent": _object(
        {
            "id": _I,
            "at": _I,
            "event": _S,
            "outcome": _S,
            "client_id": nullable("string"),
            "user_id": nullable("string"),
            "ip": nullable("string"),
            "detail": {"type": "object"},
        }
    ),
    "Alert": _object(
        {
            "id": _S,
            "rule": _S,
            "key": _S,
            "severity": _S,
            "status": {"type": "string", "enum": ["open", "acknowledged", "resolved"]},
            "summary": _S,
            "detail": {"type": "object"},
            "first_at": _I,
            "last_at": _I,
            "count": _I,
            "notified_at": nullable("integer"),
            "notify_attempts": _I,
            "notify_after": nullable("integer"),
            "acknowledged_at": nullable("integer"),
            "acknowledged_by": nullable("string"),
            "resolved_at": nullable("integer"),
            "resolved_by": nullable("string"),
        }
    ),
    "Token": _object(
        {
            "id": _S,
            "role": {"type": "string", "enum": ["owner", "operator", "auditor"]},
            "name": _S,
            "created_at": _I,
            "expires_at": nullable("integer"),
            "last_used_at": nullable("integer"),
            "revoked_at": nullable("integer"),
        }
    ),
    "TokenCreate": {
        "type": "object",
        "examples": [{"role": "auditor", "name": "nightly export", "days": 30}],
        "additionalProperties": False,
        "required": ["role", "name"],
        "properties": {
            "role": {"type": "string", "enum": ["owner", "operator", "auditor"]},
            "name": {"type": "string", "minLength": 1, "maxLength": 100},
            "days": {"type": ["integer", "null"], "minimum": 0, "maximum": 3650},
        },
    },
    "IssuedToken": _object({"token": ref("Token"), "secret": {"type": "string", "description": "shown this once"}}),
    "Role": _object(
        {
            "user_id": _S,
            "username": nullable("string"),
            "role": {"type": "string", "enum": ["owner", "operator", "auditor"]},
            "granted_at": _I,
            "granted_by": _S,
        }
    ),
}
