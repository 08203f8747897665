"""The provider catalog's values (DESIGN §6): a :class:`Provider` and its parts, frozen once loaded.

What each field means is said here; what a valid value looks like is checked by :mod:`.loader` when a file is read,
and by :mod:`.templates` when a template is filled.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Api", "Catalog", "CatalogError", "InvalidField", "Provider", "Variable"]

ClientAuth = Literal["basic", "body", "json"]
BodyFormat = Literal["form", "json"]
ExpiresUnit = Literal["seconds", "milliseconds"]
VariableKind = Literal["text", "url"]
VariableSource = Literal["integration", "connection", "response"]


class CatalogError(ValueError):
    """A provider file that cannot be used; the message names the file and the field."""


class InvalidField(Exception):
    """A field that is wrong, before the file it came from is known; the loader turns it into a
    :class:`CatalogError` that names the file."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(where, what)
        self.where = where
        self.what = what


@dataclass(frozen=True, slots=True)
class Variable:
    """A template variable: where its value comes from and what it may look like."""

    name: str
    # "integration": set once by the operator (--param tenant=…); "connection": given when a connect session is
    # created (the person's shop); "response": kept from the token response (Salesforce instance_url).
    source: Literal["integration", "connection", "response"]
    # A full-match regular expression; values that do not match are refused before any URL is built.
    pattern: str
    description: str = ""
    default: str | None = None
    # "text": unreserved characters only, placed inside a URL; "url": a whole absolute URL that starts a template.
    kind: VariableKind = "text"


@dataclass(frozen=True, slots=True)
class Api:
    """Where the proxy may send a person's credential, and how it places it."""

    base_url: str  # template allowed: "https://{shop}.myshopify.com/admin"
    # Templates allowed; the only hosts a proxied request may reach. An entry is a host ("{shop}.myshopify.com") or a
    # lone url variable ("{instance_url}"), whose host counts; see allowed_hosts().
    hosts: tuple[str, ...]
    header: str = "Authorization"
    value: str = "Bearer {access_token}"  # Shopify: header "X-Shopify-Access-Token", value "{access_token}"
    extra_headers: Mapping[str, str] = field(default_factory=dict)  # Notion-Version, Accept…


@dataclass(frozen=True, slots=True)
class Provider:
    name: str  # the file stem: "google", "microsoft", "google-calendar"
    display_name: str  # "Google Calendar": what a person reads in "Connect your Google Calendar"
    authorize_url: str  # "" only when discovery_url is set: resolve_discovery() fills it
    token_url: str  # "" only when discovery_url is set: resolve_discovery() fills it
    api: Api
    refresh_url: str | None = None  # defaults to token_url
    revoke_url: str | None = None  # RFC 7009 or the provider's own; None: delete locally only
    revoke_auth: ClientAuth = "body"
    # Generic OpenID Connect and frontdesk itself: endpoints come from this discovery document at use time.
    discovery_url: str | None = None
    scope_separator: str = " "
    default_scopes: tuple[str, ...] = ()
    authorize_params: Mapping[str, str] = field(default_factory=dict)  # values may hold templates
    token_params: Mapping[str, str] = field(default_factory=dict)
    refresh_params: Mapping[str, str] = field(default_factory=dict)
    client_auth: ClientAuth = "body"
    # How requests to the provider's OAuth endpoints (token, refresh, revoke) are encoded: Notion wants JSON.
    body_format: BodyFormat = "form"
    pkce: bool = True
    # Where the token fields sit in the token response: () for the top level, ("authed_user",) for Slack's user token.
    token_path: tuple[str, ...] = ()
    # Response fields kept with the connection (not secret), dotted path from the top of the response -> name:
    # {"team.id": "team_id"}. A "response" variable takes its value from the entry that names it.
    keep: Mapping[str, str] = field(default_factory=dict)
    expires_in_unit: ExpiresUnit = "seconds"
    # Refresh this many seconds before expiry.
    refresh_margin: int = 300
    # Refresh an idle connection at least this often, so providers that revoke unused refresh tokens do not.
    keepalive: int | None = None
    # Does the token endpoint hand out a new refresh token on refresh (and invalidate the old one)?
    rotates_refresh_tokens: bool = False
    variables: tuple[Variable, ...] = ()
    # Plain words for scopes, used in "I need access to {words}": {"https://www.googleapis.com/auth/calendar":
    # "your Google Calendar"}.
    scope_words: Mapping[str, str] = field(default_factory=dict)
    docs_url: str | None = None
    source_file: str = ""  # where this entry was loaded from, for error messages
    # The authorization request parameter that carries the scopes: Slack asks for a user token with "user_scope".
    scope_param: str = "scope"
    # OIDC Core §5.3; filled from the discovery document when discovery_url is set.
    userinfo_url: str | None = None
    # Words for what a connection reaches when no scope says more (Notion has no scopes): "your Notion pages".
    access_words: str = ""
    # RFC 9207: the issuer identifier the authorization response's `iss` must equal, and whether the provider always
    # sends it (authorization_response_iss_parameter_supported); both from the discovery document.
    issuer: str | None = None
    iss_parameter: bool = False


@dataclass(frozen=True, slots=True)
class Catalog:
    providers: Mapping[str, Provider]

    def get(self, name: str) -> Provider:
        try:
            return self.providers[name]
        except KeyError:
            raise CatalogError(f"no provider named {name!r} in the catalog") from None

    def __iter__(self) -> Iterator[Provider]:
        return iter(sorted(self.providers.values(), key=lambda p: p.name))
