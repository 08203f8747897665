"""Reading the provider files (DESIGN §6): one TOML file per provider, validated at load.

The package ships a catalog under ``vault/providers/``; an operator adds or overrides a provider by dropping a file of
the same shape into ``{home}/providers/`` (or ``vault_providers_dir``), no code. A file may ``extends`` another: tables
merge key by key, arrays and scalars replace. A bad file is a :class:`~.model.CatalogError` that names the file and
the field.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from .discovery import OIDC_WELL_KNOWN, RFC8414_WELL_KNOWN, issuer_of
from .model import (
    Api,
    BodyFormat,
    Catalog,
    CatalogError,
    ClientAuth,
    ExpiresUnit,
    InvalidField,
    Provider,
    Variable,
    VariableKind,
    VariableSource,
)
from .templates import (
    PLACEHOLDER,
    check_host_template,
    check_url,
    check_url_template,
    declared,
    host_of_template,
    placeholders,
    value_problem,
)

__all__ = ["load_catalog", "scope_problem"]

NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
VARIABLE_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 §5.6.2 token
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")  # RFC 6749 §3.3
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CREDENTIAL = "access_token"

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
        except InvalidField as e:
            raise CatalogError(f"{source}: {e.where}: {e.what}") from None
    return Catalog(providers=MappingProxyType(providers))


def _read(name: str, path: Traversable) -> dict[str, Any]:
    try:
        if not NAME.fullmatch(name):
            raise InvalidField("name", "the file name must be lowercase letters, digits and '-' (at most 63) + .toml")
        try:
            table = tomllib.loads(path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise InvalidField("syntax", f"not a UTF-8 TOML document ({e})") from None
        _check_shape(table, TOP_LEVEL, "")
    except InvalidField as e:
        raise CatalogError(f"{path}: {e.where}: {e.what}") from None
    return table


def _check_shape(table: Mapping[str, Any], keys: Mapping[str, str], prefix: str) -> None:
    for key, value in table.items():
        where = prefix + key
        if key not in keys:
            raise InvalidField(where, f"unknown key (known: {', '.join(sorted(keys))})")
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
                raise InvalidField(where, f"must be an array of strings, not {type(value).__name__}")
            for i, item in enumerate(value):
                _expect(item, str, f"{where}[{i}]", "a string")
        else:
            expected, what = SCALARS[kind]
            # bool is a subclass of int in Python: `true` must not pass for a number of seconds.
            if isinstance(value, bool) and expected is int:
                raise InvalidField(where, f"must be {what}, not bool")
            _expect(value, expected, where, what)


def _table(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidField(where, f"must be a table, not {type(value).__name__}")
    return value


def _expect(value: object, kind: type, where: str, what: str) -> None:
    if not isinstance(value, kind):
        raise InvalidField(where, f"must be {what}, not {type(value).__name__}")


def _inherit(name: str, raw: Mapping[str, dict[str, Any]], chain: tuple[str, ...]) -> dict[str, Any]:
    """The entry with its parents' fields under its own; tables merge key by key, arrays and scalars replace."""
    table = raw[name]
    parent = table.get("extends")
    if parent is None:
        return table
    if parent in (*chain, name):
        raise InvalidField("extends", "cycle: " + " -> ".join((*chain, name, parent)))
    if parent not in raw:
        raise InvalidField("extends", f"no provider named {parent!r}")
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
            raise InvalidField(f"variables.{v.name}", "a 'response' variable needs a keep entry that names it")
    urls = _urls(t, variables)
    separator, scopes, words = _scopes(t)
    params = {key: _params(t.get(key, {}), key, variables) for key in TABLES_OF_PARAMS}
    token_path = tuple(t.get("token_path", ()))
    if any(not step for step in token_path):
        raise InvalidField("token_path", "steps must be non-empty")
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
            check_url_template(template, key, variables, before_response=key in BEFORE_RESPONSE)
        elif key in ("authorize_url", "token_url") and urls["discovery_url"] is None:
            raise InvalidField(key, "required (or set discovery_url)")
    if urls["discovery_url"] is not None:
        _check_well_known(urls["discovery_url"])
    docs_url = urls["docs_url"]
    if docs_url is not None:
        if placeholders(docs_url, "docs_url"):
            raise InvalidField("docs_url", "a plain URL, not a template")
        check_url(docs_url, "docs_url")
    return urls


def _check_well_known(template: str) -> None:
    # A template that starts with a url variable is checked once filled, in resolve_discovery().
    if not template.startswith("{") and issuer_of(PLACEHOLDER.sub("x", template)) is None:
        raise InvalidField("discovery_url", f"must be an {OIDC_WELL_KNOWN} or {RFC8414_WELL_KNOWN} URL")


def _scopes(t: Mapping[str, Any]) -> tuple[str, tuple[str, ...], Mapping[str, str]]:
    separator: str = t.get("scope_separator", " ")
    if separator == "" or CONTROL.search(separator):
        raise InvalidField("scope_separator", "must be a non-empty printable string")
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
        raise InvalidField(where, f"a name is lowercase letters, digits and '_', and not {CREDENTIAL!r}")
    for key in ("source", "pattern"):
        if key not in spec:
            raise InvalidField(f"{where}.{key}", "required")
    try:
        re.compile(spec["pattern"])
    except re.error as e:
        raise InvalidField(f"{where}.pattern", f"not a regular expression ({e})") from None
    variable = Variable(
        name=name,
        source=cast(VariableSource, _choice(spec, "source", "", where + ".")),
        pattern=spec["pattern"],
        description=spec.get("description", ""),
        default=spec.get("default"),
        kind=cast(VariableKind, _choice(spec, "kind", "text", where + ".")),
    )
    if variable.default is not None and (problem := value_problem(variable, variable.default)):
        raise InvalidField(f"{where}.default", problem)
    return variable


def _choice(t: Mapping[str, Any], key: str, default: str, prefix: str = "") -> str:
    value: str = t.get(key, default)
    if value not in CHOICES[key]:
        raise InvalidField(prefix + key, f"{value!r} is not one of {', '.join(CHOICES[key])}")
    return value


def _seconds(value: int, where: str, minimum: int) -> int:
    if value < minimum:
        raise InvalidField(where, f"must be at least {minimum} seconds")
    return value


def _check_text(value: str | None, where: str) -> str:
    if value is None:
        raise InvalidField(where, "required")
    if not value.strip() or CONTROL.search(value):
        raise InvalidField(where, "must be non-empty text without control characters")
    return value


def scope_problem(scope: str, separator: str) -> str | None:
    """Why ``scope`` cannot be asked for at a provider that joins scopes with ``separator``, or None."""
    if not SCOPE_TOKEN.fullmatch(scope) or separator in scope:
        return f"{scope!r} is not a scope token (RFC 6749 §3.3) free of the separator {separator!r}"
    return None


def _check_scope(scope: str, separator: str, where: str) -> None:
    if problem := scope_problem(scope, separator):
        raise InvalidField(where, problem)


def _param_name(name: str, where: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.\[\]-]+", name):
        raise InvalidField(where, f"{name!r} is not a parameter name")
    return name


def _params(table: Mapping[str, str], where: str, variables: Mapping[str, Variable]) -> Mapping[str, str]:
    for key, value in table.items():
        _param_name(key, f"{where}.{key}")
        for placeholder in placeholders(value, f"{where}.{key}"):
            declared(placeholder, variables, f"{where}.{key}", before_response=where in BEFORE_RESPONSE)
    return MappingProxyType(dict(table))


def _keep(table: Mapping[str, str]) -> Mapping[str, str]:
    for path, name in table.items():
        if not all(path.split(".")):
            raise InvalidField(f"keep.{path}", "a dotted path of non-empty field names")
        if not VARIABLE_NAME.fullmatch(name):
            raise InvalidField(f"keep.{path}", f"{name!r}: a name is lowercase letters, digits and '_'")
    if len(set(table.values())) != len(table):
        raise InvalidField("keep", "two fields are kept under the same name")
    return MappingProxyType(dict(table))


def _api(spec: Mapping[str, Any] | None, variables: Mapping[str, Variable]) -> Api:
    if spec is None:
        raise InvalidField("api", "required")
    for key in ("base_url", "hosts"):
        if key not in spec:
            raise InvalidField(f"api.{key}", "required")
    hosts = tuple(spec["hosts"])
    if not hosts:
        raise InvalidField("api.hosts", "at least one host")
    for i, entry in enumerate(hosts):
        check_host_template(entry, f"api.hosts[{i}]", variables)
    base_url = spec["base_url"]
    check_url_template(base_url, "api.base_url", variables)
    if host_of_template(base_url) not in hosts:
        raise InvalidField("api.base_url", f"its host {host_of_template(base_url)!r} is not one of api.hosts")
    header: str = spec.get("header", "Authorization")
    value: str = spec.get("value", "Bearer {access_token}")
    extra: dict[str, str] = spec.get("extra_headers", {})
    _check_header(header, value, "api.header", "api.value")
    if f"{{{CREDENTIAL}}}" not in value:
        raise InvalidField("api.value", f"must place the credential: {{{CREDENTIAL}}}")
    for name, text in extra.items():
        where = f"api.extra_headers.{name}"
        _check_header(name, text, where, where)
        if name.lower() == header.lower():
            raise InvalidField(where, "is the header that carries the credential")
    return Api(base_url, hosts, header, value, MappingProxyType(dict(extra)))


def _check_header(name: str, value: str, name_field: str, value_field: str) -> None:
    if not HEADER_NAME.fullmatch(name):
        raise InvalidField(name_field, f"{name!r} is not a header name (RFC 9110 §5.6.2)")
    if CONTROL.search(value) or any(p != CREDENTIAL for p in placeholders(value, value_field)):
        raise InvalidField(value_field, f"only {{{CREDENTIAL}}} may be filled in, and no control characters")
