"""The admin console's Sign-in providers page: the identity providers people may sign in with (``upstream/``), each
with the redirect URI to register at it; add one by its OpenID Connect discovery URL or by its OAuth 2.0 endpoints,
or stop offering one (accounts made through it stay, unlinked). Every change goes through ``admin.upstreams``, as
``frontdesk upstream add`` and the admin API do, with their checks and ``admin.upstream.*`` audit events.

The provider's client secret is typed once into a password field and kept encrypted; no page shows it, and a
refused form gives back every field but it."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..admin import upstreams
from ..admin.errors import AdminError
from ..core import Frontdesk
from ..protocol.forms import Params
from ..secret import Secret
from ..upstream.providers import TOKEN_AUTH_METHODS
from .admin_gate import Admin, back_to, posted, render_found, shown

__all__ = ["UPSTREAMS", "upstream_action", "upstream_list"]

UPSTREAMS = "/admin/upstreams"
KIND_WORDS = {"oidc": "OpenID Connect", "oauth2": "OAuth 2.0"}
METHOD_WORDS = {
    "": "As the provider's discovery document prefers",
    "client_secret_basic": "The secret in HTTP Basic (client_secret_basic)",
    "client_secret_post": "The secret in the form (client_secret_post)",
    "none": "No secret: a public client with PKCE (none)",
}
DONE = {
    "added": "The provider is added: its button is on the sign-in page now.",
    "removed": "The provider is removed. Accounts made through it stay, and sign in as they otherwise can.",
}
# The add form's fields given back when it is refused (never the secret).
_FIELDS = (
    "name",
    "display_name",
    "client_id",
    "discovery_url",
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "scope",
    "token_auth_method",
)


def _page(
    fd: Frontdesk,
    admin: Admin,
    notice: str | None = None,
    status: int = 200,
    message: str | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    context: dict[str, Any] = {
        "notice": notice,
        "message": message,
        "form": form or dict.fromkeys(_FIELDS, ""),
        "kind_words": KIND_WORDS,
        "method_words": {m: METHOD_WORDS[m] for m in ("", *TOKEN_AUTH_METHODS)},
    }
    return render_found(
        fd,
        admin,
        "admin/upstreams.html",
        UPSTREAMS,
        lambda: {"providers": upstreams.list_upstreams(fd, admin.principal)},
        {"providers": ()},
        status,
        **context,
    )


async def upstream_list(request: Request) -> Response:
    notice = DONE.get(request.query_params.get("done", ""))
    return await shown(request, lambda fd, admin: _page(fd, admin, notice))


def _optional(form: Params, name: str) -> str | None:
    return form.get(name, "").strip() or None


def _add(fd: Frontdesk, admin: Admin, form: Params) -> None:
    secret = form.get("client_secret", "")
    upstreams.create_upstream(
        fd,
        admin.principal,
        form.get("name", "").strip(),
        client_id=form.get("client_id", "").strip(),
        client_secret=Secret(secret) if secret else None,
        discovery_url=_optional(form, "discovery_url"),
        authorization_endpoint=_optional(form, "authorization_endpoint"),
        token_endpoint=_optional(form, "token_endpoint"),
        userinfo_endpoint=_optional(form, "userinfo_endpoint"),
        display_name=_optional(form, "display_name"),
        scope=_optional(form, "scope"),
        token_auth_method=_optional(form, "token_auth_method"),
    )


def _action(fd: Frontdesk, admin: Admin, form: Params, _ip: str | None) -> Response:
    typed = {name: form.get(name, "") for name in _FIELDS}
    action = form.get("action")
    if action not in ("add", "remove"):
        return _page(fd, admin, status=400, message="The form asked for nothing this page does. Reload the page.")
    try:
        if action == "remove":
            upstreams.delete_upstream(fd, admin.principal, form.get("name", ""))
            return back_to(UPSTREAMS, done="removed")
        _add(fd, admin, form)
    except AdminError as exc:
        return _page(fd, admin, status=exc.status, message=exc.description, form=typed)
    return back_to(UPSTREAMS, done="added")


async def upstream_action(request: Request) -> Response:
    """POST /admin/upstreams: add a provider, or remove one (``action=remove``)."""
    return await posted(request, _action)
