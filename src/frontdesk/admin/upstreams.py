"""The providers people may sign in with (OpenID Connect, or plain OAuth 2.0), as the operator manages them:
list, add (``upstream.providers`` judges and stores; a discovery URL is fetched), delete. Audited as
``admin.upstream.*``."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx

from ..core import Frontdesk
from ..secret import Secret
from ..storage.db import transaction
from ..upstream import add_provider, callback_url, list_providers, remove_provider
from ..upstream.providers import Provider, ProviderError
from .errors import Conflict, Invalid, NotFound
from .principals import Principal, record, require

__all__ = ["UpstreamView", "create_upstream", "delete_upstream", "list_upstreams"]


@dataclass(frozen=True, slots=True)
class UpstreamView:
    """A provider without its client secret, and the redirect URI to register at it."""

    name: str
    details: dict[str, Any]
    redirect_uri: str

    def as_dict(self) -> dict[str, Any]:
        return {**self.details, "redirect_uri": self.redirect_uri}


def _view(fd: Frontdesk, provider: Provider) -> UpstreamView:
    return UpstreamView(provider.name, provider.public(), callback_url(fd, provider.name))


def list_upstreams(fd: Frontdesk, by: Principal) -> list[UpstreamView]:
    require(by, "upstreams.read")
    return [_view(fd, p) for p in list_providers(fd)]


def create_upstream(
    fd: Frontdesk,
    by: Principal,
    name: str,
    *,
    client_id: str,
    client_secret: Secret | None = None,
    discovery_url: str | None = None,
    authorization_endpoint: str | None = None,
    token_endpoint: str | None = None,
    userinfo_endpoint: str | None = None,
    display_name: str | None = None,
    scope: str | None = None,
    token_auth_method: str | None = None,
    http: httpx.Client | None = None,
) -> UpstreamView:
    """Offer sign-in with a provider: by its discovery URL (OpenID Connect), or by its endpoints."""
    require(by, "upstreams.write")
    for label, value in (("client_id", client_id), ("display_name", display_name), ("scope", scope)):
        if value is not None and len(value) > 1000:
            raise Invalid(f"{label} is at most 1000 characters")
    try:
        with ExitStack() as stack:
            client = http or stack.enter_context(httpx.Client(follow_redirects=False))
            provider = add_provider(
                fd,
                client,
                name,
                client_id=client_id,
                client_secret=client_secret,
                discovery_url=discovery_url,
                authorization_endpoint=authorization_endpoint,
                token_endpoint=token_endpoint,
                userinfo_endpoint=userinfo_endpoint,
                display_name=display_name,
                scope=scope,
                token_auth_method=token_auth_method,
            )
    except ProviderError as exc:
        raise (Conflict if "already exists" in str(exc) else Invalid)(str(exc)) from None
    except ValueError as exc:  # a URL urllib cannot split (an unclosed IP literal)
        raise Invalid(f"not a URL: {exc}") from None
    with transaction(fd.engine) as conn:
        record(conn, by, "upstream.created", upstream=provider.name, kind=provider.kind)
    return _view(fd, provider)


def delete_upstream(fd: Frontdesk, by: Principal, name: str) -> None:
    """Stop offering the provider; accounts made through it stay, unlinked."""
    require(by, "upstreams.write")
    if "\x00" in name or not remove_provider(fd, name):
        raise NotFound(f"no upstream provider {name[:64]!r}")
    with transaction(fd.engine) as conn:
        record(conn, by, "upstream.deleted", upstream=name)
