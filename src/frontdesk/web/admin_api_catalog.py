"""The admin API's scopes, resources, signing keys, upstream providers and the vault (``admin.catalog``,
``admin.upstreams``, ``admin.vault``): what each handler reads from the request and how it answers."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..admin import catalog, upstreams, vault
from ..admin.errors import Invalid
from ..admin.principals import Principal
from ..core import Frontdesk
from ..secret import Secret
from .admin_api_http import body_of, call, created, flag, integer, listing, no_content, page, query, text
from .http import json_response

__all__ = [
    "create_resource",
    "create_scope",
    "create_upstream",
    "delete_connection",
    "delete_integration",
    "delete_resource",
    "delete_scope",
    "delete_upstream",
    "list_connections",
    "list_integrations",
    "list_keys",
    "list_resources",
    "list_scopes",
    "list_upstreams",
    "read_connection",
    "read_resource",
    "rotate_keys",
    "update_resource",
    "update_scope",
]


async def list_scopes(request: Request, fd: Frontdesk, by: Principal) -> Response:
    return listing(await call(catalog.list_scopes, fd, by))


async def create_scope(request: Request, fd: Frontdesk, by: Principal) -> Response:
    body = await body_of(request, ("name", "description"))
    name = text(body, "name", longest=255) or ""
    made = await call(catalog.create_scope, fd, by, name, text(body, "description", longest=1000) or "")
    return created({"scope": made.as_dict()})


async def update_scope(request: Request, fd: Frontdesk, by: Principal) -> Response:
    body = await body_of(request, ("description",))
    description = text(body, "description", longest=1000) or ""
    changed = await call(catalog.update_scope, fd, by, request.path_params["name"], description)
    return json_response({"scope": changed.as_dict()})


async def delete_scope(request: Request, fd: Frontdesk, by: Principal) -> Response:
    await call(catalog.delete_scope, fd, by, request.path_params["name"])
    return no_content()


async def list_resources(request: Request, fd: Frontdesk, by: Principal) -> Response:
    return listing(await call(catalog.list_resources, fd, by))


async def create_resource(request: Request, fd: Frontdesk, by: Principal) -> Response:
    body = await body_of(request, ("uri", "name", "scope", "access_token_ttl", "require_dpop"))
    ttl = body.get("access_token_ttl")
    if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool)):
        raise Invalid("access_token_ttl must be a whole number of seconds")
    dpop = body.get("require_dpop", False)
    if not isinstance(dpop, bool):
        raise Invalid("require_dpop must be true or false")
    made, new_scopes = await call(
        catalog.create_resource,
        fd,
        by,
        uri=text(body, "uri", longest=255) or "",
        name=text(body, "name", longest=255) or "",
        scope=text(body, "scope", required=False) or "",
        access_token_ttl=ttl,
        require_dpop=dpop,
    )
    return created({"resource": made.as_dict(), "created_scopes": list(new_scopes)})


async def read_resource(request: Request, fd: Frontdesk, by: Principal) -> Response:
    found = await call(catalog.resource, fd, by, request.path_params["uri"])
    return json_response({"resource": found.as_dict()})


async def update_resource(request: Request, fd: Frontdesk, by: Principal) -> Response:
    body = await body_of(request, ("require_dpop",))
    dpop = body.get("require_dpop")
    if not isinstance(dpop, bool):
        raise Invalid("require_dpop must be true or false")
    changed = await call(catalog.update_resource, fd, by, request.path_params["uri"], require_dpop=dpop)
    return json_response({"resource": changed.as_dict()})


async def delete_resource(request: Request, fd: Frontdesk, by: Principal) -> Response:
    await call(catalog.delete_resource, fd, by, request.path_params["uri"])
    return no_content()


async def list_keys(request: Request, fd: Frontdesk, by: Principal) -> Response:
    return listing(await call(catalog.list_keys, fd, by))


async def rotate_keys(request: Request, fd: Frontdesk, by: Principal) -> Response:
    await body_of(request, (), optional=True)
    return listing(await call(catalog.rotate_keys, fd, by))


async def list_upstreams(request: Request, fd: Frontdesk, by: Principal) -> Response:
    return listing(await call(upstreams.list_upstreams, fd, by))


_UPSTREAM = (
    "name",
    "client_id",
    "client_secret",
    "discovery_url",
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "display_name",
    "scope",
    "token_auth_method",
)


async def create_upstream(request: Request, fd: Frontdesk, by: Principal) -> Response:
    body = await body_of(request, _UPSTREAM)
    secret = text(body, "client_secret", required=False, longest=1024)
    made = await call(
        upstreams.create_upstream,
        fd,
        by,
        text(body, "name", longest=64) or "",
        client_id=text(body, "client_id", longest=1000) or "",
        client_secret=Secret(secret) if secret else None,
        discovery_url=text(body, "discovery_url", required=False),
        authorization_endpoint=text(body, "authorization_endpoint", required=False),
        token_endpoint=text(body, "token_endpoint", required=False),
        userinfo_endpoint=text(body, "userinfo_endpoint", required=False),
        display_name=text(body, "display_name", required=False, longest=100),
        scope=text(body, "scope", required=False, longest=1000),
        token_auth_method=text(body, "token_auth_method", required=False, longest=64),
    )
    return created({"upstream": made.as_dict()})


async def delete_upstream(request: Request, fd: Frontdesk, by: Principal) -> Response:
    await call(upstreams.delete_upstream, fd, by, request.path_params["name"])
    return no_content()


async def list_integrations(request: Request, fd: Frontdesk, by: Principal) -> Response:
    return listing(await call(vault.list_integrations, fd, by))


async def delete_integration(request: Request, fd: Frontdesk, by: Principal) -> Response:
    with_connections = flag(await query(request), "with_connections")
    await call(vault.delete_integration, fd, by, request.path_params["name"], with_connections=with_connections)
    return no_content()


async def list_connections(request: Request, fd: Frontdesk, by: Principal) -> Response:
    params = await query(request)
    limit = integer(params, "limit", 50, 1, 200)
    assert limit is not None
    found = await call(
        vault.list_connections,
        fd,
        by,
        integration=params.get("integration"),
        user=params.get("user"),
        status=params.get("status"),
        cursor=params.get("cursor"),
        limit=limit,
    )
    return page(found)


async def read_connection(request: Request, fd: Frontdesk, by: Principal) -> Response:
    found = await call(vault.connection, fd, by, request.path_params["connection_id"])
    return json_response({"connection": found.as_dict()})


async def delete_connection(request: Request, fd: Frontdesk, by: Principal) -> Response:
    revoked = await call(vault.delete_connection, fd, by, request.path_params["connection_id"])
    return json_response({"deleted": True, "revoked_at_provider": revoked})
