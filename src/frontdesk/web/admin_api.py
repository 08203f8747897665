"""The admin API under ``/admin/api/v1/`` (issue 16 item 1): JSON resources for everything the command line does
and what it lacks, described by the OpenAPI 3.1 document served at ``/admin/api/v1/openapi.json``
(web/admin_openapi.py, checked by a test to cover exactly :data:`OPERATIONS`).

:data:`OPERATIONS` is the whole API as one table: method, path, the operation whose role it needs
(``admin.principals.OPERATIONS``) and the handler. A call runs authenticate (an admin token, RFC 6750 §2.1) →
authorize (its role, refusals audited) → handler (web/admin_api_*.py), which calls the admin service
(``frontdesk.admin``) that judges it and audits every change naming the token (``admin.*`` events). Lists answer
``{"items": [...], "next_cursor": ...}``; creation 201, deletion 204; refusals are ``{"error",
"error_description"}`` with 400, 401, 403, 404, 409, 422 or 429 (web/admin_api_http.py).

People use the console instead (web/admin_console.py): signed in with their session and second factor, acting
through ``admin.roles.person_principal`` on the same services. This API takes bearer tokens only: a cookie-borne
JSON API would need its own defence against cross-site requests, and has no user for one.
"""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from ..core import Frontdesk
from . import admin_api_catalog as catalog
from . import admin_api_clients as clients
from . import admin_api_records as records
from .admin_api_http import BASE, Operation, routes_of
from .admin_openapi import document
from .http import json_response

__all__ = ["OPERATIONS", "routes"]


class _ClientId(Convertor[str]):
    """A client_id in a path: slashes and all (a client ID metadata document's is an https URL, percent-encoded
    into the path and decoded before routing). Whether a path ending in ``/secret`` names a client or its secret is
    ``_ClientRoute``'s to say."""

    regex = r".+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("client_id", _ClientId())
_CLIENT = "/clients/{client_id:client_id}"


class _ClientRoute(Route):
    """A client's route or its secret's, told apart on the path as it was sent: ``/clients/c/secret`` names the
    secret of ``c`` (so ``PUT`` there is a method the secret does not have, 405, not a client ``c/secret``), while
    ``/clients/https%3A%2F%2Fapp.example%2Fsecret`` names the client ID metadata document at
    ``https://app.example/secret``, whose slashes were percent-encoded. Routing sees the decoded path, where the two
    look alike; the server's ``raw_path`` keeps them apart (the decoded path when a server gives none)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        raw: bytes | None = scope.get("raw_path")
        sent = raw.split(b"?", 1)[0].endswith(b"/secret") if raw is not None else scope["path"].endswith("/secret")
        if sent != self.path.endswith("/secret"):
            return Match.NONE, {}
        return super().matches(scope)


OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/clients", "clients.read", clients.list_clients),
    Operation("POST", "/clients", "clients.write", clients.create_client),
    # A client ID metadata document's client_id is its https URL, slashes and all: percent-encode it into the path.
    Operation("GET", "/clients/{client_id}", "clients.read", clients.read_client, _CLIENT),
    Operation("PATCH", "/clients/{client_id}", "clients.write", clients.update_client, _CLIENT),
    Operation("PUT", "/clients/{client_id}", "clients.write", clients.replace_client, _CLIENT),
    Operation("DELETE", "/clients/{client_id}", "clients.write", clients.delete_client, _CLIENT),
    Operation("POST", "/clients/{client_id}/secret", "clients.write", clients.rotate_secret, _CLIENT + "/secret"),
    Operation("GET", "/people", "people.read", clients.list_people),
    Operation("POST", "/people", "people.write", clients.create_person),
    Operation("GET", "/people/{user_id}", "people.read", clients.read_person),
    Operation("PATCH", "/people/{user_id}", "people.write", clients.update_person),
    Operation("DELETE", "/people/{user_id}", "people.write", clients.delete_person),
    Operation("POST", "/people/{user_id}/password-reset", "people.write", clients.send_password_reset),
    Operation("POST", "/people/{user_id}/email-verification", "people.write", clients.send_verification),
    Operation("DELETE", "/people/{user_id}/second-factor", "people.write", clients.remove_second_factor),
    Operation("DELETE", "/people/{user_id}/sessions", "people.write", clients.end_sessions),
    Operation("GET", "/scopes", "scopes.read", catalog.list_scopes),
    Operation("POST", "/scopes", "scopes.write", catalog.create_scope),
    Operation("PATCH", "/scopes/{name}", "scopes.write", catalog.update_scope),
    Operation("DELETE", "/scopes/{name}", "scopes.write", catalog.delete_scope),
    Operation("GET", "/resources", "resources.read", catalog.list_resources),
    Operation("POST", "/resources", "resources.write", catalog.create_resource),
    # A resource is named by its URI, slashes and all: percent-encode it into the path.
    Operation("GET", "/resources/{uri}", "resources.read", catalog.read_resource, "/resources/{uri:path}"),
    Operation("PATCH", "/resources/{uri}", "resources.write", catalog.update_resource, "/resources/{uri:path}"),
    Operation("DELETE", "/resources/{uri}", "resources.write", catalog.delete_resource, "/resources/{uri:path}"),
    Operation("GET", "/keys", "keys.read", catalog.list_keys),
    Operation("POST", "/keys/rotate", "keys.rotate", catalog.rotate_keys),
    Operation("GET", "/upstreams", "upstreams.read", catalog.list_upstreams),
    Operation("POST", "/upstreams", "upstreams.write", catalog.create_upstream),
    Operation("DELETE", "/upstreams/{name}", "upstreams.write", catalog.delete_upstream),
    Operation("GET", "/vault/integrations", "vault.read", catalog.list_integrations),
    Operation("DELETE", "/vault/integrations/{name}", "vault.write", catalog.delete_integration),
    Operation("GET", "/vault/connections", "vault.read", catalog.list_connections),
    Operation("GET", "/vault/connections/{connection_id}", "vault.read", catalog.read_connection),
    Operation("DELETE", "/vault/connections/{connection_id}", "vault.write", catalog.delete_connection),
    Operation("GET", "/audit", "audit.read", records.search_audit),
    Operation("GET", "/audit/export", "audit.export", records.export_audit),
    Operation("GET", "/alerts", "alerts.read", records.list_alerts),
    Operation("GET", "/alerts/{alert_id}", "alerts.read", records.read_alert),
    Operation("POST", "/alerts/{alert_id}/acknowledge", "alerts.write", records.acknowledge_alert),
    Operation("POST", "/alerts/{alert_id}/resolve", "alerts.write", records.resolve_alert),
    Operation("GET", "/admin-tokens", "admin_tokens.read", records.list_tokens),
    Operation("POST", "/admin-tokens", "admin_tokens.write", records.create_token),
    Operation("DELETE", "/admin-tokens/{token_id}", "admin_tokens.write", records.revoke_token),
    Operation("GET", "/roles", "admin_roles.read", records.list_roles),
    Operation("PUT", "/roles/{username}", "admin_roles.write", records.grant_role),
    Operation("DELETE", "/roles/{username}", "admin_roles.write", records.revoke_role),
)


async def openapi(request: Request) -> Response:
    """The API's OpenAPI 3.1 document: no secret in it, so it is served to anyone who asks."""
    fd: Frontdesk = request.app.state.fd
    return json_response(document(fd.issuer))


def routes(fd: Frontdesk) -> list[BaseRoute]:
    """The API's routes; none when ``[admin] api`` is off."""
    if not fd.settings.admin.api:
        return []
    served: list[BaseRoute] = [Route(BASE + "/openapi.json", openapi, methods=["GET"])]
    for route in routes_of(OPERATIONS):
        if route.path.startswith(BASE + _CLIENT):
            route = _ClientRoute(route.path, route.endpoint, methods=list(route.methods or ()))
        served.append(route)
    return served
