"""The provider catalog: what frontdesk knows about each service a person can connect, as data.

One TOML file per provider. The package ships a catalog under ``vault/providers/``; an operator adds or overrides a
provider by dropping a file of the same shape into ``{home}/providers/`` (or ``vault_providers_dir``), no code.
Each file is validated at load; a bad file is a :class:`CatalogError` that names the file and the field.

URLs may hold templates filled per integration or per connection: ``{tenant}`` (Microsoft Entra),
``{shop}`` (Shopify), ``{instance_url}`` (Salesforce, kept from the token response). A template value is checked
against the pattern its :class:`Variable` declares before it is put into a URL, so nothing a caller sends can change
the host a request goes to.

Two kinds of variable keep that promise twice over. A ``text`` value (a shop name, a tenant) may only hold RFC 3986
unreserved characters and only sits after a literal scheme, inside a host that ends in a literal domain
(``https://{shop}.myshopify.com``) or in a path. A ``url`` value (Salesforce ``instance_url``, a self-managed GitLab)
may only start a template and must itself be an absolute https URL without user information, query or fragment.
Providers that publish OpenID Connect Discovery (or RFC 8414 metadata) may leave their endpoints to
:func:`resolve_discovery`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, cast
from urllib.parse import urlsplit

import httpx

from frontdesk.config import is_loopback_host

__all__ = [
    "Api",
    "Catalog",
    "CatalogError",
    "Provider",
    "Variable",
    "allowed_hosts",
    "fill",
    "load_catalog",
    "resolve_discovery",
    "scope_problem",
]

ClientAuth = Literal["basic", "body", "json"]
BodyFormat = Literal["form", "json"]
ExpiresUnit = Literal["seconds", "milliseconds"]
VariableKind = Literal["text", "url"]
VariableSource = Literal["integration", "connection", "response"]


class CatalogError(ValueError):
    """A provider file that cannot be used; the message names the file and the field."""


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


NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
VARIABLE_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
# RFC 3986 §2.3 unreserved: nothing that could end a host, start a port, user information, path, query or fragment.
UNRESERVED = re.compile(r"[A-Za-z0-9._~-]+")
HOST = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
# What must follow the last variable of a templated host: a literal domain of at least two labels.
DOMAIN_SUFFIX = re.compile(r"(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?){2,}")
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 §5.6.2 token
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")  # RFC 6749 §3.3
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_VALUE = 2048
CREDENTIAL = "access_token"
OIDC_WELL_KNOWN = "/.well-known/openid-configuration"
RFC8414_WELL_KNOWN = "/.well-known/oauth-authorization-server"

TABLES_OF_PARAMS = ("authorize_params", "token_params", "refresh_params")
URL_FIELDS = ("discovery_url", "authorize_url", "token_url", "refresh_url", "revoke_url", "userinfo_url")
# Used before any token response exists, so a "response" variable cannot appear in them.
BEFORE_RESPONSE = ("discovery_url", "authorize_url", "token_url", "authorize_params", "token_params")

# The shape of a provider file: key -> kind. Tables merge under `extends`; arrays and scalars replace.
TOP_LEVEL = {
    **dict.fromkeys(("extends", "display_name", "docs_url", "access_words", "scope_separator", "scope_param"), "str"),
    **dict.fromkeys((*URL_FIELDS, "revoke_auth", "client_auth", "body_format", "expires_in_unit"), "str"),
    **dict.fromkeys(("default_scopes", "token_path"), "strs"),
    **dict.fromkeys((*TABLES_OF_PARAMS, "keep", "scope_words"), "table"),
    **dict.fromkeys(("pkce", "rotates_refresh_tokens"), "bool"),
    **dict.fromkeys(("refresh_margin", "keepalive"), "int"),
    "api": "api",
    "variables": "variables",
}
API_KEYS = {"base_url": "str", "hosts": "strs", "header": "str", "value": "str", "extra_headers": "table"}
VARIABLE_KEYS = {"source": "str", "pattern": "str", "description": "str", "default": "str", "kind": "str"}
SCALARS: dict[str, tuple[type, str]] = {
    "str": (str, "a string"),
    "bool": (bool, "a boolean"),
    "int": (int, "an integer"),
}
CHOICES: dict[str, tuple[str, ...]] = {
    "revoke_auth": ("basic", "body", "json"),
    "client_auth": ("basic", "body", "json"),
    "body_format": ("form", "json"),
    "expires_in_unit": ("seconds", "milliseconds"),
    "source": ("integration", "connection", "response"),
    "kind": ("text", "url"),
}


class _Invalid(Exception):
    """A field that is wrong, before the file it came from is known."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(where, what)
        self.where = where
        self.what = what


# Loading


def load_catalog(extra_dirs: Sequence[Path] = ()) -> Catalog:
    """The shipped providers, then each operator directory's ``*.toml`` in order (same stem: the later file wins).

    A directory that does not exist is skipped (the caller decides whether that is an error); anything that is not a
    usable provider file raises :class:`CatalogError`.
    """
    files: dict[str, Traversable] = {}
    shipped = resources.files("frontdesk.vault").joinpath("providers")
    for directory in (shipped, *(d for d in extra_dirs if d.exists())):
        if not directory.is_dir():
            raise CatalogError(f"{directory}: providers directory: not a directory")
        for path in sorted(directory.iterdir(), key=lambda p: p.name):
            if path.name.endswith(".toml") and path.is_file():
                files[path.name.removesuffix(".toml")] = path
    raw = {name: _read(name, path) for name, path in files.items()}
    providers: dict[str, Provider] = {}
    for name in sorted(raw):
        source = str(files[name])
        try:
            providers[name] = _build(name, source, _inherit(name, raw, ()))
        except _Invalid as e:
            raise CatalogError(f"{source}: {e.where}: {e.what}") from None
    return Catalog(providers=MappingProxyType(providers))


def _read(name: str, path: Traversable) -> dict[str, Any]:
    try:
        if not NAME.fullmatch(name):
            raise _Invalid("name", "the file name must be lowercase letters, digits and '-' (at most 63) + .toml")
        try:
            table = tomllib.loads(path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise _Invalid("syntax", f"not a UTF-8 TOML document ({e})") from None
        _check_shape(table, TOP_LEVEL, "")
    except _Invalid as e:
        raise CatalogError(f"{path}: {e.where}: {e.what}") from None
    return table


def _check_shape(table: Mapping[str, Any], keys: Mapping[str, str], prefix: str) -> None:
    for key, value in table.items():
        where = prefix + key
        if key not in keys:
            raise _Invalid(where, f"unknown key (known: {', '.join(sorted(keys))})")
        kind = keys[key]
        if kind == "api":
            _check_shape(_table(value, where), API_KEYS, where + ".")
        elif kind == "variables":
            for name, spec in _table(value, where).items():
                _check_shape(_table(spec, f"{where}.{name}"), VARIABLE_KEYS, f"{where}.{name}.")
        elif kind == "table":
            for k, v in _table(value, where).items():
                _expect(v, str, f"{where}.{k}", "a string")
        elif kind == "strs":
            if not isinstance(value, list):
                raise _Invalid(where, f"must be an array of strings, not {type(value).__name__}")
            for i, item in enumerate(value):
                _expect(item, str, f"{where}[{i}]", "a string")
        else:
            expected, what = SCALARS[kind]
            # bool is a subclass of int in Python: `true` must not pass for a number of seconds.
            if isinstance(value, bool) and expected is int:
                raise _Invalid(where, f"must be {what}, not bool")
            _expect(value, expected, where, what)


def _table(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(where, f"must be a table, not {type(value).__name__}")
    return value


def _expect(value: object, kind: type, where: str, what: str) -> None:
    if not isinstance(value, kind):
        raise _Invalid(where, f"must be {what}, not {type(value).__name__}")


def _inherit(name: str, raw: Mapping[str, dict[str, Any]], chain: tuple[str, ...]) -> dict[str, Any]:
    """The entry with its parents' fields under its own; tables merge key by key, arrays and scalars replace."""
    table = raw[name]
    parent = table.get("extends")
    if parent is None:
        return table
    if parent in (*chain, name):
        raise _Invalid("extends", "cycle: " + " -> ".join((*chain, name, parent)))
    if parent not in raw:
        raise _Invalid("extends", f"no provider named {parent!r}")
    own = {k: v for k, v in table.items() if k != "extends"}
    return _merge(_inherit(parent, raw, (*chain, name)), own)


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# Building one provider from its merged table


def _build(name: str, source: str, t: Mapping[str, Any]) -> Provider:
    variables = {v.name: v for v in (_variable(n, s) for n, s in t.get("variables", {}).items())}
    keep = _keep(t.get("keep", {}))
    for v in variables.values():
        if v.source == "response" and v.name not in keep.values():
            raise _Invalid(f"variables.{v.name}", "a 'response' variable needs a keep entry that names it")
    urls = _urls(t, variables)
    separator, scopes, words = _scopes(t)
    params = {key: _params(t.get(key, {}), key, variables) for key in TABLES_OF_PARAMS}
    token_path = tuple(t.get("token_path", ()))
    if any(not step for step in token_path):
        raise _Invalid("token_path", "steps must be non-empty")
    return Provider(
        name=name,
        display_name=_check_text(t.get("display_name"), "display_name"),
        authorize_url=urls["authorize_url"] or "",
        token_url=urls["token_url"] or "",
        api=_api(t.get("api"), variables),
        refresh_url=urls["refresh_url"],
        revoke_url=urls["revoke_url"],
        revoke_auth=cast(ClientAuth, _choice(t, "revoke_auth", "body")),
        discovery_url=urls["discovery_url"],
        scope_separator=separator,
        default_scopes=scopes,
        authorize_params=params["authorize_params"],
        token_params=params["token_params"],
        refresh_params=params["refresh_params"],
        client_auth=cast(ClientAuth, _choice(t, "client_auth", "body")),
        body_format=cast(BodyFormat, _choice(t, "body_format", "form")),
        pkce=t.get("pkce", True),
        token_path=token_path,
        keep=keep,
        expires_in_unit=cast(ExpiresUnit, _choice(t, "expires_in_unit", "seconds")),
        refresh_margin=_seconds(t.get("refresh_margin", 300), "refresh_margin", minimum=0),
        keepalive=None if t.get("keepalive") is None else _seconds(t["keepalive"], "keepalive", minimum=1),
        rotates_refresh_tokens=t.get("rotates_refresh_tokens", False),
        variables=tuple(variables.values()),
        scope_words=words,
        docs_url=urls["docs_url"],
        source_file=source,
        scope_param=_param_name(t.get("scope_param", "scope"), "scope_param"),
        userinfo_url=urls["userinfo_url"],
        access_words="" if "access_words" not in t else _check_text(t["access_words"], "access_words"),
    )


def _urls(t: Mapping[str, Any], variables: Mapping[str, Variable]) -> dict[str, str | None]:
    urls: dict[str, str | None] = {key: t.get(key) for key in (*URL_FIELDS, "docs_url")}
    for key in URL_FIELDS:
        template = urls[key]
        if template is not None:
            _check_url_template(template, key, variables)
        elif key in ("authorize_url", "token_url") and urls["discovery_url"] is None:
            raise _Invalid(key, "required (or set discovery_url)")
    if urls["discovery_url"] is not None:
        _check_well_known(urls["discovery_url"])
    docs_url = urls["docs_url"]
    if docs_url is not None:
        if _placeholders(docs_url, "docs_url"):
            raise _Invalid("docs_url", "a plain URL, not a template")
        _check_url(docs_url, "docs_url")
    return urls


def _scopes(t: Mapping[str, Any]) -> tuple[str, tuple[str, ...], Mapping[str, str]]:
    separator: str = t.get("scope_separator", " ")
    if separator == "" or CONTROL.search(separator):
        raise _Invalid("scope_separator", "must be a non-empty printable string")
    scopes = tuple(t.get("default_scopes", ()))
    for i, scope in enumerate(scopes):
        _check_scope(scope, separator, f"default_scopes[{i}]")
    words: dict[str, str] = t.get("scope_words", {})
    for scope, text in words.items():
        _check_scope(scope, separator, f"scope_words.{scope}")
        _check_text(text, f"scope_words.{scope}")
    return separator, scopes, MappingProxyType(dict(words))


def _variable(name: str, spec: Mapping[str, Any]) -> Variable:
    where = f"variables.{name}"
    if not VARIABLE_NAME.fullmatch(name) or name == CREDENTIAL:
        raise _Invalid(where, f"a name is lowercase letters, digits and '_', and not {CREDENTIAL!r}")
    for key in ("source", "pattern"):
        if key not in spec:
            raise _Invalid(f"{where}.{key}", "required")
    try:
        re.compile(spec["pattern"])
    except re.error as e:
        raise _Invalid(f"{where}.pattern", f"not a regular expression ({e})") from None
    variable = Variable(
        name=name,
        source=cast(VariableSource, _choice(spec, "source", "", where + ".")),
        pattern=spec["pattern"],
        description=spec.get("description", ""),
        default=spec.get("default"),
        kind=cast(VariableKind, _choice(spec, "kind", "text", where + ".")),
    )
    if variable.default is not None and (problem := _value_problem(variable, variable.default)):
        raise _Invalid(f"{where}.default", problem)
    return variable


def _choice(t: Mapping[str, Any], key: str, default: str, prefix: str = "") -> str:
    value: str = t.get(key, default)
    if value not in CHOICES[key]:
        raise _Invalid(prefix + key, f"{value!r} is not one of {', '.join(CHOICES[key])}")
    return value


def _seconds(value: int, where: str, minimum: int) -> int:
    if value < minimum:
        raise _Invalid(where, f"must be at least {minimum} seconds")
    return value


def _check_text(value: str | None, where: str) -> str:
    if value is None:
        raise _Invalid(where, "required")
    if not value.strip() or CONTROL.search(value):
        raise _Invalid(where, "must be non-empty text without control characters")
    return value


def scope_problem(scope: str, separator: str) -> str | None:
    """Why ``scope`` cannot be asked for at a provider that joins scopes with ``separator``, or None."""
    if not SCOPE_TOKEN.fullmatch(scope) or separator in scope:
        return f"{scope!r} is not a scope token (RFC 6749 §3.3) free of the separator {separator!r}"
    return None


def _check_scope(scope: str, separator: str, where: str) -> None:
    if problem := scope_problem(scope, separator):
        raise _Invalid(where, problem)


def _param_name(name: str, where: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.\[\]-]+", name):
        raise _Invalid(where, f"{name!r} is not a parameter name")
    return name


def _params(table: Mapping[str, str], where: str, variables: Mapping[str, Variable]) -> Mapping[str, str]:
    for key, value in table.items():
        _param_name(key, f"{where}.{key}")
        for placeholder in _placeholders(value, f"{where}.{key}"):
            _declared(placeholder, variables, f"{where}.{key}", before_response=where in BEFORE_RESPONSE)
    return MappingProxyType(dict(table))


def _keep(table: Mapping[str, str]) -> Mapping[str, str]:
    for path, name in table.items():
        if not all(path.split(".")):
            raise _Invalid(f"keep.{path}", "a dotted path of non-empty field names")
        if not VARIABLE_NAME.fullmatch(name):
            raise _Invalid(f"keep.{path}", f"{name!r}: a name is lowercase letters, digits and '_'")
    if len(set(table.values())) != len(table):
        raise _Invalid("keep", "two fields are kept under the same name")
    return MappingProxyType(dict(table))


def _api(spec: Mapping[str, Any] | None, variables: Mapping[str, Variable]) -> Api:
    if spec is None:
        raise _Invalid("api", "required")
    for key in ("base_url", "hosts"):
        if key not in spec:
            raise _Invalid(f"api.{key}", "required")
    hosts = tuple(spec["hosts"])
    if not hosts:
        raise _Invalid("api.hosts", "at least one host")
    for i, entry in enumerate(hosts):
        _check_host_template(entry, f"api.hosts[{i}]", variables)
    base_url = spec["base_url"]
    _check_url_template(base_url, "api.base_url", variables)
    if _host_of_template(base_url) not in hosts:
        raise _Invalid("api.base_url", f"its host {_host_of_template(base_url)!r} is not one of api.hosts")
    header: str = spec.get("header", "Authorization")
    value: str = spec.get("value", "Bearer {access_token}")
    extra: dict[str, str] = spec.get("extra_headers", {})
    _check_header(header, value, "api.header", "api.value")
    if f"{{{CREDENTIAL}}}" not in value:
        raise _Invalid("api.value", f"must place the credential: {{{CREDENTIAL}}}")
    for name, text in extra.items():
        where = f"api.extra_headers.{name}"
        _check_header(name, text, where, where)
        if name.lower() == header.lower():
            raise _Invalid(where, "is the header that carries the credential")
    return Api(base_url, hosts, header, value, MappingProxyType(dict(extra)))


def _check_header(name: str, value: str, name_field: str, value_field: str) -> None:
    if not HEADER_NAME.fullmatch(name):
        raise _Invalid(name_field, f"{name!r} is not a header name (RFC 9110 §5.6.2)")
    if CONTROL.search(value) or any(p != CREDENTIAL for p in _placeholders(value, value_field)):
        raise _Invalid(value_field, f"only {{{CREDENTIAL}}} may be filled in, and no control characters")


# Templates and URLs


def _placeholders(template: str, where: str) -> list[str]:
    names = PLACEHOLDER.findall(template)
    if "{" in PLACEHOLDER.sub("", template) or "}" in PLACEHOLDER.sub("", template):
        raise _Invalid(where, "a '{' or '}' that is not part of a {variable}")
    return names


def _declared(name: str, variables: Mapping[str, Variable], where: str, before_response: bool = False) -> Variable:
    if name not in variables:
        raise _Invalid(where, f"{{{name}}} is not declared in variables")
    if before_response and variables[name].source == "response":
        raise _Invalid(where, f"{{{name}}} comes from the token response, which does not exist yet here")
    return variables[name]


def _check_url_template(template: str, where: str, variables: Mapping[str, Variable]) -> None:
    names = _placeholders(template, where)
    kinds = [_declared(n, variables, where, before_response=where in BEFORE_RESPONSE).kind for n in names]
    if template.startswith("{"):
        if kinds[0] != "url":
            raise _Invalid(where, f"{{{names[0]}}} starts the URL, so it must be a variable of kind 'url'")
        if template[len(names[0]) + 2 :][:1] not in ("", "/"):
            raise _Invalid(where, f"{{{names[0]}}} may only be followed by a path")
        names, kinds = names[1:], kinds[1:]
    else:
        _check_url(PLACEHOLDER.sub("x", template), where)
        netloc = re.split(r"[/?#]", template.split("://", 1)[1], maxsplit=1)[0]
        if "{" in netloc and not DOMAIN_SUFFIX.fullmatch(netloc.rsplit("}", 1)[1]):
            raise _Invalid(where, "a variable in the host must be followed by a literal domain (.example.com)")
    if "url" in kinds:
        raise _Invalid(where, f"{{{names[kinds.index('url')]}}} is a whole URL and may only start the template")


def _check_url(url: str, where: str) -> None:
    """Absolute https, or http to a loopback host (tests and local providers); no user information or fragment."""
    problem = _url_problem(url)
    if problem:
        raise _Invalid(where, problem)


def _url_problem(url: str) -> str | None:
    if re.search(r"[\s\\]", url):
        return "no whitespace or backslash in a URL"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as e:
        return f"not a URL ({e})"
    if not parts.hostname:
        return "must be an absolute URL with a host"
    if not (parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname))):
        return "must be https (plain http only for a loopback host)"
    if "@" in parts.netloc or parts.fragment:
        return "must not carry user information or a fragment"
    return None


def _check_well_known(template: str) -> None:
    # A template that starts with a url variable is checked once filled, in resolve_discovery().
    if not template.startswith("{") and _issuer_of(PLACEHOLDER.sub("x", template)) is None:
        raise _Invalid("discovery_url", f"must be an {OIDC_WELL_KNOWN} or {RFC8414_WELL_KNOWN} URL")


def _check_host_template(entry: str, where: str, variables: Mapping[str, Variable]) -> None:
    names = _placeholders(entry, where)
    if names and entry == f"{{{names[0]}}}":
        if _declared(names[0], variables, where).kind != "url":
            raise _Invalid(where, f"a lone {{{names[0]}}} must be a variable of kind 'url'")
        return
    for name in names:
        if _declared(name, variables, where).kind != "text":
            raise _Invalid(where, f"{{{name}}} is a whole URL and cannot sit inside a host")
    if not (HOST.fullmatch(PLACEHOLDER.sub("x", entry)) or (not names and is_loopback_host(entry))):
        raise _Invalid(where, f"{entry!r} is not a lowercase host name")
    if names and not DOMAIN_SUFFIX.fullmatch(entry.rsplit("}", 1)[1]):
        raise _Invalid(where, "a variable in the host must be followed by a literal domain (.example.com)")


def _host_of_template(url: str) -> str:
    """The host part of a URL template, as it is written in api.hosts: "{shop}.myshopify.com", "{instance_url}"."""
    if url.startswith("{"):
        return url[: url.index("}") + 1]
    netloc = re.split(r"[/?#]", url.split("://", 1)[1], maxsplit=1)[0]
    host = netloc[1 : netloc.index("]")] if netloc.startswith("[") else netloc.split(":", 1)[0]
    return host.lower()


# Filling templates


def _value_problem(variable: Variable, value: str) -> str | None:
    if len(value) > MAX_VALUE:
        return f"longer than {MAX_VALUE} characters"
    if not re.fullmatch(variable.pattern, value):
        return f"{value[:80]!r} does not match its pattern"
    if variable.kind == "url":
        problem = _url_value_problem(value)
        return problem and f"{value[:80]!r}: {problem}"
    if not UNRESERVED.fullmatch(value) or value in (".", ".."):
        return f"{value[:80]!r} may only hold letters, digits and -._~ (RFC 3986 §2.3)"
    return None


def _url_value_problem(value: str) -> str | None:
    # ASCII only: an operator's pattern written with \w must not let look-alike Unicode hosts through.
    if not value.isascii():
        return "must be ASCII"
    # A path is appended to it: a query would swallow that path, a trailing '/' would double the slash.
    if "?" in value or value.endswith("/"):
        return "must not carry a query or end with '/'"
    return _url_problem(value)


def fill(template: str, values: Mapping[str, str], provider: Provider) -> str:
    """``template`` with each ``{var}`` replaced by its value (or the variable's default), once the value matches.

    Raises :class:`CatalogError` naming the variable when it is undeclared, missing or not of the declared shape, so
    a value a caller chose can never move a request to another host.
    """
    declared = {v.name: v for v in provider.variables}

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        where = f"{provider.source_file}: variables.{name}"
        variable = declared.get(name)
        if variable is None:
            raise CatalogError(f"{where}: not declared by provider {provider.name!r}")
        value = values.get(name, variable.default)
        if value is None:
            raise CatalogError(f"{where}: no value given and no default")
        problem = _value_problem(variable, value)
        if problem:
            raise CatalogError(f"{where}: {problem}")
        return value

    return PLACEHOLDER.sub(one, template)


def allowed_hosts(provider: Provider, values: Mapping[str, str]) -> frozenset[str]:
    """The lowercase host names the proxy may send this connection's credential to (ports are not compared)."""
    kinds = {v.name: v.kind for v in provider.variables}
    hosts: set[str] = set()
    for entry in provider.api.hosts:
        filled = fill(entry, values, provider)
        lone_url = entry.startswith("{") and kinds.get(entry[1:-1]) == "url"
        # A url value has passed _value_problem, so it has a host.
        hosts.add(cast(str, urlsplit(filled).hostname) if lone_url else filled.lower())
    return frozenset(hosts)


# Discovery


def _issuer_of(url: str) -> str | None:
    """The issuer a metadata URL belongs to: OIDC Discovery §4 appends, RFC 8414 §3.1 inserts the well-known part."""
    parts = urlsplit(url)
    if parts.path.endswith(OIDC_WELL_KNOWN):
        return f"{parts.scheme}://{parts.netloc}{parts.path.removesuffix(OIDC_WELL_KNOWN)}"
    if parts.path.startswith(RFC8414_WELL_KNOWN):
        return f"{parts.scheme}://{parts.netloc}{parts.path.removeprefix(RFC8414_WELL_KNOWN)}"
    return None


async def resolve_discovery(provider: Provider, values: Mapping[str, str], client: httpx.AsyncClient) -> Provider:
    """A copy of ``provider`` whose missing endpoints come from its discovery document; unchanged without one.

    Fields set in the provider file win over the document. The document's ``issuer`` must be exactly the issuer its
    URL names (OIDC Discovery §4.3, RFC 8414 §3.3), and every endpoint https (or http to a loopback host).
    Raises ``httpx.HTTPError`` when the document cannot be fetched (the caller may retry), :class:`CatalogError`
    when it cannot be used. Nothing is cached here: the caller owns the client and any cache.
    """
    if provider.discovery_url is None:
        return provider
    url = fill(provider.discovery_url, values, provider)
    where = f"{provider.source_file}: discovery_url"
    issuer = _issuer_of(url)
    if issuer is None:
        raise CatalogError(f"{where}: {url!r} is not a {OIDC_WELL_KNOWN} or {RFC8414_WELL_KNOWN} URL")
    response = await client.get(url, headers={"Accept": "application/json"})
    response.raise_for_status()
    try:
        document = response.json()
    except ValueError:
        raise CatalogError(f"{where}: {url} did not answer with JSON") from None
    if not isinstance(document, dict):
        raise CatalogError(f"{where}: {url} did not answer with a JSON object")
    if document.get("issuer") != issuer:
        raise CatalogError(f"{where}: the document's issuer {document.get('issuer')!r} is not {issuer!r}")

    def endpoint(key: str, required: bool) -> str | None:
        value = document.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str):
            raise CatalogError(f"{where}: {key}: missing or not a string")
        # Our URLs are templates, so a brace in a published endpoint would be read as a variable.
        problem = _url_problem(value) or ("no '{' or '}'" if "{" in value or "}" in value else None)
        if problem:
            raise CatalogError(f"{where}: {key}: {value!r}: {problem}")
        return value

    return replace(
        provider,
        authorize_url=provider.authorize_url or cast(str, endpoint("authorization_endpoint", True)),
        token_url=provider.token_url or cast(str, endpoint("token_endpoint", True)),
        revoke_url=provider.revoke_url or endpoint("revocation_endpoint", False),
        userinfo_url=provider.userinfo_url or endpoint("userinfo_endpoint", False),
        issuer=issuer,
        iss_parameter=document.get("authorization_response_iss_parameter_supported") is True,
    )
