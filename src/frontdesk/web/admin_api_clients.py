"""The admin API's clients and people (``admin.clients``, ``admin.people``): what each handler reads from the
request and how it answers; the services judge and audit."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..admin import clients, people
from ..admin.client_fields import FIELDS
from ..admin.clients import DEFAULT_OVERLAP, MAX_OVERLAP, ClientWithSecret
from ..admin.errors import Invalid
from ..admin.principals import Principal
from ..core import Frontdesk
from .admin_api_http import body_of, call, created, integer, no_content, page, query, text
from .http import json_response

__all__ = [
    "create_client",
    "create_person",
    "delete_client",
    "delete_person",
    "end_sessions",
    "list_clients",
    "list_people",
    "read_client",
    "read_person",
    "remove_second_factor",
    "replace_client",
    "rotate_secret",
    "send_password_reset",
    "send_verification",
    "update_client",
    "update_person",
]


def _answer(made: ClientWithSecret, status: int = 200) -> Response:
    body: dict[str, Any] = {"client": made.client.as_dict()}
    if made.secret is not None:
        body["client_secret"] = made.secret  # shown this once
    return json_response(body, status)


async def list_clients(request: Request, fd: Frontdesk, by: Principal) -> Response:
    params = await query(request)
    limit = integer(params, "limit", 50, 1, 200)
    assert limit is not None
    found = await call(
        clients.list_clients, fd, by, search=params.get("search"), cursor=params.get("cursor"), limit=limit
    )
    return page(found)


async def create_client(request: Request, fd: Frontdesk, by: Principal) -> Response:
    body = await body_of(request, (*FIELDS, "client_id", "secret"))
    client_id = text(body, "client_id", required=False, longest=255)
    secret = text(body, "secret", required=False, longest=255)
    fields = {k: v for k, v in body.items() if k in FIELDS}
    return _answer(await call(clients.create_client, fd, by, fields, client_id=client_id, secret=secret), 201)


async def read_client(request: Request, fd: Frontdesk, by: Principal) -> Response:
    found = await call(clients.client, fd, by, request.path_params["client_id"])
    return json_response({"client": found.as_dict()})


async def update_client(request: Request, fd: Frontdesk, by: Principal) -> Response:
    body = await body_of(request, FIELDS)
    return _answer(await call(clients.update_client, fd, by, request.path_params["client_id"], body))


async def replace_client(request: Request, fd: Frontdesk, by: Principal) -> Response:
    body = await body_of(request, FIELDS)
    changed = await call(clients.update_client, fd, by, request.path_params["client_id"], body, replace=True)
    return _answer(changed)


async def rotate_secret(request: Request, fd: Frontdesk, by: Principal) -> Response:
    body = await body_of(request, ("overlap",), optional=True)
    overlap = body.get("overlap", DEFAULT_OVERLAP)
    if not isinstance(overlap, int) or isinstance(overlap, bool) or not 0 <= overlap <= MAX_OVERLAP:
        raise Invalid(f"overlap must be a whole number of seconds between 0 and {MAX_OVERLAP}")
    rotated = await call(clients.rotate_secret, fd, by, request.path_params["client_id"], overlap=overlap)
    return json_response(
        {
            "client": rotated.client.as_dict(),
            "client_secret": rotated.secret,
            "previous_secret_valid_until": rotated.previous_valid_until,
        }
    )


async def delete_client(request: Request, fd: Frontdesk, by: Principal) -> Response:
    await call(clients.delete_client, fd, by, request.path_params["client_id"])
    return no_content()


async def list_people(request: Request, fd: Frontdesk, by: Principal) -> Response:
    params = await query(request)
    limit = integer(params, "limit", 50, 1, 200)
    assert limit is not None
    found = await call(
        people.list_people, fd, by, search=params.get("search"), cursor=params.get("cursor"), limit=limit
    )
    return page(found)


async def create_person(request: Request, fd: Frontdesk, by: Principal) -> Response:
    body = await body_of(request, ("username", "password", "email", "name"))
    made = await call(
        people.create_person,
        fd,
        by,
        username=text(body, "username", longest=255) or "",
        password=text(body, "password", longest=1024) or "",
        email=text(body, "email", required=False, longest=320),
        name=text(body, "name", required=False, longest=255),
    )
    return created({"person": made.as_dict()})


async def read_person(request: Request, fd: Frontdesk, by: Principal) -> Response:
    found = await call(people.person, fd, by, request.path_params["user_id"])
    return json_response({"person": found.as_dict()})


async def update_person(request: Request, fd: Frontdesk, by: Principal) -> Response:
    """``{"disabled": true}`` disables the person (sessions, grants and refresh tokens end), false enables;
    ``email`` and ``name`` change (null clears), a new address to be verified again."""
    body = await body_of(request, ("disabled", "email", "name"))
    user_id = request.path_params["user_id"]
    disabled = body.get("disabled")
    if disabled is not None and not isinstance(disabled, bool):
        raise Invalid("disabled must be true or false")
    profile: dict[str, Any] = {}
    for name, longest in (("email", 320), ("name", 255)):
        if name in body:
            profile[name] = text(body, name, required=False, longest=longest)
    found = await call(people.update_person, fd, by, user_id, **profile)
    if disabled is not None:
        found = await call(people.disable_person if disabled else people.enable_person, fd, by, user_id)
    return json_response({"person": found.as_dict()})


async def delete_person(request: Request, fd: Frontdesk, by: Principal) -> Response:
    await call(people.delete_person, fd, by, request.path_params["user_id"])
    return no_content()


async def send_password_reset(request: Request, fd: Frontdesk, by: Principal) -> Response:
    await call(people.send_password_reset, fd, by, request.path_params["user_id"])
    return json_response({"sent": True}, 202)


async def send_verification(request: Request, fd: Frontdesk, by: Principal) -> Response:
    await call(people.send_email_verification, fd, by, request.path_params["user_id"])
    return json_response({"sent": True}, 202)


async def remove_second_factor(request: Request, fd: Frontdesk, by: Principal) -> Response:
    await call(people.remove_second_factor, fd, by, request.path_params["user_id"])
    return no_content()


async def end_sessions(request: Request, fd: Frontdesk, by: Principal) -> Response:
    ended = await call(people.end_person_sessions, fd, by, request.path_params["user_id"])
    return json_response({"sessions": ended})
