"""The admin API's OpenAPI 3.1 document, written as data: the schemas of what it answers and takes, and one entry
per row of ``admin_api.OPERATIONS`` (tests/admin/test_openapi.py checks that they match, and schemathesis checks
the API against it). Paths are relative to the server URL ``{issuer}/admin/api/v1``."""

from __future__ import annotations

from typing import Any

from .admin_openapi_schemas import SCHEMAS, nullable, ref

__all__ = ["PATHS", "document"]

_ERRORS = {
    "400": "The request is malformed (not JSON, a parameter repeated)",
    "401": "No admin token, or one that is unknown, expired or revoked",
    "403": "The token's role does not allow this operation",
    "404": "There is no such thing",
    "409": "It exists already, or its state forbids the change",
    "413": "The request body is too large",
    "422": "A value cannot be accepted; the description says which and why",
    "429": "Too many failed admin token attempts from this address (Retry-After)",
}
_PROBLEM = {"content": {"application/json": {"schema": ref("Problem")}}}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _param(name: str, where: str = "query", schema: dict[str, Any] | None = None, words: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema or {"type": "string"},
        **({"description": words} if words else {}),
    }


_LIMIT = _param("limit", schema={"type": "integer", "minimum": 1, "maximum": 200, "default": 50})
_CURSOR = _param("cursor", words="next_cursor of the previous page")
_TIME = {"type": "integer", "minimum": 0, "maximum": 2**53 - 1}


def _op(
    op_id: str,
    summary: str,
    ok: tuple[str, dict[str, Any] | None, str],
    *,
    params: tuple[dict[str, Any], ...] = (),
    body: dict[str, Any] | None = None,
    body_required: bool = True,
) -> dict[str, Any]:
    status, schema, words = ok
    responses: dict[str, Any] = {status: _json(schema, words) if schema is not None else {"description": words}}
    responses.update({code: {"description": text, **_PROBLEM} for code, text in _ERRORS.items()})
    operation: dict[str, Any] = {"operationId": op_id, "summary": summary, "responses": responses}
    if params:
        operation["parameters"] = list(params)
    if body is not None:
        operation["requestBody"] = {"required": body_required, "content": {"application/json": {"schema": body}}}
    return operation


def _page(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {"items": {"type": "array", "items": ref(item)}, "next_cursor": nullable("string")},
    }


def _one(name: str, schema: str) -> dict[str, Any]:
    return {"type": "object", "required": [name], "properties": {name: ref(schema)}}


_CLIENT_ID = _param("client_id", "path", words="the client_id, percent-encoded (a metadata document's is a URL)")
_USER_ID = _param("user_id", "path")
_URI = _param("uri", "path", words="the resource's URI, percent-encoded")
_NAME = _param("name", "path")
_CONNECTION = _param("connection_id", "path")
_ALERT = _param("alert_id", "path")
_NONE = ("204", None, "Done")
_AUDIT_FILTERS = (
    _param("event", words="an event name, or a prefix ending in * (admin.*)"),
    _param("user_id"),
    _param("client_id"),
    _param("outcome"),
    _param("since", schema=_TIME, words="seconds since the epoch, included"),
    _param("until", schema=_TIME, words="seconds since the epoch, excluded"),
)
_EMPTY = {"type": "object", "additionalProperties": False}

PATHS: dict[str, dict[str, Any]] = {
    "/clients": {
        "get": _op(
            "listClients",
            "List clients by client_id",
            ("200", _page("Client"), "A page of clients"),
            params=(_param("search", words="part of a client_id or name"), _CURSOR, _LIMIT),
        ),
        "post": _op(
            "createClient",
            "Register a client (a secret method gets a secret, shown once)",
            ("201", ref("ClientWithSecret"), "The client"),
            body=ref("ClientCreate"),
        ),
    },
    "/clients/{client_id}": {
        "parameters": [_CLIENT_ID],
        "get": _op("readClient", "Read a client", ("200", _one("client", "Client"), "The client")),
        "patch": _op(
            "updateClient",
            "Change the fields given",
            ("200", ref("ClientWithSecret"), "The client"),
            body=ref("ClientFields"),
        ),
        "put": _op(
            "replaceClient",
            "Replace the metadata (what is left out gets the default)",
            ("200", ref("ClientWithSecret"), "The client"),
            body=ref("ClientFields"),
        ),
        "delete": _op("deleteClient", "Delete a client and end its grants", _NONE),
    },
    "/clients/{client_id}/secret": {
        "parameters": [_CLIENT_ID],
        "post": _op(
            "rotateClientSecret",
            "A new secret (shown once); the previous one works for the overlap",
            ("200", ref("RotatedSecret"), "The new secret"),
            body={
                "type": "object",
                "additionalProperties": False,
                "properties": {"overlap": {"type": "integer", "minimum": 0, "maximum": 30 * 86400}},
            },
            body_required=False,
        ),
    },
    "/people": {
        "get": _op(
            "listPeople",
            "Find people by username or email",
            ("200", _page("Person"), "A page of people"),
            params=(_param("search", words="part of a username or email"), _CURSOR, _LIMIT),
        ),
        "post": _op(
            "createPerson", "Create a person", ("201", _one("person", "Person"), "The person"), body=ref("PersonCreate")
        ),
    },
    "/people/{user_id}": {
        "parameters": [_USER_ID],
        "get": _op("readPerson", "Read a person", ("200", _one("person", "Person"), "The person")),
        "patch": _op(
            "updatePerson",
            "Disable (sessions, grants and refresh tokens end) or enable a person; change their email or name",
            ("200", _one("person", "Person"), "The person"),
            body={
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "disabled": {"type": "boolean"},
                    "email": {"type": ["string", "null"], "maxLength": 320},
                    "name": {"type": ["string", "null"], "maxLength": 255},
                },
            },
        ),
        "delete": _op("deletePerson", "Delete a person and everything they granted", _NONE),
    },
    "/people/{user_id}/password-reset": {
        "parameters": [_USER_ID],
        "post": _op("sendPasswordReset", "Email a password reset link", ("202", ref("Sent"), "Sent")),
    },
    "/people/{user_id}/email-verification": {
        "parameters": [_USER_ID],
        "post": _op("sendEmailVerification", "Email an address confirmation link", ("202", ref("Sent"), "Sent")),
    },
    "/people/{user_id}/second-factor": {
        "parameters": [_USER_ID],
        "delete": _op("removeSecondFactor", "Remove the person's authenticator app and recovery codes", _NONE),
    },
    "/people/{user_id}/sessions": {
        "parameters": [_USER_ID],
        "delete": _op(
            "endSessions",
            "Sign the person out of every browser",
            (
                "200",
                {"type": "object", "required": ["sessions"], "properties": {"sessions": {"type": "integer"}}},
                "How many sessions ended",
            ),
        ),
    },
    "/scopes": {
        "get": _op("listScopes", "List scopes", ("200", _page("Scope"), "Every scope")),
        "post": _op(
            "createScope", "Define a scope", ("201", _one("scope", "Scope"), "The scope"), body=ref("ScopeCreate")
        ),
    },
    "/scopes/{name}": {
        "parameters": [_NAME],
        "patch": _op(
            "updateScope",
            "Change the plain words consent shows for a scope",
            ("200", _one("scope", "Scope"), "The scope"),
            body=ref("ScopeUpdate"),
        ),
        "delete": _op("deleteScope", "Remove a scope no client or resource is registered for", _NONE),
    },
    "/resources": {
        "get": _op("listResources", "List protected resources", ("200", _page("Resource"), "Every resource")),
        "post": _op(
            "createResource",
            "Register a protected resource (RFC 8707)",
            ("201", ref("ResourceCreated"), "The resource and the scopes it created"),
            body=ref("ResourceCreate"),
        ),
    },
    "/resources/{uri}": {
        "parameters": [_URI],
        "get": _op("readResource", "Read a resource", ("200", _one("resource", "Resource"), "The resource")),
        "patch": _op(
            "updateResource",
            "Require DPoP-bound tokens, or not (RFC 9449 §7)",
            ("200", _one("resource", "Resource"), "The resource"),
            body={
                "type": "object",
                "additionalProperties": False,
                "required": ["require_dpop"],
                "properties": {"require_dpop": {"type": "boolean"}},
            },
        ),
        "delete": _op("deleteResource", "Remove a resource", _NONE),
    },
    "/keys": {"get": _op("listKeys", "List signing keys", ("200", _page("Key"), "Every key"))},
    "/keys/rotate": {
        "post": _op(
            "rotateKeys",
            "Rotate the signing keys",
            ("200", _page("Key"), "The keys after rotation"),
            body=_EMPTY,
            body_required=False,
        ),
    },
    "/upstreams": {
        "get": _op("listUpstreams", "List sign-in providers", ("200", _page("Upstream"), "Every provider")),
        "post": _op(
            "createUpstream",
            "Offer sign-in with a provider",
            ("201", _one("upstream", "Upstream"), "The provider"),
            body=ref("UpstreamCreate"),
        ),
    },
    "/upstreams/{name}": {
        "parameters": [_NAME],
        "delete": _op("deleteUpstream", "Stop offering a provider", _NONE),
    },
    "/vault/integrations": {
        "get": _op("listIntegrations", "List vault integrations", ("200", _page("Integration"), "Every one")),
    },
    "/vault/integrations/{name}": {
        "parameters": [_NAME],
        "delete": _op(
            "deleteIntegration",
            "Delete an integration (with its connections only when asked)",
            _NONE,
            params=(_param("with_connections", schema={"type": "string", "enum": ["true", "false"]}),),
        ),
    },
    "/vault/connections": {
        "get": _op(
            "listConnections",
            "List vault connections",
            ("200", _page("Connection"), "A page of connections"),
            params=(
                _param("integration"),
                _param("user", words="the platform's user id"),
                _param("status", schema={"type": "string", "enum": ["active", "needs_reauth", "revoked"]}),
                _CURSOR,
                _LIMIT,
            ),
        ),
    },
    "/vault/connections/{connection_id}": {
        "parameters": [_CONNECTION],
        "get": _op("readConnection", "Read a connection", ("200", _one("connection", "Connection"), "It")),
        "delete": _op(
            "deleteConnection",
            "Revoke a connection at its provider where possible, and delete it",
            ("200", ref("ConnectionDeleted"), "Deleted"),
        ),
    },
    "/audit": {
        "get": _op(
            "searchAudit",
            "Search the audit trail, newest first",
            ("200", _page("AuditEvent"), "A page of events"),
            params=(*_AUDIT_FILTERS, _CURSOR, _LIMIT),
        ),
    },
    "/audit/export": {
        "get": _op(
            "exportAudit",
            "Export the audit trail as JSON lines, oldest first",
            ("200", None, "JSON lines"),
            params=_AUDIT_FILTERS,
        ),
    },
    "/alerts": {
        "get": _op(
            "listAlerts",
            "List alerts, newest first",
            ("200", _page("Alert"), "A page of alerts"),
            params=(
                _param("status", schema={"type": "string", "enum": ["open", "acknowledged", "resolved"]}),
                _param("rule"),
                _CURSOR,
                _LIMIT,
            ),
        ),
    },
    "/alerts/{alert_id}": {
        "parameters": [_ALERT],
        "get": _op("readAlert", "Read an alert", ("200", _one("alert", "Alert"), "The alert")),
    },
    "/alerts/{alert_id}/acknowledge": {
        "parameters": [_ALERT],
        "post": _op(
            "acknowledgeAlert",
            "Say someone is looking at it",
            ("200", _one("alert", "Alert"), "It"),
            body=_EMPTY,
            body_required=False,
        ),
    },
    "/alerts/{alert_id}/resolve": {
        "parameters": [_ALERT],
        "post": _op(
            "resolveAlert", "Close an alert", ("200", _one("alert", "Alert"), "It"), body=_EMPTY, body_required=False
        ),
    },
    "/admin-tokens": {
        "get": _op("listAdminTokens", "List admin tokens (never their values)", ("200", _page("Token"), "All")),
        "post": _op(
            "createAdminToken",
            "Issue an admin token (shown once)",
            ("201", ref("IssuedToken"), "The token"),
            body=ref("TokenCreate"),
        ),
    },
    "/admin-tokens/{token_id}": {
        "parameters": [_param("token_id", "path")],
        "delete": _op("revokeAdminToken", "Revoke an admin token", _NONE),
    },
    "/roles": {"get": _op("listRoles", "List people holding an admin role", ("200", _page("Role"), "All"))},
    "/roles/{username}": {
        "parameters": [_param("username", "path")],
        "put": _op(
            "grantRole",
            "Give a person an admin role (replacing the one they held)",
            ("200", _one("role", "Role"), "The role"),
            body={
                "type": "object",
                "additionalProperties": False,
                "required": ["role"],
                "properties": {"role": {"type": "string", "enum": ["owner", "operator", "auditor"]}},
            },
        ),
        "delete": _op("revokeRole", "Take a person's admin role away", _NONE),
    },
}

# The export answers JSON lines, not JSON.
PATHS["/audit/export"]["get"]["responses"]["200"] = {
    "description": "One audit event per line, oldest first",
    "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
}


def document(issuer: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "frontdesk admin API",
            "version": "1",
            "description": "Operate frontdesk: clients, people, scopes, resources, signing keys, sign-in providers, "
            "the vault, the audit trail and alerts. Every call presents an admin token (frontdesk admin token "
            "create) as a Bearer token; every change is audited.",
        },
        "servers": [{"url": issuer + "/admin/api/v1"}],
        "security": [{"adminToken": []}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer", "bearerFormat": "fd_adm_…"}},
            "schemas": SCHEMAS,
        },
    }
